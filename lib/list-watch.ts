// A list-then-watch cache of one collection, restarted on any error. Objects are projected by `decode`
// (managedFields never reach it) so the cache holds only what kwarm reads.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { isGone, WatchIdleError, type KubeClient, type WatchEvent } from './kube-client.ts';
import { errorText } from './errors.ts';
import type { RandomSource } from './backoff.ts';
import { reconnectDelayMs, watchTimeoutSeconds } from './watch-timing.ts';

export interface ListWatchOptions<T> {
  client: KubeClient;
  /** Collection path, e.g. `/apis/apps/v1/deployments`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Projects a raw object into what the cache keeps; `undefined` when it does not decode. Such an object is never
   * taken for deleted: the last version that decoded stays cached, and the key is listed by `undecodableKeys`.
   */
  decode: (raw: unknown) => T | undefined;
  /** Called after the cache changed for `key` (`obj` undefined: deleted). */
  onChange: (key: string, obj: T | undefined) => void;
  /** Called when the list or watch failed, before the back-off (e.g. to check whether the resource still exists). */
  onError?: (message: string) => void;
  log: Logger;
  /** Back-off after an error: jittered, never below `initialBackoffMs`, capped at `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Base of the server-side watch timeout: each watch asks for a random time in [base, 2·base). */
  watchTimeoutSeconds?: number;
  /** For the jitter; default Math.random. */
  random?: RandomSource;
}

interface ObjectMetaLike {
  /** Undefined for a BOOKMARK, whose object carries only a resourceVersion. */
  name: string | undefined;
  namespace: string | undefined;
  resourceVersion: string | undefined;
}

function metaOf(raw: unknown): ObjectMetaLike | undefined {
  if (typeof raw !== 'object' || raw === null || !('metadata' in raw)) return undefined;
  const m: unknown = raw.metadata;
  if (typeof m !== 'object' || m === null) return undefined;
  const name = 'name' in m && typeof m.name === 'string' ? m.name : undefined;
  const namespace = 'namespace' in m && typeof m.namespace === 'string' ? m.namespace : undefined;
  const resourceVersion = 'resourceVersion' in m && typeof m.resourceVersion === 'string' ? m.resourceVersion : undefined;
  if ('managedFields' in m) delete m.managedFields;
  return { name, namespace, resourceVersion };
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}

export class ListWatch<T> {
  private readonly opts: ListWatchOptions<T>;
  private readonly cache = new Map<string, T>();
  /** Keys whose newest version does not decode (with or without a last good version in the cache). */
  private readonly undecodable = new Set<string>();
  private syncedOnce = false;
  private readonly syncWaiters: (() => void)[] = [];
  private lastErrorMessage: string | undefined;
  private watching = false;
  private currentResourceVersion: string | undefined;

