// The one place kwarm talks HTTP to the Kubernetes API. Address and credentials come from a ClusterAccess
// (lib/cluster-access.ts; client-node's KubeConfig is one too); responses are `unknown` until the caller
// decodes them. Reads, writes and watches share one keep-alive agent.
import { Agent, request, type RequestOptions } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { ClusterAccess } from './cluster-access.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type PatchType = 'apply' | 'merge' | 'json' | 'strategic';

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  apply: 'application/apply-patch+yaml',
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  // Built-in kinds only: merges lists by their key (Node conditions by type), as the kubelet's own patches do.
  strategic: 'application/strategic-merge-patch+json',
};

export interface ListPage {
  items: unknown[];
  resourceVersion: string;
}

export interface ListQuery {
  labelSelector?: string;
  fieldSelector?: string;
  /** Items per page (default 100: a page of 100 NodeImageSets is a few MiB of JSON at most). */
  limit?: number;
}

function dropManagedFields(item: unknown): void {
  if (typeof item !== 'object' || item === null || !('metadata' in item)) return;
  const meta: unknown = item.metadata;
  if (typeof meta === 'object' && meta !== null && 'managedFields' in meta) delete (meta as { managedFields?: unknown }).managedFields;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: unknown;
}

/** An error response from the API server, with its HTTP status and the Status reason when it sent one. */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

export function isGone(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 410;
}

/** Called after every request, for metrics: the method and the resource path's kind-ish segment. */
export type RequestObserver = (method: HttpMethod, path: string, status: number) => void;

export interface KubeClientOptions {
  userAgent?: string;
  /** Awaited before every write (POST, PUT, PATCH, DELETE): the client-side write rate limit. */
  beforeWrite?: (signal: AbortSignal) => Promise<void>;
  observe?: RequestObserver;
  /** Per-request timeout for everything but watches. */
  timeoutMs?: number;
  /**
   * A watch that receives nothing for this long (not even a bookmark, which the API server sends about once a
   * minute) is taken for dead and torn down; the same limit bounds the wait for the response headers. Without
   * it a connection that died without a FIN or RST (a load balancer dropping idle flows, a vanished VM) hangs
   * the watch for good. Default 150 s: two bookmark intervals and a margin.
   */
  watchIdleTimeoutMs?: number;
}

export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 150_000;

/** TCP keepalive on watch sockets, so the kernel notices a dead peer too (a second line of defence). */
const WATCH_KEEPALIVE_MS = 30_000;

/** A watch torn down because the server went quiet for longer than the idle timeout. */
export class WatchIdleError extends Error {
  /** Whether the response had arrived (the stream went quiet) or not (the request itself hung). */
  readonly opened: boolean;

  constructor(path: string, idleMs: number, opened: boolean) {
    super(opened
      ? `watch ${path}: nothing received for ${Math.round(idleMs / 1000)} s (not even a bookmark); the connection is taken for dead`
      : `watch ${path}: no response within ${Math.round(idleMs / 1000)} s`);
    this.name = 'WatchIdleError';
    this.opened = opened;
  }
}

export interface WatchHooks {
  /** Called once the server accepted the watch (200 and headers received). */
  onOpen?: () => void;
}

export interface RequestSpec {
  method: HttpMethod;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal: AbortSignal;
  /**
   * Skip the client-side write limit: for Lease renewals, which must not queue behind a burst of ordinary
   * writes while the renew deadline runs.
   */
  unthrottled?: boolean;
}

function buildPath(path: string, query: RequestSpec['query']): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs === '' ? path : `${path}?${qs}`;
}

function statusFields(body: unknown): { reason: string; message: string } {
  if (typeof body === 'object' && body !== null) {
    const reason = 'reason' in body && typeof body.reason === 'string' ? body.reason : '';
    const message = 'message' in body && typeof body.message === 'string' ? body.message : '';
    return { reason, message };
  }
  return { reason: '', message: '' };
}

export class KubeClient {
  private readonly access: ClusterAccess;
  private readonly server: URL;
  private readonly opts: KubeClientOptions;
  private agent: Agent | undefined;

  constructor(access: ClusterAccess, opts: KubeClientOptions = {}) {
    const cluster = access.getCurrentCluster();
    if (cluster === null) throw new Error('kubeconfig has no current cluster');
    this.access = access;
    this.server = new URL(cluster.server);
    this.opts = opts;
  }

