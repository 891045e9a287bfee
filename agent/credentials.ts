// Registry credentials from image pull secrets, and the kubelet's rules for which credentials
// apply to an image. Pure: the caller reads the secrets and base64-decodes their data.
import type { ImageRef } from '../lib/image-ref.ts';
import { repositoryName } from '../lib/image-ref.ts';

import { DOCKERCFG_KEY, DOCKERCFG_TYPE, DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE } from '../lib/docker-config.ts';
import { isRecord } from '../lib/raw.ts';

/**
 * A pull secret as the agent read it. `data` holds the secret's values already base64-decoded
 * from the API object to UTF-8 text (`Buffer.from(value, 'base64').toString('utf8')`).
 */
export interface PullSecret {
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  readonly data: Readonly<Record<string, string>>;
  /** metadata.resourceVersion: changes with every update of the Secret (a rotation). */
  readonly resourceVersion?: string;
}

/** Where a credential came from; safe to log. */
export interface CredentialSource {
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  /** The registry key exactly as written in the secret, e.g. `https://index.docker.io/v1/`. */
  readonly registry: string;
}

const REDACTED = '[redacted]';
const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * One set of registry credentials. The secret material sits in private fields and every way
 * of printing the object (JSON, util.inspect/console.log, template strings) shows only the source.
 */
export class RegistryCredential {
  readonly source: CredentialSource;
  /** Normalised key used for matching: host[:port][/path] without scheme or /v1/, /v2/. */
  readonly matchKey: string;
  readonly #username: string;
  readonly #password: string;
  readonly #identityToken: string;
  readonly #registryToken: string;

  constructor(
    source: CredentialSource,
    matchKey: string,
    secret: { username?: string; password?: string; identityToken?: string; registryToken?: string },
  ) {
    this.source = source;
    this.matchKey = matchKey;
    this.#username = secret.username ?? '';
    this.#password = secret.password ?? '';
    this.#identityToken = secret.identityToken ?? '';
    this.#registryToken = secret.registryToken ?? '';
  }

  get username(): string {
    return this.#username;
  }
  get password(): string {
    return this.#password;
  }
  get identityToken(): string {
    return this.#identityToken;
  }
  get registryToken(): string {
    return this.#registryToken;
  }

  /** True when two credentials carry the same secret material (compared without exposing it). */
  sameSecretAs(other: RegistryCredential): boolean {
    return (
      this.#username === other.#username &&
      this.#password === other.#password &&
      this.#identityToken === other.#identityToken &&
      this.#registryToken === other.#registryToken
    );
  }

  /** What logs and JSON see. */
  describe(): { secret: string; key: string; registry: string; credentials: string } {
    return {
      secret: `${this.source.namespace}/${this.source.name}`,
      key: this.source.key,
      registry: this.source.registry,
      credentials: REDACTED,
    };
  }

  toJSON(): ReturnType<RegistryCredential['describe']> {
    return this.describe();
  }

  toString(): string {
    return `RegistryCredential(${this.source.namespace}/${this.source.name} ${this.source.registry} ${REDACTED})`;
  }

  [inspectSymbol](): string {
    return this.toString();
  }
}

/** A pull secret that cannot be used. The message names the secret and key, never its content. */
export class InvalidPullSecretError extends Error {
  readonly namespace: string;
  readonly secretName: string;
  readonly key: string | undefined;
  constructor(secret: { namespace: string; name: string }, key: string | undefined, problem: string) {
    super(`pull secret ${secret.namespace}/${secret.name}${key !== undefined ? ` key ${key}` : ''}: ${problem}`);
    this.name = 'InvalidPullSecretError';
    this.namespace = secret.namespace;
    this.secretName = secret.name;
    this.key = key;
  }
}


// Strict base64 (padded or not), as Go's StdEncoding/RawStdEncoding accept it.
function decodeBase64Strict(s: string): string | undefined {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) return undefined;
  const body = t.replace(/=+$/, '');
  if (body.length % 4 === 1) return undefined;
  if (t.endsWith('=') && t.length % 4 !== 0) return undefined;
  return Buffer.from(body, 'base64').toString('utf8');
}

/**
 * The kubelet's normalisation of a registry key: scheme dropped, a leading /v1/ or /v2/ path
 * segment treated as the bare host, any other path kept for prefix matching.
 * Returns undefined for keys that cannot be a registry location.
 */
