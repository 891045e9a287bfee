// The warm-up barrier as kwarm-controller runs it: the real controller process (chart RBAC token) plans a
// policy with gateNewNodes onto a node registered with kwarm's taint, which no workload tolerates, and lifts
// the taint once the node's agent (played with the agent's own node-bound token) reports the image
// Completed. A warming node with nothing to pull is released after the 5 s settle; a node without the taint is never
// written.
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
const NS = 'warmup-wiring';
const POOL = 'warmup-wiring';
const POLICY = 'warmup-wiring';
const IMAGE = '127.0.0.1:5999/warm/wired:v1';
const WARMING = 'wire-warming';
const IDLE = 'wire-idle';
const PLAIN = 'wire-plain';
const NODES = [WARMING, IDLE, PLAIN];

interface RawNode {
  spec: { taints?: { key: string }[] };
  status: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

describe('controller: the warm-up barrier wired into kwarm-controller', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let controller: ControllerProcess | undefined;
  const ac = new AbortController();
  const signal = ac.signal;

  const raw = async (name: string): Promise<RawNode> => await admin.get(`/api/v1/nodes/${name}`, signal) as RawNode;
  const tainted = async (name: string): Promise<boolean> => (await raw(name)).spec.taints?.some((t) => t.key === KEY) ?? false;
  const warm = async (name: string) => (await raw(name)).status.conditions?.find((c) => c.type === IMAGES_WARM_CONDITION);

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    await cp.kubectl(['create', 'namespace', NS]);
    // Long enough that a lift before it can only come from the images (or from having none).
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(cp), name: 'controller-warmup-wiring', args: ['--resync-period=2s', '--warmup-timeout=5m'],
    });
  });

  after(async () => {
    await controller?.stop();
    await cp.kubectl(['delete', 'prepullpolicy', POLICY, '--ignore-not-found'], { allowFailure: true });
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await deleteNodes(admin, NODES, new AbortController().signal);
    ac.abort();
    admin.close();
  });

  it('keeps the taint while the gating image pulls and lifts it (ImagesWarm=True) once Completed', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
        spec: { selector: { matchLabels: { 'kwarm.io/enabled': 'true' }, namespaces: [NS] }, gateNewNodes: true },
      }),
    });
    // The pods tolerate nothing, kwarm's taint included: the warming node must still get their image.
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment(NS, 'web', IMAGE, { pool: POOL })) });
    await createNode(admin, { name: PLAIN, labels: { 'kwarm-test/pool': POOL } }, signal);
    await createNode(admin, { name: WARMING, labels: { 'kwarm-test/pool': POOL }, taints: [{ key: KEY, effect: 'NoSchedule' }] }, signal);

    const nis = await waitFor(async () => {
      const n = await getNodeImageSet(admin, WARMING, signal);
      return n?.spec.images.some((e) => e.image === IMAGE) === true ? n : undefined;
    }, { what: 'the warming node\'s NodeImageSet to want the image', timeoutMs: 60_000 });
    expect(nis.spec.images.find((e) => e.image === IMAGE)?.gatesNode).to.equal(true);
    expect(nis.spec.gatingImages).to.equal(1);
    const ppi = await admin.get(`/apis/kwarm.io/v1alpha1/namespaces/${NS}/prepullimages/deployment.web.app`, signal) as { spec: { gateNewNodes?: boolean } };
    expect(ppi.spec.gateNewNodes).to.equal(true);

    const agent = new KubeClient(cp.kubeConfig(await agentKubeconfig(cp, WARMING)));
    try {
      await reportImages(agent, WARMING, { [IMAGE]: 'Pulling' }, signal);
      const holding = await waitFor(async () => {
        const c = await warm(WARMING);
        // Lifted already: it stays lifted, so say how instead of waiting out the timeout.
        if (c?.status === 'True') throw new Error(`the barrier lifted before the image was pulled: ${c.reason ?? ''}: ${c.message ?? ''}`);
        return c?.status === 'False' && c.message?.startsWith('0 of 1') === true ? c : undefined;
      }, { what: 'ImagesWarm False with 0 of 1 gating images present' });
      expect(holding.reason).to.be.oneOf(['Pulling', 'AgentNotReporting']);
      expect(await tainted(WARMING)).to.equal(true);

      await reportImages(agent, WARMING, { [IMAGE]: 'Completed' }, signal);
      await waitFor(async () => !(await tainted(WARMING)), { what: 'the taint to come off once the image is Completed' });
    } finally {
      agent.close();
    }
    expect(await warm(WARMING)).to.include({ status: 'True', reason: 'ImagesPresent' });
    // The plain node got the image too, and no Node write.
    expect((await getNodeImageSet(admin, PLAIN, signal))?.spec.images.map((e) => e.image)).to.include(IMAGE);
    expect(await warm(PLAIN)).to.equal(undefined);
  });

  it('releases a warming node that nothing targets, through an empty NodeImageSet, once it has settled (5 s)', async () => {
    await createNode(admin, { name: IDLE, labels: { 'kwarm-test/pool': 'elsewhere' }, taints: [{ key: KEY, effect: 'NoSchedule' }] }, signal);
    await waitFor(async () => !(await tainted(IDLE)), { what: 'the idle node\'s taint to come off', timeoutMs: 60_000 });
    expect(await warm(IDLE)).to.include({ status: 'True', reason: 'NoGatingImages' });
    const nis = await getNodeImageSet(admin, IDLE, signal);
    expect(nis?.spec.images).to.deep.equal([]);
    expect(nis?.spec.gatingImages).to.equal(undefined);
  });
});
