// Faults on the registry side: a stalled registry (the scripted CRI never answers) times out, frees
// its slot and lets the other images complete; a registry that is down and comes back is waited
// for with back-off; a tag that does not exist fails at once (NotFound) and is not retried.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { FakeCri } from '../../support/fake-cri.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { allIn, applySpec, imageStatus, readNodeImageSet, waitForStatus } from './node-image-sets.ts';

const NAMESPACE = 'kwarm-system';

describe('agent: registry-side faults', function () {
  this.timeout(180_000);
  let admin: KubeClient;
  let kubeconfigFor: (nodeName: string) => Promise<string>;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    const cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    kubeconfigFor = (nodeName) => agentKubeconfig(cp, { namespace: NAMESPACE, nodeName });
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    admin.close();
  });

  it('a stalled pull times out and frees its slot; the other images complete; it ends Failed with reason Timeout', async () => {
    const NODE = 'fault-stalled-registry';
    const fake = await FakeCri.start({ defaultPull: { kind: 'succeed', delayMs: 200 } });
    cleanups.push(() => fake.stop());
    const stalled = 'registry.example.com/stall/forever:v1';
    const others = [1, 2, 3].map((i) => `registry.example.com/stall/other-${i}:v1`);
    fake.script(stalled, { kind: 'stall' });
    const agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: fake.socket, verifyInterval: '5m' });
    cleanups.push(() => agent.dispose());
    // One slot only: if the stalled pull kept it, nothing else could ever run.
    await applySpec(admin, NODE, {
      maxConcurrentPulls: 1,
      images: [
        { image: stalled, timeout: '2s', retry: { maxAttempts: 2, backoffSeconds: 1 } },
        ...others.map((image) => ({ image })),
      ],
    });
    const done = await waitForStatus(admin, NODE, (o) => allIn('Completed', others)(o) && imageStatus(o, stalled)?.phase === 'Failed', {
      what: 'others Completed and the stalled one Failed',
    });
    expect(imageStatus(done, stalled)).to.include({ reason: 'Timeout', attempts: 2 });
    const calls = fake.callsOf('PullImage', stalled);
    expect(calls.map((c) => c.outcome)).to.deep.equal(['cancelled', 'cancelled']);
    for (const c of calls) expect(c.endedAt! - c.startedAt).to.be.within(1800, 4000);
    expect(fake.maxActivePulls).to.equal(1);
    expect(await agent.metric('kwarm_cri_errors_total', { reason: 'Timeout' })).to.equal(2);
    expect(await agent.metric('kwarm_active_pulls')).to.equal(0);
  });

  describe('with a real registry and containerd', () => {
    let registry: TestRegistry | undefined;
    let containerd: TestContainerd | undefined;
    let cri: GrpcImageRuntime | undefined;
    let agent: AgentProcess | undefined;
    const NODE = 'fault-registry';

    before(async () => {
      registry = await startRegistry();
      containerd = await startContainerd({ name: NODE, registries: [registry] });
      cri = new GrpcImageRuntime({ endpoint: containerd.socket });
      agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: containerd.socket, verifyInterval: '5m' });
      await agent.waitReady();
    });

    after(async () => {
      await agent?.dispose();
      cri?.close();
      await containerd?.dispose();
      await registry?.dispose();
    });

    it('registry down, then back: retried with back-off until it answers, then Completed', async () => {
      const img = await buildAndPushImage(registry!, { repository: 'faults/comeback', tag: 'v1', layers: [256 * 1024] });
      await registry!.stop();
      await applySpec(admin, NODE, { images: [{ image: img.reference, retry: { maxAttempts: 8, backoffSeconds: 1 } }] });
      // Two attempts over, not just the second one started (it could still succeed once the registry is back).
      const failing = await waitForStatus(admin, NODE, (o) => {
        const st = imageStatus(o, img.reference);
        return (st?.attempts ?? 0) >= 2 && st?.phase === 'Pending';
      }, { what: 'two failed attempts while the registry is down' });
      expect(imageStatus(failing, img.reference)?.reason).to.equal('RegistryUnavailable');
      await registry!.start();
      const done = await waitForStatus(admin, NODE, allIn('Completed', [img.reference]), { what: 'Completed once the registry is back' });
      expect(imageStatus(done, img.reference)?.imageId).to.equal(img.configDigest);
      expect(await agent!.metric('kwarm_cri_errors_total', { reason: 'RegistryUnavailable' })).to.be.at.least(2);
    });

    it('a tag that does not exist fails at once with reason NotFound and is not retried', async () => {
      const missing = `${registry!.host}/faults/comeback:no-such-tag`;
      await applySpec(admin, NODE, { images: [{ image: missing, retry: { maxAttempts: 5, backoffSeconds: 1 } }] });
      const failed = await waitForStatus(admin, NODE, (o) => imageStatus(o, missing)?.phase === 'Failed', { what: 'the missing tag Failed' });
      expect(imageStatus(failed, missing)).to.include({ reason: 'NotFound', attempts: 1 });
      expect(imageStatus(failed, missing)?.message).to.match(/not found/);
      const failedCalls = await agent!.metric('kwarm_pulls_total', { status: 'failed' });
      await sleep(3000);
      expect(await agent!.metric('kwarm_pulls_total', { status: 'failed' })).to.equal(failedCalls);
      expect(imageStatus(await readNodeImageSet(admin, NODE), missing)).to.include({ phase: 'Failed', attempts: 1 });
      expect(await cri!.imageStatus(missing, { signal: AbortSignal.timeout(10_000) })).to.equal(undefined);
    });

    it('a raised round gives a Failed image a fresh try', async () => {
      const later = await buildAndPushImage(registry!, { repository: 'faults/late-tag', tag: 'v1', layers: [4096] });
      const ref = `${registry!.host}/faults/late-tag:v2`;
      await applySpec(admin, NODE, { images: [{ image: ref }] });
      await waitForStatus(admin, NODE, (o) => imageStatus(o, ref)?.phase === 'Failed', { what: 'v2 Failed (not pushed yet)' });
      const v2 = await buildAndPushImage(registry!, { repository: 'faults/late-tag', tag: 'v2', layers: [4096] });
      await applySpec(admin, NODE, { images: [{ image: ref, round: 1 }] });
      const done = await waitForStatus(admin, NODE, allIn('Completed', [ref]), { what: 'v2 Completed in round 1' });
      expect(imageStatus(done, ref)).to.include({ round: 1, imageId: v2.configDigest, attempts: 1 });
      expect(later.configDigest).to.not.equal(v2.configDigest);
    });
  });
});
