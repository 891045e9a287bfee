import { expect } from 'chai';
import { assessDisk, imageFsReport } from '../../../agent/disk-guard.ts';

describe('agent/disk-guard', () => {
  it('pauses at or above the threshold, not below', () => {
    expect(assessDisk({ usedBytes: 79, capacityBytes: 100 }, 80)).to.deep.equal({ usedPercent: 79, pause: false });
    expect(assessDisk({ usedBytes: 80, capacityBytes: 100 }, 80)).to.deep.equal({ usedPercent: 80, pause: true });
    expect(assessDisk({ usedBytes: 100, capacityBytes: 100 }, 80).pause).to.equal(true);
  });

  it('never pauses when off (threshold 0) or when the filesystem could not be measured', () => {
    expect(assessDisk({ usedBytes: 99, capacityBytes: 100 }, 0)).to.deep.equal({ usedPercent: 99, pause: false });
    expect(assessDisk({ usedBytes: 99, capacityBytes: undefined }, 50)).to.deep.equal({ usedPercent: undefined, pause: false });
    expect(assessDisk({ usedBytes: undefined, capacityBytes: 100 }, 50).pause).to.equal(false);
    expect(assessDisk({ usedBytes: 1, capacityBytes: 0 }, 50).pause).to.equal(false);
  });

  it('reports pullsPaused only when the guard is on', () => {
    const fs = { usedBytes: 90, capacityBytes: 100 };
    expect(imageFsReport(fs, assessDisk(fs, 80), true)).to.deep.equal({ usedBytes: 90, capacityBytes: 100, usedPercent: 90, pullsPaused: true });
    expect(imageFsReport(fs, assessDisk(fs, 0), false)).to.deep.equal({ usedBytes: 90, capacityBytes: 100, usedPercent: 90 });
    expect(imageFsReport({ usedBytes: 7, capacityBytes: undefined }, assessDisk({ usedBytes: 7, capacityBytes: undefined }, 0), false)).to.deep.equal({ usedBytes: 7 });
  });
});
