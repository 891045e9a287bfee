// Container image references parsed the way containerd's CRI plugin and the kubelet parse them
// (the distribution/reference grammar with Docker Hub normalisation). The parsed form is for
// matching credentials and for reporting; the reference handed to CRI is always the original string.

/** A parsed, normalised image reference. `domain` and `path` are always filled in. */
export interface ImageRef {
  /** Registry host with optional port, e.g. `docker.io`, `registry.example.com:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. `library/nginx`, `team/app`. */
  readonly path: string;
  readonly tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  readonly digest?: string;
}

export type ImageRefErrorReason =
  | 'Empty'
  | 'InvalidFormat'
  | 'Uppercase'
  | 'NameTooLong'
  | 'InvalidDigest'
  | 'HexIdentifier';

export type ImageRefParseResult =
  | { readonly ok: true; readonly ref: ImageRef }
  | { readonly ok: false; readonly reason: ImageRefErrorReason; readonly message: string };

/** Thrown by `mustParseImageRef`; carries the same reason as the failed parse result. */
export class InvalidImageRefError extends Error {
  readonly reason: ImageRefErrorReason;
  constructor(reason: ImageRefErrorReason, message: string) {
    super(message);
    this.name = 'InvalidImageRefError';
    this.reason = reason;
  }
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
const MAX_PATH_LENGTH = 255;
// Not in the grammar: a guard so the regular expressions never see pathological input.
const MAX_INPUT_LENGTH = 4096;

// The distribution/reference grammar, piece by piece.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const ipv6Address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainAndPort = `(?:${domainName}|${ipv6Address})(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}';
const namePattern = `(?:${domainAndPort}/)?${remoteName}`;

const referenceRegexp = new RegExp(`^(${namePattern})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const anchoredIdentifierRegexp = /^[a-f0-9]{64}$/;

// Digest algorithms containerd registers, with their hex lengths.
const digestHexLength: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

function fail(input: string, reason: ImageRefErrorReason, detail: string): ImageRefParseResult {
  return { ok: false, reason, message: `invalid image reference ${JSON.stringify(input)}: ${detail}` };
}

/** Docker Hub defaulting: a first component without `.`/`:` that is not `localhost` is a path. */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  let domain: string;
  let remainder: string;
  if (slash === -1) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    const first = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    const looksLikeHost =
      first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first;
    if (looksLikeHost) {
      domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
      remainder = rest;
    } else {
      domain = DEFAULT_DOMAIN;
      remainder = name;
    }
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

function validateDigest(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  const length = digestHexLength[algorithm];
  if (length === undefined) return `unsupported digest algorithm ${JSON.stringify(algorithm)}`;
  if (encoded.length !== length) return `invalid checksum digest length for ${algorithm}`;
  if (!/^[a-f0-9]+$/.test(encoded)) return 'invalid checksum digest format';
  return undefined;
}

/** Parses a reference as given in a pod spec (`nginx`, `ghcr.io/org/app:v1@sha256:…`). */
export function parseImageRef(input: string): ImageRefParseResult {
  if (input === '') return fail(input, 'Empty', 'repository name must have at least one component');
  if (input.length > MAX_INPUT_LENGTH) return fail(input.slice(0, 64) + '…', 'InvalidFormat', 'reference is too long');
  if (anchoredIdentifierRegexp.test(input)) {
    return fail(input, 'HexIdentifier', 'cannot specify 64-byte hexadecimal strings');
  }
  const { domain, remainder } = splitDockerDomain(input);
  const colon = remainder.indexOf(':');
  const remote = colon === -1 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) return fail(input, 'Uppercase', 'repository name must be lowercase');

  const qualified = `${domain}/${remainder}`;
  const m = referenceRegexp.exec(qualified);
  if (m === null) {
    const lower = qualified.toLowerCase();
    if (lower !== qualified && referenceRegexp.test(lower)) {
      return fail(input, 'Uppercase', 'repository name must be lowercase');
    }
    return fail(input, 'InvalidFormat', 'invalid reference format');
  }
  const name = m[1] ?? '';
  const tag = m[2];
  const digest = m[3];
  // The domain is the one the runtime will contact (the first component, as split above), even
  // where the grammar would not call it a domain (e.g. `a_b.example.com/x`).
  const path = name.slice(domain.length + 1);
  if (path.length > MAX_PATH_LENGTH) {
    return fail(input, 'NameTooLong', `repository name must not be more than ${MAX_PATH_LENGTH} characters`);
  }
  if (digest !== undefined) {
    const problem = validateDigest(digest);
    if (problem !== undefined) return fail(input, 'InvalidDigest', problem);
  }
  return {
    ok: true,
    ref: {
      domain,
      path,
      ...(tag !== undefined ? { tag } : {}),
      ...(digest !== undefined ? { digest } : {}),
    },
  };
}

/** `parseImageRef` for references already validated (e.g. by the CRD's CEL rule); throws otherwise. */
export function mustParseImageRef(input: string): ImageRef {
  const r = parseImageRef(input);
  if (!r.ok) throw new InvalidImageRefError(r.reason, r.message);
  return r.ref;
}

/** Fully-qualified repository name without tag or digest: `docker.io/library/nginx`. */
export function repositoryName(ref: ImageRef): string {
  return `${ref.domain}/${ref.path}`;
}

/** The short form people type: `nginx`, `bitnami/redis`, `ghcr.io/org/app`. */
export function familiarName(ref: ImageRef): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repositoryName(ref);
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    // Only single-component official names are shortened (library/a/b stays as is).
    if (!rest.includes('/')) return rest;
  }
  return ref.path;
}

function withSuffix(name: string, ref: ImageRef): string {
  return name + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** Fully-qualified form keeping tag and digest as given: `docker.io/library/nginx:1.27`. */
export function formatFullyQualified(ref: ImageRef): string {
  return withSuffix(repositoryName(ref), ref);
}

/** Familiar form keeping tag and digest as given: `nginx:1.27`. */
export function formatFamiliar(ref: ImageRef): string {
  return withSuffix(familiarName(ref), ref);
}

/**
 * The reference the runtime records after a pull: `:latest` added when neither tag nor digest is
 * given, the tag dropped when a digest pins the content (what containerd does with `name:tag@digest`).
 */
export function runtimeReference(ref: ImageRef): string {
  const name = repositoryName(ref);
  if (ref.digest !== undefined) return `${name}@${ref.digest}`;
  return `${name}:${ref.tag ?? DEFAULT_TAG}`;
}

/** A reference whose content can change under the same name: no digest and tag `latest` or absent. */
export function isMutable(ref: ImageRef): boolean {
  return ref.digest === undefined && (ref.tag === undefined || ref.tag === DEFAULT_TAG);
}
