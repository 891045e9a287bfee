// Faults on the node side, against real containerd: containerd killed in the middle of a pull and
// restarted; containerd stopped and started again under an agent that sees the node as the chart's
// DaemonSet pod does (liveness, reconnect); the CRI socket absent when the agent starts; the agent killed in the middle of a pull
// and started again; an image removed behind the agent's back. Pulls are slowed down by a
// throttling proxy in front of the real registry so "in the middle" is a real window.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { startThrottledProxy, type ThrottledProxy } from '../../../local-cluster/throttled-proxy.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { startChartAgent } from './chart-agent.ts';
import { allIn, applySpec, imageStatus, waitForStatus } from './node-image-sets.ts';

const MiB = 1024 * 1024;
const NAMESPACE = 'kwarm-system';

/** The reference of `img` as pulled through the proxy. */
function viaProxy(proxy: ThrottledProxy, img: PushedImage): string {
  return `${proxy.host}/${img.repository}:${img.tag}`;
}

describe('agent: runtime-side faults', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let kubeconfigFor: (nodeName: string) => Promise<string>;
  let registry: TestRegistry | undefined;
  let proxy: ThrottledProxy | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    kubeconfigFor = (nodeName) => agentKubeconfig(cp, { namespace: NAMESPACE, nodeName });
    registry = await startRegistry();
    // 8 MiB at 2 MiB/s: a pull takes about four seconds.
    proxy = await startThrottledProxy(registry, 2 * MiB);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await proxy?.stop();
    await registry?.dispose();
    admin.close();
  });

  async function node(name: string): Promise<{ containerd: TestContainerd; cri: GrpcImageRuntime }> {
    const containerd = await startContainerd({ name, registries: [registry!, proxy!] });
    const cri = new GrpcImageRuntime({ endpoint: containerd.socket });
    cleanups.push(async () => {
      cri.close();
      await containerd.dispose();
    });
    return { containerd, cri };
  }

  async function agentOn(nodeName: string, socket: string, extra: Partial<Parameters<typeof startAgentProcess>[0]> = {}): Promise<AgentProcess> {
    const agent = await startAgentProcess({ nodeName, kubeconfig: await kubeconfigFor(nodeName), criSocket: socket, verifyInterval: '5m', ...extra });
    cleanups.push(() => agent.dispose());
    return agent;
  }

  it('containerd killed mid-pull and restarted: readiness drops, the pull resumes without spending attempts, status converges', async () => {
    const NODE = 'fault-containerd-kill';
    const { containerd, cri } = await node(NODE);
    const big = await buildAndPushImage(registry!, { repository: 'faults/kill-containerd', tag: 'v1', layers: [8 * MiB] });
    const ref = viaProxy(proxy!, big);
    const agent = await agentOn(NODE, containerd.socket);
    await agent.waitReady();
    await applySpec(admin, NODE, { images: [{ image: ref, retry: { maxAttempts: 1, backoffSeconds: 1 } }] });
    await waitForStatus(admin, NODE, (o) => imageStatus(o, ref)?.phase === 'Pulling', { what: 'the pull to start' });
    await waitFor(async () => (await agent.metric('kwarm_active_pulls')) === 1, { what: 'PullImage in flight' });

    await containerd.kill();
    await waitFor(async () => (await agent.readyz()).status === 503, { what: 'readiness to report the runtime gone', timeoutMs: 15_000 });
    const down = await waitForStatus(admin, NODE, (o) => imageStatus(o, ref)?.reason === 'RuntimeUnavailable', { what: 'status to say the runtime is unavailable' });
    expect(imageStatus(down, ref)?.phase).to.equal('Pending');
    await containerd.restart();

    const done = await waitForStatus(admin, NODE, allIn('Completed', [ref]), { what: 'Completed after the restart', timeoutMs: 60_000 });
    // maxAttempts is 1: the interrupted pull did not count as a failed attempt.
    expect(imageStatus(done, ref)).to.include({ imageId: big.configDigest, attempts: 1 });
    expect((await cri.imageStatus(ref, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(big.configDigest);
    await agent.waitReady(15_000);
    expect(agent.process.running).to.equal(true);
    expect(await agent.metric('kwarm_cri_errors_total', { reason: 'RuntimeUnavailable' })).to.be.at.least(1);
  });

  it('as the chart runs it: containerd stopped fails /healthz after the limit; started again, the agent reconnects and pulls', async () => {
    const NODE = 'fault-containerd-restart-pod';
    const { containerd, cri } = await node(NODE);
    const [first, second] = await Promise.all([
      buildAndPushImage(registry!, { repository: 'faults/pod-restart-1', tag: 'v1', layers: [128 * 1024] }),
      buildAndPushImage(registry!, { repository: 'faults/pod-restart-2', tag: 'v1', layers: [128 * 1024] }),
    ]);
    // The chart's mounts and flags; only the liveness limit is shortened so the test does not wait minutes.
    const agent = await startChartAgent({ cp, namespace: NAMESPACE, nodeName: NODE, containerd, override: { '--runtime-unreachable-timeout': '3s' } });
    cleanups.push(() => agent.dispose());
    await agent.waitReady();
    await applySpec(admin, NODE, { images: [{ image: first.reference }] });
    await waitForStatus(admin, NODE, allIn('Completed', [first.reference]), { what: 'the first image Completed' });
    expect((await agent.healthz()).status).to.equal(200);

    await containerd.stop();
    await waitFor(async () => (await agent.readyz()).status === 503, { what: 'readiness to drop with the runtime gone', timeoutMs: 15_000 });
    const dead = await waitFor(async () => {
      const h = await agent.healthz();
      return h.status === 503 ? h : undefined;
    }, { what: '/healthz to fail once the runtime was silent for 3 s', timeoutMs: 20_000 });
    expect(dead.body).to.include('container runtime has not answered for').and.include('--runtime-unreachable-timeout 3s');

    // A new socket at the same path: the agent must find it through its mount.
    await containerd.restart();
    await waitFor(async () => (await agent.healthz()).status === 200, { what: '/healthz to pass again', timeoutMs: 30_000 });
    await agent.waitReady(30_000);
    await applySpec(admin, NODE, { images: [{ image: first.reference }, { image: second.reference }] });
    const done = await waitForStatus(admin, NODE, allIn('Completed', [first.reference, second.reference]), { what: 'the new image Completed after the restart', timeoutMs: 60_000 });
    expect(imageStatus(done, second.reference)?.imageId).to.equal(second.configDigest);
    expect((await cri.imageStatus(second.reference, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(second.configDigest);
    expect(agent.process.running).to.equal(true);
  });

  it('CRI socket absent at start: the agent waits (no crash loop), then connects and pulls when it appears', async () => {
    const NODE = 'fault-cri-absent';
    const { containerd, cri } = await node(NODE);
    await containerd.stop();
    const img = await buildAndPushImage(registry!, { repository: 'faults/late-cri', tag: 'v1', layers: [256 * 1024] });
    await applySpec(admin, NODE, { images: [{ image: img.reference }] });
    const agent = await agentOn(NODE, containerd.socket);
    await waitFor(() => agent.logText().includes('container runtime not reachable yet'), { what: 'the agent to say it waits for the runtime' });
    expect((await agent.readyz()).status).to.equal(503);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(agent.process.running, 'agent still running').to.equal(true);

    await containerd.restart();
    const done = await waitForStatus(admin, NODE, allIn('Completed', [img.reference]), { what: 'Completed once the runtime appeared', timeoutMs: 60_000 });
    expect(imageStatus(done, img.reference)?.imageId).to.equal(img.configDigest);
    expect(done.status?.runtime?.name).to.equal('containerd');
    expect((await cri.imageStatus(img.reference, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(img.configDigest);
    await agent.waitReady();
  });

  it('agent killed mid-pull and restarted: finished images are not pulled again, the interrupted one completes', async () => {
    const NODE = 'fault-agent-kill';
    const { containerd, cri } = await node(NODE);
    const [small1, small2, big] = await Promise.all([
      buildAndPushImage(registry!, { repository: 'faults/agent-kill-1', tag: 'v1', layers: [128 * 1024] }),
      buildAndPushImage(registry!, { repository: 'faults/agent-kill-2', tag: 'v1', layers: [128 * 1024] }),
      buildAndPushImage(registry!, { repository: 'faults/agent-kill-big', tag: 'v1', layers: [8 * MiB] }),
    ]);
    const refs = [small1.reference, small2.reference, viaProxy(proxy!, big)];
    const bigRef = refs[2]!;
    const first = await agentOn(NODE, containerd.socket);
    await applySpec(admin, NODE, { maxConcurrentPulls: 3, images: refs.map((image) => ({ image })) });
    await waitForStatus(admin, NODE, (o) => allIn('Completed', refs.slice(0, 2))(o) && imageStatus(o, bigRef)?.phase === 'Pulling', {
      what: 'the small images Completed and the big one Pulling',
    });
    await first.kill();

    const second = await agentOn(NODE, containerd.socket, { logFile: first.logFile });
    const done = await waitForStatus(admin, NODE, allIn('Completed', refs), { what: 'all Completed after the restart', timeoutMs: 60_000 });
    expect(imageStatus(done, bigRef)?.imageId).to.equal(big.configDigest);
    // The new agent pulled only what was not finished.
    expect(await second.metric('kwarm_pulls_total', { status: 'succeeded' })).to.equal(1);
    expect(await second.metric('kwarm_pulls_total')).to.equal(1);
    for (const r of refs) expect(await cri.imageStatus(r, { signal: AbortSignal.timeout(10_000) }), r).to.not.equal(undefined);
  });

  it('with --repull-after-gc=now an image removed behind the agent\'s back is pulled again within the verify period and counted', async () => {
    const NODE = 'fault-image-gc';
    const { containerd, cri } = await node(NODE);
    const img = await buildAndPushImage(registry!, { repository: 'faults/gc', tag: 'v1', layers: [256 * 1024] });
    // `wait` is the default (the controller releases re-pulls within its budget); no controller runs here.
    const agent = await agentOn(NODE, containerd.socket, { verifyInterval: '2s', args: ['--repull-after-gc=now'] });
    await applySpec(admin, NODE, { images: [{ image: img.reference }] });
    const first = await waitForStatus(admin, NODE, allIn('Completed', [img.reference]), { what: 'first pull Completed' });
    const firstFinished = imageStatus(first, img.reference)?.finishedAt;

    await cri.removeImage(img.reference, { signal: AbortSignal.timeout(10_000) });
    const removedAt = Date.now();
    await waitFor(async () => (await cri.imageStatus(img.reference, { signal: AbortSignal.timeout(10_000) }))?.id === img.configDigest, {
      what: 'the image back in containerd', timeoutMs: 15_000, intervalMs: 100,
    });
    const backMs = Date.now() - removedAt;
    console.log(`      [figures] image removed behind the agent's back was back in containerd after ${backMs} ms (verify interval 2 s)`);
    expect(backMs).to.be.below(6000);
    expect(await agent.metric('kwarm_repulls_total')).to.equal(1);
    const again = await waitForStatus(admin, NODE, (o) => allIn('Completed', [img.reference])(o) && imageStatus(o, img.reference)?.finishedAt !== firstFinished, {
      what: 'status to show the new pull',
    });
    expect(imageStatus(again, img.reference)?.imageId).to.equal(img.configDigest);
    expect(imageStatus(again, img.reference)?.lastVerifiedAt).to.be.a('string');
  });

  it('with --repull-after-gc=wait an image lost to GC waits, Pending with reason RemovedFromRuntime, until its round is raised', async () => {
    const NODE = 'fault-image-gc-wait';
    const { containerd, cri } = await node(NODE);
    const img = await buildAndPushImage(registry!, { repository: 'faults/gc-wait', tag: 'v1', layers: [256 * 1024] });
    const agent = await agentOn(NODE, containerd.socket, { verifyInterval: '1s', args: ['--repull-after-gc=wait'] });
    await applySpec(admin, NODE, { images: [{ image: img.reference }] });
    await waitForStatus(admin, NODE, allIn('Completed', [img.reference]), { what: 'first pull Completed' });

    await cri.removeImage(img.reference, { signal: AbortSignal.timeout(10_000) });
    const held = await waitForStatus(admin, NODE, (o) => imageStatus(o, img.reference)?.reason === 'RemovedFromRuntime', { what: 'the loss reported', timeoutMs: 15_000 });
    expect(imageStatus(held, img.reference)).to.include({ phase: 'Pending', round: 0 });
    // Held: nothing pulls it back on its own, whatever the verify passes find.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await cri.imageStatus(img.reference, { signal: AbortSignal.timeout(10_000) })).to.equal(undefined);
    expect(await agent.metric('kwarm_pulls_total')).to.equal(1);

    // The controller's release: a raised round.
    await applySpec(admin, NODE, { images: [{ image: img.reference, round: 1 }] });
    const done = await waitForStatus(admin, NODE, (o) => allIn('Completed', [img.reference])(o) && imageStatus(o, img.reference)?.round === 1, { what: 'Completed after the release' });
    expect(imageStatus(done, img.reference)?.imageId).to.equal(img.configDigest);
    expect(await agent.metric('kwarm_pulls_total', { status: 'succeeded' })).to.equal(2);

    // A restarted agent keeps holding an image lost in a round that already finished.
    await cri.removeImage(img.reference, { signal: AbortSignal.timeout(10_000) });
    await waitForStatus(admin, NODE, (o) => imageStatus(o, img.reference)?.reason === 'RemovedFromRuntime', { what: 'the second loss reported', timeoutMs: 15_000 });
    await agent.kill();
    const again = await agentOn(NODE, containerd.socket, { verifyInterval: '1s', args: ['--repull-after-gc=wait'], logFile: agent.logFile });
    await again.waitReady();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(imageStatus(await waitForStatus(admin, NODE, () => true, { what: 'the object' }), img.reference)).to.include({ phase: 'Pending', reason: 'RemovedFromRuntime' });
    expect(await again.metric('kwarm_pulls_total')).to.equal(undefined);
  });
});
