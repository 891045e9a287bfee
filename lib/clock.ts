// Elapsed-time arithmetic (rate limits, lease terms) reads a monotonic clock: the wall clock can jump when NTP
// steps it, which would stretch or cut a lease term or refill a rate limit at once.

export interface Clock {
  /** Milliseconds since an arbitrary origin; never goes backwards. */
  now(): number;
}

export const monotonicClock: Clock = { now: () => performance.now() };
