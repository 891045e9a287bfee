// The keys a decide-loop must look at again, and when: now (something it reads changed: mark) or at a time
// (a timeout, an agent turning stale, a retry after a failed write: dueAt / dueBy). One pass takes every key that
// is marked or due; between passes the loop sleeps until the first of a mark, the earliest due time, or abort.
// The loops of the warm-up barrier and the rollout gate's release share this shape.
import { Wakeup } from './wakeup.ts';

export class WorkSchedule {
  readonly #wakeup = new Wakeup();
  readonly #marked = new Set<string>();
  readonly #due = new Map<string, number>();

  /** `key` is decided at the next pass; a sleeping loop wakes. */
  mark(key: string): void {
    this.#marked.add(key);
    this.#wakeup.wake();
  }

  /** Wakes a sleeping loop without marking a key (for work the caller tracks itself). */
  wake(): void {
    this.#wakeup.wake();
  }

  /** `key` is decided again at `atMs`, replacing any earlier time. */
  dueAt(key: string, atMs: number): void {
    this.#due.set(key, atMs);
  }

  /** `key` is decided again at `atMs`, or at the time it already has if that is sooner. */
  dueBy(key: string, atMs: number): void {
    this.#due.set(key, Math.min(this.#due.get(key) ?? Infinity, atMs));
  }

  /** `key` has no due time any more (a mark stays). */
  forget(key: string): void {
    this.#due.delete(key);
  }

  /** Whether any key is marked. */
  get marked(): boolean {
    return this.#marked.size > 0;
  }

  /** The keys to decide now: every marked key and every key due by `nowMs`; they leave the schedule. */
  take(nowMs: number): Set<string> {
    const keys = new Set(this.#marked);
    this.#marked.clear();
    for (const [key, at] of this.#due) {
      if (at <= nowMs) {
        this.#due.delete(key);
        keys.add(key);
      }
    }
    return keys;
  }

  /**
   * Sleeps until there is work: returns at once when a key is marked, `pending` is true or a key is due by
   * `nowMs`; otherwise wakes at the earliest due time, on a mark or wake(), or on abort.
   */
  async wait(nowMs: number, signal: AbortSignal, pending = false): Promise<void> {
    if (pending || this.#marked.size > 0) return;
    const next = Math.min(...this.#due.values());
    const ms = Number.isFinite(next) ? Math.max(0, next - nowMs) : undefined;
    if (ms === 0) return;
    await this.#wakeup.wait(ms, signal);
  }
}
