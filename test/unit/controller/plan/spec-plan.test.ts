import { expect } from 'chai';
import type { PrePullImage } from '../../../../api/v1alpha1/index.ts';
import { desiredPrePullImages, prePullImageKey, type DesiredPrePullImage } from '../../../../controller/derive/desired-images.ts';
import type { NodeImageSetView } from '../../../../controller/plan/node-image-set-view.ts';
import { planDeletes, planSpecs, PURGE_SETTLE_MS, SpecMemos, successorKey, type SpecInput } from '../../../../controller/plan/spec-plan.ts';
import { purgeRollup } from '../../../../controller/status/purge-rollup.ts';
import { decodePrePullImage } from '../../../../controller/sources/decode.ts';
import { prePullImageApplyBody } from '../../../../controller/write/api-objects.ts';
import { Overlays } from '../../../../controller/write/overlays.ts';
import type { Write, WritePlan } from '../../../../controller/write/writes.ts';
import { node, policy, prePullImage, workload } from '../planning-fixtures.ts';

const KEY = prePullImageKey('shop', 'deployment.web.app');

function derived(image = 'r.example/app:1', purgeOnDelete = false): Map<string, DesiredPrePullImage> {
  const p = policy('web', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, ...(purgeOnDelete ? { purgeOnDelete } : {}) });
  const w = workload({ name: 'web', podSpec: { containers: [{ name: 'app', image }] } });
  return new Map(desiredPrePullImages([p], [w], new Map()).images);
}

/** The derived object as the API server stores it after the apply. */
function stored(d: DesiredPrePullImage, generation = 1): PrePullImage {
  const b = JSON.parse(JSON.stringify(prePullImageApplyBody(d))) as { metadata: Record<string, unknown> };
  b.metadata.generation = generation;
  const ppi = decodePrePullImage(b);
  if (ppi === undefined) throw new Error('apply body does not decode');
  return ppi;
}

function cache<T extends { name: string }>(items: T[]): { get(k: string): T | undefined; values(): T[] } {
  return { get: (k) => items.find((i) => i.name === k), values: () => items };
}

function input(over: Partial<SpecInput> = {}): SpecInput {
  return {
    desired: derived(),
    cached: new Map(),
    keptAsCached: () => false,
    overlays: new Overlays(),
    memos: new SpecMemos(),
    roundOf: () => 0,
    nodes: [node({ name: 'n1' }), node({ name: 'n2' })],
    nodeImageSets: cache<NodeImageSetView>([]),
    secretCopies: cache([]),
    sourceSecret: () => undefined,
    clusterPullBudget: 0,
    maxPullsPerNode: 2,
    ...over,
  };
}

const kinds = (plan: WritePlan): string[][] => plan.map((s) => s.writes.map((w) => w.kind));
const ofKind = <K extends Write['kind']>(plan: WritePlan, kind: K): Extract<Write, { kind: K }>[] =>
  plan.flatMap((s) => s.writes).filter((w): w is Extract<Write, { kind: K }> => w.kind === kind);

