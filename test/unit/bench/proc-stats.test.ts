import { expect } from 'chai';
import { busyPercent, cpuPercent, type ProcessFigures } from '../../../bench/proc-stats.ts';

function at(cpuSeconds: number): ProcessFigures {
  return { rssMiB: 50, peakRssMiB: 60, cpuSeconds };
}

describe('bench/proc-stats', () => {
  describe('cpuPercent', () => {
    it('gives CPU time between readings as a share of one core over the wall time', () => {
      expect(cpuPercent(at(1), at(1.5), 2)).to.equal(25);
      // Two busy cores for one second: 200 % of one core.
      expect(cpuPercent(at(10), at(12), 1)).to.equal(200);
      expect(cpuPercent(at(3), at(3), 5)).to.equal(0);
    });

    it('gives 0 rather than dividing by a wall time that is not positive', () => {
      expect(cpuPercent(at(1), at(2), 0)).to.equal(0);
      expect(cpuPercent(at(1), at(2), -1)).to.equal(0);
    });
  });

  describe('busyPercent', () => {
    it('gives busy ticks as a share of all ticks between readings', () => {
      expect(busyPercent({ busy: 100, total: 1000 }, { busy: 400, total: 2000 })).to.equal(30);
      expect(busyPercent({ busy: 0, total: 0 }, { busy: 50, total: 50 })).to.equal(100);
    });

    it('gives 0 when no ticks passed (or the readings are swapped)', () => {
      expect(busyPercent({ busy: 5, total: 10 }, { busy: 5, total: 10 })).to.equal(0);
      expect(busyPercent({ busy: 9, total: 20 }, { busy: 5, total: 10 })).to.equal(0);
    });
  });
});
