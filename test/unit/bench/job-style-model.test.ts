import { expect } from 'chai';
import { JOB_STYLE_STEPS, jobStyleCost } from '../../../bench/job-style-model.ts';

// Hand count of JOB_STYLE_STEPS (BENCHMARKS.md prints these totals; if the table changes, recount here):
// writes:  create Job 1, create Pod 1, Event SuccessfulCreate 1, Job status 1, binding 1, Event Scheduled 1,
//          Pod status 2, kubelet Events 4, Job status 1, finalizer patch 1, Job status 1, Event Completed 1,
//          delete Job 1, delete Pod 1                                            = 18
// objects: Job 1, Pod 1, SuccessfulCreate 1, Scheduled 1, kubelet Events 4, Completed 1 = 9
const WRITES_PER_PAIR = 18;
const OBJECTS_PER_PAIR = 9;

describe('bench/job-style-model', () => {
  it('costs one (node, image) pair as the hand count of the steps', () => {
    expect(jobStyleCost(1, 1)).to.deep.equal({
      pairs: 1, writes: WRITES_PER_PAIR, objects: OBJECTS_PER_PAIR, writesPerPair: WRITES_PER_PAIR, objectsPerPair: OBJECTS_PER_PAIR,
    });
  });

  it('multiplies by nodes × images per node', () => {
    // 3 nodes × 4 images = 12 pairs: 12 × 18 = 216 writes, 12 × 9 = 108 objects.
    expect(jobStyleCost(3, 4)).to.deep.equal({ pairs: 12, writes: 216, objects: 108, writesPerPair: 18, objectsPerPair: 9 });
    // 20 nodes, one changed image: 360 writes, 180 objects.
    const c = jobStyleCost(20, 1);
    expect([c.pairs, c.writes, c.objects]).to.deep.equal([20, 360, 180]);
  });

  it('costs nothing without nodes or images, but keeps the per-pair figures', () => {
    expect(jobStyleCost(0, 5)).to.deep.equal({ pairs: 0, writes: 0, objects: 0, writesPerPair: 18, objectsPerPair: 9 });
    expect(jobStyleCost(5, 0).writes).to.equal(0);
  });

  it('counts a new object only for creates and Events, one per Event written', () => {
    for (const s of JOB_STYLE_STEPS) {
      const what = `${s.actor}: ${s.write}`;
      expect(s.writes, what).to.be.greaterThan(0);
      if (s.write.startsWith('Event')) expect(s.objects, what).to.equal(s.writes);
      else if (/^create (Job|Pod)\b/.test(s.write)) expect(s.objects, what).to.equal(1);
      // Bindings, updates, patches and deletes add no object.
      else expect(s.objects, what).to.equal(0);
    }
  });

  it('lists the Job\'s life from creation to deletion', () => {
    const writes = JOB_STYLE_STEPS.map((s) => s.write);
    expect(writes[0]).to.match(/^create Job/);
    expect(writes.some((w) => w === 'delete Job')).to.equal(true);
    expect(writes.some((w) => w === 'delete Pod')).to.equal(true);
    expect(writes.findIndex((w) => w.startsWith('create Pod'))).to.be.lessThan(writes.indexOf('delete Pod'));
  });
});
