// The warm-up barrier's Node writes on a real API server, with the chart's controller ServiceAccount token,
// RBAC and admission policy: the writer removes only kwarm's taint and writes only ImagesWarm, does not
// overwrite a concurrent taint change, writes nothing when nothing changes; every other Node write the
// token tries is refused.
import { expect } from 'chai';
import { DEFAULT_WARMUP_TAINT_KEY } from '../../../api/v1alpha1/index.ts';
import { decideBarrier, warmupOptions, type WarmupNodeView } from '../../../controller/warmup/barrier-decision.ts';
import { decodeWarmupNode } from '../../../controller/warmup/decode.ts';
import { NodeWriter, nodePaths } from '../../../controller/warmup/node-writer.ts';
import { KubeApiError, KubeClient } from '../../../lib/kube-client.ts';
import { createNode, deleteNodes } from '../../../local-cluster/cluster-fixtures.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { controllerKubeconfig } from '../../../local-cluster/kwarm-access.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const KEY = DEFAULT_WARMUP_TAINT_KEY;
// The settle after a node joins is the decision's (unit tests); here the writes are what is tested.
const OPTS = { ...warmupOptions(KEY, '10m'), settleMs: 0 };
const FOREIGN = { key: 'example.com/gpu', value: 'true', effect: 'NoSchedule' };
const NODES = ['warm-writer-1', 'warm-writer-2', 'warm-writer-3'] as const;

