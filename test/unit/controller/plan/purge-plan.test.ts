import { expect } from 'chai';
import { decode } from '../../../../api/schema.ts';
import { nodeImageSetSpecSchema } from '../../../../api/v1alpha1/index.ts';
import { decodeNodeImageSet } from '../../../../controller/sources/decode.ts';
import { compileNodeTargeting } from '../../../../controller/plan/node-eligibility.ts';
import { planNodeImageSets, type ImageTarget, type PlanInput } from '../../../../controller/plan/node-plan.ts';
import { node } from '../planning-fixtures.ts';
import { entriesDigest, nodeImageSetDigest, specDigestOf } from '../../../../controller/plan/node-image-set-digest.ts';

function target(name: string, image: string, extra: Partial<ImageTarget> = {}): ImageTarget {
  return {
    key: `shop/${name}`, namespace: 'shop', name, image, imageDigest: undefined, nodeNames: undefined, nodeSelector: undefined,
    placement: undefined, targeting: undefined, pullSecrets: [], retry: { maxAttempts: 3, backoffSeconds: 30 }, timeout: '10m', round: 0, ...extra,
  };
}

const nodes = [node({ name: 'n1' }), node({ name: 'n2', ready: false }), node({ name: 'n3', labels: { pool: 'gpu' } })];

function plan(input: Partial<PlanInput> & Pick<PlanInput, 'targets'>) {
  return planNodeImageSets({ nodes, current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2, ...input });
}

