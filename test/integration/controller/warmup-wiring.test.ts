// The warm-up barrier as kwarm-controller runs it: the real controller process (chart RBAC token) plans a
// policy with gateNewNodes onto a node registered with kwarm's taint, which no workload tolerates, and lifts
// the taint once the node's agent (played with the agent's own node-bound token) reports the image
// Completed. A warming node with nothing to pull is released after the 5 s settle; a node without the taint is
// never written. With --warmup-condition-on-new-nodes, new nodes without the taint get the ImagesWarm
// condition the same way (for readiness gates that use it), and no taint is ever touched.
import { expect } from 'chai';
import { DEFAULT_WARMUP_TAINT_KEY, IMAGES_WARM_CONDITION } from '../../../api/v1alpha1/index.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { createNode, deleteNodes, deployment, getNodeImageSet, reportImages } from '../../../local-cluster/cluster-fixtures.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { agentKubeconfig } from '../../../local-cluster/kwarm-access.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const KEY = DEFAULT_WARMUP_TAINT_KEY;

interface RawNode {
  spec: { taints?: { key: string }[] };
  status: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

interface Wired {
  cp: ControlPlane;
  admin: KubeClient;
  readonly signal: AbortSignal;
  raw(name: string): Promise<RawNode>;
  warm(name: string): Promise<NonNullable<RawNode['status']['conditions']>[number] | undefined>;
  /** The policy (gateNewNodes) over the suite's namespace, and a Deployment in it whose pods go to `pool`. */
  applyPolicyAndDeployment(image: string, pool: string): Promise<void>;
  /** Waits until the node's NodeImageSet wants `image`, and returns it. */
  nodeImageSetWanting(node: string, image: string): Promise<NonNullable<Awaited<ReturnType<typeof getNodeImageSet>>>>;
  /** Reports the image Pulling as the node's agent would, then waits for ImagesWarm False with 0 of 1 present. */
  reportPulling(node: string, image: string): Promise<NonNullable<RawNode['status']['conditions']>[number]>;
}

/** Hooks for a suite: a kwarm-controller with `args` (warm-up timeout 5m) over namespace and policy `name`. */
function wiredController(name: string, nodes: readonly string[], args: readonly string[]): Wired {
  let controller: ControllerProcess | undefined;
  const ac = new AbortController();
  const w: Wired = {
    cp: undefined as unknown as ControlPlane,
    admin: undefined as unknown as KubeClient,
    signal: ac.signal,
    raw: async (node) => await w.admin.get(`/api/v1/nodes/${node}`, ac.signal) as RawNode,
    warm: async (node) => (await w.raw(node)).status.conditions?.find((c) => c.type === IMAGES_WARM_CONDITION),
    applyPolicyAndDeployment: async (image, pool) => {
      await w.cp.kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name },
          spec: { selector: { matchLabels: { 'kwarm.io/enabled': 'true' }, namespaces: [name] }, gateNewNodes: true },
        }),
      });
      // The pods tolerate nothing, kwarm's taint included: a warming node must still get their image.
      await w.cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment(name, 'web', image, { pool })) });
    },
    nodeImageSetWanting: (node, image) => waitFor(async () => {
      const n = await getNodeImageSet(w.admin, node, ac.signal);
      return n?.spec.images.some((e) => e.image === image) === true ? n : undefined;
    }, { what: `${node}'s NodeImageSet to want ${image}`, timeoutMs: 60_000 }),
    reportPulling: async (node, image) => {
      const agent = new KubeClient(w.cp.kubeConfig(await agentKubeconfig(w.cp, node)));
      try {
        await reportImages(agent, node, { [image]: 'Pulling' }, ac.signal);
      } finally {
        agent.close();
      }
      return await waitFor(async () => {
        const c = await w.warm(node);
        // Lifted already: it stays lifted, so say how instead of waiting out the timeout.
        if (c?.status === 'True') throw new Error(`ImagesWarm True before the image was pulled: ${c.reason ?? ''}: ${c.message ?? ''}`);
        return c?.status === 'False' && c.message?.startsWith('0 of 1') === true ? c : undefined;
      }, { what: 'ImagesWarm False with 0 of 1 gating images present' });
    },
  };

  before(async () => {
    w.cp = await sharedControlPlane();
    await installCrds(w.cp);
    w.admin = new KubeClient(w.cp.kubeConfig());
    await w.cp.kubectl(['create', 'namespace', name]);
    // The timeout is long enough that a lift before it can only come from the images (or from having none).
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(w.cp), name: `controller-${name}`, args: ['--resync-period=2s', '--warmup-timeout=5m', ...args],
    });
  });

  after(async () => {
    await controller?.stop();
    await w.cp.kubectl(['delete', 'prepullpolicy', name, '--ignore-not-found'], { allowFailure: true });
    await w.cp.kubectl(['delete', 'namespace', name, '--wait=false'], { allowFailure: true });
    await deleteNodes(w.admin, nodes, new AbortController().signal);
    ac.abort();
    w.admin.close();
  });
  return w;
}

/** Reports `phase` for the image as the node's agent would (its own node-bound token). */
async function report(w: Wired, node: string, image: string, phase: 'Completed'): Promise<void> {
  const agent = new KubeClient(w.cp.kubeConfig(await agentKubeconfig(w.cp, node)));
  try {
    await reportImages(agent, node, { [image]: phase }, w.signal);
  } finally {
    agent.close();
  }
}

