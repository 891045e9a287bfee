import { expect } from 'chai';
import { reconnectDelayMs, watchTimeoutSeconds } from '../../../lib/watch-timing.ts';
import type { RandomSource } from '../../../lib/backoff.ts';

/** A small deterministic PRNG (mulberry32). */
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

describe('lib/watch-timing', () => {
  describe('reconnectDelayMs', () => {
    const policy = { initialMs: 500, maxMs: 30_000 };

    it('stays between the initial wait and the cap, and spreads clients that failed together', () => {
      // 1,000 clients that lost the server at the same instant, each with its own random source.
      const firstWaits = new Set<number>();
      for (let client = 0; client < 1000; client++) {
        const random = seeded(client);
        let previous: number | undefined;
        for (let failure = 1; failure <= 12; failure++) {
          const d = reconnectDelayMs(policy, failure, random, previous);
          expect(d).to.be.within(500, 30_000);
          if (failure === 3) firstWaits.add(Math.round(d / 100));
          previous = d;
        }
      }
      // Without jitter every client would wait exactly 2,000 ms before its third try.
      expect(firstWaits.size).to.be.greaterThan(30);
    });

    it('grows towards the cap when failures continue', () => {
      const random = seeded(7);
      let previous: number | undefined;
      const waits: number[] = [];
      for (let failure = 1; failure <= 40; failure++) {
        previous = reconnectDelayMs(policy, failure, random, previous);
        waits.push(previous);
      }
      const lateMean = waits.slice(20).reduce((a, b) => a + b, 0) / 20;
      expect(lateMean).to.be.greaterThan(8_000);
    });

    it('is the initial wait when the random source says 0', () => {
      expect(reconnectDelayMs(policy, 1, () => 0)).to.equal(500);
      expect(reconnectDelayMs(policy, 5, () => 0, 20_000)).to.equal(500);
    });
  });

  describe('watchTimeoutSeconds', () => {
    it('is uniform in [base, 2·base) in whole seconds', () => {
      expect(watchTimeoutSeconds(300, () => 0)).to.equal(300);
      expect(watchTimeoutSeconds(300, () => 0.5)).to.equal(450);
      expect(watchTimeoutSeconds(300, () => 0.999999)).to.equal(599);
      expect(watchTimeoutSeconds(300, () => 1)).to.equal(599);
      expect(watchTimeoutSeconds(300, () => Number.NaN)).to.equal(300);
      const random = seeded(1);
      const seen = new Set<number>();
      for (let i = 0; i < 2000; i++) {
        const t = watchTimeoutSeconds(300, random);
        expect(t).to.be.within(300, 599);
        expect(Number.isInteger(t)).to.equal(true);
        seen.add(t);
      }
      expect(seen.size).to.be.greaterThan(250);
    });

    it('refuses a base below one second', () => {
      expect(() => watchTimeoutSeconds(0, () => 0)).to.throw(RangeError);
    });
  });
});
