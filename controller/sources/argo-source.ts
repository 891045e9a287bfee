// The Argo Workflows kinds, watched only where they exist. Argo's CRDs may be missing, installed later or
// removed, so which kinds the cluster serves is asked through discovery (GET /apis/argoproj.io/v1alpha1):
// when some policy first names an Argo kind, then every `discoveryIntervalMs` while any does, and soon after
// an Argo watch fails. A list-watch runs only for kinds that are both named and served; it is stopped (and
// its objects forgotten) when the kind stops being either. With no policy naming an Argo kind, nothing is
// requested at all. A missing group is a state, not an error: it is logged once, when it changes.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { ARGO_WORKLOAD_KINDS } from '../../api/v1alpha1/index.ts';
import { isNotFound, type KubeClient } from '../../lib/kube-client.ts';
import type { ListWatch } from '../../lib/list-watch.ts';
import { Wakeup } from '../../lib/wakeup.ts';
import {
  ARGO_DISCOVERY_PATH,
  argoCollectionPath,
  decodeArgoWorkflow,
  servedArgoKinds,
  type ArgoKind,
  type ArgoWorkflowView,
} from '../derive/argo-workflow-images.ts';
import { projectedWatch } from './projected-watch.ts';
import { errorText } from '../../lib/errors.ts';

export interface ArgoSourceOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** The objects or the served kinds changed: a reconcile pass is due. */
  readonly onChange: () => void;
  /** How often discovery is repeated while some policy names an Argo kind. */
  readonly discoveryIntervalMs: number;
  /** Least time between two discoveries, however often watches fail. */
  readonly minDiscoveryGapMs?: number;
}

interface RunningWatch {
  readonly informer: ListWatch<ArgoWorkflowView>;
  readonly stop: AbortController;
  readonly done: Promise<void>;
}

/** After a failed discovery (not a 404), the next one comes this soon at the latest; it logs only new errors. */
const DISCOVERY_RETRY_MS = 5000;

function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

export class ArgoSource {
  private readonly o: ArgoSourceOptions & { minDiscoveryGapMs: number };
  private wanted: ReadonlySet<ArgoKind> = new Set();
  /** undefined until discovery first answered. */
  private servedKinds: ReadonlySet<ArgoKind> | undefined;
  private readonly watches = new Map<ArgoKind, RunningWatch>();
  private triggered = true;
  private readonly wakeup = new Wakeup();
  private lastDiscoveryError: string | undefined;
  /** Resolved each time a discovery round and the watch changes after it are done. */
  private roundWaiters: (() => void)[] = [];

  constructor(opts: ArgoSourceOptions) {
    this.o = { minDiscoveryGapMs: 1000, ...opts };
  }

  /** The kinds the cluster serves, as discovery last said; undefined before its first answer. */
  get served(): ReadonlySet<ArgoKind> | undefined {
    return this.servedKinds;
  }

  /** Objects of every watched kind. */
  *objects(): Iterable<ArgoWorkflowView> {
    for (const w of this.watches.values()) yield* w.informer.values();
  }

  /** Objects that do not decode now, by kind (finding 11). */
  undecodableByKind(): Map<ArgoKind, number> {
    const out = new Map<ArgoKind, number>();
    for (const [kind, w] of this.watches) out.set(kind, w.informer.undecodableKeys().size);
    return out;
  }

  /**
   * Kinds whose objects are not fully known yet (named by a policy, but discovery has not answered or the
   * watch has not listed): PrePullImages derived from them must not be deleted as unwanted meanwhile.
   */
  uncertainKinds(): Set<ArgoKind> {
    const out = new Set<ArgoKind>();
    for (const kind of this.wanted) {
      if (this.servedKinds === undefined) out.add(kind);
      else if (this.servedKinds.has(kind) && this.watches.get(kind)?.informer.synced !== true) out.add(kind);
    }
    return out;
  }

  /** Sets the kinds some policy names; a change is acted on at once. */
  want(kinds: ReadonlySet<ArgoKind>): void {
    if (sameSet(kinds, this.wanted)) return;
    this.wanted = new Set(kinds);
    this.trigger();
  }

  private wasTriggered(): boolean {
    return this.triggered;
  }

  private trigger(): void {
    this.triggered = true;
    this.wakeup.wake();
  }

