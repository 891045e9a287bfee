import { expect } from 'chai';
import { decode } from '../../../../api/schema.ts';
import { prePullImageStatusSchema } from '../../../../api/v1alpha1/index.ts';
import { decodeNodeImageSet } from '../../../../controller/sources/decode.ts';
import { startCounts, startRollup, withStarts } from '../../../../controller/status/start-rollup.ts';
import { nodeImageSetView } from '../planning-fixtures.ts';

const IMAGE = 'r.example/app:1';

function nis(images: Record<string, unknown>[], heartbeatTime = '2026-01-01T00:00:00Z'): unknown {
  return {
    apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet',
    metadata: { name: 'n1', uid: 'nis-u1', generation: 1, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u1' }] },
    spec: { maxConcurrentPulls: 2, images: [{ image: IMAGE }] },
    status: { heartbeatTime, images },
  };
}

describe('controller/start-rollup', () => {
  it('reads only positive whole counts from a status entry', () => {
    expect(startCounts({ warmStarts: 2, coldStarts: 0, pullMillisecondsSaved: 1500 })).to.deep.equal({ warmStarts: 2, pullMillisecondsSaved: 1500 });
    expect(startCounts({ warmStarts: -1, coldStarts: 1.5, pullMillisecondsSaved: 'x' })).to.deep.equal({});
    expect(startCounts(null)).to.deep.equal({});
  });

  it('sums the target nodes\' counts, leaving out nodes that are no longer targets', () => {
    const current = new Map([
      ['a', nodeImageSetView('a', { [IMAGE]: 0 }, { [IMAGE]: { phase: 'Completed', warmStarts: 3, pullMillisecondsSaved: 2400 } })],
      ['b', nodeImageSetView('b', { [IMAGE]: 0 }, { [IMAGE]: { phase: 'Completed', coldStarts: 1 } })],
      ['c', nodeImageSetView('c', { [IMAGE]: 0 }, { [IMAGE]: { phase: 'Completed', warmStarts: 100 } })],
    ]);
    expect(startRollup(IMAGE, ['a', 'b', 'missing'], current)).to.deep.equal({ warmStarts: 3, coldStarts: 1, pullSecondsSaved: 2 });
    expect(startRollup('r.example/other:1', ['a', 'b'], current)).to.equal(undefined);
  });

  it('adds the fields to a status the CRD schema accepts, and leaves a status without starts as it was', () => {
    const status = { phase: 'Completed' as const, ready: '2/2' };
    expect(withStarts(status, undefined)).to.equal(status);
    const r = decode(prePullImageStatusSchema, withStarts(status, { warmStarts: 3, coldStarts: 1, pullSecondsSaved: 2 }));
    expect(r.ok && r.value).to.deep.include({ warmStarts: 3, coldStarts: 1, pullSecondsSaved: 2 });
  });

  it('the NodeImageSet decoder keeps the counts, and a heartbeat alone does not make a new view', () => {
    const entry = { image: IMAGE, phase: 'Completed', round: 0, warmStarts: 2, pullMillisecondsSaved: 900, wantedSince: '2026-01-01T00:00:00.000Z' };
    const v1 = decodeNodeImageSet(nis([entry]))!;
    expect(v1.status.get(IMAGE)).to.deep.equal({ phase: 'Completed', round: 0, warmStarts: 2, pullMillisecondsSaved: 900 });
    expect(decodeNodeImageSet(nis([entry], '2026-01-01T00:01:00Z'), v1)).to.equal(v1);
    const v2 = decodeNodeImageSet(nis([{ ...entry, coldStarts: 1 }]), v1)!;
    expect(v2).to.not.equal(v1);
    expect(v2.status.get(IMAGE)?.coldStarts).to.equal(1);
  });
});
