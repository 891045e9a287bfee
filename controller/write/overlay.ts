// "What I wrote, until my watch shows it": the one shape of the controller's write bookkeeping. A pass that
// runs before the informers caught up with the previous pass's writes must plan from what was written, or it
// would write twice and miscount the pull budget. Each kind of write states when the cache shows it; once it
// does, the entry is forgotten and the cache is the truth again. Only a cache of writes: a restarted
// controller starts empty and reads everything back from the API server.

/** True when the cached object (undefined: not in the cache) already shows `written`. */
export type IsShown<C, W> = (cached: C | undefined, written: W) => boolean;

export class WriteOverlay<C, W> {
  readonly #written = new Map<string, W>();
  readonly #isShown: IsShown<C, W>;

  constructor(isShown: IsShown<C, W>) {
    this.#isShown = isShown;
  }

  /** Remembers a successful write under `key`, replacing an earlier one. */
  record(key: string, written: W): void {
    this.#written.set(key, written);
  }

  /** What was written under `key` while `cached` does not show it yet; undefined (and forgotten) once it does. */
  unshown(key: string, cached: C | undefined): W | undefined {
    const written = this.#written.get(key);
    if (written === undefined) return undefined;
    if (!this.#isShown(cached, written)) return written;
    this.#written.delete(key);
    return undefined;
  }

  /** Every remembered write, shown or not: for objects the cache does not hold at all. */
  entries(): IterableIterator<[string, W]> {
    return this.#written.entries();
  }

  keys(): IterableIterator<string> {
    return this.#written.keys();
  }

  /** Forgets writes whose key `keep` rejects (their object left the cache, or was never there). */
  retain(keep: (key: string) => boolean): void {
    for (const key of [...this.#written.keys()]) if (!keep(key)) this.#written.delete(key);
  }

  get size(): number {
    return this.#written.size;
  }
}
