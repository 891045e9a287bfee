// The API server restarted (twice) while the NodeImageSet's spec changes: the agent's watch and
// status writes recover on their own and it converges on the newest spec. Runs on a control plane
// of its own, since restarting the shared one would disturb other tests.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { startControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { allIn, applySpec, waitForStatus } from './node-image-sets.ts';

const NODE = 'fault-api-restart';

describe('agent: API server restarted while the spec changes', function () {
  this.timeout(240_000);
  let cp: ControlPlane | undefined;
  let admin: KubeClient | undefined;
  let registry: TestRegistry | undefined;
  let containerd: TestContainerd | undefined;
  let cri: GrpcImageRuntime | undefined;
  let agent: AgentProcess | undefined;

  after(async () => {
    await agent?.dispose();
    cri?.close();
    await containerd?.dispose();
    await registry?.dispose();
    admin?.close();
    await cp?.stop();
  });

  it('converges on the newest spec and keeps running', async () => {
    cp = await startControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry();
    containerd = await startContainerd({ name: NODE, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: containerd.socket });
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((n) =>
      buildAndPushImage(registry!, { repository: `api-restart/${n}`, tag: 'v1', layers: [128 * 1024] }))) as [PushedImage, PushedImage, PushedImage, PushedImage];
    const kubeconfigFor = (nodeName: string): Promise<string> => agentKubeconfig(cp!, { namespace: 'kwarm-system', nodeName });
    agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: containerd.socket, verifyInterval: '5m' });
    await agent.waitReady();
    await applySpec(admin, NODE, { images: [{ image: a.reference }] });
    await waitForStatus(admin, NODE, allIn('Completed', [a.reference]), { what: 'a Completed' });

    const t0 = Date.now();
    await cp.restartApiServer();
    await applySpec(admin, NODE, { images: [b.reference, c.reference].map((image) => ({ image })) });
    await cp.restartApiServer();
    const last = await applySpec(admin, NODE, { images: [c.reference, d.reference].map((image) => ({ image })) });
    const done = await waitForStatus(admin, NODE, (o) => allIn('Completed', [c.reference, d.reference])(o) && o.status?.images?.length === 2, {
      what: 'the newest spec Completed', timeoutMs: 90_000,
    });
    console.log(`      [figures] two API server restarts with spec changes: converged ${Date.now() - t0} ms after the first restart began`);
    expect(done.status?.observedGeneration).to.equal(last.generation);
    expect(done.status?.images?.map((i) => i.image)).to.deep.equal([c.reference, d.reference]);
    for (const img of [c, d]) expect((await cri.imageStatus(img.reference, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(img.configDigest);
    expect(agent.process.running).to.equal(true);
    await agent.waitReady(30_000);
  });
});
