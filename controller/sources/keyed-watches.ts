// List-watches started and stopped as what the policies ask for changes, one per key (a workload kind, a
// namespace): the controller caches only the collections some policy or PrePullImage needs, instead of
// every Job or every pull Secret of the cluster (finding 15 of the review).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { ListWatch } from '../../lib/list-watch.ts';
import { errorText } from '../../lib/errors.ts';

interface Watch<T> {
  readonly informer: ListWatch<T>;
  readonly stop: AbortController;
  readonly running: Promise<void>;
}

export interface KeyedWatchesOptions<T> {
  readonly log: Logger;
  /** What is watched, for logs, e.g. "workloads". */
  readonly what: string;
  /** The list-watch for one key. */
  readonly watch: (key: string) => ListWatch<T>;
  /** Something the controller reads changed (an object, or a watch finished its first list). */
  readonly onChange: () => void;
}

export class KeyedWatches<T> {
  private readonly o: KeyedWatchesOptions<T>;
  private readonly watches = new Map<string, Watch<T>>();

  constructor(opts: KeyedWatchesOptions<T>) {
    this.o = opts;
  }

  /** Starts watches for new keys and stops those no longer wanted. */
  update(keys: ReadonlySet<string>, signal: AbortSignal): void {
    for (const [key, w] of this.watches) {
      if (keys.has(key)) continue;
      w.stop.abort();
      this.watches.delete(key);
      this.o.log.info(`stopped watching ${this.o.what}`, { key });
      // Its objects leave the caches: the next pass must see that.
      this.o.onChange();
    }
    if (signal.aborted) return;
    for (const key of [...keys].sort()) {
      if (this.watches.has(key)) continue;
      const stop = new AbortController();
      const both = AbortSignal.any([signal, stop.signal]);
      const informer = this.o.watch(key);
      const running = informer.run(both).catch((err: unknown) => {
        this.o.log.error(`${this.o.what} watch ended`, { key, error: errorText(err) });
      });
      // An empty first list changes no object, yet the pass waiting for it can now run.
      informer.waitForSync(both).then(() => { this.o.onChange(); }, () => undefined);
      this.watches.set(key, { informer, stop, running });
      this.o.log.info(`watching ${this.o.what}`, { key });
    }
  }

  keys(): string[] {
    return [...this.watches.keys()];
  }

  get(key: string): ListWatch<T> | undefined {
    return this.watches.get(key)?.informer;
  }

  /** Objects of every current watch. */
  *values(): Generator<T> {
    for (const w of this.watches.values()) yield* w.informer.values();
  }

  /** The objects of each watch that has listed once, by key. */
  syncedByKey(): Map<string, T[]> {
    const out = new Map<string, T[]>();
    for (const [key, w] of this.watches) if (w.informer.synced) out.set(key, [...w.informer.values()]);
    return out;
  }

  /** Why each watch that has not listed yet failed, by key. */
  listErrors(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [key, w] of this.watches) {
      const error = w.informer.lastError;
      if (!w.informer.synced && error !== undefined) out.set(key, error);
    }
    return out;
  }

  /** Keys whose watch has not listed yet. */
  unsynced(): string[] {
    return [...this.watches].filter(([, w]) => !w.informer.synced).map(([k]) => k);
  }

  /** Resolves once every current watch has listed once, or after `timeoutMs` when given. */
  async waitForSync(signal: AbortSignal, timeoutMs?: number): Promise<void> {
    const all = Promise.all([...this.watches.values()].map((w) => w.informer.waitForSync(signal)));
    if (timeoutMs === undefined) {
      await all;
      return;
    }
    await Promise.race([all, sleep(timeoutMs, undefined, { signal })]).catch(() => undefined);
  }

  /** Watches whose stream is down, for readiness. */
  unhealthy(): string[] {
    return [...this.watches.values()].filter((w) => !w.informer.healthy).map((w) => w.informer.lastError ?? 'not synced');
  }

  /** Objects cached by all current watches (for tests and logs). */
  get size(): number {
    let n = 0;
    for (const w of this.watches.values()) n += w.informer.size;
    return n;
  }

  /** Objects of all current watches whose newest version does not decode (finding 11). */
  undecodableCount(): number {
    let n = 0;
    for (const w of this.watches.values()) n += w.informer.undecodableKeys().size;
    return n;
  }

  /** Stops every watch and waits for them to end. */
  async stop(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    for (const w of all) w.stop.abort();
    await Promise.allSettled(all.map((w) => w.running));
  }
}