describe('controller: the warm-up barrier wired into kwarm-controller', function () {
  this.timeout(240_000);
  const NS = 'warmup-wiring';
  const POOL = 'warmup-wiring';
  const IMAGE = '127.0.0.1:5999/warm/wired:v1';
  const WARMING = 'wire-warming';
  const IDLE = 'wire-idle';
  const PLAIN = 'wire-plain';
  const w = wiredController(NS, [WARMING, IDLE, PLAIN], []);
  const tainted = async (name: string): Promise<boolean> => (await w.raw(name)).spec.taints?.some((t) => t.key === KEY) ?? false;

  it('keeps the taint while the gating image pulls and lifts it (ImagesWarm=True) once Completed', async () => {
    const { admin, signal } = w;
    await w.applyPolicyAndDeployment(IMAGE, POOL);
    await createNode(admin, { name: PLAIN, labels: { 'kwarm-test/pool': POOL } }, signal);
    await createNode(admin, { name: WARMING, labels: { 'kwarm-test/pool': POOL }, taints: [{ key: KEY, effect: 'NoSchedule' }] }, signal);

    const nis = await w.nodeImageSetWanting(WARMING, IMAGE);
    expect(nis.spec.images.find((e) => e.image === IMAGE)?.gatesNode).to.equal(true);
    expect(nis.spec.gatingImages).to.equal(1);
    const ppi = await admin.get(`/apis/kwarm.io/v1alpha1/namespaces/${NS}/prepullimages/deployment.web.app`, signal) as { spec: { gateNewNodes?: boolean } };
    expect(ppi.spec.gateNewNodes).to.equal(true);

    const holding = await w.reportPulling(WARMING, IMAGE);
    expect(holding.reason).to.be.oneOf(['Pulling', 'AgentNotReporting']);
    expect(await tainted(WARMING)).to.equal(true);

    await report(w, WARMING, IMAGE, 'Completed');
    await waitFor(async () => !(await tainted(WARMING)), { what: 'the taint to come off once the image is Completed' });
    expect(await w.warm(WARMING)).to.include({ status: 'True', reason: 'ImagesPresent' });
    // The plain node got the image too, and no Node write.
    expect((await getNodeImageSet(admin, PLAIN, signal))?.spec.images.map((e) => e.image)).to.include(IMAGE);
    expect(await w.warm(PLAIN)).to.equal(undefined);
  });

  it('releases a warming node that nothing targets, through an empty NodeImageSet, once it has settled (5 s)', async () => {
    await createNode(w.admin, { name: IDLE, labels: { 'kwarm-test/pool': 'elsewhere' }, taints: [{ key: KEY, effect: 'NoSchedule' }] }, w.signal);
    await waitFor(async () => !(await tainted(IDLE)), { what: 'the idle node\'s taint to come off', timeoutMs: 60_000 });
    expect(await w.warm(IDLE)).to.include({ status: 'True', reason: 'NoGatingImages' });
    const nis = await getNodeImageSet(w.admin, IDLE, w.signal);
    expect(nis?.spec.images).to.deep.equal([]);
    expect(nis?.spec.gatingImages).to.equal(undefined);
  });
});

describe('controller: --warmup-condition-on-new-nodes wired into kwarm-controller', function () {
  this.timeout(240_000);
  const NS = 'warmup-new-nodes';
  const POOL = 'warmup-new-nodes';
  const IMAGE = '127.0.0.1:5999/warm/new-nodes:v1';
  const GATED = 'new-gated';
  const IDLE = 'new-idle';
  const w = wiredController(NS, [GATED, IDLE], ['--warmup-condition-on-new-nodes']);

  it('says False while a new node\'s gating image pulls and True once it is Completed, without a taint', async () => {
    const { admin, signal } = w;
    await w.applyPolicyAndDeployment(IMAGE, POOL);
    await createNode(admin, { name: GATED, labels: { 'kwarm-test/pool': POOL } }, signal);
    const nis = await w.nodeImageSetWanting(GATED, IMAGE);
    expect(nis.spec.gatingImages).to.equal(1);
    const holding = await w.reportPulling(GATED, IMAGE);
    expect(holding.reason).to.be.oneOf(['Pulling', 'AgentNotReporting']);
    await report(w, GATED, IMAGE, 'Completed');
    await waitFor(async () => (await w.warm(GATED))?.status === 'True', { what: 'ImagesWarm True once the image is Completed' });
    expect(await w.warm(GATED)).to.include({ status: 'True', reason: 'ImagesPresent' });
    expect((await w.raw(GATED)).spec.taints ?? []).to.deep.equal([]);
  });

  it('says True within seconds on a new node that nothing targets, through an empty NodeImageSet, not at the timeout', async () => {
    await createNode(w.admin, { name: IDLE, labels: { 'kwarm-test/pool': 'elsewhere' } }, w.signal);
    const c = await waitFor(async () => {
      const warm = await w.warm(IDLE);
      return warm?.status === 'True' ? warm : undefined;
    }, { what: 'ImagesWarm True on the idle node', timeoutMs: 60_000 });
    expect(c).to.include({ reason: 'NoGatingImages' });
    expect((await getNodeImageSet(w.admin, IDLE, w.signal))?.spec.images).to.deep.equal([]);
    expect((await w.raw(IDLE)).spec.taints ?? []).to.deep.equal([]);
  });
});
