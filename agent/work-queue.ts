// A keyed work queue: at most `limit` tasks run at once, one entry per key, FIFO. The pull engine runs
// two: pulls (limit = the NodeImageSet's maxConcurrentPulls, capped by the agent's flag) and surveys
// (ImageStatus look-ups). The limit can change while running; lowering it lets running tasks finish and
// starts nothing until below the limit.
import { setTimeout as sleep } from 'node:timers/promises';

/** A unit of work. It must stop promptly when `signal` aborts. */
export type QueueTask<T> = (signal: AbortSignal) => Promise<T>;

export type TaskOutcome<T> =
  | { readonly kind: 'completed'; readonly value: T }
  | { readonly kind: 'failed'; readonly error: unknown }
  /** Cancelled before it started, or it threw after its signal was aborted. */
  | { readonly kind: 'cancelled'; readonly reason: unknown };

export type EnqueueResult<T> =
  | { readonly kind: 'accepted'; readonly done: Promise<TaskOutcome<T>> }
  /** The key is already queued or running; `done` is that entry's outcome. */
  | { readonly kind: 'duplicate'; readonly done: Promise<TaskOutcome<T>> }
  /** The queue is draining or was aborted; nothing was queued. */
  | { readonly kind: 'closed' };

export type KeyState = 'queued' | 'running';

export interface DrainResult {
  /** Running tasks that settled within the grace period. */
  readonly finished: number;
  /** Running tasks that were still running when the grace period ended and were aborted. */
  readonly aborted: number;
  /** Queued tasks that never started. */
  readonly dropped: number;
}

export interface WorkQueueOptions {
  /** Upper bound for any limit set later (the agent's --max-pulls-per-node); at least 1. */
  readonly cap: number;
  /** Initial limit; defaults to `cap`. */
  readonly limit?: number;
  /** Aborting it cancels everything queued and running and closes the queue. */
  readonly signal?: AbortSignal;
}

interface Entry<T> {
  readonly key: string;
  readonly task: QueueTask<T>;
  readonly controller: AbortController;
  readonly done: Promise<TaskOutcome<T>>;
  readonly settle: (o: TaskOutcome<T>) => void;
  state: KeyState;
}

/** The abort reason the queue gives tasks it cancels; named AbortError like a DOM abort. */
export class TaskCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbortError';
  }
}

export class WorkQueue<T> {
  readonly cap: number;
  #limit: number;
  #paused = false;
  #open = true;
  readonly #entries = new Map<string, Entry<T>>();
  readonly #waiting: Entry<T>[] = [];
  #running = 0;
  readonly #idleWaiters: (() => void)[] = [];

