// A list-then-watch cache of one collection, restarted on any error. Objects are projected by `decode`
// (managedFields never reach it) so the cache holds only what kwarm reads.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { isGone, type KubeClient, type WatchEvent } from './kube-client.ts';
import { errorText } from './errors.ts';

export interface ListWatchOptions<T> {
  client: KubeClient;
  /** Collection path, e.g. `/apis/apps/v1/deployments`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Projects a raw object into what the cache keeps; `undefined` drops it (it failed to decode). */
  decode: (raw: unknown) => T | undefined;
  /** Called after the cache changed for `key` (`obj` undefined: deleted). */
  onChange: (key: string, obj: T | undefined) => void;
  /** Called when the list or watch failed, before the back-off (e.g. to check whether the resource still exists). */
  onError?: (message: string) => void;
  log: Logger;
  /** Back-off after an error: starts here, doubles, capped at `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Server-side watch timeout; the watch is simply resumed when it ends. */
  watchTimeoutSeconds?: number;
}

interface ObjectMetaLike {
  name: string;
  namespace: string | undefined;
  resourceVersion: string | undefined;
}

function metaOf(raw: unknown): ObjectMetaLike | undefined {
  if (typeof raw !== 'object' || raw === null || !('metadata' in raw)) return undefined;
  const m: unknown = raw.metadata;
  if (typeof m !== 'object' || m === null || !('name' in m) || typeof m.name !== 'string') return undefined;
  const namespace = 'namespace' in m && typeof m.namespace === 'string' ? m.namespace : undefined;
  const resourceVersion = 'resourceVersion' in m && typeof m.resourceVersion === 'string' ? m.resourceVersion : undefined;
  if ('managedFields' in m) delete m.managedFields;
  return { name: m.name, namespace, resourceVersion };
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}

export class ListWatch<T> {
  private readonly opts: ListWatchOptions<T>;
  private readonly cache = new Map<string, T>();
  private syncedOnce = false;
  private readonly syncWaiters: (() => void)[] = [];
  private lastErrorMessage: string | undefined;
  private watching = false;

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

  /** True while a watch stream is open (for readiness). */
  get healthy(): boolean {
    return this.syncedOnce && this.watching;
  }

  get lastError(): string | undefined {
    return this.lastErrorMessage;
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
    if (meta === undefined) return undefined;
    const key = objectKey(meta.namespace, meta.name);
    const obj = this.opts.decode(raw);
    if (obj === undefined) {
      this.opts.log.warn('ignoring an object that does not decode', { path: this.opts.path, key });
      if (this.cache.delete(key)) this.opts.onChange(key, undefined);
      return key;
    }
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
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    return resourceVersion;
  }

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
        const key = objectKey(meta.namespace, meta.name);
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
    const initial = this.opts.initialBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    let resourceVersion: string | undefined;
    let failures = 0;
    // A function, not a property read, because the loop condition would otherwise narrow it to false below.
    const stopping = (): boolean => signal.aborted;
    while (!stopping()) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.relist(signal);
        }
        this.watching = true;
        this.lastErrorMessage = undefined;
        await client.watch(path, {
          resourceVersion,
          ...(labelSelector !== undefined ? { labelSelector } : {}),
          ...(fieldSelector !== undefined ? { fieldSelector } : {}),
          timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300,
        }, (ev) => {
          failures = 0;
          const rv = this.handle(ev);
          if (rv !== undefined) resourceVersion = rv;
        }, signal);
      } catch (err) {
        this.watching = false;
        if (stopping()) break;
        failures++;
        this.lastErrorMessage = errorText(err);
        // 410 Gone means our resourceVersion is too old; other repeated errors also start over from a list.
        if (isGone(err) || failures >= 3) resourceVersion = undefined;
        const delay = Math.min(max, initial * 2 ** Math.min(failures - 1, 10));
        log.warn('list/watch interrupted; retrying', { path, error: this.lastErrorMessage, retryInMs: delay, relist: resourceVersion === undefined });
        this.opts.onError?.(this.lastErrorMessage);
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
    this.watching = false;
  }
}