export function normaliseRegistryKey(location: string): string | undefined {
  const withoutScheme = location.replace(/^https?:\/\//, '');
  const parsed = splitSchemeless(withoutScheme);
  if (parsed === undefined || parsed.host === '') return undefined;
  let path = parsed.path;
  if (path.startsWith('/v2/') || path.startsWith('/v1/')) path = path.slice(3);
  return path !== '' && path !== '/' ? parsed.host + path : parsed.host;
}

/**
 * Host and path of a schemeless URL, accepting what Go's url.Parse accepts (which the kubelet
 * uses): query, fragment and user info are dropped; a `[` starts an IPv6 literal; a port must be numeric.
 */
function splitSchemeless(s: string): { host: string; path: string } | undefined {
  const end = s.search(/[/?#]/);
  let authority = end === -1 ? s : s.slice(0, end);
  let rest = end === -1 ? '' : s.slice(end);
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1);
  const q = rest.search(/[?#]/);
  if (q !== -1) rest = rest.slice(0, q);
  if (authority.startsWith('[')) {
    if (!/^\[[0-9A-Fa-f:.]+(?:%25[\w.~-]+)?\](?::[0-9]*)?$/.test(authority)) return undefined;
  } else {
    if (!/^[\w\-.~!$&'()*+,;=:<>"%\u0080-\uffff]*$/.test(authority)) return undefined;
    const colon = authority.lastIndexOf(':');
    if (colon !== -1 && !/^[0-9]*$/.test(authority.slice(colon + 1))) return undefined;
  }
  return { host: authority, path: rest };
}

/** Like Go's net.SplitHostPort used leniently: no port means the whole string is the host. */
function splitHostPort(authority: string): { host: string; port: string } {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close !== -1 && authority[close + 1] === ':') {
      return { host: authority.slice(1, close), port: authority.slice(close + 2) };
    }
    return { host: authority, port: '' };
  }
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || authority.indexOf(':') !== colon) return { host: authority, port: '' };
  return { host: authority.slice(0, colon), port: authority.slice(colon + 1) };
}

function decodeEntry(
  secret: PullSecret,
  key: string,
  registry: string,
  entry: unknown,
): RegistryCredential | undefined {
  if (!isRecord(entry)) throw new InvalidPullSecretError(secret, key, 'a registry entry is not an object');
  const field = (name: string): string | undefined => {
    const v = entry[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new InvalidPullSecretError(secret, key, `a registry entry's ${name} is not a string`);
    return v;
  };
  let username = field('username');
  let password = field('password');
  const auth = field('auth');
  const identityToken = field('identitytoken');
  const registryToken = field('registrytoken');
  // As in the kubelet, a non-empty `auth` wins over username/password.
  if (auth !== undefined && auth !== '') {
    const decoded = decodeBase64Strict(auth);
    if (decoded === undefined) throw new InvalidPullSecretError(secret, key, "a registry entry's auth is not valid base64");
    const colon = decoded.indexOf(':');
    if (colon === -1) {
      throw new InvalidPullSecretError(secret, key, "a registry entry's auth is not base64(username:password)");
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const material = { username, password, identityToken, registryToken };
  // An entry without any credential would only mean "pull anonymously", which is what happens anyway.
  if (Object.values(material).every((v) => v === undefined || v === '')) return undefined;
  const matchKey = normaliseRegistryKey(registry);
  // Like the kubelet, an entry whose registry key does not parse as a URL is skipped, not fatal.
  if (matchKey === undefined) return undefined;
  return new RegistryCredential(
    { namespace: secret.namespace, name: secret.name, key, registry },
    matchKey,
    {
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(identityToken !== undefined ? { identityToken } : {}),
      ...(registryToken !== undefined ? { registryToken } : {}),
    },
  );
}

/**
 * Decodes a `kubernetes.io/dockerconfigjson` (`{"auths": {registry: entry}}`) or
 * `kubernetes.io/dockercfg` (`{registry: entry}`) secret into credentials, in the order written.
 * Throws InvalidPullSecretError for any other type or malformed content.
 */
export function decodePullSecret(secret: PullSecret): RegistryCredential[] {
  let key: string;
  switch (secret.type) {
    case DOCKER_CONFIG_JSON_TYPE:
      key = DOCKER_CONFIG_JSON_KEY;
      break;
    case DOCKERCFG_TYPE:
      key = DOCKERCFG_KEY;
      break;
    default:
      throw new InvalidPullSecretError(
        secret,
        undefined,
        `type ${JSON.stringify(secret.type)} is not ${DOCKER_CONFIG_JSON_TYPE} or ${DOCKERCFG_TYPE}`,
      );
  }
  const raw = Object.hasOwn(secret.data, key) ? secret.data[key] : undefined;
  if (raw === undefined || raw.trim() === '') throw new InvalidPullSecretError(secret, key, 'missing or empty');
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    // JSON.parse's message quotes the input, so it is deliberately not passed on.
    throw new InvalidPullSecretError(secret, key, 'not valid JSON');
  }
  if (!isRecord(doc)) throw new InvalidPullSecretError(secret, key, 'not a JSON object');
  let registries: unknown = doc;
  if (key === DOCKER_CONFIG_JSON_KEY) {
    registries = doc.auths ?? {};
    if (!isRecord(registries)) throw new InvalidPullSecretError(secret, key, '"auths" is not an object');
  }
  const out: RegistryCredential[] = [];
  for (const [registry, entry] of Object.entries(registries as Record<string, unknown>)) {
    const cred = decodeEntry(secret, key, registry, entry);
    if (cred !== undefined) out.push(cred);
  }
  return out;
}

/** Outcome of decoding several secrets: usable credentials plus one error per unusable secret. */
export interface DecodedPullSecrets {
  readonly credentials: RegistryCredential[];
  readonly errors: InvalidPullSecretError[];
}

/** Decodes secrets in the order given (the order of imagePullSecrets), keeping the good ones. */
export function decodePullSecrets(secrets: readonly PullSecret[]): DecodedPullSecrets {
  const credentials: RegistryCredential[] = [];
  const errors: InvalidPullSecretError[] = [];
  for (const s of secrets) {
    try {
      credentials.push(...decodePullSecret(s));
    } catch (err) {
      if (!(err instanceof InvalidPullSecretError)) throw err;
      errors.push(err);
    }
  }
  return { credentials, errors };
}

// Matching, after the kubelet's BasicDockerKeyring.

/**
 * Go's path.Match for one host label. Only `*` can occur: `?` would start a URL query and
 * brackets are only valid around IPv6 literals, so both are taken literally.
 */
function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map(escapeRegExp).join('.*')}$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function splitUrl(schemeless: string): { labels: string[]; port: string; path: string } | undefined {
  const parsed = splitSchemeless(schemeless);
  if (parsed === undefined) return undefined;
  const { host, port } = splitHostPort(parsed.host);
  return { labels: host.split('.'), port, path: parsed.path };
}

/**
 * Whether a credential key (may hold `*` globs per host label) applies to an image repository:
 * same port, same number of host labels each matching its glob, and the key's path a prefix of the image's.
 */
export function registryKeyMatches(key: string, repository: string): boolean {
  const g = splitUrl(key);
  const t = splitUrl(repository);
  if (g === undefined || t === undefined) return false;
  if (g.port !== t.port || g.labels.length !== t.labels.length) return false;
  if (!t.path.startsWith(g.path)) return false;
  return g.labels.every((label, i) => globToRegExp(label).test(t.labels[i] ?? ''));
}

const DEFAULT_REGISTRY_KEY = 'index.docker.io';

/** The kubelet's test for "this repository is on Docker Hub". */
function isDefaultRegistryMatch(repository: string): boolean {
  const slash = repository.indexOf('/');
  const first = slash === -1 ? repository : repository.slice(0, slash);
  if (first === '') return false;
  if (slash === -1) return true;
  if (first === 'docker.io' || first === 'index.docker.io') return true;
  return !/[.:]/.test(first);
}

/**
 * All credentials that apply to an image, in the order to try them: most specific key first
 * (keys in reverse lexical order, so `quay.io/org` precedes `quay.io` and exact hosts precede
 * `*.` globs), and within one key in the order the secrets were given. When nothing matches a
 * Docker Hub image, credentials for `index.docker.io` (e.g. `https://index.docker.io/v1/`) apply.
 * Credentials with identical secret material are tried once.
 */
export function matchCredentials(credentials: readonly RegistryCredential[], image: ImageRef): RegistryCredential[] {
  const repository = repositoryName(image);
  const byKey = new Map<string, RegistryCredential[]>();
  for (const c of credentials) {
    const list = byKey.get(c.matchKey);
    if (list === undefined) byKey.set(c.matchKey, [c]);
    else list.push(c);
  }
  const keys = [...byKey.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  let found: RegistryCredential[] = [];
  for (const k of keys) {
    if (registryKeyMatches(k, repository)) found.push(...(byKey.get(k) ?? []));
  }
  if (found.length === 0 && isDefaultRegistryMatch(repository)) found = byKey.get(DEFAULT_REGISTRY_KEY) ?? [];
  const unique: RegistryCredential[] = [];
  for (const c of found) {
    if (!unique.some((u) => u.sameSecretAs(c))) unique.push(c);
  }
  return unique;
}