describe('controller/node-plan removals (purge)', () => {
  it('puts a purging target\'s image in spec.removals of every matching node, Ready or not, and never in spec.images', () => {
    const p = plan({ targets: [target('old', 'r.example/old:1', { purge: true })] });
    expect([...p.nodeImageSets.keys()]).to.deep.equal(['n1', 'n2', 'n3']);
    for (const n of ['n1', 'n2', 'n3']) {
      const spec = p.nodeImageSets.get(n)!.spec;
      expect(spec.images).to.deep.equal([]);
      expect(spec.removals).to.deep.equal([{ image: 'r.example/old:1', sources: [{ namespace: 'shop', name: 'old' }] }]);
    }
    expect(p.targetNodes.get('shop/old')).to.deep.equal(['n1', 'n2', 'n3']);
  });

  it('follows the node selector and keeps removals out of the pull budget', () => {
    const p = plan({
      targets: [target('old', 'r.example/old:1', { purge: true, nodeSelector: { matchLabels: { pool: 'gpu' } } }), target('new', 'r.example/new:1')],
      clusterPullBudget: 1,
    });
    expect(p.targetNodes.get('shop/old')).to.deep.equal(['n3']);
    expect(p.nodeImageSets.get('n3')!.spec.removals.map((r) => r.image)).to.deep.equal(['r.example/old:1']);
    expect(p.nodeImageSets.get('n1')!.spec.removals).to.deep.equal([]);
    // One pull released (budget 1), one held; the removal counted in neither.
    expect(p.unfinished).to.equal(1);
    expect(p.held).to.equal(1);
  });

  it('follows the required node affinity of spec.nodes, but not the taints its tolerations would exclude', () => {
    const pool = [
      node({ name: 'n1', labels: { pool: 'cpu' } }),
      node({ name: 'n2', labels: { pool: 'gpu' }, taints: [{ key: 'dedicated', effect: 'NoSchedule' }] }),
      node({ name: 'n3', labels: { pool: 'gpu' }, ready: false }),
    ];
    const gpu = compileNodeTargeting({
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu'] }] }] } } },
      tolerations: [],
    });
    const p = plan({ nodes: pool, targets: [target('old', 'r.example/old:1', { purge: true, targeting: gpu })] });
    expect(p.targetNodes.get('shop/old')).to.deep.equal(['n2', 'n3']);
    expect(p.nodeImageSets.get('n1')?.spec.removals ?? []).to.deep.equal([]);
  });

  it('keeps the image in spec.images when another PrePullImage still wants it (the agent answers Kept, Wanted)', () => {
    const p = plan({ targets: [target('a', 'r.example/app:1', { purge: true }), target('b', 'r.example/app:1', { nodeNames: ['n1'], nodeSelector: undefined })] });
    const n1 = p.nodeImageSets.get('n1')!.spec;
    expect(n1.images.map((e) => e.image)).to.deep.equal(['r.example/app:1']);
    expect(n1.removals.map((r) => r.image)).to.deep.equal(['r.example/app:1']);
    expect(p.nodeImageSets.get('n3')!.spec.images).to.deep.equal([]);
  });

  it('merges sources of several purging targets of one image', () => {
    const p = plan({ targets: [target('b', 'r.example/x:1', { purge: true }), target('a', 'r.example/x:1', { purge: true })] });
    expect(p.nodeImageSets.get('n1')!.spec.removals).to.deep.equal([
      { image: 'r.example/x:1', sources: [{ namespace: 'shop', name: 'a' }, { namespace: 'shop', name: 'b' }] },
    ]);
  });

  it('the spec digest covers removals, and a spec without removals digests as before', () => {
    const base = { maxConcurrentPulls: 2, images: [], removals: [] };
    const withRemoval = { ...base, removals: [{ image: 'r.example/x:1', sources: [{ namespace: 'shop', name: 'a' }] }] };
    expect(nodeImageSetDigest('u', base)).to.equal(specDigestOf('u', 2, entriesDigest([])));
    expect(nodeImageSetDigest('u', withRemoval)).to.not.equal(nodeImageSetDigest('u', base));
    const otherSource = { ...base, removals: [{ image: 'r.example/x:1', sources: [{ namespace: 'shop', name: 'b' }] }] };
    expect(nodeImageSetDigest('u', otherSource)).to.not.equal(nodeImageSetDigest('u', withRemoval));
  });

  it('a planned spec with removals equals the cached one after a round trip: a resync writes nothing', () => {
    const p = plan({ targets: [target('old', 'r.example/old:1', { purge: true }), target('new', 'r.example/new:1')] });
    const planned = p.nodeImageSets.get('n1')!;
    const spec = decode(nodeImageSetSpecSchema, JSON.parse(JSON.stringify(planned.spec)));
    if (!spec.ok) throw new Error(spec.errors.join('; '));
    const raw = {
      metadata: { name: 'n1', uid: 'nis-1', generation: 1, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: planned.nodeUid }] },
      spec: spec.value,
      status: { removals: [{ image: 'r.example/old:1', result: 'Kept', reason: 'InUse', message: 'used by container web', time: '2026-01-01T00:00:00Z' }] },
    };
    const view = decodeNodeImageSet(raw)!;
    expect(view.specDigest).to.equal(planned.digest);
    expect(view.removals?.get('r.example/old:1')).to.deep.equal({ result: 'Kept', reason: 'InUse', message: 'used by container web' });
    const again = plan({ targets: [target('old', 'r.example/old:1', { purge: true }), target('new', 'r.example/new:1')], current: new Map([['n1', view]]) });
    expect(again.nodeImageSets.get('n1')!.digest).to.equal(view.specDigest);
    // The same object is returned when nothing kept changed (a heartbeat).
    expect(decodeNodeImageSet(raw, view)).to.equal(view);
  });

  it('drops the removal when the target goes back to Present', () => {
    const absent = plan({ targets: [target('a', 'r.example/app:1', { purge: true })] });
    const present = plan({ targets: [target('a', 'r.example/app:1')] });
    expect(absent.nodeImageSets.get('n1')!.spec.images).to.deep.equal([]);
    expect(present.nodeImageSets.get('n1')!.spec.removals).to.deep.equal([]);
    expect(present.nodeImageSets.get('n1')!.spec.images.map((e) => e.image)).to.deep.equal(['r.example/app:1']);
    // NotReady nodes get pulls no more than before.
    expect(present.nodeImageSets.has('n2')).to.equal(false);
  });
});