  /** Base request options with credentials; re-evaluated each time so rotated tokens are picked up. */
  private async requestOptions(method: HttpMethod, path: string, headers: Record<string, string>): Promise<RequestOptions> {
    const opts: RequestOptions = { headers: { ...headers } };
    await this.access.applyToHTTPSOptions(opts);
    this.agent ??= new Agent({
      keepAlive: true,
      maxSockets: 32,
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
      ...(opts.key !== undefined ? { key: opts.key } : {}),
      ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
    });
    return {
      ...opts,
      agent: this.server.protocol === 'https:' ? this.agent : undefined,
      method,
      host: this.server.hostname,
      port: this.server.port,
      path: this.server.pathname.replace(/\/$/, '') + path,
      headers: { 'user-agent': this.opts.userAgent ?? 'kwarm', accept: 'application/json', ...(opts.headers as Record<string, string>) },
    };
  }

  private send(ropts: RequestOptions, signal: AbortSignal, payload?: string): Promise<IncomingMessage> {
    const fn = this.server.protocol === 'https:' ? request : httpRequest;
    return new Promise((resolve, reject) => {
      const req = fn({ ...ropts, signal }, resolve);
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Sends a request and returns the decoded JSON body (`undefined` for an empty body). */
  async request(spec: RequestSpec): Promise<unknown> {
    const write = spec.method !== 'GET';
    if (write && spec.unthrottled !== true && this.opts.beforeWrite) await this.opts.beforeWrite(spec.signal);
    const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const headers: Record<string, string> = {};
    if (payload !== undefined) headers['content-type'] = spec.contentType ?? 'application/json';
    const path = buildPath(spec.path, spec.query);
    const ropts = await this.requestOptions(spec.method, path, headers);
    const signal = this.opts.timeoutMs === undefined ? spec.signal : AbortSignal.any([spec.signal, AbortSignal.timeout(this.opts.timeoutMs)]);
    const res = await this.send(ropts, signal, payload);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    this.opts.observe?.(spec.method, spec.path, status);
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    if (status < 200 || status >= 300) {
      const { reason, message } = statusFields(body);
      throw new KubeApiError(status, reason, `${spec.method} ${spec.path}: ${status} ${message || (typeof body === 'string' ? body : '')}`.trim());
    }
    return body;
  }

  get(path: string, signal: AbortSignal): Promise<unknown> {
    return this.request({ method: 'GET', path, signal });
  }

  /** GET that returns `undefined` on 404. */
  async getOptional(path: string, signal: AbortSignal): Promise<unknown> {
    try {
      return await this.get(path, signal);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Lists a collection page by page, following `continue` tokens, so a caller can digest each page before
   * the next arrives (at 5,000 NodeImageSets the whole list is hundreds of MiB of parsed JSON). Every page
   * carries the list's resourceVersion. metadata.managedFields is dropped from each item: it is often as
   * large as the rest of the object, and nothing in kwarm reads it.
   */
  async *listPages(path: string, query: ListQuery, signal: AbortSignal): AsyncGenerator<ListPage, void, undefined> {
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.request({
        method: 'GET', path, signal,
        query: { labelSelector: query.labelSelector, fieldSelector: query.fieldSelector, limit: query.limit ?? 100, continue: cont },
      });
      if (typeof page !== 'object' || page === null || !('items' in page) || !Array.isArray(page.items)) {
        throw new Error(`GET ${path}: response is not a list`);
      }
      const items = page.items as unknown[];
      for (const item of items) dropManagedFields(item);
      const meta: unknown = 'metadata' in page ? page.metadata : undefined;
      cont = undefined;
      if (typeof meta === 'object' && meta !== null) {
        if ('resourceVersion' in meta && typeof meta.resourceVersion === 'string') resourceVersion = meta.resourceVersion;
        if ('continue' in meta && typeof meta.continue === 'string' && meta.continue !== '') cont = meta.continue;
      }
      yield { items, resourceVersion };
    } while (cont !== undefined);
  }

  /** Lists a collection (all pages) and returns all items with the list's resourceVersion. */
  async list(path: string, query: ListQuery, signal: AbortSignal): Promise<ListPage> {
    const items: unknown[] = [];
    let resourceVersion = '';
    for await (const page of this.listPages(path, query, signal)) {
      for (const item of page.items) items.push(item);
      resourceVersion = page.resourceVersion;
    }
    return { items, resourceVersion };
  }

  create(path: string, body: unknown, signal: AbortSignal): Promise<unknown> {
    return this.request({ method: 'POST', path, body, signal });
  }

  /** Server-side apply with `force`, owned by `fieldManager`. */
  apply(path: string, body: unknown, fieldManager: string, signal: AbortSignal): Promise<unknown> {
    return this.request({
      method: 'PATCH', path, body, signal, contentType: PATCH_CONTENT_TYPES.apply,
      query: { fieldManager, force: true },
    });
  }

  patch(path: string, type: PatchType, body: unknown, signal: AbortSignal, fieldManager?: string): Promise<unknown> {
    return this.request({ method: 'PATCH', path, body, signal, contentType: PATCH_CONTENT_TYPES[type], query: { fieldManager } });
  }

  /** DELETE; a 404 counts as success. */
  async delete(path: string, signal: AbortSignal, body?: unknown): Promise<void> {
    try {
      await this.request({ method: 'DELETE', path, body, signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Watches a collection from `resourceVersion` and calls `onEvent` for each event. Resolves when the server
   * closes the stream or `signal` aborts; rejects on HTTP errors (a 410 rejects with a KubeApiError), and with
   * a WatchIdleError when nothing arrives for `watchIdleTimeoutMs`.
   * A watch ERROR event is turned into a KubeApiError with the status it carries.
   */
  async watch(
    path: string,
    query: { resourceVersion: string; labelSelector?: string; fieldSelector?: string; timeoutSeconds?: number },
    onEvent: (ev: WatchEvent) => void,
    signal: AbortSignal,
    hooks: WatchHooks = {},
  ): Promise<void> {
    const full = buildPath(path, {
      watch: true, allowWatchBookmarks: true, resourceVersion: query.resourceVersion,
      labelSelector: query.labelSelector, fieldSelector: query.fieldSelector, timeoutSeconds: query.timeoutSeconds ?? 300,
    });
    const idleMs = this.opts.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    const idle = new AbortController();
    let res: IncomingMessage | undefined;
    let timer: NodeJS.Timeout | undefined;
    // Re-armed by every chunk from the server: bookmarks keep a quiet but healthy watch alive.
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const err = new WatchIdleError(path, idleMs, res !== undefined);
        idle.abort(err);
        res?.destroy(err);
      }, idleMs);
    };
    try {
      const ropts = await this.requestOptions('GET', full, {});
      arm();
      res = await this.send(ropts, AbortSignal.any([signal, idle.signal]));
      res.socket.setKeepAlive(true, WATCH_KEEPALIVE_MS);
      const status = res.statusCode ?? 0;
      this.opts.observe?.('GET', path, status);
      if (status !== 200) {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        let body: unknown;
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { body = undefined; }
        const { reason, message } = statusFields(body);
        throw new KubeApiError(status, reason, `watch ${path}: ${status} ${message}`.trim());
      }
      arm();
      hooks.onOpen?.();
      const decoder = new StringDecoder('utf8');
      let pending = '';
      for await (const chunk of res) {
        arm();
        pending += decoder.write(chunk as Buffer);
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          this.dispatch(path, line, onEvent, res);
        }
      }
      if (idle.signal.aborted) throw idle.signal.reason as Error;
    } catch (err) {
      // Whatever the tear-down surfaced as (an abort, a reset), the reason is that the watch went quiet.
      if (idle.signal.aborted && !signal.aborted) throw idle.signal.reason as Error;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Decodes one line of a watch stream and hands the event on; an ERROR event rejects the watch. */
  private dispatch(path: string, line: string, onEvent: (ev: WatchEvent) => void, res: IncomingMessage): void {
    if (line.trim() === '') return;
    const ev: unknown = JSON.parse(line);
    if (typeof ev !== 'object' || ev === null || !('type' in ev) || typeof ev.type !== 'string') return;
    const object: unknown = 'object' in ev ? ev.object : undefined;
    if (ev.type === 'ERROR') {
      const code = typeof object === 'object' && object !== null && 'code' in object && typeof object.code === 'number' ? object.code : 500;
      const { reason, message } = statusFields(object);
      res.destroy();
      throw new KubeApiError(code, reason, `watch ${path}: ${code} ${message}`.trim());
    }
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED' || ev.type === 'BOOKMARK') {
      onEvent({ type: ev.type, object });
    }
  }

  close(): void {
    this.agent?.destroy();
  }
}
