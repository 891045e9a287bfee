// The timing rules of leader election, as plain arithmetic on monotonic milliseconds (performance.now(), which
// an NTP step cannot move). The safety argument:
//   - a standby counts the lease's duration from when it *received* a lease it had not seen before, which is
//     after the renewal was committed;
//   - the leader counts its renew deadline from when it *sent* its last successful renewal, which is before
//     the commit;
//   - the renew deadline is shorter than the lease duration, and every attempt ends by the deadline;
// so the leader has stopped acting before any standby can consider the lease expired, whatever the network
// delays (up to the clock rate difference between the two machines over one lease duration).

export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** Why a timing is unusable, or undefined when it is fine. */
export function leaseTimingProblem(t: LeaseTiming): string | undefined {
  if (!(t.retryPeriodMs > 0)) return 'the retry period must be positive';
  if (!(t.renewDeadlineMs > t.retryPeriodMs)) return 'the renew deadline must be longer than the retry period';
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) return 'the renew deadline must be shorter than the lease duration';
  return undefined;
}

/** The instant a leader whose last successful renewal was sent at `renewSentAt` must have stopped acting. */
export function stepDownAt(t: LeaseTiming, renewSentAt: number): number {
  return renewSentAt + t.renewDeadlineMs;
}

/**
 * How long the next renewal attempt may take: two retry periods, and never past the step-down instant.
 * 0 means the deadline has passed and the leader must step down without trying.
 */
export function renewAttemptBudgetMs(t: LeaseTiming, now: number, renewSentAt: number): number {
  return Math.max(0, Math.min(2 * t.retryPeriodMs, stepDownAt(t, renewSentAt) - now));
}

/** Whether another holder's lease, which this replica first saw in its current state at `observedAt`, has run out. */
export function leaseExpired(leaseDurationMs: number, observedAt: number, now: number): boolean {
  return now >= observedAt + leaseDurationMs;
}
