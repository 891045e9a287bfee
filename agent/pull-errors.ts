// Classification of failed pulls into a small, bounded set of reasons that appear unchanged in
// NodeImageSet status, Events, logs and metric labels. containerd's CRI plugin reports most registry
// failures as gRPC UNKNOWN, so the message is read too; the shapes below are containerd 1.6's
// (pkg/cri/server/image_pull.go, remotes/docker) and grpc-js's for the client side.

/** gRPC status codes used here (grpc-js `status` values; no enum so the module stays type-strippable). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export const PULL_FAILURE_REASONS = [
  'NotFound',
  'Unauthorized',
  'InvalidReference',
  'NoMatchingPlatform',
  'DigestMismatch',
  'RateLimited',
  'Timeout',
  'RuntimeUnavailable',
  'RegistryUnavailable',
  'NoSpace',
  'Cancelled',
  'Unknown',
] as const;

export type PullFailureReason = (typeof PULL_FAILURE_REASONS)[number];

export interface PullFailure {
  readonly reason: PullFailureReason;
  /** Permanent failures are not retried: another attempt would fail the same way. */
  readonly permanent: boolean;
  /** The runtime's message (or ours), for status and logs. Never contains credentials. */
  readonly message: string;
}

/**
 * Whether a reason is permanent. Cancelled is transient: when the agent itself cancelled, its own
 * AbortSignal says so and it stops; a cancellation it did not ask for is worth another attempt.
 */
export function isPermanent(reason: PullFailureReason): boolean {
  switch (reason) {
    case 'NotFound':
    case 'Unauthorized':
    case 'InvalidReference':
    case 'NoMatchingPlatform':
    case 'DigestMismatch':
      return true;
    case 'RateLimited':
    case 'Timeout':
    case 'RuntimeUnavailable':
    case 'RegistryUnavailable':
    case 'NoSpace':
    case 'Cancelled':
    case 'Unknown':
      return false;
    default: {
      const unreachable: never = reason;
      return unreachable;
    }
  }
}

/** A failure the agent detects itself (e.g. a pinned digest that the runtime does not report). */
export function pullFailure(reason: PullFailureReason, message: string): PullFailure {
  return { reason, permanent: isPermanent(reason), message };
}

/** The part of a grpc-js ServiceError the classifier reads. */
export interface GrpcFailure {
  readonly code: number;
  readonly details: string;
}

function isGrpcFailure(err: unknown): err is GrpcFailure {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; details?: unknown };
  return typeof e.code === 'number' && typeof e.details === 'string';
}

// Registry answered with an HTTP status: "...: 401 Unauthorized", "unexpected status: 503 Service Unavailable".
const httpStatusPattern = /\b([45]\d\d) [A-Z][A-Za-z'-]*(?: [A-Za-z'-]+)*/g;

function reasonForHttpStatus(status: number): PullFailureReason | undefined {
  if (status === 401 || status === 403) return 'Unauthorized';
  if (status === 404) return 'NotFound';
  if (status === 429) return 'RateLimited';
  if (status === 408 || status >= 500) return 'RegistryUnavailable';
  return undefined;
}

interface Rule {
  readonly reason: PullFailureReason;
  readonly pattern: RegExp;
}

// Order matters: the first match wins. Transport trouble is checked before authentication
// because the token fetch ("failed to authorize: failed to fetch anonymous token: ...") can
// fail for network reasons too.
const beforeHttpStatus: readonly Rule[] = [
  { reason: 'RuntimeUnavailable', pattern: /server is not initialized yet/i },
  {
    reason: 'InvalidReference',
    pattern:
      /failed to parse image reference|invalid reference format|repository name must (?:be lowercase|have at least one|not be more than)|invalid checksum digest|unsupported digest algorithm|cannot specify 64-byte hexadecimal/i,
  },
  { reason: 'NoSpace', pattern: /no space left on device|disk quota exceeded/i },
  { reason: 'NoMatchingPlatform', pattern: /no match for platform|no image found in (?:manifest list|image index) for architecture/i },
  {
    reason: 'DigestMismatch',
    pattern: /unexpected commit digest|unexpected commit size|digest did not match|digest mismatch|does not match digest|manifest digest .* does not match/i,
  },
  {
    reason: 'RegistryUnavailable',
    pattern:
      /connection refused|no such host|i\/o timeout|tls handshake timeout|client\.timeout exceeded|connection reset by peer|network is unreachable|no route to host|server misbehaving|unexpected eof|broken pipe|http: server gave http response to https client|x509: |tls: /i,
  },
];

