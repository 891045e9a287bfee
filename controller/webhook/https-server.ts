// The webhook's HTTPS endpoint: JSON in, JSON out, one handler per path. TLS material is swapped in place
// (setSecureContext) when the certificate changes, so a renewal never restarts the server or drops the port.
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Logger } from 'winston';
import { errorText } from '../../lib/errors.ts';

/** What a handler may know of the request besides its body (the credentials endpoint reads Authorization). */
export interface RequestInfo {
  readonly headers: IncomingHttpHeaders;
}

/**
 * A handler gets the decoded JSON body and returns what is sent back as JSON. A throw answers 500 with its
 * reason, or the status of an HttpError.
 */
export type WebhookHandler = (body: unknown, signal: AbortSignal, request: RequestInfo) => Promise<unknown>;

/** Thrown by a handler to answer with this status (401, 403...) and its message as the error. */
export class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}
export type WebhookRoutes = Readonly<Record<string, WebhookHandler>>;

/** PEM certificate (chain) and key. */
export interface ServingMaterial {
  readonly cert: string;
  readonly key: string;
  /** The CA that issued `cert`, when the source knows it (self-managed); published for clients to trust. */
  readonly ca?: string;
}

/**
 * The API server sends an AdmissionReview with the whole object (and the old one on updates): a pod is far below
 * this, and etcd refuses objects above 1.5 MiB anyway.
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** A request taking longer is answered 503; the API server gives up after the webhook's timeoutSeconds anyway. */
export const HANDLER_TIMEOUT_MS = 10_000;

export class HttpsJsonServer {
  readonly server: Server;
  #material: ServingMaterial | undefined;
  readonly #log: Logger;

  constructor(routes: WebhookRoutes, log: Logger) {
    this.#log = log;
    // No certificate yet: handshakes fail until setMaterial, and the API server (failurePolicy Ignore) goes on.
    this.server = createServer({ minVersion: 'TLSv1.2' }, (req, res) => { void this.#serve(routes, req, res); });
    this.server.requestTimeout = HANDLER_TIMEOUT_MS + 5_000;
    this.server.headersTimeout = 10_000;
    this.server.on('tlsClientError', (err) => { log.debug('webhook TLS handshake failed', { error: errorText(err) }); });
  }

  get material(): ServingMaterial | undefined {
    return this.#material;
  }

  /** Serves with this certificate from the next handshake on; a certificate Node cannot load throws and changes nothing. */
  setMaterial(m: ServingMaterial): void {
    if (this.#material?.cert === m.cert && this.#material.key === m.key) return;
    this.server.setSecureContext({ cert: m.cert, key: m.key, minVersion: 'TLSv1.2' });
    this.#material = m;
  }

  async listen(port: number, host: string | undefined): Promise<number> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    const a = this.server.address();
    if (typeof a !== 'object' || a === null) throw new Error('the webhook server has no address');
    return a.port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => { this.server.close(() => { resolve(); }); });
  }

  async #serve(routes: WebhookRoutes, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (code: number, body: unknown): void => {
      if (res.headersSent) return;
      const text = JSON.stringify(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (handler === undefined) {
      req.resume();
      reply(404, { error: `no webhook at ${path}` });
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      reply(405, { error: `${path} takes POST` });
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      reply(413, { error: `body of ${declared} bytes is above the limit of ${MAX_BODY_BYTES}` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) {
          reply(413, { error: `body above the limit of ${MAX_BODY_BYTES} bytes` });
          req.destroy();
          return;
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      this.#log.debug('webhook request body not read', { path, error: errorText(err) });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      reply(400, { error: `body is not JSON: ${errorText(err)}` });
      return;
    }
    // Ends when the caller hangs up or the handler overruns, whichever first.
    const gone = new AbortController();
    res.once('close', () => { gone.abort(new Error('the caller closed the connection')); });
    const signal = AbortSignal.any([gone.signal, AbortSignal.timeout(HANDLER_TIMEOUT_MS)]);
    try {
      const result = await handler(body, signal, { headers: req.headers });
      reply(200, result);
    } catch (err) {
      if (err instanceof HttpError) {
        this.#log.info('request refused', { path, status: err.status, reason: err.message });
        reply(err.status, { error: err.message });
        return;
      }
      this.#log.warn('webhook handler failed', { path, error: errorText(err) });
      reply(signal.aborted ? 503 : 500, { error: errorText(err) });
    }
  }
}
