// The node warm-up barrier's loop: list-watch caches of Nodes and NodeImageSets (projected to what the
// decision reads), every change marks its node dirty, each dirty node is decided (barrier-decision.ts) and
// the decision applied (node-writer.ts). A timer wakes the loop when a held node reaches its timeout, so a
// node whose agent never reports is lifted on time even when nothing in the API changes. Run by the leader
// only; everything it needs is in the API objects, so a new leader simply starts over.
import type { Logger } from 'winston';
import { API_VERSION } from '../../api/v1alpha1/index.ts';
import { backoffDelaySeconds, type RandomSource } from '../../lib/backoff.ts';
import { errorText } from '../../lib/errors.ts';
import type { KubeClient } from '../../lib/kube-client.ts';
import { ListWatch } from '../../lib/list-watch.ts';
import { WorkSchedule } from '../../lib/work-schedule.ts';
import { decideBarrier, type WarmupImageSetView, type WarmupNodeView, type WarmupOptions } from './barrier-decision.ts';
import { decodeWarmupImageSet, decodeWarmupNode } from './decode.ts';
import { NodeWriter, nodePaths, type BarrierWrites } from './node-writer.ts';

export interface BarrierLoopOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** The controller's identity, as the Events' reportingInstance. */
  readonly instance: string;
  readonly warmup: WarmupOptions;
  /** Epoch milliseconds; Date.now in production. */
  readonly now: () => number;
  readonly random?: RandomSource;
  /** Called after each write to a Node, for logs, metrics and tests. */
  readonly onWrite?: (node: string, writes: BarrierWrites) => void;
}

// A failed write is retried after 1 s, doubling up to a minute; the watch usually brings the fresh Node first.
const RETRY = { baseSeconds: 1, capSeconds: 60, jitter: 'full' } as const;

export class BarrierLoop {
  readonly #o: BarrierLoopOptions;
  readonly #writer: NodeWriter;
  readonly #nodes: ListWatch<WarmupNodeView>;
  readonly #sets: ListWatch<WarmupImageSetView>;
  /** Nodes to decide: changed ones, and when one must be decided again although nothing changed (timeout, agent turning stale, retry). */
  readonly #work = new WorkSchedule();
  /**
   * Node → the cached view a write was computed from. While the cache still holds that very object the write
   * is not visible yet, and deciding again from it would repeat the write (and its Event).
   */
  readonly #written = new Map<string, WarmupNodeView>();
  readonly #failures = new Map<string, number>();

  constructor(opts: BarrierLoopOptions) {
    this.#o = opts;
    this.#writer = new NodeWriter({ client: opts.client, instance: opts.instance, taintKey: opts.warmup.taintKey });
    const onChange = (key: string): void => { this.#work.mark(key); };
    this.#nodes = new ListWatch({ client: opts.client, path: nodePaths.nodes, log: opts.log, decode: decodeWarmupNode, onChange });
    this.#sets = new ListWatch({ client: opts.client, path: `/apis/${API_VERSION}/nodeimagesets`, log: opts.log, decode: decodeWarmupImageSet, onChange });
  }

  /** True once both caches have been listed. */
  get synced(): boolean {
    return this.#nodes.synced && this.#sets.synced;
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const watches = Promise.all([this.#nodes.run(signal), this.#sets.run(signal)]);
    try {
      await Promise.all([this.#nodes.waitForSync(signal), this.#sets.waitForSync(signal)]);
      for (const key of this.#nodes.entries()) this.#work.mark(key[0]);
      while (!signal.aborted) {
        await this.#pass(signal);
        await this.#work.wait(this.#o.now(), signal);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      await watches;
    }
  }

  async #pass(signal: AbortSignal): Promise<void> {
    for (const name of this.#work.take(this.#o.now())) {
      if (signal.aborted) return;
      await this.#decide(name, signal);
    }
  }

  async #decide(name: string, signal: AbortSignal): Promise<void> {
    const node = this.#nodes.get(name);
    if (node === undefined) {
      this.#work.forget(name);
      this.#written.delete(name);
      this.#failures.delete(name);
      return;
    }
    if (this.#written.get(name) === node) return;
    this.#written.delete(name);
    const now = this.#o.now();
    const decision = decideBarrier(node, this.#sets.get(name), now, this.#o.warmup);
    if (decision.recheckAtMs !== undefined) this.#work.dueAt(name, decision.recheckAtMs);
    else this.#work.forget(name);
    if (decision.condition === undefined && !decision.removeTaint && decision.event === undefined) return;
    try {
      const writes = await this.#writer.apply(node, decision, new Date(now), signal);
      this.#failures.delete(name);
      this.#written.set(name, node);
      this.#o.log.info('warm-up barrier', {
        node: name, removedTaint: writes.taint, condition: decision.condition?.status, reason: decision.condition?.reason, event: decision.event?.reason,
      });
      this.#o.onWrite?.(name, writes);
    } catch (err) {
      if (signal.aborted) return;
      const failures = (this.#failures.get(name) ?? 0) + 1;
      this.#failures.set(name, failures);
      const delayMs = 1000 * backoffDelaySeconds(RETRY, failures, this.#o.random ?? Math.random);
      this.#work.dueBy(name, now + delayMs);
      this.#o.log.warn('warm-up barrier write failed; retrying', { node: name, error: errorText(err), retryInMs: Math.round(delayMs) });
    }
  }
}
