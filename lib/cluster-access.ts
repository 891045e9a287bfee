// Where KubeClient gets the API server address and credentials, without @kubernetes/client-node: importing
// it loads its generated API models (about 80 MiB of resident memory), which neither the controller nor an
// agent on every node should pay. Two sources are read here: the ServiceAccount files the kubelet mounts in
// a pod, and kubeconfig files (server, CA, TLS options, token / token file, client certificate, basic auth).
// Only users that need client-node's authenticators (exec plugins, auth providers, impersonation) load it,
// lazily.
import { readFileSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import { load as loadYamlText } from 'js-yaml';
import { errorText } from './errors.ts';
import { isRecord, type RawObject } from './raw.ts';

/** What KubeClient needs to reach the API server; client-node's KubeConfig is one too. */
export interface ClusterAccess {
  /** The current cluster; null when there is none. */
  getCurrentCluster(): { readonly server: string } | null;
  /** Adds TLS material and credentials; called before every request, so rotated tokens are picked up. */
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

/** A configuration that cannot be used, with what to fix. */
export class ClusterAccessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterAccessError';
  }
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How long a file read for credentials is reused; the kubelet rotates projected tokens well before expiry. */
const DEFAULT_FILE_CACHE_MS = 60_000;

interface FileCacheOptions {
  readonly cacheMs: number;
  readonly now: () => number;
}

/** A reader that returns the file's content, reading it again once the last read is `cacheMs` old. */
function cachedFile(path: string, o: FileCacheOptions): () => Buffer {
  let cached: { data: Buffer; readAt: number } | undefined;
  return () => {
    if (cached === undefined || o.now() - cached.readAt >= o.cacheMs) cached = { data: readFileSync(path), readAt: o.now() };
    return cached.data;
  };
}

function cachedToken(path: string, o: FileCacheOptions): () => string {
  const read = cachedFile(path, o);
  return () => {
    const token = read().toString('utf8').trim();
    if (token === '') throw new ClusterAccessError(`token file ${path} is empty`);
    return token;
  };
}

/** Runs `fn` as a promise, so a failure (an unreadable token file) rejects the request instead of throwing. */
function settled(fn: () => void): Promise<void> {
  return new Promise((resolve) => {
    fn();
    resolve();
  });
}

function withAuthorization(o: RequestOptions, value: string): void {
  const headers: OutgoingHttpHeaders = {};
  // KubeClient passes headers as an object; the array form is not used.
  if (o.headers !== undefined && !Array.isArray(o.headers)) Object.assign(headers, o.headers);
  headers.authorization = value;
  o.headers = headers;
}

// ---- in-cluster ---------------------------------------------------------------------------------------

export interface InClusterOptions {
  /** KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT. */
  readonly host: string | undefined;
  readonly port: string | undefined;
  /** Where the token and ca.crt are mounted. */
  readonly dir?: string;
  /** How long a token read from the file is reused. */
  readonly tokenCacheMs?: number;
  readonly now?: () => number;
}

/** The ServiceAccount token and CA the kubelet mounts, and the service address it puts in the environment. */
export function inClusterAccess(opts: InClusterOptions): ClusterAccess {
  const { host, port } = opts;
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new ClusterAccessError('not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (use --kubeconfig)');
  }
  const dir = opts.dir ?? SERVICE_ACCOUNT_DIR;
  const cache = { cacheMs: opts.tokenCacheMs ?? DEFAULT_FILE_CACHE_MS, now: opts.now ?? Date.now };
  const cluster = { name: 'in-cluster', server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, skipTLSVerify: false };
  const token = cachedToken(`${dir}/token`, cache);
  const ca = cachedFile(`${dir}/ca.crt`, cache);
  return {
    getCurrentCluster: () => cluster,
    applyToHTTPSOptions: (o) => settled(() => {
      o.ca = ca();
      withAuthorization(o, `Bearer ${token()}`);
    }),
  };
}

// ---- kubeconfig: parsing (pure) ---------------------------------------------------------------------------

/** PEM material given inline (already base64-decoded) or as a file. */
export type Material = { readonly kind: 'data'; readonly data: Buffer } | { readonly kind: 'file'; readonly path: string };

export interface KubeconfigCluster {
  readonly name: string;
  readonly server: string;
  readonly certificateAuthority: Material | undefined;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName: string | undefined;
}

export type KubeconfigCredentials =
  | { readonly kind: 'none' }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'tokenFile'; readonly path: string }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string };

export interface KubeconfigUser {
  readonly name: string;
  readonly credentials: KubeconfigCredentials;
  /** Client certificate and key, when both are given. */
  readonly clientCertificate: { readonly cert: Material; readonly key: Material } | undefined;
}

