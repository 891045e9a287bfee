// --warmup-condition-on-new-nodes as kwarm-controller runs it: new nodes without kwarm's taint get the ImagesWarm
// condition, for readiness gates that use it (Node Readiness Controller). A new node whose gating image pulls
// reads False until its agent (played with the agent's own node-bound token) reports it Completed; a new node
// that nothing targets reads True within seconds, through an empty NodeImageSet, not at the timeout. No taint
// is ever added or removed.
import { expect } from 'chai';
import { IMAGES_WARM_CONDITION } from '../../../api/v1alpha1/index.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { createNode, deleteNodes, deployment, getNodeImageSet, reportImages } from '../../../local-cluster/cluster-fixtures.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { agentKubeconfig } from '../../../local-cluster/kwarm-access.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const NS = 'warmup-new-nodes';
const POOL = 'warmup-new-nodes';
const POLICY = 'warmup-new-nodes';
const IMAGE = '127.0.0.1:5999/warm/new-nodes:v1';
const GATED = 'new-gated';
const IDLE = 'new-idle';
const NODES = [GATED, IDLE];

interface RawNode {
  spec: { taints?: { key: string }[] };
  status: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

describe('controller: --warmup-condition-on-new-nodes wired into kwarm-controller', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let controller: ControllerProcess | undefined;
  const ac = new AbortController();
  const signal = ac.signal;

  const raw = async (name: string): Promise<RawNode> => await admin.get(`/api/v1/nodes/${name}`, signal) as RawNode;
  const warm = async (name: string) => (await raw(name)).status.conditions?.find((c) => c.type === IMAGES_WARM_CONDITION);

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    await cp.kubectl(['create', 'namespace', NS]);
    // Long enough that a True before it can only come from the images (or from having none).
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(cp), name: 'controller-warmup-new-nodes',
      args: ['--resync-period=2s', '--warmup-timeout=5m', '--warmup-condition-on-new-nodes'],
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

  it('says False while a new node\'s gating image pulls and True once it is Completed, without a taint', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
        spec: { selector: { matchLabels: { 'kwarm.io/enabled': 'true' }, namespaces: [NS] }, gateNewNodes: true },
      }),
    });
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment(NS, 'web', IMAGE, { pool: POOL })) });
    await waitFor(async () => await admin.get(`/apis/kwarm.io/v1alpha1/namespaces/${NS}/prepullimages/deployment.web.app`, signal).then(() => true, () => false),
      { what: 'the Deployment\'s PrePullImage', timeoutMs: 60_000 });
    await createNode(admin, { name: GATED, labels: { 'kwarm-test/pool': POOL } }, signal);

    const nis = await waitFor(async () => {
      const n = await getNodeImageSet(admin, GATED, signal);
      return n?.spec.images.some((e) => e.image === IMAGE) === true ? n : undefined;
    }, { what: 'the new node\'s NodeImageSet to want the image', timeoutMs: 60_000 });
    expect(nis.spec.gatingImages).to.equal(1);
    const agent = new KubeClient(cp.kubeConfig(await agentKubeconfig(cp, GATED)));
    try {
      await reportImages(agent, GATED, { [IMAGE]: 'Pulling' }, signal);
      const holding = await waitFor(async () => {
        const c = await warm(GATED);
        if (c?.status === 'True') throw new Error(`ImagesWarm True before the image was pulled: ${c.reason ?? ''}: ${c.message ?? ''}`);
        return c?.status === 'False' && c.message?.startsWith('0 of 1') === true ? c : undefined;
      }, { what: 'ImagesWarm False with 0 of 1 gating images present' });
      expect(holding.reason).to.be.oneOf(['Pulling', 'AgentNotReporting']);
      await reportImages(agent, GATED, { [IMAGE]: 'Completed' }, signal);
      await waitFor(async () => (await warm(GATED))?.status === 'True', { what: 'ImagesWarm True once the image is Completed' });
    } finally {
      agent.close();
    }
    expect(await warm(GATED)).to.include({ status: 'True', reason: 'ImagesPresent' });
    expect((await raw(GATED)).spec.taints ?? []).to.deep.equal([]);
  });

  it('says True within seconds on a new node that nothing targets, through an empty NodeImageSet', async () => {
    const t = Date.now();
    await createNode(admin, { name: IDLE, labels: { 'kwarm-test/pool': 'elsewhere' } }, signal);
    const c = await waitFor(async () => {
      const w = await warm(IDLE);
      return w?.status === 'True' ? w : undefined;
    }, { what: 'ImagesWarm True on the idle node', timeoutMs: 60_000 });
    expect(c).to.include({ reason: 'NoGatingImages' });
    expect(Date.now() - t).to.be.below(60_000);
    const nis = await getNodeImageSet(admin, IDLE, signal);
    expect(nis?.spec.images).to.deep.equal([]);
    expect((await raw(IDLE)).spec.taints ?? []).to.deep.equal([]);
  });
});