interface RawNode {
  metadata: { resourceVersion: string; labels?: Record<string, string> };
  spec: { taints?: { key: string; effect: string; value?: string }[]; unschedulable?: boolean };
  status: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

describe('controller/warmup node writer with the controller token', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let kwarm: KubeClient;
  const ac = new AbortController();
  const signal = ac.signal;

  const raw = async (name: string): Promise<RawNode> => await admin.get(nodePaths.node(name), signal) as RawNode;
  const view = async (name: string): Promise<WarmupNodeView> => {
    const v = decodeWarmupNode(await admin.get(nodePaths.node(name), signal));
    if (v === undefined) throw new Error(`node ${name} does not decode`);
    return v;
  };
  /** The API error of a write that must be refused. */
  const refused = async (write: () => Promise<unknown>): Promise<KubeApiError> => {
    try {
      await write();
    } catch (err) {
      if (err instanceof KubeApiError) return err;
      throw err;
    }
    throw new Error('the write was accepted');
  };

  before(async () => {
    cp = await sharedControlPlane();
    admin = new KubeClient(cp.kubeConfig());
    kwarm = new KubeClient(cp.kubeConfig(await controllerKubeconfig(cp)));
    for (const name of NODES) {
      await createNode(admin, { name, taints: [{ key: KEY, effect: 'NoSchedule' }, FOREIGN], labels: { 'kwarm-test/suite': 'warm-writer' } }, signal);
    }
    // The policy binding takes effect asynchronously: wait until a forbidden label change is refused.
    await waitFor(async () => {
      try {
        await kwarm.patch(nodePaths.node(NODES[2]), 'merge', { metadata: { labels: { probe: 'x' } } }, signal);
        await admin.patch(nodePaths.node(NODES[2]), 'json', [{ op: 'remove', path: '/metadata/labels/probe' }], signal);
        return false;
      } catch (err) {
        return err instanceof KubeApiError && err.status === 403 && err.message.includes('labels');
      }
    }, { what: 'the controller node admission policy to take effect', timeoutMs: 30_000 });
  });

  after(async () => {
    await deleteNodes(admin, NODES, signal);
    ac.abort();
    admin.close();
    kwarm.close();
  });

  it('removes only kwarm\'s taint and writes only ImagesWarm, with the Event, then writes nothing more', async () => {
    const writer = new NodeWriter({ client: kwarm, instance: 'test', taintKey: KEY });
    const before = await view(NODES[0]);
    const d = decideBarrier(before, { ownerUid: before.uid, gatingImages: 0, gating: [], progress: new Map(), heartbeatTime: undefined }, Date.now(), OPTS);
    expect(d.removeTaint).to.equal(true);
    expect(await writer.apply(before, d, new Date(), signal)).to.deep.equal({ condition: true, taint: true, event: true });

    const after = await raw(NODES[0]);
    expect(after.spec.taints).to.deep.equal([FOREIGN]);
    expect(after.status.conditions?.map((c) => [c.type, c.status]).sort()).to.deep.equal([['ImagesWarm', 'True'], ['Ready', 'True']]);
    expect(after.status.conditions?.find((c) => c.type === 'ImagesWarm')).to.include({ reason: 'NoGatingImages' });
    const events = await cp.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.kind=Node,involvedObject.name=${NODES[0]},reason=WarmupComplete`, '-o', 'name']);
    expect(events.stdout.trim().split('\n')).to.have.length(1);
    // kubectl wait on the condition, as a readiness gate or a script would.
    await cp.waitFor(`node/${NODES[0]}`, 'condition=ImagesWarm', { timeoutSeconds: 10 });

    // Decided again from what the API now shows: nothing to write.
    const again = decideBarrier(await view(NODES[0]), undefined, Date.now(), OPTS);
    expect(again).to.deep.equal({ removeTaint: false, condition: undefined, event: undefined, recheckAtMs: undefined });
    expect(await writer.apply(await view(NODES[0]), again, new Date(), signal)).to.deep.equal({ condition: false, taint: false, event: false });
    expect((await raw(NODES[0])).metadata.resourceVersion).to.equal(after.metadata.resourceVersion);
  });

  it('refuses to remove the taint from a taint list that changed since it was read, losing no one\'s change', async () => {
    const writer = new NodeWriter({ client: kwarm, instance: 'test', taintKey: KEY });
    const stale = await view(NODES[1]);
    const added = { key: 'example.com/added-meanwhile', effect: 'NoSchedule' };
    await admin.patch(nodePaths.node(NODES[1]), 'json', [{ op: 'add', path: '/spec/taints/-', value: added }], signal);
    const d = { removeTaint: true, condition: undefined, event: undefined, recheckAtMs: undefined };
    const err = await refused(() => writer.apply(stale, d, new Date(), signal));
    expect(err.status).to.be.oneOf([409, 422]);
    expect((await raw(NODES[1])).spec.taints).to.deep.equal([{ key: KEY, effect: 'NoSchedule' }, FOREIGN, added]);
    // From a fresh read it goes through and keeps both foreign taints.
    await writer.apply(await view(NODES[1]), d, new Date(), signal);
    expect((await raw(NODES[1])).spec.taints).to.deep.equal([FOREIGN, added]);
  });

  describe('refuses every other Node write with the controller token', () => {
    const node = NODES[2];
    const forbidden: [string, () => Promise<unknown>, string][] = [
      ['adding a taint', () => kwarm.patch(nodePaths.node(node), 'json', [{ op: 'add', path: '/spec/taints/-', value: { key: 'evil', effect: 'NoExecute' } }], signal), 'only remove its own taint'],
      ['removing a foreign taint', () => kwarm.patch(nodePaths.node(node), 'json', [{ op: 'remove', path: '/spec/taints/1' }], signal), 'only remove its own taint'],
      ['removing every taint, its own included', () => kwarm.patch(nodePaths.node(node), 'merge', { spec: { taints: null } }, signal), 'only remove its own taint'],
      ['changing a label', () => kwarm.patch(nodePaths.node(node), 'merge', { metadata: { labels: { 'kwarm-test/suite': 'other' } } }, signal), 'labels'],
      ['adding an annotation', () => kwarm.patch(nodePaths.node(node), 'merge', { metadata: { annotations: { a: 'b' } } }, signal), 'annotations'],
      ['cordoning the node', () => kwarm.patch(nodePaths.node(node), 'merge', { spec: { unschedulable: true } }, signal), 'spec'],
      ['writing another condition', () => kwarm.patch(nodePaths.nodeStatus(node), 'strategic', { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'Evil', message: 'x' }] } }, signal), 'only write the ImagesWarm condition'],
      ['adding a condition of its own invention', () => kwarm.patch(nodePaths.nodeStatus(node), 'strategic', { status: { conditions: [{ type: 'Evil', status: 'True', reason: 'Evil', message: 'x' }] } }, signal), 'only write the ImagesWarm condition'],
      ['changing capacity', () => kwarm.patch(nodePaths.nodeStatus(node), 'merge', { status: { capacity: { pods: '1000' } } }, signal), 'status other than'],
      ['changing a label through nodes/status', () => kwarm.patch(nodePaths.nodeStatus(node), 'merge', { metadata: { labels: { 'kwarm-test/suite': 'other' } } }, signal), 'labels'],
      ['deleting the node', () => kwarm.delete(nodePaths.node(node), signal), 'forbidden'],
      ['creating a node', () => kwarm.create(nodePaths.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'warm-writer-evil' } }, signal), 'forbidden'],
    ];
    for (const [title, write, says] of forbidden) {
      it(title, async () => {
        const before = await raw(node);
        const err = await refused(write);
        expect(err.status, err.message).to.equal(403);
        expect(err.message).to.include(says);
        const after = await raw(node);
        expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
      });
    }
  });
});
