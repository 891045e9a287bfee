// One list-watch of ConfigMaps per distinct (namespace, label selector) the policies use, started and stopped
// as the policies change: per namespace when a policy names its namespaces, cluster-wide otherwise. The API
// server filters by both, and the cache keeps only identity and data, so the controller never holds every
// ConfigMap of the cluster, nor those of namespaces no policy reads.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { KubeClient } from '../../lib/kube-client.ts';
import type { ListWatch } from '../../lib/list-watch.ts';
import { paths } from '../write/api-objects.ts';
import { decodeConfigMap } from './decode.ts';
import { configMapWatchScope } from '../derive/listed-images.ts';
import { projectedWatch } from './projected-watch.ts';
import type { ConfigMapView } from '../derive/configmap-image-lists.ts';
import { errorText } from '../../lib/errors.ts';

interface Watch {
  readonly informer: ListWatch<ConfigMapView>;
  readonly stop: AbortController;
  readonly running: Promise<void>;
}

export interface ConfigMapWatchesOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** Something the controller reads changed (an object, or a watch finished its first list). */
  readonly onChange: () => void;
}

export class ConfigMapWatches {
  private readonly o: ConfigMapWatchesOptions;
  private readonly watches = new Map<string, Watch>();

  constructor(opts: ConfigMapWatchesOptions) {
    this.o = opts;
  }

  /** Starts watches for new keys (configMapWatchKey) and stops those no policy uses any more. */
  update(keys: ReadonlySet<string>, signal: AbortSignal): void {
    for (const [key, w] of this.watches) {
      if (keys.has(key)) continue;
      w.stop.abort();
      this.watches.delete(key);
      const { namespace, query } = configMapWatchScope(key);
      this.o.log.info('stopped watching ConfigMaps', { namespace: namespace === '' ? '(all)' : namespace, labelSelector: query });
    }
    if (signal.aborted) return;
    for (const key of keys) {
      if (this.watches.has(key)) continue;
      const { namespace, query } = configMapWatchScope(key);
      const stop = new AbortController();
      const both = AbortSignal.any([signal, stop.signal]);
      const informer = projectedWatch<ConfigMapView>({
        client: this.o.client,
        path: namespace === '' ? paths.configMaps : paths.namespacedConfigMaps(namespace),
        log: this.o.log,
        labelSelector: query,
        decode: decodeConfigMap,
        onChange: () => { this.o.onChange(); },
      });
      const running = informer.run(both).catch((err: unknown) => {
        this.o.log.error('ConfigMap watch ended', { namespace: namespace === '' ? '(all)' : namespace, labelSelector: query, error: errorText(err) });
      });
      // An empty first list changes no object, yet the policies waiting for it can now be evaluated.
      informer.waitForSync(both).then(() => { this.o.onChange(); }, () => undefined);
      this.watches.set(key, { informer, stop, running });
      this.o.log.info('watching ConfigMaps', { namespace: namespace === '' ? '(all)' : namespace, labelSelector: query });
    }
  }

  /** The ConfigMaps of each watch that has listed once, by key. */
  synced(): Map<string, Iterable<ConfigMapView>> {
    const out = new Map<string, Iterable<ConfigMapView>>();
    for (const [query, w] of this.watches) if (w.informer.synced) out.set(query, [...w.informer.values()]);
    return out;
  }

  /** Resolves once every current watch has listed once, or after `timeoutMs` (a list that keeps failing must not stop the controller). */
  async waitForSync(signal: AbortSignal, timeoutMs: number): Promise<void> {
    const all = Promise.all([...this.watches.values()].map((w) => w.informer.waitForSync(signal)));
    await Promise.race([all, sleep(timeoutMs, undefined, { signal })]).catch(() => undefined);
  }

  /** Why each watch that has not listed yet failed, by key. */
  listErrors(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [query, w] of this.watches) {
      const error = w.informer.lastError;
      if (!w.informer.synced && error !== undefined) out.set(query, error);
    }
    return out;
  }

  /** Watches whose stream is down, for readiness. */
  unhealthy(): string[] {
    return [...this.watches.values()].filter((w) => !w.informer.healthy).map((w) => w.informer.lastError ?? 'not synced');
  }

  /** Stops every watch and waits for them to end. */
  async stop(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    for (const w of all) w.stop.abort();
    await Promise.allSettled(all.map((w) => w.running));
  }
}
