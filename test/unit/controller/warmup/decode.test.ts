import { expect } from 'chai';
import type { NodeView } from '../../../../controller/plan/node-eligibility.ts';
import { decodeNode } from '../../../../controller/sources/decode.ts';
import { decodeWarmupImageSet, decodeWarmupNode, nodeWarmsWithoutTaint, withoutWarmupTaint } from '../../../../controller/warmup/decode.ts';

const KEY = 'kwarm.io/warming';

const rawNode = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'n1', uid: 'u1', creationTimestamp: '2026-01-01T10:00:00Z', labels: { a: 'b' } },
  spec: { taints: [{ key: KEY, effect: 'NoSchedule' }, { key: 'x', effect: 'NoExecute', value: 'v', timeAdded: '2026-01-01T10:01:00Z' }, { effect: 'NoSchedule' }] },
  status: {
    conditions: [
      { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok' },
      { type: 'ImagesWarm', status: 'False', reason: 'Pulling', message: '0 of 1', lastTransitionTime: '2026-01-01T10:00:05Z' },
    ],
  },
};

describe('controller/warmup/decode', () => {
  it('keeps a Node\'s name, uid, creation, well-formed taints, Ready and ImagesWarm', () => {
    expect(decodeWarmupNode(rawNode)).to.deep.equal({
      name: 'n1', uid: 'u1', createdAt: '2026-01-01T10:00:00Z',
      taints: [{ key: KEY, effect: 'NoSchedule' }, { key: 'x', effect: 'NoExecute', value: 'v', timeAdded: '2026-01-01T10:01:00Z' }],
      ready: true,
      imagesWarm: { status: 'False', reason: 'Pulling', message: '0 of 1', lastTransitionTime: '2026-01-01T10:00:05Z' },
    });
    expect(decodeWarmupNode({ metadata: { name: 'n1' } })).to.equal(undefined);
    expect(decodeWarmupNode({ ...rawNode, status: {} })).to.include({ ready: false, imagesWarm: undefined });
  });

  it('keeps a NodeImageSet\'s owner, gating entries with their phases, gatingImages and heartbeat', () => {
    const view = decodeWarmupImageSet({
      metadata: { name: 'n1', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u1' }] },
      spec: { gatingImages: 3, images: [{ image: 'a', round: 2, gatesNode: true }, { image: 'b' }, { image: 'c', gatesNode: true }] },
      status: { heartbeatTime: '2026-01-01T10:02:00Z', images: [{ image: 'a', phase: 'Completed', round: 2 }, { image: 'b', phase: 'Completed' }, { image: 'c', phase: 'Bogus' }] },
    });
    expect(view).to.not.equal(undefined);
    expect(view?.ownerUid).to.equal('u1');
    expect(view?.gatingImages).to.equal(3);
    expect(view?.gating).to.deep.equal([{ image: 'a', round: 2 }, { image: 'c', round: 0 }]);
    expect([...(view?.progress ?? [])]).to.deep.equal([['a', { phase: 'Completed', round: 2 }]]);
    expect(view?.heartbeatTime).to.equal('2026-01-01T10:02:00Z');
    expect(decodeWarmupImageSet({ metadata: { name: 'n1' }, spec: {} })).to.deep.include({ ownerUid: undefined, gatingImages: 0, gating: [] });
  });

  it('counts a node without the taint as warming while it is younger than the window and not ImagesWarm True, or while its ImagesWarm is False', () => {
    const created = '2026-01-01T10:00:00Z';
    const t0 = Date.parse(created);
    const at = (warm?: string): NodeView => decodeNode({
      metadata: { name: 'n1', uid: 'u1', creationTimestamp: created },
      status: { conditions: [{ type: 'Ready', status: 'True' }, ...(warm !== undefined ? [{ type: 'ImagesWarm', status: warm }] : [])] },
    })!;
    expect(nodeWarmsWithoutTaint(at(), t0 + 1000, 60_000)).to.equal(true);
    expect(nodeWarmsWithoutTaint(at(), t0 + 60_000, 60_000)).to.equal(false);
    expect(nodeWarmsWithoutTaint(at('True'), t0 + 1000, 60_000)).to.equal(false);
    expect(nodeWarmsWithoutTaint(at('False'), t0 + 120_000, 60_000)).to.equal(true);
    expect(nodeWarmsWithoutTaint(decodeNode({ metadata: { name: 'n2' } })!, t0, 60_000)).to.equal(false);
  });

  it('shows the planner a warming node without kwarm\'s taint, the same object each time', () => {
    const warming: NodeView = { metadata: { name: 'n1' }, spec: { unschedulable: false, taints: [{ key: KEY, effect: 'NoSchedule' }, { key: 'gpu', effect: 'NoSchedule' }] } };
    const view = withoutWarmupTaint(warming, KEY);
    expect(view.spec).to.deep.equal({ unschedulable: false, taints: [{ key: 'gpu', effect: 'NoSchedule' }] });
    expect(withoutWarmupTaint(warming, KEY)).to.equal(view);
    const only: NodeView = { metadata: { name: 'n2' }, spec: { taints: [{ key: KEY, effect: 'NoSchedule' }] } };
    expect(withoutWarmupTaint(only, KEY).spec).to.deep.equal({});
    const plain: NodeView = { metadata: { name: 'n3' }, spec: { taints: [{ key: 'gpu', effect: 'NoSchedule' }] } };
    expect(withoutWarmupTaint(plain, KEY)).to.equal(plain);
  });

  it('shows the planner a Ready warming node without the start-up taints that go away on their own (not-ready once Ready, the cloud provider\'s)', () => {
    const notReady = { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' };
    const uninitialized = { key: 'node.cloudprovider.kubernetes.io/uninitialized', value: 'true', effect: 'NoSchedule' };
    const notReadyExecute = { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute', timeAdded: '2026-01-01T10:00:00Z' };
    const unreachable = { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' };
    const taints = [{ key: KEY, effect: 'NoSchedule' }, notReady, notReadyExecute, unreachable, uninitialized, { key: 'gpu', effect: 'NoSchedule' }];
    const ready: NodeView = { metadata: { name: 'n1' }, spec: { taints }, status: { conditions: [{ type: 'Ready', status: 'True' }] } };
    expect(withoutWarmupTaint(ready, KEY).spec?.taints).to.deep.equal([{ key: 'gpu', effect: 'NoSchedule' }]);
    // Not Ready yet: the taint is still true, the node keeps it.
    const starting: NodeView = { metadata: { name: 'n2' }, spec: { taints }, status: { conditions: [{ type: 'Ready', status: 'False' }] } };
    expect(withoutWarmupTaint(starting, KEY).spec?.taints).to.deep.equal([notReady, notReadyExecute, unreachable, { key: 'gpu', effect: 'NoSchedule' }]);
    // A node that is not warming is seen as it is.
    const plain: NodeView = { metadata: { name: 'n3' }, spec: { taints: [notReady] }, status: { conditions: [{ type: 'Ready', status: 'True' }] } };
    expect(withoutWarmupTaint(plain, KEY)).to.equal(plain);
  });
});
