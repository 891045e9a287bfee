// The warm-up barrier loop on a real API server with the chart's controller token: Nodes registered with
// kwarm's taint, NodeImageSets written as the planner would (gating entries flagged) and their status as
// the agent would (with the agent's own pod-bound token). The taint comes off when the gating images are
// Completed, at once when nothing gates the node, and at the timeout with a Warning Event when the agent
// never reports or no NodeImageSet exists.
import { expect } from 'chai';
import winston from 'winston';
import { DEFAULT_WARMUP_TAINT_KEY } from '../../../api/v1alpha1/index.ts';
import { BarrierLoop } from '../../../controller/warmup/barrier.ts';
import { warmupOptions } from '../../../controller/warmup/barrier-decision.ts';
import { nodePaths, type BarrierWrites } from '../../../controller/warmup/node-writer.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { createNode, deleteNodes, reportImages } from '../../../local-cluster/cluster-fixtures.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { agentKubeconfig, controllerKubeconfig } from '../../../local-cluster/kwarm-access.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const KEY = DEFAULT_WARMUP_TAINT_KEY;
const TIMEOUT_MS = 20_000;
const A = '127.0.0.1:5999/warm/a:v1';
const B = '127.0.0.1:5999/warm/b:v1';
const OTHER = '127.0.0.1:5999/warm/other:v1';
const WARM = 'warm-loop-pulls';
const NOTHING = 'warm-loop-nothing';
const SILENT = 'warm-loop-silent';
const UNPLANNED = 'warm-loop-unplanned';
const PLAIN = 'warm-loop-plain';
const NODES = [WARM, NOTHING, SILENT, UNPLANNED];

