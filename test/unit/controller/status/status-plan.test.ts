import { expect } from 'chai';
import type { PrePullImage, PrePullImageStatus } from '../../../../api/v1alpha1/index.ts';
import { PURGE_FINALIZER } from '../../../../api/v1alpha1/labels.ts';
import type { NodeImageSetView, NodeImageStatusView } from '../../../../controller/plan/node-image-set-view.ts';
import { planSpecs, SpecMemos } from '../../../../controller/plan/spec-plan.ts';
import { planStatuses, StatusMemo, type StatusInput } from '../../../../controller/status/status-plan.ts';
import { Overlays } from '../../../../controller/write/overlays.ts';
import type { Write, WritePlan } from '../../../../controller/write/writes.ts';
import { node, prePullImage } from '../planning-fixtures.ts';

const IMAGE = 'r.example/x:1';
const KEY = 'shop/mine';
const T0 = Date.parse('2024-05-01T10:00:00Z');
const nodes = ['n1', 'n2', 'n3'].map((name) => node({ name }));

const ofKind = <K extends Write['kind']>(plan: WritePlan, kind: K): Extract<Write, { kind: K }>[] =>
  plan.flatMap((s) => s.writes).filter((w): w is Extract<Write, { kind: K }> => w.kind === kind);

/** A hand-written PrePullImage for every node, its NodeImageSets as the agents report `phases`, and the stage's input. */
function scenario(p: PrePullImage, phases: Record<string, NodeImageStatusView['phase']>, over: Partial<StatusInput> = {}): StatusInput {
  const cached = new Map([[KEY, p]]);
  const overlays = over.overlays ?? new Overlays();
  const first = planSpecs({
    desired: new Map(), cached, keptAsCached: () => false, overlays, memos: new SpecMemos(), roundOf: () => 0, nodes,
    nodeImageSets: { get: () => undefined, values: () => [] }, secretCopies: { get: () => undefined, values: () => [] },
    sourceSecret: () => undefined, clusterPullBudget: 0, maxPullsPerNode: 2,
  });
  // The NodeImageSets as written, with the agents' status.
  const current = new Map<string, NodeImageSetView>([...first.nodePlan.nodeImageSets].map(([name, planned]) => [name, {
    name, generation: 1, ownerUid: planned.nodeUid, specDigest: planned.digest, released: planned.released,
    status: new Map(phases[name] === undefined ? [] : [[IMAGE, { phase: phases[name], round: 0, startedAt: '2024-05-01T09:59:00Z' }]]),
    ...(p.metadata.deletionTimestamp !== undefined ? { removals: new Map([[IMAGE, { result: 'Removed' as const }]]) } : {}),
  }]));
  const spec = planSpecs({
    desired: new Map(), cached, keptAsCached: () => false, overlays, memos: new SpecMemos(), roundOf: () => 0, nodes,
    nodeImageSets: { get: (n) => current.get(n), values: () => current.values() }, secretCopies: { get: () => undefined, values: () => [] },
    sourceSecret: () => undefined, clusterPullBudget: 0, maxPullsPerNode: 2,
  });
  return {
    cached, targets: spec.targets, secretRefs: spec.secretRefs, secrets: spec.secrets, generations: new Map(), nodePlan: spec.nodePlan,
    current: spec.current, policies: [], evaluations: new Map(), listed: new Map(), argoServed: undefined, overlays, memo: new StatusMemo(),
    nowMs: T0, now: '2024-05-01T10:00:00Z', progressIntervalMs: 5000, ...over,
  };
}

function withStatus(p: PrePullImage, status: PrePullImageStatus | undefined): PrePullImage {
  return status === undefined ? p : { ...p, status };
}

describe('controller/status/status-plan', () => {
  const mine = prePullImage('shop', 'mine', { image: IMAGE });

  it('rolls NodeImageSet status up into a PrePullImage status with its Events', () => {
    const plan = planStatuses(scenario(mine, { n1: 'Completed', n2: 'Pulling', n3: 'Pulling' }));
    const [w] = ofKind(plan.writes, 'prePullImageStatus');
    expect(w?.status.phase).to.equal('InProgress');
    expect(w?.status.summary).to.deep.include({ total: 3, completed: 1, pulling: 2 });
    expect(w?.events.map((e) => e.reason)).to.include('PullStarted');
    expect(plan.phases).to.deep.equal({ Pending: 0, InProgress: 1, Completed: 0, Failed: 0 });
  });

  it('holds a progress-only change back for the interval, and writes a phase change at once', () => {
    const first = planStatuses(scenario(mine, { n1: 'Completed', n2: 'Pulling', n3: 'Pulling' }));
    const written = withStatus(mine, ofKind(first.writes, 'prePullImageStatus')[0]?.status);
    const memo = new StatusMemo();
    memo.writtenAt.set(KEY, T0 - 1000);
    const progress = planStatuses(scenario(written, { n1: 'Completed', n2: 'Completed', n3: 'Pulling' }, { memo }));
    expect(ofKind(progress.writes, 'prePullImageStatus')).to.deep.equal([]);
    expect(progress.dueAtMs).to.equal(T0 + 4000);
    const later = planStatuses(scenario(written, { n1: 'Completed', n2: 'Completed', n3: 'Pulling' }, { memo, nowMs: T0 + 4000 }));
    expect(ofKind(later.writes, 'prePullImageStatus').map((w) => w.status.summary?.completed)).to.deep.equal([2]);
    const done = planStatuses(scenario(written, { n1: 'Completed', n2: 'Completed', n3: 'Completed' }, { memo }));
    expect(ofKind(done.writes, 'prePullImageStatus').map((w) => w.status.phase)).to.deep.equal(['Completed']);
  });

  it('writes nothing when the rolled-up status equals the one written', () => {
    const first = planStatuses(scenario(mine, { n1: 'Completed', n2: 'Completed', n3: 'Completed' }));
    const written = withStatus(mine, ofKind(first.writes, 'prePullImageStatus')[0]?.status);
    const again = planStatuses(scenario(written, { n1: 'Completed', n2: 'Completed', n3: 'Completed' }));
    expect(again.writes.flatMap((s) => s.writes)).to.deep.equal([]);
  });

  it('releases a purged PrePullImage\'s finalizer in the step after its status', () => {
    const deleting: PrePullImage = {
      ...mine,
      spec: { ...mine.spec, purgeOnDelete: true },
      metadata: { ...mine.metadata, deletionTimestamp: '2024-05-01T09:59:30Z', finalizers: [PURGE_FINALIZER] },
    };
    const plan = planStatuses(scenario(deleting, {}));
    const statusStep = plan.writes.findIndex((s) => s.writes.some((w) => w.kind === 'prePullImageStatus'));
    const releaseStep = plan.writes.findIndex((s) => s.writes.some((w) => w.kind === 'releaseFinalizer'));
    expect(statusStep).to.be.at.least(0);
    expect(releaseStep).to.be.greaterThan(statusStep);
    expect(ofKind(plan.writes, 'prePullImageStatus')[0]?.events.map((e) => e.reason)).to.deep.equal(['Purged']);
  });

  it('sends ConfigMap problem Events last, only when everything before was written', () => {
    const plan = planStatuses(scenario(mine, {}));
    expect(plan.configMapEventsStep).to.equal(plan.writes.length - 1);
    expect(plan.writes[plan.configMapEventsStep]?.onlyIfNoFailure).to.equal(true);
  });
});