/** The current context resolved: what to do with it. */
export type KubeconfigSelection =
  | { readonly kind: 'direct'; readonly context: string; readonly namespace: string | undefined; readonly cluster: KubeconfigCluster; readonly user: KubeconfigUser }
  /** The user needs an authenticator only client-node has: `config` is the merged kubeconfig, paths absolute. */
  | { readonly kind: 'delegate'; readonly context: string; readonly reason: string; readonly config: Record<string, unknown> };

export interface KubeconfigFile {
  readonly text: string;
  /** The file's directory: relative paths inside it are relative to it. */
  readonly dir: string;
  /** For messages. */
  readonly path: string;
}

type Obj = RawObject;

function optString(o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new ClusterAccessError(`${where}: ${key} must be a string`);
  return v;
}

const PATH_FIELDS: Readonly<Record<'clusters' | 'users', readonly string[]>> = {
  clusters: ['certificate-authority'],
  users: ['client-certificate', 'client-key', 'tokenFile'],
};

/** The named entries of one list, with file paths made absolute against the file's directory. */
function namedEntries(doc: Obj, list: 'clusters' | 'users' | 'contexts', file: KubeconfigFile): [string, Obj][] {
  const raw = doc[list];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ClusterAccessError(`${file.path}: ${list} must be a list`);
  const inner = list.slice(0, -1);
  const out: [string, Obj][] = [];
  for (const item of raw as unknown[]) {
    if (!isRecord(item) || typeof item.name !== 'string' || item.name === '') throw new ClusterAccessError(`${file.path}: every entry of ${list} needs a name`);
    const body = item[inner] ?? {};
    if (!isRecord(body)) throw new ClusterAccessError(`${file.path}: ${list} entry ${item.name}: ${inner} must be a mapping`);
    const resolved: Obj = { ...body };
    if (list !== 'contexts') {
      for (const key of PATH_FIELDS[list]) {
        const p = resolved[key];
        if (typeof p === 'string' && p !== '' && !isAbsolute(p)) resolved[key] = join(file.dir, p);
      }
    }
    out.push([item.name, resolved]);
  }
  return out;
}

function base64Data(value: string, where: string): Buffer {
  const data = Buffer.from(value, 'base64');
  if (data.length === 0) throw new ClusterAccessError(`${where} is not base64`);
  return data;
}

/** Inline data wins over a file, as in kubectl. */
function material(o: Obj, fileKey: string, where: string): Material | undefined {
  const data = optString(o, `${fileKey}-data`, where);
  if (data !== undefined) return { kind: 'data', data: base64Data(data, `${where}: ${fileKey}-data`) };
  const path = optString(o, fileKey, where);
  return path === undefined ? undefined : { kind: 'file', path };
}