interface RawNode {
  metadata: { uid: string; creationTimestamp: string };
  spec: { taints?: { key: string; effect: string }[] };
  status: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

describe('controller/warmup barrier loop', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let kwarm: KubeClient;
  const ac = new AbortController();
  const signal = ac.signal;
  let running: Promise<void> | undefined;
  const writes: [string, BarrierWrites][] = [];

  const raw = async (name: string): Promise<RawNode> => await admin.get(nodePaths.node(name), signal) as RawNode;
  const tainted = async (name: string): Promise<boolean> => (await raw(name)).spec.taints?.some((t) => t.key === KEY) ?? false;
  const warmCondition = async (name: string) => (await raw(name)).status.conditions?.find((c) => c.type === 'ImagesWarm');
  const events = async (name: string, reason: string): Promise<string[]> => {
    const { stdout } = await cp.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.kind=Node,involvedObject.name=${name},reason=${reason}`,
      '-o', 'jsonpath={range .items[*]}{.type}|{.message}{"\\n"}{end}']);
    return stdout.split('\n').filter((l) => l !== '');
  };
  /** The NodeImageSet the planner would write: owned by the node, `gating` entries flagged, `gatingImages` counting them. */
  const planned = async (node: string, images: { image: string; gates: boolean }[]): Promise<void> => {
    const { metadata } = await raw(node);
    await admin.create('/apis/kwarm.io/v1alpha1/nodeimagesets', {
      apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet',
      metadata: { name: node, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid: metadata.uid }] },
      spec: {
        images: images.map((i) => ({ image: i.image, ...(i.gates ? { gatesNode: true } : {}) })),
        gatingImages: images.filter((i) => i.gates).length,
      },
    }, signal);
  };

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    kwarm = new KubeClient(cp.kubeConfig(await controllerKubeconfig(cp)));
    const loop = new BarrierLoop({
      client: kwarm, log: winston.createLogger({ silent: true }), instance: 'warmup-test',
      warmup: warmupOptions(KEY, `${TIMEOUT_MS / 1000}s`), now: Date.now,
      onWrite: (node, w) => { writes.push([node, w]); },
    });
    running = loop.run(signal);
    await waitFor(() => loop.synced, { what: 'the barrier caches to sync' });
  });

  after(async () => {
    ac.abort();
    await running;
    await deleteNodes(admin, [...NODES, PLAIN], new AbortController().signal);
    admin.close();
    kwarm.close();
  });

  it('keeps the taint while gating images pull, and removes it once they are Completed', async () => {
    await createNode(admin, { name: WARM, taints: [{ key: KEY, effect: 'NoSchedule' }] }, signal);
    await planned(WARM, [{ image: A, gates: true }, { image: B, gates: true }, { image: OTHER, gates: false }]);
    const agent = new KubeClient(cp.kubeConfig(await agentKubeconfig(cp, WARM)));
    try {
      await reportImages(agent, WARM, { [A]: 'Completed', [B]: 'Pulling', [OTHER]: 'Pulling' }, signal);
      const holding = await waitFor(async () => {
        const c = await warmCondition(WARM);
        return c?.status === 'False' && c.message?.startsWith('1 of 2') === true ? c : undefined;
      }, { what: 'ImagesWarm False with 1 of 2 gating images' });
      expect(holding.reason).to.be.oneOf(['Pulling', 'AgentNotReporting']);
      expect(await tainted(WARM)).to.equal(true);

      // A non-gating image still pulling does not hold the node.
      await reportImages(agent, WARM, { [B]: 'Completed' }, signal);
      await waitFor(async () => !(await tainted(WARM)), { what: 'the taint to come off' });
    } finally {
      agent.close();
    }
    expect(await warmCondition(WARM)).to.include({ status: 'True', reason: 'ImagesPresent' });
    expect(await events(WARM, 'WarmupComplete')).to.deep.equal(['Normal|all 2 gating images are present on the node']);
  });

  it('removes the taint at once when nothing gates the node, and never writes a new node without the taint', async () => {
    await createNode(admin, { name: PLAIN, taints: [{ key: 'example.com/other', effect: 'NoSchedule' }] }, signal);
    await planned(PLAIN, [{ image: A, gates: true }]);
    await createNode(admin, { name: NOTHING, taints: [{ key: KEY, effect: 'NoSchedule' }] }, signal);
    await planned(NOTHING, [{ image: OTHER, gates: false }]);
    await waitFor(async () => !(await tainted(NOTHING)), { what: 'the taint to come off', timeoutMs: TIMEOUT_MS / 2 });
    expect(await warmCondition(NOTHING)).to.include({ status: 'True', reason: 'NoGatingImages' });
    // The plain node was created first, so the loop has seen it by now.
    expect(await warmCondition(PLAIN)).to.equal(undefined);
    expect(writes.map(([n]) => n)).to.not.include(PLAIN);
  });

  it('removes the taint at the timeout when the agent never reports or the node was never planned, with a Warning Event', async () => {
    for (const name of [SILENT, UNPLANNED]) await createNode(admin, { name, taints: [{ key: KEY, effect: 'NoSchedule' }] }, signal);
    await planned(SILENT, [{ image: A, gates: true }]);
    const created = Math.max(...await Promise.all([SILENT, UNPLANNED].map(async (n) => Date.parse((await raw(n)).metadata.creationTimestamp))));
    // Held until the timeout, with the reason in the condition.
    // The loop may see the silent node before its NodeImageSet (NotPlanned); the reason follows the NodeImageSet.
    await waitFor(async () => (await warmCondition(SILENT))?.reason === 'AgentNotReporting', { what: 'AgentNotReporting on the silent node' });
    expect(await waitFor(async () => (await warmCondition(UNPLANNED))?.reason, { what: 'a condition on the unplanned node' })).to.equal('NotPlanned');
    await waitFor(() => Date.now() > created + TIMEOUT_MS / 2, { what: 'half the timeout', timeoutMs: TIMEOUT_MS });
    expect(await tainted(SILENT)).to.equal(true);
    expect(await tainted(UNPLANNED)).to.equal(true);

    for (const name of [SILENT, UNPLANNED]) {
      await waitFor(async () => !(await tainted(name)), { what: `the taint of ${name} to come off at the timeout`, timeoutMs: TIMEOUT_MS * 2 });
      // creationTimestamp has whole seconds: the lift is at most a second early by our clock.
      expect(Date.now()).to.be.greaterThan(created + TIMEOUT_MS - 1000);
      expect(await warmCondition(name)).to.include({ status: 'True', reason: 'TimedOut' });
      const [event, ...more] = await events(name, 'WarmupTimedOut');
      expect(more).to.deep.equal([]);
      expect(event).to.match(/^Warning\|warm-up timeout of 20s passed before the images were warm \((AgentNotReporting|NotPlanned): /u);
    }
    // One condition write per state and one taint removal per node: nothing repeated.
    const taintWrites = writes.filter(([, w]) => w.taint).map(([n]) => n).sort();
    expect(taintWrites).to.deep.equal([...NODES].sort());
    const eventWrites = writes.filter(([, w]) => w.event).map(([n]) => n).sort();
    expect(eventWrites).to.deep.equal([...NODES].sort());
  });
});
