// Pull secrets: asked of kwarm-controller, which serves only the copies this node's NodeImageSet names
// (ControllerSecretSource, the chart's default), or read one by one with GET from kwarm's namespace
// (KubeSecretSource, --pull-secrets-from=api, where the agent's RBAC allows it). Their content goes only to
// credentials.ts and to CRI; nothing here logs or keeps it beyond the request.
import { request as httpsRequest } from 'node:https';
import type { KubeClient } from '../lib/kube-client.ts';
import { isNotFound } from '../lib/kube-client.ts';
import type { PullSecret } from './credentials.ts';
import { errorText } from '../lib/errors.ts';
import { field, isRecord, str } from '../lib/raw.ts';

export interface ReadSecrets {
  secrets: PullSecret[];
  /** Names that do not exist (the kubelet also carries on without a missing pull secret). */
  missing: string[];
}

export interface SecretSource {
  read(names: readonly string[], signal: AbortSignal): Promise<ReadSecrets>;
}


/** The decoded form of a Secret object; undefined when it is not shaped like one. */
export function pullSecretFromObject(namespace: string, name: string, raw: unknown): PullSecret | undefined {
  if (!isRecord(raw)) return undefined;
  const type = typeof raw.type === 'string' ? raw.type : '';
  const data: Record<string, string> = {};
  if (raw.data !== undefined && raw.data !== null) {
    if (!isRecord(raw.data)) return undefined;
    for (const [k, v] of Object.entries(raw.data)) {
      if (typeof v === 'string') data[k] = Buffer.from(v, 'base64').toString('utf8');
    }
  }
  const meta = isRecord(raw.metadata) ? raw.metadata : {};
  const resourceVersion = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : undefined;
  return { namespace, name, type, data, ...(resourceVersion !== undefined ? { resourceVersion } : {}) };
}

export class KubeSecretSource implements SecretSource {
  readonly #client: KubeClient;
  readonly #namespace: string;

  constructor(client: KubeClient, namespace: string) {
    this.#client = client;
    this.#namespace = namespace;
  }

  async read(names: readonly string[], signal: AbortSignal): Promise<ReadSecrets> {
    const secrets: PullSecret[] = [];
    const missing: string[] = [];
    for (const name of names) {
      const path = `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/secrets/${encodeURIComponent(name)}`;
      let raw: unknown;
      try {
        raw = await this.#client.get(path, signal);
      } catch (err) {
        if (isNotFound(err)) {
          missing.push(name);
          continue;
        }
        // KubeApiError messages carry the API's Status message, never the secret's data.
        throw new Error(`reading pull secret ${this.#namespace}/${name}: ${errorText(err)}`, { cause: err });
      }
      const secret = pullSecretFromObject(this.#namespace, name, raw);
      if (secret === undefined) missing.push(name);
      else secrets.push(secret);
    }
    return { secrets, missing };
  }
}

/** The ConfigMap key the controller publishes its pull credentials CA under. */
export const CREDENTIALS_CA_KEY = 'ca.crt';

export const PULL_CREDENTIALS_PATH = '/pull-credentials';

export interface ControllerSecretSourceOptions {
  /**
   * The controller's Service in `namespace`. Its ClusterIP and port are read from the API (no DNS needed, so
   * a NetworkPolicy need not open DNS to the agent); the serving certificate must name <service>.<namespace>.svc.
   */
  readonly service: string;
  /** Overrides the address read from the Service, e.g. https://127.0.0.1:9444 (an agent run outside a pod). */
  readonly url?: string;
  readonly namespace: string;
  /** The ConfigMap in `namespace` with the CA (key ca.crt), read with the agent's client. */
  readonly caConfigMap: string;
  readonly client: KubeClient;
  /** The Authorization header to send: the agent's own pod-bound token (the one it uses for the API server). */
  readonly authorization: () => Promise<string>;
}

/**
 * Pull secrets from kwarm-controller instead of the API server: the agent's ServiceAccount may not read
 * Secrets, and the controller answers only the copies this node's NodeImageSet names. The CA is re-read from
 * the ConfigMap when a handshake fails (the controller renewed it).
 */
export class ControllerSecretSource implements SecretSource {
  readonly #o: ControllerSecretSourceOptions;
  #ca: string | undefined;
  #base: string | undefined;

  constructor(o: ControllerSecretSourceOptions) {
    this.#o = o;
  }