  /**
   * Resolves once discovery has answered (or failed) for the kinds wanted now and their watches have listed,
   * or after `timeoutMs`: the controller's first pass waits for it, so it does not drop images it merely
   * has not read yet.
   */
  async settle(signal: AbortSignal, timeoutMs: number): Promise<void> {
    if (this.wanted.size === 0) return;
    this.trigger();
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    // Rounds until discovery has answered once (a failed one is retried within DISCOVERY_RETRY_MS).
    do {
      await new Promise<void>((resolve) => {
        const done = (): void => { deadline.removeEventListener('abort', done); resolve(); };
        deadline.addEventListener('abort', done, { once: true });
        this.roundWaiters.push(done);
      });
    } while (this.servedKinds === undefined && !deadline.aborted);
    const pending = [...this.watches.values()].filter((w) => !w.informer.synced);
    await Promise.all(pending.map((w) => w.informer.waitForSync(deadline).catch(() => undefined)));
  }

  private async discover(signal: AbortSignal): Promise<void> {
    const { client, log } = this.o;
    let served: Set<ArgoKind>;
    try {
      served = servedArgoKinds(await client.get(ARGO_DISCOVERY_PATH, signal));
    } catch (err) {
      if (signal.aborted) return;
      if (!isNotFound(err)) {
        // Keep what we knew: a flaky API server is no reason to stop watches or forget objects.
        const text = errorText(err);
        if (text !== this.lastDiscoveryError) log.warn('Argo Workflows discovery failed; keeping the last answer', { error: text });
        this.lastDiscoveryError = text;
        return;
      }
      served = new Set();
    }
    this.lastDiscoveryError = undefined;
    if (this.servedKinds === undefined || !sameSet(served, this.servedKinds)) {
      const missing = ARGO_WORKLOAD_KINDS.filter((k) => !served.has(k));
      log.info('Argo Workflows kinds served by the cluster', { served: [...served], notServed: missing });
      this.servedKinds = served;
      this.o.onChange();
    }
  }

  /** Starts watches for kinds named and served, stops the others. */
  private reconcileWatches(signal: AbortSignal): void {
    const served = this.servedKinds;
    for (const [kind, w] of this.watches) {
      if (this.wanted.has(kind) && served?.has(kind) !== false) continue;
      w.stop.abort();
      this.watches.delete(kind);
      this.o.log.info('stopped watching an Argo Workflows kind', { kind, reason: this.wanted.has(kind) ? 'not served' : 'no policy names it' });
      this.o.onChange();
    }
    if (served === undefined) return;
    for (const kind of this.wanted) {
      if (!served.has(kind) || this.watches.has(kind)) continue;
      this.watches.set(kind, this.startWatch(kind, signal));
      this.o.log.info('watching an Argo Workflows kind', { kind });
    }
  }

  private startWatch(kind: ArgoKind, parent: AbortSignal): RunningWatch {
    const stop = new AbortController();
    const signal = AbortSignal.any([parent, stop.signal]);
    const informer = projectedWatch<ArgoWorkflowView>({
      client: this.o.client,
      log: this.o.log,
      path: argoCollectionPath(kind),
      decode: (raw, previous) => decodeArgoWorkflow(kind, raw, previous),
      onChange: () => { this.o.onChange(); },
      // The CRD may have been removed: ask discovery again soon rather than retry the watch forever.
      onError: () => { this.trigger(); },
    });
    return { informer, stop, done: informer.run(signal) };
  }

  /** Discovers and keeps the watches in line until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const stopping = (): boolean => signal.aborted;
    try {
      while (!stopping()) {
        this.triggered = false;
        if (this.wanted.size > 0) await this.discover(signal);
        if (stopping()) break;
        this.reconcileWatches(signal);
        for (const w of this.roundWaiters.splice(0)) w();
        await sleep(this.o.minDiscoveryGapMs, undefined, { signal }).catch(() => undefined);
        // A method call: TypeScript would keep the field narrowed to false from the top of the loop.
        if (stopping() || this.wasTriggered()) continue;
        // Nothing named: nothing to rediscover until a policy names a kind.
        const delay = this.lastDiscoveryError === undefined ? this.o.discoveryIntervalMs : Math.min(this.o.discoveryIntervalMs, DISCOVERY_RETRY_MS);
        await this.wakeup.wait(this.wanted.size > 0 ? delay : undefined, signal);
      }
    } finally {
      for (const w of this.watches.values()) w.stop.abort();
      await Promise.allSettled([...this.watches.values()].map((w) => w.done));
      this.watches.clear();
    }
  }
}
