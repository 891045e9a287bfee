import { expect } from 'chai';
import { median, pairedDifferences, percentile, summarize } from '../../../bench/stats.ts';

describe('bench/stats', () => {
  describe('median', () => {
    it('takes the middle sample of an odd count, whatever the input order', () => {
      expect(median([9, 1, 5])).to.equal(5);
      expect(median([7])).to.equal(7);
    });

    it('averages the two middle samples of an even count', () => {
      expect(median([4, 1, 3, 2])).to.equal(2.5);
      expect(median([10, 20])).to.equal(15);
    });

    it('sorts numerically, not as strings', () => {
      // As strings, 100 < 20 < 3.
      expect(median([100, 3, 20])).to.equal(20);
    });

    it('leaves its input untouched', () => {
      const xs = [3, 1, 2];
      median(xs);
      expect(xs).to.deep.equal([3, 1, 2]);
    });

    it('refuses an empty series', () => {
      expect(() => median([])).to.throw(/no samples/);
    });
  });

  describe('percentile (nearest rank)', () => {
    const oneToTen = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];

    it('returns the smallest sample with at least p % of samples at or below it', () => {
      expect(percentile(oneToTen, 50)).to.equal(5);
      expect(percentile(oneToTen, 90)).to.equal(9);
      // 91 % of 10 samples is 9.1: the 10th sample is the first with at least that many at or below it.
      expect(percentile(oneToTen, 91)).to.equal(10);
      expect(percentile(oneToTen, 25)).to.equal(3);
    });

    it('gives the minimum at p = 0 and the maximum at p = 100', () => {
      expect(percentile(oneToTen, 0)).to.equal(1);
      expect(percentile(oneToTen, 100)).to.equal(10);
    });

    it('never interpolates between samples', () => {
      expect(percentile([0, 100], 50)).to.equal(0);
      expect(percentile([0, 100], 51)).to.equal(100);
    });

    it('gives the maximum for p99 with fewer than 100 samples, the 99th sample with 100', () => {
      const n99 = Array.from({ length: 99 }, (_v, i) => i + 1);
      const n100 = Array.from({ length: 100 }, (_v, i) => i + 1);
      expect(percentile(n99, 99)).to.equal(99);
      expect(percentile(n100, 99)).to.equal(99);
      expect(percentile([...n100, 1000], 99)).to.equal(100);
    });

    it('is exact when p % of n is a whole rank', () => {
      // 7 % of 100 samples is rank 7 exactly; 0.07 * 100 in floating point is 7.000000000000001.
      const n100 = Array.from({ length: 100 }, (_v, i) => i + 1);
      expect(percentile(n100, 7)).to.equal(7);
      expect(percentile(n100, 14)).to.equal(14);
      expect(percentile(n100, 28)).to.equal(28);
    });

    it('refuses an empty series', () => {
      expect(() => percentile([], 50)).to.throw(/no samples/);
    });
  });

  describe('summarize', () => {
    it('gives count, extremes, median, nearest-rank p90/p99 and mean', () => {
      // 1..20 shuffled: median (10 + 11) / 2, p90 rank 18, p99 rank 20 (the maximum), mean 210 / 20.
      const xs = [20, 3, 17, 1, 8, 12, 5, 19, 14, 2, 10, 16, 7, 11, 4, 18, 9, 13, 6, 15];
      expect(summarize(xs)).to.deep.equal({ n: 20, median: 10.5, min: 1, max: 20, p90: 18, p99: 20, mean: 10.5 });
    });

    it('summarizes a single sample as itself', () => {
      expect(summarize([42])).to.deep.equal({ n: 1, median: 42, min: 42, max: 42, p90: 42, p99: 42, mean: 42 });
    });

    it('keeps mean and median apart on skewed samples', () => {
      const s = summarize([1, 1, 1, 97]);
      expect(s.median).to.equal(1);
      expect(s.mean).to.equal(25);
    });

    it('refuses an empty series', () => {
      expect(() => summarize([])).to.throw(/no samples/);
    });
  });

  describe('pairedDifferences', () => {
    it('subtracts element by element, keeping the order', () => {
      expect(pairedDifferences([10, 5, 7], [4, 6, 7])).to.deep.equal([6, -1, 0]);
    });

    it('pairs two empty series into none', () => {
      expect(pairedDifferences([], [])).to.deep.equal([]);
    });

    it('refuses series of different lengths, naming both', () => {
      expect(() => pairedDifferences([1, 2, 3], [1, 2])).to.throw(/3 vs 2/);
      expect(() => pairedDifferences([], [1])).to.throw(/0 vs 1/);
    });
  });
});