function parseCluster(name: string, o: Obj): KubeconfigCluster {
  const where = `cluster ${name}`;
  const server = optString(o, 'server', where);
  if (server === undefined) throw new ClusterAccessError(`${where} has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ClusterAccessError(`${where}: server ${server} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ClusterAccessError(`${where}: server ${server} is neither https nor http`);
  // KubeClient keeps its own connection pool and would silently bypass a proxy: refuse rather than go direct.
  if (optString(o, 'proxy-url', where) !== undefined) throw new ClusterAccessError(`${where}: proxy-url is not supported`);
  const insecure = o['insecure-skip-tls-verify'];
  if (insecure !== undefined && typeof insecure !== 'boolean') throw new ClusterAccessError(`${where}: insecure-skip-tls-verify must be true or false`);
  return {
    name,
    server,
    certificateAuthority: material(o, 'certificate-authority', where),
    insecureSkipTlsVerify: insecure === true,
    tlsServerName: optString(o, 'tls-server-name', where),
  };
}

/** Why client-node must handle this user, or undefined when this module can. */
function delegationReason(o: Obj): string | undefined {
  if (o.exec !== undefined && o.exec !== null) return 'exec credential plugin';
  if (o['auth-provider'] !== undefined && o['auth-provider'] !== null) return 'auth-provider';
  for (const key of ['as', 'as-uid', 'as-groups', 'as-user-extra']) if (o[key] !== undefined && o[key] !== null) return 'impersonation';
  return undefined;
}

function parseUser(name: string, o: Obj): KubeconfigUser {
  const where = `user ${name}`;
  const token = optString(o, 'token', where);
  const tokenFile = optString(o, 'tokenFile', where);
  const username = optString(o, 'username', where);
  const password = optString(o, 'password', where);
  // kubectl's precedence: an inline token over a token file; basic auth only without a token.
  const credentials: KubeconfigCredentials =
    token !== undefined ? { kind: 'token', token }
      : tokenFile !== undefined ? { kind: 'tokenFile', path: tokenFile }
        : username !== undefined ? { kind: 'basic', username, password: password ?? '' }
          : { kind: 'none' };
  const cert = material(o, 'client-certificate', where);
  const key = material(o, 'client-key', where);
  if ((cert === undefined) !== (key === undefined)) throw new ClusterAccessError(`${where}: client-certificate and client-key must be given together`);
  return { name, credentials, clientCertificate: cert !== undefined && key !== undefined ? { cert, key } : undefined };
}

/**
 * Merges kubeconfig files as kubectl does with a KUBECONFIG list (the first file that names a cluster, user
 * or context wins, and the first current-context set wins) and resolves the current context.
 */
export function parseKubeconfig(files: readonly KubeconfigFile[]): KubeconfigSelection {
  if (files.length === 0) throw new ClusterAccessError('no kubeconfig file given');
  const lists = { clusters: new Map<string, Obj>(), users: new Map<string, Obj>(), contexts: new Map<string, Obj>() };
  let currentContext: string | undefined;
  for (const file of files) {
    // An empty file is allowed in a KUBECONFIG list.
    if (file.text.trim() === '') continue;
    let doc: unknown;
    try {
      doc = loadYamlText(file.text);
    } catch (err) {
      throw new ClusterAccessError(`${file.path}: not YAML: ${errorText(err)}`);
    }
    if (doc === undefined || doc === null) continue;
    if (!isRecord(doc)) throw new ClusterAccessError(`${file.path}: not a kubeconfig (expected a mapping)`);
    for (const list of ['clusters', 'users', 'contexts'] as const) {
      for (const [name, body] of namedEntries(doc, list, file)) if (!lists[list].has(name)) lists[list].set(name, body);
    }
    currentContext ??= optString(doc, 'current-context', file.path);
  }
  const where = files.map((f) => f.path).join(delimiter);
  if (currentContext === undefined) throw new ClusterAccessError(`${where}: no current-context`);
  const context = lists.contexts.get(currentContext);
  if (context === undefined) throw new ClusterAccessError(`${where}: context ${currentContext} not found`);
  const clusterName = optString(context, 'cluster', `context ${currentContext}`);
  const clusterBody = clusterName === undefined ? undefined : lists.clusters.get(clusterName);
  if (clusterName === undefined || clusterBody === undefined) throw new ClusterAccessError(`${where}: cluster ${clusterName ?? '(none)'} of context ${currentContext} not found`);
  const userName = optString(context, 'user', `context ${currentContext}`);
  const userBody = userName === undefined ? {} : lists.users.get(userName);
  if (userBody === undefined) throw new ClusterAccessError(`${where}: user ${userName ?? ''} of context ${currentContext} not found`);

  const cluster = parseCluster(clusterName, clusterBody);
  const reason = delegationReason(userBody);
  if (reason !== undefined) {
    const entries = (m: Map<string, Obj>, inner: string): { name: string }[] => [...m].map(([name, body]) => ({ name, [inner]: body }));
    return {
      kind: 'delegate',
      context: currentContext,
      reason,
      config: {
        apiVersion: 'v1', kind: 'Config', 'current-context': currentContext,
        clusters: entries(lists.clusters, 'cluster'), users: entries(lists.users, 'user'), contexts: entries(lists.contexts, 'context'),
      },
    };
  }
  return {
    kind: 'direct',
    context: currentContext,
    namespace: optString(context, 'namespace', `context ${currentContext}`),
    cluster,
    user: parseUser(userName ?? '', userBody),
  };
}

// ---- kubeconfig: access -------------------------------------------------------------------------------

export interface FileAccessOptions {
  /** How long token, CA and certificate files are reused before they are read again. */
  readonly fileCacheMs?: number;
  readonly now?: () => number;
}

function materialReader(m: Material, cache: FileCacheOptions): () => Buffer {
  switch (m.kind) {
    case 'data':
      return () => m.data;
    case 'file':
      return cachedFile(m.path, cache);
    default: {
      const unreachable: never = m;
      return unreachable;
    }
  }
}

/** Access for a resolved, directly supported kubeconfig user. */
export function kubeconfigAccess(selection: Extract<KubeconfigSelection, { kind: 'direct' }>, opts: FileAccessOptions = {}): ClusterAccess {
  const cache = { cacheMs: opts.fileCacheMs ?? DEFAULT_FILE_CACHE_MS, now: opts.now ?? Date.now };
  const { cluster, user } = selection;
  const ca = cluster.certificateAuthority === undefined || cluster.insecureSkipTlsVerify ? undefined : materialReader(cluster.certificateAuthority, cache);
  const cert = user.clientCertificate === undefined ? undefined : materialReader(user.clientCertificate.cert, cache);
  const key = user.clientCertificate === undefined ? undefined : materialReader(user.clientCertificate.key, cache);
  const creds = user.credentials;
  const tokenFromFile = creds.kind === 'tokenFile' ? cachedToken(creds.path, cache) : undefined;
  const current = { name: cluster.name, server: cluster.server, skipTLSVerify: cluster.insecureSkipTlsVerify };
  return {
    getCurrentCluster: () => current,
    applyToHTTPSOptions: (o) => settled(() => {
      if (ca !== undefined) o.ca = ca();
      if (cluster.insecureSkipTlsVerify) o.rejectUnauthorized = false;
      if (cluster.tlsServerName !== undefined) o.servername = cluster.tlsServerName;
      if (cert !== undefined && key !== undefined) {
        o.cert = cert();
        o.key = key();
      }
      switch (creds.kind) {
        case 'none':
          break;
        case 'token':
          withAuthorization(o, `Bearer ${creds.token}`);
          break;
        case 'tokenFile':
          if (tokenFromFile !== undefined) withAuthorization(o, `Bearer ${tokenFromFile()}`);
          break;
        case 'basic':
          o.auth = `${creds.username}:${creds.password}`;
          break;
        default: {
          const unreachable: never = creds;
          throw new Error(`unknown credentials ${String(unreachable)}`);
        }
      }
    }),
  };
}

/** Reads and resolves kubeconfig files; a user only client-node can authenticate loads it here, lazily. */
export async function loadKubeconfig(paths: readonly string[], opts: FileAccessOptions = {}): Promise<ClusterAccess> {
  const files = paths.map((path): KubeconfigFile => {
    try {
      return { text: readFileSync(path, 'utf8'), dir: dirname(path), path };
    } catch (err) {
      throw new ClusterAccessError(`cannot read kubeconfig ${path}: ${errorText(err)}`);
    }
  });
  const selection = parseKubeconfig(files);
  switch (selection.kind) {
    case 'direct':
      return kubeconfigAccess(selection, opts);
    case 'delegate': {
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      // JSON is YAML; every path in it is absolute already.
      kc.loadFromString(JSON.stringify(selection.config));
      kc.setCurrentContext(selection.context);
      return kc;
    }
    default: {
      const unreachable: never = selection;
      return unreachable;
    }
  }
}

// ---- which source ------------------------------------------------------------------------------------

export type AccessSource =
  | { readonly kind: 'kubeconfig'; readonly paths: readonly string[] }
  | { readonly kind: 'in-cluster'; readonly host: string | undefined; readonly port: string | undefined };

export interface AccessEnvironment {
  readonly KUBECONFIG?: string | undefined;
  readonly HOME?: string | undefined;
  readonly KUBERNETES_SERVICE_HOST?: string | undefined;
  readonly KUBERNETES_SERVICE_PORT?: string | undefined;
}

/**
 * kubectl's order: an explicit --kubeconfig, then the $KUBECONFIG list, then ~/.kube/config if it exists,
 * then the in-cluster ServiceAccount.
 */
export function defaultAccessSource(flag: string | undefined, env: AccessEnvironment, fileExists: (path: string) => boolean): AccessSource {
  if (flag !== undefined && flag !== '') return { kind: 'kubeconfig', paths: [flag] };
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  if (list.length > 0) return { kind: 'kubeconfig', paths: list };
  const home = env.HOME;
  if (home !== undefined && home !== '') {
    const path = join(home, '.kube', 'config');
    if (fileExists(path)) return { kind: 'kubeconfig', paths: [path] };
  }
  return { kind: 'in-cluster', host: env.KUBERNETES_SERVICE_HOST, port: env.KUBERNETES_SERVICE_PORT };
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export interface LoadOptions extends FileAccessOptions {
  /** Where the ServiceAccount is mounted (in-cluster only). */
  readonly serviceAccountDir?: string;
}

export async function loadClusterAccess(source: AccessSource, opts: LoadOptions = {}): Promise<ClusterAccess> {
  switch (source.kind) {
    case 'kubeconfig':
      return loadKubeconfig(source.paths, opts);
    case 'in-cluster':
      return inClusterAccess({
        host: source.host,
        port: source.port,
        ...(opts.serviceAccountDir !== undefined ? { dir: opts.serviceAccountDir } : {}),
        ...(opts.fileCacheMs !== undefined ? { tokenCacheMs: opts.fileCacheMs } : {}),
        ...(opts.now !== undefined ? { now: opts.now } : {}),
      });
    default: {
      const unreachable: never = source;
      return unreachable;
    }
  }
}
