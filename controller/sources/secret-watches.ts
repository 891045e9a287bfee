// Pull Secrets, watched only in the namespaces whose PrePullImages name some (finding 15 of the review): one
// list-watch per (namespace, type), the API server filtering by type, so the controller never holds the pull
// Secrets of namespaces kwarm has no business in. A namespace whose lists have not come back yet is
// 'unknown', never "no such Secret": the planner keeps existing copies until it knows.
import type { Logger } from 'winston';
import type { KubeClient } from '../../lib/kube-client.ts';
import { SECRET_COPY_LABEL } from '../../api/v1alpha1/labels.ts';
import { DOCKERCFG_TYPE, DOCKER_CONFIG_JSON_TYPE } from '../../lib/docker-config.ts';
import type { SecretView, SourceSecret } from '../derive/pull-secrets.ts';
import { paths } from '../write/api-objects.ts';
import { decodeSecret } from './decode.ts';
import { KeyedWatches } from './keyed-watches.ts';
import { projectedWatch } from './projected-watch.ts';

export interface SecretWatchesOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** Something the controller reads changed (an object, or a watch finished its first list). */
  readonly onChange: () => void;
}

export class SecretWatches {
  /** One KeyedWatches per Secret type, each keyed by namespace. */
  private readonly byType: readonly KeyedWatches<SecretView>[];

  constructor(opts: SecretWatchesOptions) {
    const { client, log, onChange } = opts;
    this.byType = [DOCKER_CONFIG_JSON_TYPE, DOCKERCFG_TYPE].map((type) => new KeyedWatches<SecretView>({
      log, what: `Secrets of type ${type}`, onChange,
      watch: (namespace) => projectedWatch<SecretView>({
        client, log, onChange, path: paths.namespacedSecrets(namespace), fieldSelector: `type=${type}`, decode: decodeSecret,
      }),
    }));
  }

  /** Watches exactly these namespaces from now on. */
  update(namespaces: ReadonlySet<string>, signal: AbortSignal): void {
    for (const w of this.byType) w.update(namespaces, signal);
  }

  /** Namespaces watched now. */
  namespaces(): string[] {
    return this.byType[0]?.keys().sort() ?? [];
  }

  /**
   * A Secret a PrePullImage may name, by `namespace/name`; the controller's own copies are never one.
   * 'unknown' while the namespace is not watched or not listed, or while the Secret does not decode.
   */
  get(key: string): SourceSecret {
    const namespace = key.slice(0, key.indexOf('/'));
    let known = true;
    for (const w of this.byType) {
      const informer = w.get(namespace);
      if (informer?.synced !== true) {
        known = false;
        continue;
      }
      if (informer.undecodableKeys().has(key)) known = false;
      const s = informer.get(key);
      if (s !== undefined && s.labels[SECRET_COPY_LABEL] !== 'true') return s;
    }
    return known ? undefined : 'unknown';
  }

  /** Every Secret cached now, as `namespace/name` (for tests and logs). */
  cachedKeys(): string[] {
    return this.byType.flatMap((w) => [...w.values()].map((s) => `${s.namespace}/${s.name}`)).sort();
  }

  /** Objects that do not decode now. */
  undecodableCount(): number {
    return this.byType.reduce((n, w) => n + w.undecodableCount(), 0);
  }

  /** Resolves once every current watch has listed once (at once if they all have), or after `timeoutMs` when given. */
  async waitForSync(signal: AbortSignal, timeoutMs?: number): Promise<void> {
    if (this.byType.every((w) => w.unsynced().length === 0)) return;
    await Promise.all(this.byType.map((w) => w.waitForSync(signal, timeoutMs)));
  }

  unhealthy(): string[] {
    return this.byType.flatMap((w) => w.unhealthy());
  }

  async stop(): Promise<void> {
    await Promise.all(this.byType.map((w) => w.stop()));
  }
}
