// Finding 1 of the expert review: a node without a working agent (Windows, virtual or Fargate nodes, an agent
// that crash-loops) held the cluster-wide budget forever, and then nothing was pre-pulled anywhere. Here the
// controller runs with --max-concurrent-pulls=1 and a short --agent-stale-after; of two nodes, the first by
// name has no agent at all and the second has a real agent and containerd. The first node's pair is released
// first and holds the budget only until that node counts as agentless; then the second node gets the image.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { errorText } from '../../../lib/errors.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, getNodeImageSet, getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';

const NO_AGENT = 'f1-a-no-agent';
const WITH_AGENT = 'f1-b-agent';
const POOL = 'finding-1';
const KWARM_NS = 'kwarm-system';
const NS = 'finding-1';
const STALE_S = 8;

describe('finding 1: a node without a working agent does not hold the budget', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let runtime: TestContainerd | undefined;
  let cri: GrpcImageRuntime | undefined;
  let agent: AgentProcess | undefined;
  let controller: ControllerProcess | undefined;
  const ac = new AbortController();
  const signal = ac.signal;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'f1' });
    runtime = await startContainerd({ name: WITH_AGENT, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: runtime.socket });
    // The agentless node looks like a Windows node: Ready, schedulable, and no kwarm-agent ever reports.
    await createNode(admin, { name: NO_AGENT, labels: { 'kwarm-test/pool': POOL } }, signal);
    await createNode(admin, { name: WITH_AGENT, labels: { 'kwarm-test/pool': POOL } }, signal);
    agent = await startAgentProcess({
      nodeName: WITH_AGENT, kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NS, nodeName: WITH_AGENT }), criSocket: runtime.socket,
      namespace: KWARM_NS, verifyInterval: '2s',
    });
    await agent.waitReady();
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(cp, KWARM_NS), namespace: KWARM_NS, name: 'controller-f1',
      args: ['--max-concurrent-pulls=1', `--agent-stale-after=${STALE_S}s`],
    });
    await cp.kubectl(['create', 'namespace', NS]);
  });

  after(async () => {
    await controller?.stop();
    await agent?.dispose();
    cri?.close();
    await runtime?.dispose();
    await registry?.dispose();
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await deleteNodes(admin, [NO_AGENT, WITH_AGENT], signal).catch(() => undefined);
    ac.abort();
    admin.close();
  });

  it('releases to the agentless node first, stops counting it after --agent-stale-after, and the node with an agent pulls', async () => {
    const pushed = await buildAndPushImage(registry!, { repository: 'f1/app', tag: 'v1', layers: [256 * 1024] });
    const started = Date.now();
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'app', namespace: NS },
        spec: { image: pushed.reference, nodes: { selector: { matchLabels: { 'kwarm-test/pool': POOL } } } },
      }),
    });
    // With a budget of 1, the first node by name gets the pair first.
    await waitFor(async () => (await getNodeImageSet(admin, NO_AGENT, signal))?.spec.images.some((e) => e.image === pushed.reference) === true, {
      what: 'the pair released to the agentless node', timeoutMs: 30_000,
    });
    expect((await getNodeImageSet(admin, WITH_AGENT, signal))?.spec.images ?? []).to.deep.equal([]);

    await waitFor(async () => {
      const nis = await getNodeImageSet(admin, WITH_AGENT, signal);
      return nis?.status?.images?.find((s) => s.image === pushed.reference)?.phase === 'Completed';
    }, { what: 'the node with an agent to complete the pull', timeoutMs: 60_000 }).catch((err: unknown) => {
      throw new Error(`${errorText(err)}\n${controller?.tail(20) ?? ''}`);
    });
    const tookMs = Date.now() - started;
    console.log(`      [figures] image Completed on the node with an agent ${tookMs} ms after the PrePullImage (agentless node holding the budget of 1, --agent-stale-after=${STALE_S}s)`);
    expect(tookMs).to.be.at.least((STALE_S - 1) * 1000);
    expect((await cri!.imageStatus(pushed.reference, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(pushed.configDigest);
    // The agentless node keeps its entry (nothing is taken away), and the PrePullImage shows it as not done.
    expect((await getNodeImageSet(admin, NO_AGENT, signal))?.spec.images.map((e) => e.image)).to.deep.equal([pushed.reference]);
    const ppi = await waitFor(async () => {
      const p = await getPrePullImage(admin, NS, 'app', signal);
      return p?.status?.summary?.completed === 1 ? p : undefined;
    }, { what: 'the PrePullImage to count the completed node', timeoutMs: 30_000 });
    expect(ppi.status?.summary?.total).to.equal(2);
  });
});