  async read(names: readonly string[], signal: AbortSignal): Promise<ReadSecrets> {
    if (names.length === 0) return { secrets: [], missing: [] };
    const unique = [...new Set(names)];
    let answer: unknown;
    try {
      answer = await this.#post(unique, await this.#baseUrl(false, signal), await this.#caPem(false, signal), signal);
    } catch (err) {
      // A renewed CA, or a Service that was re-created with another address: look both up again, once.
      if (!(err instanceof TlsTrustError) && !(err instanceof UnreachableError)) throw err;
      answer = await this.#post(unique, await this.#baseUrl(true, signal), await this.#caPem(true, signal), signal);
    }
    const secrets: PullSecret[] = [];
    const missing = new Set(Array.isArray(field(answer, 'missing')) ? (field(answer, 'missing') as unknown[]).filter((n): n is string => typeof n === 'string') : []);
    const served = field(answer, 'secrets');
    for (const s of Array.isArray(served) ? served as unknown[] : []) {
      const name = str(field(s, 'name'));
      if (name === undefined || !unique.includes(name)) continue;
      const secret = pullSecretFromObject(this.#o.namespace, name, { type: field(s, 'type'), data: field(s, 'data'), metadata: { resourceVersion: field(s, 'resourceVersion') } });
      if (secret !== undefined) secrets.push(secret);
    }
    for (const n of unique) if (!secrets.some((s) => s.name === n)) missing.add(n);
    return { secrets, missing: [...missing] };
  }

  async #baseUrl(fresh: boolean, signal: AbortSignal): Promise<string> {
    if (this.#o.url !== undefined) return this.#o.url;
    if (this.#base !== undefined && !fresh) return this.#base;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/services/${encodeURIComponent(this.#o.service)}`;
    let raw: unknown;
    try {
      raw = await this.#o.client.get(path, signal);
    } catch (err) {
      throw new Error(`reading Service ${this.#o.namespace}/${this.#o.service} of the pull credentials endpoint: ${errorText(err)}`, { cause: err });
    }
    const ip = str(field(raw, 'spec', 'clusterIP'));
    const ports = field(raw, 'spec', 'ports');
    const port = Array.isArray(ports) ? field(ports[0], 'port') : undefined;
    if (ip === undefined || ip === '' || ip === 'None' || typeof port !== 'number') {
      throw new Error(`Service ${this.#o.namespace}/${this.#o.service} has no cluster IP and port for the pull credentials endpoint`);
    }
    this.#base = `https://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    return this.#base;
  }

  async #caPem(fresh: boolean, signal: AbortSignal): Promise<string> {
    if (this.#ca !== undefined && !fresh) return this.#ca;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/configmaps/${encodeURIComponent(this.#o.caConfigMap)}`;
    let raw: unknown;
    try {
      raw = await this.#o.client.get(path, signal);
    } catch (err) {
      throw new Error(`reading the pull credentials CA from ConfigMap ${this.#o.namespace}/${this.#o.caConfigMap}: ${errorText(err)} (is kwarm-controller running with --pull-credentials?)`, { cause: err });
    }
    const pem = str(field(raw, 'data', CREDENTIALS_CA_KEY));
    if (pem === undefined || pem === '') throw new Error(`ConfigMap ${this.#o.namespace}/${this.#o.caConfigMap} has no ${CREDENTIALS_CA_KEY}`);
    this.#ca = pem;
    return pem;
  }

  async #post(names: readonly string[], base: string, ca: string, signal: AbortSignal): Promise<unknown> {
    const url = new URL(PULL_CREDENTIALS_PATH, base);
    const payload = JSON.stringify({ names });
    const authorization = await this.#o.authorization();
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, {
        method: 'POST',
        ca,
        servername: `${this.#o.service}.${this.#o.namespace}.svc`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization },
        signal,
        timeout: 30_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => { chunks.push(c); });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status === 200) resolve(body);
          // The controller's error text names secrets and nodes, never credentials.
          else reject(new Error(`kwarm-controller refused the pull credentials (HTTP ${status}): ${str(field(body, 'error')) ?? text.slice(0, 200)}`));
        });
      });
      req.on('timeout', () => { req.destroy(new Error(`no answer from ${url.host} within 30s`)); });
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (TLS_TRUST_CODES.has(code)) reject(new TlsTrustError(`the pull credentials server at ${url.host} is not trusted: ${errorText(err)}`));
        else if (signal.aborted) reject(err);
        else reject(new UnreachableError(`asking kwarm-controller at ${url.host} for pull credentials: ${errorText(err)}`));
      });
      req.end(payload);
    });
  }
}

/** Handshake failures a renewed CA would explain: read the CA again and retry once. */
const TLS_TRUST_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);

class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

class TlsTrustError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsTrustError';
  }
}
