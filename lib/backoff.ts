// Retry timing: exponential back-off with jitter, capped. Pure: randomness comes in as a function.

/** Returns a number in [0, 1), like Math.random. Tests pass a seeded or scripted source. */
export type RandomSource = () => number;

/**
 * - `full`: uniform in [0, min(cap, base·2^(n-1))] (spreads retries widest; may retry early).
 * - `decorrelated`: uniform in [base, min(cap, 3·previous)] (never below base; grows ~exponentially).
 * - `none`: exactly min(cap, base·2^(n-1)).
 */
export type JitterMode = 'full' | 'decorrelated' | 'none';

export interface BackoffPolicy {
  /** The first delay's scale, the entry's retry.backoffSeconds. */
  readonly baseSeconds: number;
  readonly capSeconds: number;
  readonly jitter: JitterMode;
}

function checkNonNegative(name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${v}`);
}

function draw(random: RandomSource): number {
  const r = random();
  // Keep a misbehaving source inside [0, 1) rather than producing negative or huge delays.
  if (!Number.isFinite(r) || r < 0) return 0;
  return r >= 1 ? 1 - Number.EPSILON : r;
}

/**
 * The delay before retry number `retry` (1 = the wait after the first failed attempt).
 * `previousSeconds` is the delay returned for the retry before (decorrelated jitter uses it).
 */
export function backoffDelaySeconds(
  policy: BackoffPolicy,
  retry: number,
  random: RandomSource,
  previousSeconds?: number,
): number {
  checkNonNegative('baseSeconds', policy.baseSeconds);
  checkNonNegative('capSeconds', policy.capSeconds);
  if (!Number.isInteger(retry) || retry < 1) throw new RangeError(`retry must be an integer >= 1, got ${retry}`);
  const cap = policy.capSeconds;
  const base = Math.min(policy.baseSeconds, cap);
  const exponential = Math.min(cap, base * 2 ** (retry - 1));
  switch (policy.jitter) {
    case 'none':
      return exponential;
    case 'full':
      return draw(random) * exponential;
    case 'decorrelated': {
      const previous = previousSeconds !== undefined && Number.isFinite(previousSeconds) ? Math.max(previousSeconds, base) : base;
      const upper = Math.min(cap, previous * 3);
      return Math.min(cap, base + draw(random) * (upper - base));
    }
    default: {
      const unreachable: never = policy.jitter;
      return unreachable;
    }
  }
}

export type RetryDecision =
  | { readonly kind: 'retry'; readonly delaySeconds: number }
  | { readonly kind: 'give-up'; readonly why: 'permanent' | 'attempts-exhausted' };

/**
 * Whether another attempt should follow. `attempts` counts attempts already made (≥ 1);
 * `maxAttempts` counts all attempts including the first (below 1 it is treated as 1).
 */
export function shouldRetry(input: { attempts: number; maxAttempts: number; permanent: boolean }): boolean {
  return !input.permanent && input.attempts < Math.max(1, input.maxAttempts);
}

/** shouldRetry plus the delay to wait, in one decision. */
export function decideRetry(input: {
  attempts: number;
  maxAttempts: number;
  permanent: boolean;
  policy: BackoffPolicy;
  random: RandomSource;
  previousDelaySeconds?: number;
}): RetryDecision {
  if (input.permanent) return { kind: 'give-up', why: 'permanent' };
  if (!shouldRetry(input)) return { kind: 'give-up', why: 'attempts-exhausted' };
  return {
    kind: 'retry',
    delaySeconds: backoffDelaySeconds(input.policy, input.attempts, input.random, input.previousDelaySeconds),
  };
}
