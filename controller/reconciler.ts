// The controller's loop. Informers only mark work dirty; the loop waits for work (or a resync, or a held-back
// write or a failed write's retry coming due), lets events settle for a moment and runs one pass (pass.ts).
// A failed write backs off on its own (write/writer.ts), so it never delays the loop or the other writes.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { backoffDelaySeconds, type BackoffPolicy } from '../lib/backoff.ts';
import { errorText } from '../lib/errors.ts';
import type { KubeClient } from '../lib/kube-client.ts';
import { Wakeup } from '../lib/wakeup.ts';
import type { ControllerMetrics } from './metrics.ts';
import { Pass } from './pass.ts';
import { DEFAULT_WARMUP_TAINT_KEY } from '../api/v1alpha1/index.ts';
import { Informers } from './sources/informers.ts';
import { AGENT_STALE_MS } from './warmup/barrier-decision.ts';
import type { NamespaceLimits } from './plan/namespace-limits.ts';

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: ControllerMetrics;
  /** kwarm's namespace: pull secret copies and the PrePullImages of static lists live here. */
  readonly namespace: string;
  /** --max-concurrent-pulls: released-but-unfinished (node, image) pairs in the whole cluster; 0 = unlimited. */
  readonly clusterPullBudget: number;
  /** --max-pulls-per-node: how many pulls each agent runs at once, written into every NodeImageSet. */
  readonly maxPullsPerNode: number;
  /** --max-images-per-namespace: distinct images one namespace may want; 0 or absent = no cap. */
  readonly maxImagesPerNamespace?: number;
  /** --namespace-pull-share and --namespace-node-images-per-node; absent: neither applies. */
  readonly namespaceLimits?: NamespaceLimits;
  /** A full pass without any event this often; it writes nothing when nothing changed. */
  readonly resyncPeriodMs: number;
  /** Events arriving within this window are handled by one pass. */
  readonly debounceMs?: number;
  /**
   * A PrePullImage status that only counts progress (nodes done, the READY column) is written at most this
   * often; phase and condition changes are written at once. Keeps writes per rollout from growing with the
   * number of passes.
   */
  readonly statusProgressIntervalMs?: number;
  /** Writes sent at once (the client's rate limit still applies). */
  readonly writeConcurrency?: number;
  /** Shown as the reporting instance of Events. */
  readonly identity: string;
  /** --warmup-taint; default DEFAULT_WARMUP_TAINT_KEY. */
  readonly warmupTaintKey?: string;
  /** --warmup-condition-on-new-nodes: the warm-up timeout; absent when off (see PassOptions.warmupNewNodesMs). */
  readonly warmupNewNodesMs?: number;
  /** --agent-stale-after; default AGENT_STALE_MS. */
  readonly agentStaleMs?: number;
  readonly now?: () => Date;
  /** How often the Argo Workflows kinds are looked up while a policy names one (default 60 s). */
  readonly argoDiscoveryIntervalMs?: number;
}

/** --write-concurrency's default. */
export const DEFAULT_WRITE_CONCURRENCY = 8;

/** After a pass that threw (not a failed write: those back off on their own): 0.4 s, doubling, at most 30 s. */
const PASS_RETRY: BackoffPolicy = { baseSeconds: 0.4, capSeconds: 30, jitter: 'none' };

export class Controller {
  private readonly o: ControllerOptions & { debounceMs: number; now: () => Date };
  private readonly informers: Informers;
  private readonly pass: Pass;
  private dirty = true;
  private readonly wakeup = new Wakeup();
  private syncedAll = false;
  private passes = 0;
  /** When the last pass asked to run again without any event (ms). */
  private dueAtMs: number | undefined;

  constructor(opts: ControllerOptions) {
    this.o = { debounceMs: 100, now: () => new Date(), ...opts };
    const { client, log, metrics, namespace } = opts;
    this.informers = new Informers({
      client, log, namespace, onChange: () => { this.markDirty(); }, argoDiscoveryIntervalMs: opts.argoDiscoveryIntervalMs ?? 60_000,
    });
    metrics.trackUndecodable(() => this.informers.undecodableByKind());
    this.pass = new Pass({
      client, log, metrics, namespace, informers: this.informers, identity: opts.identity, now: this.o.now,
      clusterPullBudget: opts.clusterPullBudget, maxPullsPerNode: opts.maxPullsPerNode, warmupTaintKey: opts.warmupTaintKey ?? DEFAULT_WARMUP_TAINT_KEY,
      agentStaleMs: opts.agentStaleMs ?? AGENT_STALE_MS, maxImagesPerNamespace: opts.maxImagesPerNamespace ?? 0,
      ...(opts.namespaceLimits !== undefined ? { namespaceLimits: opts.namespaceLimits } : {}),
      ...(opts.warmupNewNodesMs !== undefined ? { warmupNewNodesMs: opts.warmupNewNodesMs } : {}),
      statusProgressIntervalMs: opts.statusProgressIntervalMs ?? 5000, writeConcurrency: opts.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY,
      newWork: () => this.dirty,
    });
  }

  /** All informers have listed once and the first pass is done. */
  get synced(): boolean {
    return this.syncedAll && this.passes > 0;
  }

  /** Informers whose watch is down, for readiness. */
  unhealthyInformers(): string[] {
    return this.informers.unhealthy();
  }

  markDirty(): void {
    this.dirty = true;
    this.wakeup.wake();
  }

  private async waitForWork(signal: AbortSignal): Promise<void> {
    if (this.dirty) return;
    // A held-back progress write or a due refresh wakes the loop before the resync does.
    const due = this.dueAtMs === undefined ? Infinity : Math.max(0, this.dueAtMs - this.o.now().getTime());
    if (await this.wakeup.wait(Math.min(this.o.resyncPeriodMs, due), signal) === 'timeout') this.dirty = true;
  }

  /** Lists and watches everything, then reconciles until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { log } = this.o;
    const running = this.informers.run(signal);
    try {
      await this.informers.waitForSync(signal);
      this.syncedAll = true;
      const { nodes, prePullImages, nodeImageSets } = this.informers;
      log.info('caches synced', { nodes: nodes.size, prePullImages: prePullImages.size, nodeImageSets: nodeImageSets.size });
      let failures = 0;
      // A function, so TypeScript does not keep the narrowing of `aborted` across awaits.
      const stopping = (): boolean => signal.aborted;
      while (!stopping()) {
        await this.waitForWork(signal);
        if (stopping()) break;
        await sleep(this.o.debounceMs, undefined, { signal }).catch(() => undefined);
        if (stopping()) break;
        this.dirty = false;
        const end = this.o.metrics.reconcileDuration.startTimer();
        try {
          const result = await this.pass.run(signal);
          this.dueAtMs = result.dueAtMs;
          failures = 0;
        } catch (err) {
          if (stopping()) break;
          failures++;
          log.error('reconcile failed', { error: errorText(err) });
          // Run again after a back-off, or at the next event, whichever comes first.
          this.dueAtMs = this.o.now().getTime() + backoffDelaySeconds(PASS_RETRY, failures, Math.random) * 1000;
        } finally {
          end();
          this.passes++;
        }
      }
    } finally {
      await running;
    }
  }
}