  constructor(options: WorkQueueOptions) {
    if (!Number.isInteger(options.cap) || options.cap < 1) throw new RangeError(`cap must be an integer >= 1, got ${options.cap}`);
    this.cap = options.cap;
    this.#limit = this.#clamp(options.limit ?? options.cap);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.#abortAll(signal.reason);
      else signal.addEventListener('abort', () => { this.#abortAll(signal.reason); }, { once: true });
    }
  }

  /** Tasks running now. */
  get active(): number {
    return this.#running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** The effective limit: the last requested one, clamped to [1, cap]. */
  get limit(): number {
    return this.#limit;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** False once draining or aborted. */
  get accepting(): boolean {
    return this.#open;
  }

  #clamp(n: number): number {
    if (!Number.isFinite(n)) return this.cap;
    return Math.min(this.cap, Math.max(1, Math.floor(n)));
  }

  setLimit(requested: number): void {
    this.#limit = this.#clamp(requested);
    this.#pump();
  }

  /** Starts nothing new until resume(); running tasks continue (used e.g. by the disk guard). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#pump();
  }

  state(key: string): KeyState | undefined {
    return this.#entries.get(key)?.state;
  }

  /** Keys in each state, queued ones in the order they will start. */
  snapshot(): { running: string[]; queued: string[] } {
    const running: string[] = [];
    for (const e of this.#entries.values()) if (e.state === 'running') running.push(e.key);
    return { running, queued: this.#waiting.map((e) => e.key) };
  }

  enqueue(key: string, task: QueueTask<T>): EnqueueResult<T> {
    const existing = this.#entries.get(key);
    if (existing !== undefined) return { kind: 'duplicate', done: existing.done };
    if (!this.#open) return { kind: 'closed' };
    let settle: (o: TaskOutcome<T>) => void = () => undefined;
    const done = new Promise<TaskOutcome<T>>((resolve) => {
      settle = resolve;
    });
    const entry: Entry<T> = { key, task, controller: new AbortController(), done, settle, state: 'queued' };
    this.#entries.set(key, entry);
    this.#waiting.push(entry);
    this.#pump();
    return { kind: 'accepted', done };
  }

  /**
   * Cancels one key: a queued entry is dropped at once; a running task's signal is aborted and its
   * slot is freed when the task settles. Returns false when the key is unknown.
   */
  cancel(key: string, reason: unknown = new TaskCancelledError(`pull of ${key} cancelled`)): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    if (entry.state === 'queued') {
      this.#dropQueued(entry, reason);
    } else {
      entry.controller.abort(reason);
    }
    return true;
  }

  /**
   * Shutdown: stop accepting work, drop what is queued, let running tasks finish within `graceMs`,
   * then abort the rest. Resolves once every running task has settled.
   */
  async drain(graceMs: number): Promise<DrainResult> {
    this.#open = false;
    const dropped = this.#waiting.length;
    for (const e of [...this.#waiting]) this.#dropQueued(e, new TaskCancelledError('agent is shutting down before the pull started'));
    const runningAtStart = this.#running;
    if (runningAtStart === 0) return { finished: 0, aborted: 0, dropped };
    const graceOver = new AbortController();
    const timer = sleep(Math.max(0, graceMs), undefined, { signal: graceOver.signal }).then(
      () => 'grace-over' as const,
      () => 'idle' as const,
    );
    const winner = await Promise.race([this.#whenIdle().then(() => 'idle' as const), timer]);
    graceOver.abort();
    if (winner === 'idle') return { finished: runningAtStart, aborted: 0, dropped };
    const aborted = this.#running;
    for (const e of this.#entries.values()) {
      if (e.state === 'running') e.controller.abort(new TaskCancelledError('agent shutdown grace period ended'));
    }
    await this.#whenIdle();
    return { finished: runningAtStart - aborted, aborted, dropped };
  }

  #whenIdle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #dropQueued(entry: Entry<T>, reason: unknown): void {
    const i = this.#waiting.indexOf(entry);
    if (i !== -1) this.#waiting.splice(i, 1);
    this.#entries.delete(entry.key);
    entry.controller.abort(reason);
    entry.settle({ kind: 'cancelled', reason });
  }

  #abortAll(reason: unknown): void {
    this.#open = false;
    for (const e of [...this.#waiting]) this.#dropQueued(e, reason);
    for (const e of this.#entries.values()) e.controller.abort(reason);
  }

  #pump(): void {
    while (this.#open && !this.#paused && this.#running < this.#limit) {
      const entry = this.#waiting.shift();
      if (entry === undefined) return;
      this.#start(entry);
    }
  }

  #start(entry: Entry<T>): void {
    entry.state = 'running';
    this.#running++;
    const signal = entry.controller.signal;
    // Called synchronously so that a task starts exactly when the queue decides it may.
    let run: Promise<T>;
    try {
      run = entry.task(signal);
    } catch (error: unknown) {
      // Settled on a later tick, like a rejection, so #pump is never re-entered.
      queueMicrotask(() => { this.#finish(entry, { kind: 'failed', error }); });
      return;
    }
    run.then(
      (value) => { this.#finish(entry, { kind: 'completed', value }); },
      (error: unknown) => {
        this.#finish(entry, signal.aborted ? { kind: 'cancelled', reason: signal.reason } : { kind: 'failed', error });
      },
    );
  }

  #finish(entry: Entry<T>, outcome: TaskOutcome<T>): void {
    this.#running--;
    this.#entries.delete(entry.key);
    entry.settle(outcome);
    if (this.#running === 0) {
      for (const wake of this.#idleWaiters.splice(0)) wake();
    }
    this.#pump();
  }
}
