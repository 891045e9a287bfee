import { expect } from 'chai';
import { backoffDelaySeconds, decideRetry, shouldRetry, type BackoffPolicy, type RandomSource } from '../../../lib/backoff.ts';

/** Returns the given values in turn, then repeats the last. */
function scripted(...values: number[]): RandomSource {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}

/** A small deterministic PRNG (mulberry32) for property-style checks. */
function seeded(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('lib/backoff', () => {
  describe('backoffDelaySeconds', () => {
    it('without jitter doubles from the base up to the cap', () => {
      const p: BackoffPolicy = { baseSeconds: 30, capSeconds: 300, jitter: 'none' };
      const delays = [1, 2, 3, 4, 5, 6].map((n) => backoffDelaySeconds(p, n, scripted(0.5)));
      expect(delays).to.deep.equal([30, 60, 120, 240, 300, 300]);
    });

    it('with full jitter scales the exponential ceiling by the random draw', () => {
      const p: BackoffPolicy = { baseSeconds: 30, capSeconds: 300, jitter: 'full' };
      expect(backoffDelaySeconds(p, 1, scripted(0.5))).to.equal(15);
      expect(backoffDelaySeconds(p, 3, scripted(0.25))).to.equal(30);
      expect(backoffDelaySeconds(p, 10, scripted(0.5))).to.equal(150);
      expect(backoffDelaySeconds(p, 1, scripted(0))).to.equal(0);
    });

    it('with decorrelated jitter stays within [base, min(cap, 3·previous)]', () => {
      const p: BackoffPolicy = { baseSeconds: 30, capSeconds: 300, jitter: 'decorrelated' };
      expect(backoffDelaySeconds(p, 1, scripted(0))).to.equal(30);
      expect(backoffDelaySeconds(p, 1, scripted(0.5))).to.equal(60); // 30 + 0.5·(90−30)
      expect(backoffDelaySeconds(p, 2, scripted(1 - 1e-12), 60)).to.be.closeTo(180, 1e-6);
      expect(backoffDelaySeconds(p, 5, scripted(0.99), 250)).to.be.at.most(300);
    });

    it('is deterministic for a given random source', () => {
      for (const jitter of ['full', 'decorrelated'] as const) {
        const p: BackoffPolicy = { baseSeconds: 5, capSeconds: 600, jitter };
        const run = (): number[] => {
          const r = seeded(42);
          let prev: number | undefined;
          const out: number[] = [];
          for (let n = 1; n <= 8; n++) {
            prev = backoffDelaySeconds(p, n, r, prev);
            out.push(prev);
          }
          return out;
        };
        expect(run()).to.deep.equal(run());
      }
    });

    it('never goes below 0 or above the cap, and decorrelated never below the base (1000 seeded runs)', () => {
      for (let seed = 1; seed <= 1000; seed++) {
        const r = seeded(seed);
        const base = 1 + (seed % 60);
        const cap = base * (1 + (seed % 20));
        for (const jitter of ['full', 'decorrelated'] as const) {
          let prev: number | undefined;
          for (let n = 1; n <= 12; n++) {
            const d = backoffDelaySeconds({ baseSeconds: base, capSeconds: cap, jitter }, n, r, prev);
            expect(d).to.be.at.least(jitter === 'decorrelated' ? base : 0);
            expect(d).to.be.at.most(cap);
            expect(d).to.be.at.most(jitter === 'full' ? Math.min(cap, base * 2 ** (n - 1)) : cap);
            prev = d;
          }
        }
      }
    });

    it('grows on average with decorrelated jitter', () => {
      const r = seeded(7);
      const p: BackoffPolicy = { baseSeconds: 10, capSeconds: 1e9, jitter: 'decorrelated' };
      let sumFirst = 0;
      let sumFifth = 0;
      for (let i = 0; i < 2000; i++) {
        let prev: number | undefined;
        for (let n = 1; n <= 5; n++) {
          prev = backoffDelaySeconds(p, n, r, prev);
          if (n === 1) sumFirst += prev;
          if (n === 5) sumFifth += prev;
        }
      }
      expect(sumFifth / sumFirst).to.be.above(4);
    });

    it('clamps a base above the cap and tolerates a misbehaving random source', () => {
      expect(backoffDelaySeconds({ baseSeconds: 600, capSeconds: 60, jitter: 'none' }, 1, scripted(0))).to.equal(60);
      expect(backoffDelaySeconds({ baseSeconds: 10, capSeconds: 60, jitter: 'full' }, 1, () => 7)).to.be.below(10);
      expect(backoffDelaySeconds({ baseSeconds: 10, capSeconds: 60, jitter: 'full' }, 1, () => Number.NaN)).to.equal(0);
      expect(backoffDelaySeconds({ baseSeconds: 10, capSeconds: 60, jitter: 'none' }, 2000, scripted(0))).to.equal(60);
    });

    it('rejects nonsense input', () => {
      const p: BackoffPolicy = { baseSeconds: 1, capSeconds: 10, jitter: 'none' };
      expect(() => backoffDelaySeconds(p, 0, scripted(0))).to.throw(RangeError);
      expect(() => backoffDelaySeconds(p, 1.5, scripted(0))).to.throw(RangeError);
      expect(() => backoffDelaySeconds({ ...p, baseSeconds: -1 }, 1, scripted(0))).to.throw(RangeError);
      expect(() => backoffDelaySeconds({ ...p, capSeconds: Number.POSITIVE_INFINITY }, 1, scripted(0))).to.throw(RangeError);
    });
  });

  describe('shouldRetry', () => {
    const table: [attempts: number, maxAttempts: number, permanent: boolean, expected: boolean][] = [
      [1, 3, false, true],
      [2, 3, false, true],
      [3, 3, false, false],
      [4, 3, false, false],
      [1, 3, true, false],
      [1, 1, false, false],
      [1, 0, false, false],
    ];
    for (const [attempts, maxAttempts, permanent, expected] of table) {
      it(`attempts=${attempts} maxAttempts=${maxAttempts} permanent=${permanent} → ${expected}`, () => {
        expect(shouldRetry({ attempts, maxAttempts, permanent })).to.equal(expected);
      });
    }
  });

  describe('decideRetry', () => {
    const policy: BackoffPolicy = { baseSeconds: 30, capSeconds: 300, jitter: 'none' };
    it('gives up at once on a permanent failure', () => {
      expect(decideRetry({ attempts: 1, maxAttempts: 3, permanent: true, policy, random: scripted(0) })).to.deep.equal({ kind: 'give-up', why: 'permanent' });
    });
    it('gives up when the attempts are used', () => {
      expect(decideRetry({ attempts: 3, maxAttempts: 3, permanent: false, policy, random: scripted(0) })).to.deep.equal({ kind: 'give-up', why: 'attempts-exhausted' });
    });
    it('retries after the back-off for the attempt number', () => {
      expect(decideRetry({ attempts: 1, maxAttempts: 3, permanent: false, policy, random: scripted(0) })).to.deep.equal({ kind: 'retry', delaySeconds: 30 });
      expect(decideRetry({ attempts: 2, maxAttempts: 3, permanent: false, policy, random: scripted(0) })).to.deep.equal({ kind: 'retry', delaySeconds: 60 });
    });
    it('passes the previous delay to decorrelated jitter', () => {
      const d = decideRetry({ attempts: 2, maxAttempts: 5, permanent: false, policy: { ...policy, jitter: 'decorrelated' }, random: scripted(1 - 1e-12), previousDelaySeconds: 50 });
      expect(d.kind).to.equal('retry');
      if (d.kind === 'retry') expect(d.delaySeconds).to.be.closeTo(150, 1e-6);
    });
  });
});