const afterHttpStatus: readonly Rule[] = [
  {
    reason: 'Unauthorized',
    pattern:
      /pull access denied|authorization failed|insufficient_scope|failed to authorize|unauthorized: |denied: |authentication required|no basic auth credentials|failed to handle basic auth/i,
  },
  { reason: 'RateLimited', pattern: /toomanyrequests|rate limit/i },
  { reason: 'Timeout', pattern: /context deadline exceeded|deadline exceeded/i },
  { reason: 'Cancelled', pattern: /context canceled/i },
  { reason: 'NotFound', pattern: /: not found\b|manifest unknown|name unknown|blob unknown|not found$/i },
];

function firstRule(rules: readonly Rule[], message: string): PullFailureReason | undefined {
  return rules.find((r) => r.pattern.test(message))?.reason;
}

function classifyByCode(code: number): PullFailureReason | undefined {
  switch (code) {
    case GrpcCode.CANCELLED:
      return 'Cancelled';
    case GrpcCode.DEADLINE_EXCEEDED:
      return 'Timeout';
    // grpc-js reports a missing or dropped socket as UNAVAILABLE ("No connection established",
    // "Connection dropped"); UNIMPLEMENTED means the socket does not serve the CRI image service.
    case GrpcCode.UNAVAILABLE:
    case GrpcCode.UNIMPLEMENTED:
      return 'RuntimeUnavailable';
    case GrpcCode.UNAUTHENTICATED:
    case GrpcCode.PERMISSION_DENIED:
      return 'Unauthorized';
    default:
      return undefined;
  }
}

/** Classifies a CRI PullImage failure from its gRPC status code and message. */
export function classifyGrpcFailure(failure: GrpcFailure): PullFailure {
  const message = failure.details;
  const reason =
    classifyByCode(failure.code) ??
    firstRule(beforeHttpStatus, message) ??
    httpStatusReason(message) ??
    firstRule(afterHttpStatus, message) ??
    (failure.code === GrpcCode.INVALID_ARGUMENT ? 'InvalidReference' : undefined) ??
    (failure.code === GrpcCode.NOT_FOUND ? 'NotFound' : undefined) ??
    (failure.code === GrpcCode.FAILED_PRECONDITION && /failed commit on ref/i.test(message)
      ? 'DigestMismatch'
      : undefined) ??
    'Unknown';
  return pullFailure(reason, message);
}

function httpStatusReason(message: string): PullFailureReason | undefined {
  // The last status in the chain is the innermost, i.e. the one the registry actually sent.
  let reason: PullFailureReason | undefined;
  for (const m of message.matchAll(httpStatusPattern)) {
    reason = reasonForHttpStatus(Number(m[1])) ?? reason;
  }
  return reason;
}

/**
 * Classifies anything a pull attempt can throw: a grpc-js ServiceError, the AbortSignal's reason
 * (`TimeoutError` from AbortSignal.timeout is Timeout, any other abort is Cancelled), or an Error.
 */
export function classifyPullError(err: unknown): PullFailure {
  if (isGrpcFailure(err)) return classifyGrpcFailure(err);
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return pullFailure('Timeout', err.message);
    if (err.name === 'AbortError') return pullFailure('Cancelled', err.message);
    return pullFailure('Unknown', err.message);
  }
  return pullFailure('Unknown', typeof err === 'string' ? err : 'pull failed with a non-error value');
}

/**
 * Classifies a failed attempt that ran under `signal`. When the signal fired, its reason decides
 * (grpc-js reports a call cancelled by the signal as CANCELLED even when it was a timeout).
 */
export function classifyAttemptFailure(err: unknown, signal: AbortSignal): PullFailure {
  if (!signal.aborted) return classifyPullError(err);
  const fromSignal = classifyPullError(signal.reason);
  const detail = isGrpcFailure(err) ? err.details : err instanceof Error ? err.message : fromSignal.message;
  return fromSignal.reason === 'Timeout'
    ? pullFailure('Timeout', `pull timed out: ${detail}`)
    : pullFailure('Cancelled', `pull cancelled: ${detail}`);
}
