// Restart semantics: a starting agent takes the state from CRI, not from the status an earlier
// agent left (nothing stays "Pulling", present images are Completed without a pull, images the
// old status calls Completed but the runtime lacks are pulled). SIGTERM stops new work, lets
// running pulls finish within the grace period, cancels the rest and flushes the status.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { FakeCri } from '../../support/fake-cri.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { allIn, applySpec, imageStatus, readNodeImageSet, recordVersions, waitForStatus, writeStatus } from './node-image-sets.ts';

const NAMESPACE = 'kwarm-system';

describe('agent: lifecycle', function () {
  this.timeout(180_000);
  let admin: KubeClient;
  let kubeconfigFor: (nodeName: string) => Promise<string>;

  before(async () => {
    const cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    kubeconfigFor = (nodeName) => agentKubeconfig(cp, { namespace: NAMESPACE, nodeName });
  });

  after(() => {
    admin.close();
  });

  describe('on start, state comes from CRI', () => {
    const NODE = 'agent-start-node';
    let registry: TestRegistry | undefined;
    let node: TestContainerd | undefined;
    let cri: GrpcImageRuntime | undefined;
    let agent: AgentProcess | undefined;

    after(async () => {
      await agent?.dispose();
      cri?.close();
      await node?.dispose();
      await registry?.dispose();
    });

    it('reports present images Completed without pulling, pulls missing ones, leaves nothing Pulling from the old status', async () => {
      registry = await startRegistry();
      node = await startContainerd({ name: NODE, registries: [registry] });
      cri = new GrpcImageRuntime({ endpoint: node.socket });
      const [present, missing, lost] = await Promise.all(['present', 'missing', 'lost'].map((n) =>
        buildAndPushImage(registry!, { repository: `start/${n}`, tag: 'v1', layers: [128 * 1024] }))) as [PushedImage, PushedImage, PushedImage];
      await cri.pullImage(present.reference, undefined, { signal: AbortSignal.timeout(30_000) });
      const refs = [present.reference, missing.reference, lost.reference];
      const obj = await applySpec(admin, NODE, { images: refs.map((image) => ({ image })) });
      // What an agent killed mid-pull leaves behind.
      const old = '2020-01-01T00:00:00Z';
      await writeStatus(admin, NODE, {
        observedGeneration: obj.generation,
        images: [
          { image: present.reference, phase: 'Pulling', attempts: 2, round: 0, startedAt: old },
          { image: missing.reference, phase: 'Pulling', attempts: 1, round: 0, startedAt: old },
          { image: lost.reference, phase: 'Completed', attempts: 1, round: 0, imageId: lost.configDigest, startedAt: old, finishedAt: old },
        ],
        desired: 3, ready: 1, pulling: 2, failed: 0,
      });
      const recorder = await recordVersions(admin, NODE);
      // The lost image was Completed and is gone from the runtime: with the default --repull-after-gc=wait it
      // would wait for the controller to raise its round, and no controller runs here.
      agent = await startAgentProcess({
        nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: node.socket, verifyInterval: '5m', args: ['--repull-after-gc=now'],
      });
      const done = await waitForStatus(admin, NODE, allIn('Completed', refs), { what: 'all Completed after the start' });
      await recorder.stop();

      expect(imageStatus(done, present.reference)).to.include({ imageId: present.configDigest, attempts: 0 });
      expect(imageStatus(done, missing.reference)).to.include({ imageId: missing.configDigest, attempts: 1 });
      expect(imageStatus(done, lost.reference)).to.include({ imageId: lost.configDigest, attempts: 1 });
      expect(await agent.metric('kwarm_pulls_total', { status: 'succeeded' })).to.equal(2);
      // Every status the new agent wrote: the present image was never "Pulling", and the first
      // write already had it Completed.
      const written = recorder.versions.filter((v) => v.status?.heartbeatTime !== undefined);
      expect(written.length).to.be.greaterThan(0);
      expect(imageStatus(written[0], present.reference)?.phase).to.equal('Completed');
      for (const v of written) expect(imageStatus(v, present.reference)?.phase).to.equal('Completed');
    });
  });

  describe('SIGTERM', () => {
    const NODE = 'agent-sigterm-node';
    let fake: FakeCri | undefined;
    let agent: AgentProcess | undefined;

    after(async () => {
      await agent?.dispose();
      await fake?.stop();
    });

    it('lets a running pull finish within the grace period, cancels one that does not, starts nothing new, flushes status', async () => {
      fake = await FakeCri.start();
      const slow = 'registry.example.com/sigterm/slow:v1';
      const stalled = 'registry.example.com/sigterm/stalled:v1';
      const queued = ['registry.example.com/sigterm/q1:v1', 'registry.example.com/sigterm/q2:v1'];
      fake.script(slow, { kind: 'succeed', delayMs: 1500 });
      fake.script(stalled, { kind: 'stall' });
      agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: fake.socket, shutdownGracePeriod: '3s', verifyInterval: '5m' });
      await agent.waitReady();
      await applySpec(admin, NODE, { maxConcurrentPulls: 2, images: [slow, stalled, ...queued].map((image) => ({ image })) });
      await waitFor(() => fake!.activePulls === 2, { what: 'two pulls running', timeoutMs: 30_000, intervalMs: 20 });

      const t0 = Date.now();
      const code = await agent.stop();
      const tookMs = Date.now() - t0;
      console.log(`      [figures] SIGTERM with a 3s grace period: exited with ${String(code)} after ${tookMs} ms`);
      expect(code).to.equal(0);
      expect(tookMs).to.be.within(2500, 8000);

      const obj = await readNodeImageSet(admin, NODE);
      expect(imageStatus(obj, slow)?.phase).to.equal('Completed');
      expect(imageStatus(obj, stalled)?.phase).to.equal('Pending');
      for (const q of queued) expect(imageStatus(obj, q)?.phase).to.equal('Pending');
      expect(obj?.status?.pulling).to.equal(0);
      expect(fake.callsOf('PullImage').map((c) => c.image).sort()).to.deep.equal([slow, stalled].sort());
      expect(fake.callsOf('PullImage', stalled)[0]?.outcome).to.equal('cancelled');
      const stopped = agent.logEntries().find((e) => e.message === 'kwarm-agent stopped');
      expect(stopped).to.include({ finished: 1, aborted: 1, dropped: 2, statusFlushed: true });
    });

    it('exits at once when nothing is running', async () => {
      const idle = await startAgentProcess({ nodeName: 'agent-sigterm-idle', kubeconfig: await kubeconfigFor('agent-sigterm-idle'), criSocket: fake!.socket, shutdownGracePeriod: '20s' });
      try {
        await idle.waitReady();
        const t0 = Date.now();
        expect(await idle.stop()).to.equal(0);
        expect(Date.now() - t0).to.be.below(2000);
      } finally {
        await idle.dispose();
      }
    });
  });
});