  constructor(opts: ListWatchOptions<T>) {
    this.opts = opts;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  values(): IterableIterator<T> {
    return this.cache.values();
  }

  entries(): IterableIterator<[string, T]> {
    return this.cache.entries();
  }

  get size(): number {
    return this.cache.size;
  }

  /** True once the first list has been loaded. */
  get synced(): boolean {
    return this.syncedOnce;
  }

  /**
   * True while a watch stream is open (for readiness): the server answered it and has not gone quiet for
   * longer than the client's watch idle timeout.
   */
  get healthy(): boolean {
    return this.syncedOnce && this.watching;
  }

  /** Where the next watch resumes: the newest resourceVersion seen in a list, an event or a bookmark. */
  get resourceVersion(): string | undefined {
    return this.currentResourceVersion;
  }

  get lastError(): string | undefined {
    return this.lastErrorMessage;
  }

  /**
   * Objects that exist but whose newest version does not decode (a newer CRD's enum value, a bound this build does
   * not know): the cache keeps the last version that decoded, if any. Callers must treat these as unknown, never
   * as deleted (finding 11 of the review).
   */
  undecodableKeys(): ReadonlySet<string> {
    return this.undecodable;
  }

  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.syncedOnce) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => { reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')); };
      signal.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => { signal.removeEventListener('abort', onAbort); resolve(); });
    });
  }

  private put(raw: unknown): string | undefined {
    const meta = metaOf(raw);
    if (meta?.name === undefined) return undefined;
    const key = objectKey(meta.namespace, meta.name);
    const obj = this.opts.decode(raw);
    if (obj === undefined) {
      // Not a deletion: acting on it as one could delete or purge what the object still asks for.
      const kept = this.cache.has(key);
      if (!this.undecodable.has(key)) {
        this.opts.log.warn(kept ? 'an object no longer decodes; keeping its last version that did' : 'ignoring an object that does not decode (unknown, not absent)', {
          path: this.opts.path, key, resourceVersion: meta.resourceVersion,
        });
      }
      this.undecodable.add(key);
      return key;
    }
    this.undecodable.delete(key);
    this.cache.set(key, obj);
    this.opts.onChange(key, obj);
    return key;
  }

  /**
   * Lists page by page and digests each page before the next one arrives, so the raw JSON of a large
   * collection is never held all at once; then forgets whatever the list no longer has.
   */
  private async relist(signal: AbortSignal): Promise<string> {
    const { client, path, labelSelector, fieldSelector } = this.opts;
    const query = { ...(labelSelector !== undefined ? { labelSelector } : {}), ...(fieldSelector !== undefined ? { fieldSelector } : {}) };
    const seen = new Set<string>();
    let resourceVersion = '';
    for await (const page of client.listPages(path, query, signal)) {
      for (const raw of page.items) {
        const key = this.put(raw);
        if (key !== undefined) seen.add(key);
      }
      resourceVersion = page.resourceVersion;
    }
    for (const key of [...this.cache.keys()]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.opts.onChange(key, undefined);
      }
    }
    for (const key of [...this.undecodable]) if (!seen.has(key)) this.undecodable.delete(key);
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    return resourceVersion;
  }

  /** Applies one event; returns its resourceVersion, which a bookmark carries too (and nothing else). */
  private handle(ev: WatchEvent): string | undefined {
    const meta = metaOf(ev.object);
    if (meta === undefined) return undefined;
    switch (ev.type) {
      case 'BOOKMARK':
        break;
      case 'ADDED':
      case 'MODIFIED':
        this.put(ev.object);
        break;
      case 'DELETED': {
        if (meta.name === undefined) return undefined;
        const key = objectKey(meta.namespace, meta.name);
        this.undecodable.delete(key);
        if (this.cache.delete(key)) this.opts.onChange(key, undefined);
        break;
      }
      case 'ERROR':
        break;
      default: {
        const never: never = ev.type;
        throw new Error(`unexpected watch event ${String(never)}`);
      }
    }
    return meta.resourceVersion;
  }

  /** Lists and watches until `signal` aborts. Never rejects except on abort-free programming errors. */
  async run(signal: AbortSignal): Promise<void> {
    const { client, path, labelSelector, fieldSelector, log } = this.opts;
    const policy = { initialMs: this.opts.initialBackoffMs ?? 500, maxMs: this.opts.maxBackoffMs ?? 30_000 };
    const random = this.opts.random ?? Math.random;
    let failures = 0;
    let previousDelay: number | undefined;
    // A function, not a property read, because the loop condition would otherwise narrow it to false below.
    const stopping = (): boolean => signal.aborted;
    while (!stopping()) {
      try {
        this.currentResourceVersion ??= await this.relist(signal);
        await client.watch(path, {
          resourceVersion: this.currentResourceVersion,
          ...(labelSelector !== undefined ? { labelSelector } : {}),
          ...(fieldSelector !== undefined ? { fieldSelector } : {}),
          timeoutSeconds: watchTimeoutSeconds(this.opts.watchTimeoutSeconds ?? 300, random),
        }, (ev) => {
          failures = 0;
          previousDelay = undefined;
          const rv = this.handle(ev);
          if (rv !== undefined) this.currentResourceVersion = rv;
        }, signal, {
          // Healthy only once the server has answered, not while the request may still hang.
          onOpen: () => {
            this.watching = true;
            this.lastErrorMessage = undefined;
          },
        });
      } catch (err) {
        this.watching = false;
        if (stopping()) break;
        this.lastErrorMessage = errorText(err);
        if (err instanceof WatchIdleError && err.opened) {
          // The stream went quiet: resume at once from where it was. Not a failure of the server, so it neither
          // backs off nor counts towards a relist: the API server sends bookmarks only while the resource changes
          // (kube-apiserver 1.34, seen in list-watch.test.ts), so a resource nobody writes is quiet by nature.
          log.debug('watch went quiet; reconnecting', { path, error: this.lastErrorMessage });
          continue;
        }
        failures++;
        // 410 Gone means our resourceVersion is too old; other repeated errors also start over from a list.
        if (isGone(err) || failures >= 3) this.currentResourceVersion = undefined;
        const delay = reconnectDelayMs(policy, failures, random, previousDelay);
        previousDelay = delay;
        log.warn('list/watch interrupted; retrying', { path, error: this.lastErrorMessage, retryInMs: delay, relist: this.currentResourceVersion === undefined });
        this.opts.onError?.(this.lastErrorMessage);
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
    this.watching = false;
  }
}