describe('controller/plan/spec-plan', () => {
  it('keeps a PrePullImage\'s target object while its planning inputs are the same, and makes a new one when they change', () => {
    const memos = new SpecMemos();
    const desired = derived();
    const cached = new Map([[KEY, stored(desired.get(KEY)!)]]);
    const first = planSpecs(input({ desired, cached, memos }));
    const again = planSpecs(input({ desired, cached, memos }));
    expect(again.targets[0]).to.equal(first.targets[0]);
    // Another cached object (a status write) with the same planning inputs: still the same target.
    const rewritten = planSpecs(input({ desired, cached: new Map([[KEY, stored(desired.get(KEY)!)]]), memos }));
    expect(rewritten.targets[0]).to.equal(first.targets[0]);
    const raised = planSpecs(input({ desired, cached, memos, roundOf: () => 1 }));
    expect(raised.targets[0]).to.not.equal(first.targets[0]);
    expect(raised.targets[0]).to.deep.equal({ ...first.targets[0], round: 1 });
    const changed = planSpecs(input({ desired: derived('r.example/app:2'), cached, memos }));
    expect(changed.targets[0]!.image).to.equal('r.example/app:2');
  });

  it('writes secrets, then PrePullImages and finalizers, then NodeImageSets, in that order', () => {
    const plan = planSpecs(input());
    expect(kinds(plan.writes)).to.deep.equal([[], ['prePullImage'], [], ['nodeImageSet', 'nodeImageSet']]);
    expect(plan.targets.map((t) => t.key)).to.deep.equal([KEY]);
    expect(plan.nodePlan.targetNodes.get(KEY)).to.deep.equal(['n1', 'n2']);
  });

  it('writes nothing for a derived PrePullImage the cache already holds as desired', () => {
    const desired = derived();
    const d = desired.get(KEY)!;
    const plan = planSpecs(input({ desired, cached: new Map([[KEY, stored(d)]]) }));
    expect(ofKind(plan.writes, 'prePullImage')).to.deep.equal([]);
  });

  it('plans from its own pending write: no second write, and its generation for the status stage', () => {
    const desired = derived('r.example/app:2');
    const overlays = new Overlays();
    const d = desired.get(KEY)!;
    const memos = new SpecMemos();
    overlays.prePullImages.record(KEY, { generation: 2, digest: memos.desiredDigest(d) });
    // The cache still holds generation 1 with the old image.
    const old = stored(derived().get(KEY)!, 1);
    const plan = planSpecs(input({ desired, cached: new Map([[KEY, old]]), overlays, memos }));
    expect(ofKind(plan.writes, 'prePullImage')).to.deep.equal([]);
    expect(plan.pendingGenerations.get(KEY)).to.equal(2);
    // Once the cache shows generation 2, the overlay is the cache's business again.
    const shown = planSpecs(input({ desired, cached: new Map([[KEY, stored(d, 2)]]), overlays, memos }));
    expect(shown.pendingGenerations.size).to.equal(0);
    expect(overlays.prePullImages.size).to.equal(0);
  });

  it('leaves a hand-written PrePullImage with the derived name alone, and plans it as written', () => {
    const mine = prePullImage('shop', 'deployment.web.app', { image: 'r.example/other:1' });
    const plan = planSpecs(input({ cached: new Map([[KEY, mine]]) }));
    expect(plan.shadowed).to.deep.equal([KEY]);
    expect(ofKind(plan.writes, 'prePullImage')).to.deep.equal([]);
    expect(plan.targets.map((t) => t.image)).to.deep.equal(['r.example/other:1']);
  });

  it('adds the purge finalizer to a hand-written PrePullImage that asks for it', () => {
    const p = prePullImage('shop', 'mine', { image: 'r.example/x:1', purgeOnDelete: true });
    const plan = planSpecs(input({ desired: new Map(), cached: new Map([['shop/mine', p]]) }));
    expect(ofKind(plan.writes, 'purgeFinalizer').map((w) => w.add)).to.deep.equal([true]);
  });

  it('while a source is still listing, a warming node gets no NodeImageSet that would say nothing gates it; gating ones and other nodes are written', () => {
    const nodes = [node({ name: 'n1' }), node({ name: 'n2' })];
    const written = (over: Partial<SpecInput>): string[] => ofKind(planSpecs(input({ nodes, desired: new Map(), ...over })).writes, 'nodeImageSet').map((w) => w.planned.node);
    expect(written({ warming: new Set(['n2']) })).to.deep.equal(['n2']);
    expect(written({ warming: new Set(['n2']), sourcesListing: true })).to.deep.equal([]);
    // An image that does not gate: n1 gets it, warming n2 waits (its spec would still say nothing gates it).
    expect(written({ desired: derived(), warming: new Set(['n2']), sourcesListing: true })).to.deep.equal(['n1']);
    const p = policy('web', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, gateNewNodes: true });
    const gating = new Map(desiredPrePullImages([p], [workload({ name: 'web', podSpec: { containers: [{ name: 'app', image: 'r.example/app:1' }] } })], new Map()).images);
    const plan = planSpecs(input({ nodes, desired: gating, warming: new Set(['n2']), sourcesListing: true }));
    const n2 = ofKind(plan.writes, 'nodeImageSet').find((w) => w.planned.node === 'n2');
    expect(n2?.planned.spec.gatingImages).to.equal(1);
  });

  it('writes only the NodeImageSets whose spec differs from the one written', () => {
    const first = planSpecs(input());
    const n1 = ofKind(first.writes, 'nodeImageSet').find((w) => w.planned.node === 'n1')!.planned;
    const asWritten: NodeImageSetView = {
      name: 'n1', generation: 1, ownerUid: n1.nodeUid, specDigest: n1.digest, released: n1.released, status: new Map(),
    };
    const again = planSpecs(input({ nodeImageSets: cache([asWritten]) }));
    expect(ofKind(again.writes, 'nodeImageSet').map((w) => w.planned.node)).to.deep.equal(['n2']);
  });

  it('finding 14: a re-created workload\'s successor is wanted while the old PrePullImage is purged, so the image stays in spec.images', () => {
    const IMAGE = 'r.example/app:1';
    const old = stored(derived(IMAGE, true).get(KEY)!);
    const deleting: PrePullImage = { ...old, metadata: { ...old.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    expect(deleting.metadata.finalizers).to.include('kwarm.io/purge');
    const plan = planSpecs(input({ desired: derived(IMAGE, true), cached: new Map([[KEY, deleting]]) }));
    expect(plan.targets.map((t) => [t.key, t.purge === true])).to.deep.equal([[successorKey(KEY), false], [KEY, true]]);
    for (const n of ['n1', 'n2']) {
      const spec = plan.nodePlan.nodeImageSets.get(n)?.spec;
      // Both: the agent answers the removal with Kept (Wanted) and goes on with the image.
      expect(spec?.images.map((e) => e.image), n).to.deep.equal([IMAGE]);
      expect(spec?.removals.map((r) => r.image), n).to.deep.equal([IMAGE]);
    }
    // The old one's purge nodes are its own, not overwritten by the successor's.
    expect(plan.nodePlan.targetNodes.get(KEY)).to.deep.equal(['n1', 'n2']);
  });

  it('finding 14: no write to a PrePullImage being deleted, even when its successor wants another spec (it is written once the old one is gone)', () => {
    const old = stored(derived('r.example/app:1', true).get(KEY)!);
    const deleting: PrePullImage = { ...old, metadata: { ...old.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    const plan = planSpecs(input({ desired: derived('r.example/app:2', true), cached: new Map([[KEY, deleting]]) }));
    expect(ofKind(plan.writes, 'prePullImage')).to.deep.equal([]);
    // The successor is still a target: its image goes to the nodes meanwhile.
    expect(plan.targets.map((t) => t.key)).to.include(successorKey(KEY));
  });

  it('finding 14: a deleted PrePullImage stays wanted for PURGE_SETTLE_MS before its purge starts (a re-created workload may not be seen yet)', () => {
    const IMAGE = 'r.example/app:1';
    const old = stored(derived(IMAGE, true).get(KEY)!);
    const deletedAt = Date.parse('2026-01-01T00:00:00Z');
    const deleting: PrePullImage = { ...old, metadata: { ...old.metadata, deletionTimestamp: new Date(deletedAt).toISOString() } };
    // The workload is gone from the caches: nothing desired.
    const settling = planSpecs(input({ desired: new Map(), cached: new Map([[KEY, deleting]]), nowMs: deletedAt + PURGE_SETTLE_MS - 1 }));
    expect(settling.purgeDueAtMs).to.equal(deletedAt + PURGE_SETTLE_MS);
    expect(settling.targets.map((t) => [t.key, t.purge === true])).to.deep.equal([[KEY, false]]);
    for (const n of ['n1', 'n2']) {
      expect(settling.nodePlan.nodeImageSets.get(n)?.spec.images.map((e) => e.image), n).to.deep.equal([IMAGE]);
      expect(settling.nodePlan.nodeImageSets.get(n)?.spec.removals, n).to.deep.equal([]);
    }
    const settled = planSpecs(input({ desired: new Map(), cached: new Map([[KEY, deleting]]), nowMs: deletedAt + PURGE_SETTLE_MS }));
    expect(settled.purgeDueAtMs).to.equal(undefined);
    expect(settled.targets.map((t) => [t.key, t.purge === true])).to.deep.equal([[KEY, true]]);
    expect(settled.nodePlan.nodeImageSets.get('n1')?.spec.removals.map((r) => r.image)).to.deep.equal([IMAGE]);
  });

  it('finding 14: where the budget holds the successor\'s pull back, the removal is cancelled and the purge counts the node Kept (Wanted)', () => {
    const IMAGE = 'r.example/app:1';
    const old = stored(derived(IMAGE, true).get(KEY)!);
    const deleting: PrePullImage = { ...old, metadata: { ...old.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    const plan = planSpecs(input({ desired: derived(IMAGE, true), cached: new Map([[KEY, deleting]]), clusterPullBudget: 1 }));
    const [released, held] = ['n1', 'n2'].map((n) => plan.nodePlan.nodeImageSets.get(n));
    expect(released?.spec.images.map((e) => e.image)).to.deep.equal([IMAGE]);
    expect(released?.spec.removals.map((r) => r.image)).to.deep.equal([IMAGE]);
    expect(released?.wantedAgain).to.equal(undefined);
    expect(held?.spec.images).to.deep.equal([]);
    expect(held?.spec.removals).to.deep.equal([]);
    expect(held?.wantedAgain).to.deep.equal([IMAGE]);
    const rollup = purgeRollup({ image: IMAGE, nodes: ['n1', 'n2'], planned: plan.nodePlan.nodeImageSets, current: new Map(), giveUpAtMs: undefined, nowMs: 0 });
    expect(rollup.purge).to.include({ total: 2, kept: 1, pending: 1, removed: 0 });
    expect(rollup.purge.nodes?.find((n) => n.node === 'n2')).to.include({ result: 'Kept', reason: 'Wanted' });
  });

  it('holds pairs beyond the cluster pull budget', () => {
    const plan = planSpecs(input({ clusterPullBudget: 1 }));
    expect(plan.nodePlan.unfinished).to.equal(1);
    expect(plan.nodePlan.held).to.equal(1);
    expect(ofKind(plan.writes, 'nodeImageSet').every((w) => w.planned.spec.maxConcurrentPulls === 2)).to.equal(true);
  });

  describe('planDeletes', () => {
    const gone = (): Map<string, PrePullImage> => new Map([[KEY, stored(derived().get(KEY)!)]]);

    it('deletes derived PrePullImages nothing wants, once', () => {
      const overlays = new Overlays();
      const secrets = { copyNames: new Map(), problems: new Map(), unknown: new Set<string>(), apply: [], remove: ['old-copy'] };
      const plan = planDeletes({ desired: new Map(), cached: gone(), keptAsCached: () => false }, overlays, secrets);
      expect(kinds(plan)).to.deep.equal([['deletePrePullImage'], ['deleteSecretCopy']]);
      overlays.deletions.record(KEY, true);
      expect(kinds(planDeletes({ desired: new Map(), cached: gone(), keptAsCached: () => false }, overlays, secrets))).to.deep.equal([[], ['deleteSecretCopy']]);
    });

    it('keeps those whose source is not known yet, and hand-written ones', () => {
      const secrets = { copyNames: new Map(), problems: new Map(), unknown: new Set<string>(), apply: [], remove: [] };
      expect(kinds(planDeletes({ desired: new Map(), cached: gone(), keptAsCached: () => true }, new Overlays(), secrets))).to.deep.equal([[], []]);
      const mine = new Map([['shop/mine', prePullImage('shop', 'mine', { image: 'r.example/x:1' })]]);
      expect(kinds(planDeletes({ desired: new Map(), cached: mine, keptAsCached: () => false }, new Overlays(), secrets))).to.deep.equal([[], []]);
    });
  });
});
