// Removals (spec.removals) against real containerd: the agent removes only images it brought onto the node
// itself, and remembers which those are in status (status.pulledImageIds) across restarts; an image someone
// else put on the node and the runtime's pod sandbox image stay, with the reason in status.removals.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { allIn, applySpec, imageStatus, waitForStatus } from './node-image-sets.ts';

const NODE = 'agent-removals';
const NAMESPACE = 'kwarm-system';

describe('agent: removes only what kwarm pulled', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let containerd: TestContainerd | undefined;
  let cri: GrpcImageRuntime;
  let agent: AgentProcess | undefined;
  let foreign: PushedImage;
  let ours: PushedImage;
  let sandbox: PushedImage;

  const start = async (): Promise<AgentProcess> => {
    const a = await startAgentProcess({
      nodeName: NODE, kubeconfig: await agentKubeconfig(cp, { namespace: NAMESPACE, nodeName: NODE }), criSocket: containerd!.socket, verifyInterval: '5m',
    });
    await a.waitReady();
    return a;
  };
  const present = async (img: PushedImage): Promise<boolean> => (await cri.imageStatus(img.reference, { signal: AbortSignal.timeout(10_000) })) !== undefined;
  const removal = (images: readonly PushedImage[]) => waitForStatus(admin, NODE, (o) => images.every((i) => o.status?.removals?.some((r) => r.image === i.reference) === true), {
    what: 'the removals answered',
  });

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry();
    [foreign, ours, sandbox] = await Promise.all(['foreign', 'ours', 'pause'].map((n) =>
      buildAndPushImage(registry!, { repository: `removals/${n}`, tag: 'v1', layers: [64 * 1024] }))) as [PushedImage, PushedImage, PushedImage];
    containerd = await startContainerd({ name: NODE, registries: [registry], sandboxImage: sandbox.reference });
    cri = new GrpcImageRuntime({ endpoint: containerd.socket });
    // Put on the node by someone else (the kubelet for a pod, a node image), before kwarm is asked for it.
    await cri.pullImage(foreign.reference, undefined, { signal: AbortSignal.timeout(60_000) });
    agent = await start();
  });

  after(async () => {
    await agent?.dispose();
    cri.close();
    await containerd?.dispose();
    await registry?.dispose();
    admin.close();
  });

  it('records in status which images it brought in, and keeps that across a restart', async () => {
    const all = [foreign, ours, sandbox].map((i) => i.reference);
    await applySpec(admin, NODE, { images: all.map((image) => ({ image })) });
    const done = await waitForStatus(admin, NODE, allIn('Completed', all), { what: 'all three Completed' });
    // The foreign image was there already: found, not pulled.
    expect(imageStatus(done, foreign.reference)?.finishedAt).to.equal(undefined);
    await waitForStatus(admin, NODE, (o) => o.status?.pulledImageIds?.length === 2, { what: 'two ids in status.pulledImageIds' });
    const ids = (await waitForStatus(admin, NODE, () => true, { what: 'the object' })).status?.pulledImageIds;
    expect(ids).to.have.members([ours.configDigest, sandbox.configDigest]);

    await agent!.kill();
    await agent!.dispose();
    agent = await start();
    // A write from the new agent (its heartbeat) keeps the list it found.
    await applySpec(admin, NODE, { images: all.map((image) => ({ image, round: 1 })) });
    const after = await waitForStatus(admin, NODE, (o) => allIn('Completed', all)(o) && imageStatus(o, foreign.reference)?.round === 1, { what: 'round 1 Completed' });
    expect(after.status?.pulledImageIds).to.have.members([ours.configDigest, sandbox.configDigest]);
  });

  it('removes its own image, keeps one it did not pull (NotPulledByKwarm) and the sandbox image (SandboxImage)', async () => {
    await applySpec(admin, NODE, { images: [], removals: [foreign, ours, sandbox].map((i) => ({ image: i.reference })) });
    const answered = await removal([foreign, ours, sandbox]);
    const answer = (i: PushedImage) => answered.status?.removals?.find((r) => r.image === i.reference);
    expect(answer(ours)).to.include({ result: 'Removed' });
    expect(answer(foreign)).to.include({ result: 'Kept', reason: 'NotPulledByKwarm' });
    expect(answer(sandbox)).to.include({ result: 'Kept', reason: 'SandboxImage' });
    expect(await present(ours)).to.equal(false);
    expect(await present(foreign)).to.equal(true);
    expect(await present(sandbox)).to.equal(true);
    const settled = await waitForStatus(admin, NODE, (o) => o.status?.pulledImageIds?.includes(ours.configDigest) !== true, { what: 'the removed image dropped from status.pulledImageIds' });
    expect(settled.status?.pulledImageIds).to.deep.equal([sandbox.configDigest]);
  });
});
