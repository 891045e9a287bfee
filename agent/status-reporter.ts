// Writes the NodeImageSet status through the status subresource with JSON merge patches: only when
// the document changed since the last successful write, at most one patch per `minIntervalMs`
// (changes in between are coalesced into the next one), retried with back-off while the API server
// is unreachable. An image reaching Completed or Failed waits only `terminalIntervalMs`: that is the
// moment the controller and `kubectl wait` are waiting for. The agent writes nothing else.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { API_VERSION } from '../api/v1alpha1/group.ts';
import { AGENT_FIELD_MANAGER } from '../api/v1alpha1/labels.ts';
import type { NodeImageSetStatus } from '../api/v1alpha1/nodeimageset.ts';
import { isNotFound, type KubeClient } from '../lib/kube-client.ts';
import { backoffDelaySeconds } from '../lib/backoff.ts';
import { Wakeup } from '../lib/wakeup.ts';
import type { AgentMetrics } from './agent-metrics.ts';
import { statusKey, statusMergePatch } from './status-document.ts';
import { errorText } from '../lib/errors.ts';


export interface StatusReporterOptions {
  client: KubeClient;
  nodeName: string;
  log: Logger;
  metrics: AgentMetrics;
  /** Least time between two patches. */
  minIntervalMs?: number;
  /** Least time between two patches when an image has newly finished (Completed or Failed). */
  terminalIntervalMs?: number;
  /** Back-off after a failed write: first delay and ceiling. */
  retryMs?: { initial: number; max: number };
}

export function statusPath(nodeName: string): string {
  return `/apis/${API_VERSION}/nodeimagesets/${encodeURIComponent(nodeName)}/status`;
}

export class StatusReporter {
  readonly #opts: StatusReporterOptions;
  #desired: { key: string; status: NodeImageSetStatus } | undefined;
  #writtenKey: string | undefined;
  /** The document last written to the current object; patches carry only what differs from it. */
  #written: NodeImageSetStatus | undefined;
  /** Image → phase as last written, to tell a newly finished image. */
  #writtenPhases = new Map<string, string>();
  #uid: string | undefined;
  #lastWriteAt = Number.NEGATIVE_INFINITY;
  #wake: (() => void) | undefined;
  /** Ends the window's wait early when an image finishes. */
  readonly #finishWakeup = new Wakeup();
  #writing: Promise<void> | undefined;

  constructor(opts: StatusReporterOptions) {
    this.#opts = opts;
  }

  /** The document to publish; cheap to call on every change. */
  update(status: NodeImageSetStatus): void {
    const key = statusKey(status);
    if (this.#desired?.key === key) return;
    this.#desired = { key, status };
    if (this.#finishing) this.#finishWakeup.wake();
    this.#poke();
  }

  /**
   * What the watch sees: the object's uid, or undefined when it does not exist. A new uid (the
   * object was deleted and created again) has an empty status, so everything is written again.
   */
  objectSeen(uid: string | undefined): void {
    if (uid !== this.#uid) {
      this.#writtenKey = undefined;
      this.#written = undefined;
    }
    this.#uid = uid;
    this.#poke();
  }

  /** True when the waiting change finishes an image (Completed or Failed) that the last write did not show finished. */
  get #finishing(): boolean {
    for (const e of this.#desired?.status.images ?? []) {
      if ((e.phase === 'Completed' || e.phase === 'Failed') && this.#writtenPhases.get(e.image) !== e.phase) return true;
    }
    return false;
  }

  /** True when a change is waiting to be written. */
  get pending(): boolean {
    return this.#uid !== undefined && this.#desired !== undefined && this.#desired.key !== this.#writtenKey;
  }

  #poke(): void {
    if (!this.pending) return;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #changed(signal: AbortSignal): Promise<void> {
    if (this.pending) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Writes changes until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { initial, max } = this.#opts.retryMs ?? { initial: 1000, max: 30_000 };
    const minInterval = this.#opts.minIntervalMs ?? 1000;
    const terminalInterval = Math.min(minInterval, this.#opts.terminalIntervalMs ?? 100);
    let failures = 0;
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      await this.#changed(signal);
      if (stopped()) break;
      // Waiting out the window for a progress change, an image that finishes meanwhile cuts the wait short.
      for (;;) {
        const wait = this.#lastWriteAt + (this.#finishing ? terminalInterval : minInterval) - Date.now();
        if (wait <= 0 || stopped()) break;
        await this.#finishWakeup.wait(wait, signal);
      }
      try {
        await this.#write(signal);
        failures = 0;
      } catch (err) {
        if (stopped()) break;
        const delay = backoffDelaySeconds({ baseSeconds: initial / 1000, capSeconds: max / 1000, jitter: 'none' }, Math.min(++failures, 11), Math.random) * 1000;
        this.#opts.log.warn('status write failed; retrying', { node: this.#opts.nodeName, error: errorText(err), retryInMs: delay });
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /** Writes the latest document now if it is not written yet (at shutdown). */
  async flush(signal: AbortSignal): Promise<void> {
    await this.#write(signal);
  }

  async #write(signal: AbortSignal): Promise<void> {
    // One write at a time: a flush waits for the loop's write and then writes what is left.
    while (this.#writing !== undefined) await this.#writing.catch(() => undefined);
    if (!this.pending || this.#desired === undefined) return;
    const { key, status } = this.#desired;
    const writing = this.#patch(key, status, signal);
    this.#writing = writing;
    try {
      await writing;
    } finally {
      this.#writing = undefined;
    }
  }

  async #patch(key: string, status: NodeImageSetStatus, signal: AbortSignal): Promise<void> {
    const { client, nodeName, metrics } = this.#opts;
    this.#lastWriteAt = Date.now();
    const patch = statusMergePatch(status, this.#written);
    try {
      await client.patch(statusPath(nodeName), 'merge', patch, signal, AGENT_FIELD_MANAGER);
    } catch (err) {
      if (isNotFound(err)) {
        // Deleted under us: the watch reports it, and reports a new object when there is one.
        this.#uid = undefined;
        this.#written = undefined;
        return;
      }
      metrics.statusWrites.inc({ result: 'error' });
      throw err;
    }
    metrics.statusWrites.inc({ result: 'written' });
    metrics.statusWriteBytes.inc(Buffer.byteLength(JSON.stringify(patch)));
    this.#writtenKey = key;
    this.#written = status;
    this.#writtenPhases = new Map((status.images ?? []).map((e) => [e.image, e.phase]));
  }
}
