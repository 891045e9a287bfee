// A loop's wait that ends at the first of: wake() from elsewhere, a timeout, or the abort signal. A wake()
// while nobody waits is not remembered: callers keep their own "work pending" flag and check it first.
export type WakeupResult = 'woken' | 'timeout' | 'aborted';

export class Wakeup {
  #wake: ((r: WakeupResult) => void) | undefined;

  /** Ends the current wait, if any. */
  wake(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.('woken');
  }

  /** Waits up to `ms` (undefined or Infinity: no timeout). */
  wait(ms: number | undefined, signal: AbortSignal): Promise<WakeupResult> {
    if (signal.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      const done = (r: WakeupResult): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (this.#wake === done) this.#wake = undefined;
        resolve(r);
      };
      const onAbort = (): void => { done('aborted'); };
      const timer = ms === undefined || ms === Infinity ? undefined : setTimeout(() => { done('timeout'); }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#wake = done;
    });
  }
}
