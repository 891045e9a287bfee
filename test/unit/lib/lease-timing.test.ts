import { expect } from 'chai';
import { leaseExpired, leaseTimingProblem, renewAttemptBudgetMs, stepDownAt, type LeaseTiming } from '../../../lib/lease-timing.ts';

describe('lib/lease-timing', () => {
  const t: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

  it('gives each renewal two retry periods, never past the step-down instant', () => {
    expect(renewAttemptBudgetMs(t, 1_000, 0)).to.equal(4_000);
    expect(renewAttemptBudgetMs(t, 7_500, 0)).to.equal(2_500);
    expect(renewAttemptBudgetMs(t, 9_900, 0)).to.equal(100);
    expect(renewAttemptBudgetMs(t, 10_000, 0)).to.equal(0);
    expect(renewAttemptBudgetMs(t, 12_000, 0)).to.equal(0);
  });

  it('ends a term at the renew deadline counted from when the last renewal was sent', () => {
    expect(stepDownAt(t, 42_000)).to.equal(52_000);
  });

  it('keeps the old leader stepped down before a standby can take over, whatever the network delays', () => {
    // The renewal is sent at s, committed at c >= s, and seen by the standby at o >= c.
    for (const [sent, commitDelay, seenDelay] of [[0, 0, 0], [0, 3_900, 0], [100, 0, 3_000], [5, 4_000, 4_000]] as const) {
      const observedAt = sent + commitDelay + seenDelay;
      const stepDown = stepDownAt(t, sent);
      // The first instant the standby may take the lease.
      let takeover = observedAt;
      while (!leaseExpired(t.leaseDurationMs, observedAt, takeover)) takeover += 1;
      expect(stepDown, `sent ${sent}, commit +${commitDelay}, seen +${seenDelay}`).to.be.lessThan(takeover);
      expect(takeover - stepDown).to.be.at.least(t.leaseDurationMs - t.renewDeadlineMs);
    }
  });

  it('expires a lease a full duration after this replica saw it change', () => {
    expect(leaseExpired(15_000, 1_000, 15_999)).to.equal(false);
    expect(leaseExpired(15_000, 1_000, 16_000)).to.equal(true);
  });

  it('refuses timings that cannot keep one leader', () => {
    expect(leaseTimingProblem(t)).to.equal(undefined);
    expect(leaseTimingProblem({ ...t, renewDeadlineMs: 15_000 })).to.match(/shorter than the lease duration/);
    expect(leaseTimingProblem({ ...t, retryPeriodMs: 10_000 })).to.match(/longer than the retry period/);
    expect(leaseTimingProblem({ ...t, retryPeriodMs: 0 })).to.match(/positive/);
  });
});
