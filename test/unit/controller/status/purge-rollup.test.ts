import { expect } from 'chai';
import { decode } from '../../../../api/schema.ts';
import { MAX_STATUS_NODES, prePullImageStatusSchema, PURGE_FINALIZER, type PrePullImageStatus } from '../../../../api/v1alpha1/index.ts';
import { finalizerRemovalPatch, hasPurgeFinalizer } from '../../../../controller/write/api-objects.ts';
import type { PlannedNodeImageSet } from '../../../../controller/plan/node-plan.ts';
import type { NodeImageSetView, NodeRemovalStatusView } from '../../../../controller/plan/node-image-set-view.ts';
import { NO_ANSWER, purgeRollup, purgingStatus, type PurgeInput } from '../../../../controller/status/purge-rollup.ts';
import { nodeImageSetView, prePullImage } from '../planning-fixtures.ts';

const IMAGE = 'r.example/app:1';

function planned(nodes: readonly string[], image = IMAGE): Map<string, PlannedNodeImageSet> {
  return new Map(nodes.map((n) => [n, {
    node: n, nodeUid: `uid-${n}`, digest: 'd', released: new Map(),
    spec: { maxConcurrentPulls: 2, images: [], removals: [{ image, sources: [{ namespace: 'shop', name: 'app' }] }] },
  }]));
}

function current(answers: Record<string, NodeRemovalStatusView | undefined>): Map<string, NodeImageSetView> {
  return new Map(Object.entries(answers).map(([n, a]) => [n, {
    ...nodeImageSetView(n, {}),
    ...(a !== undefined ? { removals: new Map([[IMAGE, a]]) } : {}),
  }]));
}

function input(nodes: string[], answers: Record<string, NodeRemovalStatusView | undefined>, extra: Partial<PurgeInput> = {}): PurgeInput {
  return { image: IMAGE, nodes, planned: planned(nodes), current: current(answers), giveUpAtMs: undefined, nowMs: 1_000_000, ...extra };
}

function valid(status: PrePullImageStatus): PrePullImageStatus {
  const r = decode(prePullImageStatusSchema, JSON.parse(JSON.stringify(status)));
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

describe('controller/purge-rollup', () => {
  it('counts removed (and never present), kept, failed and pending nodes, kept and failed first', () => {
    const r = purgeRollup(input(['a', 'b', 'c', 'd', 'e'], {
      a: { result: 'Removed' },
      b: { result: 'NotPresent' },
      c: { result: 'Kept', reason: 'InUse', message: 'used by container web (0123456789abc, running)' },
      d: { result: 'Failed', reason: 'Unknown', message: 'boom' },
      e: undefined,
    }));
    expect(r.done).to.equal(false);
    expect(r.purge).to.include({ total: 5, removed: 2, kept: 1, failed: 1, pending: 1 });
    expect(r.purge.nodes?.map((n) => [n.node, n.result, n.reason])).to.deep.equal([
      ['d', 'Failed', 'Unknown'], ['c', 'Kept', 'InUse'], ['a', 'Removed', undefined], ['b', 'NotPresent', undefined],
    ]);
  });

  it('ignores an answer the plan does not ask for (an old entry of another image or node)', () => {
    const i = input(['a'], { a: { result: 'Removed' } });
    const r = purgeRollup({ ...i, planned: planned(['a'], 'r.example/other:1') });
    expect(r.purge).to.include({ pending: 1, removed: 0 });
  });

  it('counts nodes that have not answered by the deadline as failed with NoAnswer, so deletion never hangs', () => {
    const before = purgeRollup(input(['a', 'b'], { a: { result: 'Removed' }, b: undefined }, { giveUpAtMs: 2_000_000 }));
    expect(before.done).to.equal(false);
    const after = purgeRollup(input(['a', 'b'], { a: { result: 'Removed' }, b: undefined }, { giveUpAtMs: 500_000 }));
    expect(after.done).to.equal(true);
    expect(after.purge).to.include({ failed: 1, pending: 0 });
    expect(after.purge.nodes?.[0]).to.include({ node: 'b', result: 'Failed', reason: NO_ANSWER });
  });

  it('is done at once when no node matches', () => {
    const r = purgeRollup(input([], {}));
    expect(r.done).to.equal(true);
    expect(r.purge).to.deep.equal({ total: 0, removed: 0, kept: 0, failed: 0, pending: 0 });
  });

  it('bounds per-node detail', () => {
    const names = Array.from({ length: MAX_STATUS_NODES + 5 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    const r = purgeRollup(input(names, Object.fromEntries(names.map((n) => [n, { result: 'Kept', reason: 'Wanted', message: 'x' }]))));
    expect(r.purge.nodes).to.have.length(MAX_STATUS_NODES);
    expect(r.purge.kept).to.equal(names.length);
  });

  it('builds a status the CRD accepts; Purged once, and the same status again writes nothing', () => {
    const now = '2026-01-01T00:00:00Z';
    const pending = purgingStatus({ generation: 2, image: IMAGE, rollup: purgeRollup(input(['a', 'b'], { a: { result: 'Removed' } })), previous: undefined, now });
    expect(pending.purged).to.equal(false);
    expect(valid(pending.status).conditions?.[0]).to.include({ type: 'Ready', status: 'False', reason: 'Purging' });
    const doneRollup = purgeRollup(input(['a', 'b'], { a: { result: 'Removed' }, b: { result: 'Kept', reason: 'InUse', message: 'used' } }));
    const done = purgingStatus({ generation: 2, image: IMAGE, rollup: doneRollup, previous: pending.status, now: '2026-01-01T00:01:00Z' });
    expect(done.purged).to.equal(true);
    expect(valid(done.status).conditions?.[0]).to.include({ reason: 'Purged', message: `${IMAGE}: removed from 1, kept on 1, failed on 0 of 2 nodes` });
    expect(done.status.phase).to.equal(undefined);
    const again = purgingStatus({ generation: 2, image: IMAGE, rollup: doneRollup, previous: done.status, now: '2026-01-01T00:02:00Z' });
    expect(again.purged).to.equal(false);
    expect(JSON.stringify(again.status)).to.equal(JSON.stringify(done.status));
  });
});

describe('controller/api-objects purge finalizer', () => {
  it('removes only the purge finalizer, testing its position first', () => {
    const p = prePullImage('shop', 'app', { image: IMAGE, purgeOnDelete: true });
    expect(hasPurgeFinalizer(p)).to.equal(false);
    expect(finalizerRemovalPatch(p)).to.deep.equal([]);
    p.metadata.finalizers = ['example.com/other', PURGE_FINALIZER];
    expect(hasPurgeFinalizer(p)).to.equal(true);
    expect(finalizerRemovalPatch(p)).to.deep.equal([
      { op: 'test', path: '/metadata/finalizers/1', value: PURGE_FINALIZER },
      { op: 'remove', path: '/metadata/finalizers/1' },
    ]);
  });
});
