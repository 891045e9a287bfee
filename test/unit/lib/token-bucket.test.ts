import { expect } from 'chai';
import { TokenBucket } from '../../../lib/token-bucket.ts';

describe('lib/token-bucket', () => {
  it('allows a burst, then one token per 1/qps seconds', () => {
    let t = 0;
    const b = new TokenBucket(10, 3, { now: () => t });
    expect([b.tryTake(), b.tryTake(), b.tryTake()]).to.deep.equal([0, 0, 0]);
    expect(b.tryTake()).to.equal(100);
    t += 50;
    expect(b.tryTake()).to.equal(50);
    t += 50;
    expect(b.tryTake()).to.equal(0);
  });

  it('never stores more than the burst', () => {
    let t = 0;
    const b = new TokenBucket(1, 2, { now: () => t });
    t += 60_000;
    expect([b.tryTake(), b.tryTake()]).to.deep.equal([0, 0]);
    expect(b.tryTake()).to.be.greaterThan(0);
  });

  it('keeps its rate when the wall clock steps back (default clock is monotonic)', async () => {
    const b = new TokenBucket(20, 1);
    expect(b.tryTake()).to.equal(0);
    const realNow = Date.now;
    const stepped = realNow() - 3_600_000;
    Date.now = () => stepped;
    try {
      await new Promise((r) => setTimeout(r, 80));
      // An hour back on the wall clock would mean an hour without tokens for a wall-clock bucket.
      expect(b.tryTake()).to.be.at.most(50);
    } finally {
      Date.now = realNow;
    }
  });

  it('rejects nonsense settings', () => {
    expect(() => new TokenBucket(0, 1)).to.throw(/invalid rate limit/);
    expect(() => new TokenBucket(1, 0)).to.throw(/invalid rate limit/);
  });
});
