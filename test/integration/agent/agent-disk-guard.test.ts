// The disk guard: no new pulls while the image filesystem is above the threshold, reported in
// status. Once with the real agent process on real containerd (the filesystem is really measured),
// once with the Agent in this process and statfs scripted, to see pulls resume when space frees up.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import { Agent } from '../../../agent/agent.ts';
import { createAgentMetrics } from '../../../agent/agent-metrics.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { FakeCri } from '../../support/fake-cri.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { allIn, applySpec, imageStatus, readNodeImageSet, waitForStatus } from './node-image-sets.ts';

describe('agent: disk guard', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let kubeconfigFor: (nodeName: string) => Promise<string>;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    kubeconfigFor = (nodeName) => agentKubeconfig(cp, { namespace: 'kwarm-system', nodeName });
  });

  after(() => {
    admin.close();
  });

  describe('real agent on real containerd', () => {
    const NODE = 'disk-guard-real';
    let registry: TestRegistry | undefined;
    let containerd: TestContainerd | undefined;
    let agent: AgentProcess | undefined;

    after(async () => {
      await agent?.dispose();
      await containerd?.dispose();
      await registry?.dispose();
    });

    it('measures the image filesystem containerd names and holds pulls above a (tiny) threshold', async () => {
      registry = await startRegistry();
      containerd = await startContainerd({ name: NODE, registries: [registry] });
      const img = await buildAndPushImage(registry, { repository: 'disk/held', tag: 'v1', layers: [4096] });
      agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: containerd.socket, diskThresholdPercent: 1, diskCheckInterval: '500ms' });
      await applySpec(admin, NODE, { images: [{ image: img.reference }] });
      const obj = await waitForStatus(admin, NODE, (o) => o.status?.imageFs?.pullsPaused === true && imageStatus(o, img.reference) !== undefined, {
        what: 'status to report pulls paused',
      });
      expect(obj.status?.imageFs?.usedPercent).to.be.at.least(1);
      expect(obj.status?.imageFs?.capacityBytes).to.be.greaterThan(obj.status?.imageFs?.usedBytes ?? Infinity);
      await sleep(1500);
      expect(imageStatus(await readNodeImageSet(admin, NODE), img.reference)).to.include({ phase: 'Pending', attempts: 0 });
      expect(await agent.metric('kwarm_pulls_total')).to.equal(undefined);
    });

    it('is on by default at 80 %: an agent started without the flag reports pullsPaused and pulls below it', async () => {
      const node = `${NODE}-default`;
      const img = await buildAndPushImage(registry!, { repository: 'disk/default', tag: 'v1', layers: [4096] });
      const second = await startAgentProcess({ nodeName: node, kubeconfig: await kubeconfigFor(node), criSocket: containerd!.socket, diskCheckInterval: '500ms' });
      try {
        await applySpec(admin, node, { images: [{ image: img.reference }] });
        const obj = await waitForStatus(admin, node, allIn('Completed', [img.reference]), { what: 'Completed under the default threshold' });
        // This machine's disk is below 80 %: the guard measures and lets pulls through.
        expect(obj.status?.imageFs?.usedPercent).to.be.below(80);
        expect(obj.status?.imageFs?.pullsPaused).to.equal(false);
        expect(second.logText()).to.include('"diskThresholdPercent":80');
      } finally {
        await second.dispose();
      }
    });
  });

  describe('in-process agent with a scripted filesystem', () => {
    const NODE = 'disk-guard-scripted';
    let fake: FakeCri | undefined;

    after(async () => {
      await fake?.stop();
    });

    it('starts no pull above the threshold, resumes once below, and says so in status', async () => {
      fake = await FakeCri.start();
      const figures = { blocks: 1000, bfree: 50, bsize: 4096 };
      const client = new KubeClient(cp.kubeConfig(await kubeconfigFor(NODE)));
      const log = winston.createLogger({ silent: true });
      const agent = new Agent({
        nodeName: NODE,
        namespace: 'kwarm-system',
        criSocket: fake.socket,
        maxPullsPerNode: 2,
        verifyIntervalMs: 300_000,
        diskThresholdPercent: 90,
        diskCheckIntervalMs: 100,
        shutdownGraceMs: 1000,
        runtimeUnreachableLimitMs: 0,
      }, { client, log, metrics: createAgentMetrics({ defaultMetrics: false }), statfs: () => Promise.resolve({ ...figures }) });
      const stop = new AbortController();
      const running = agent.run(stop.signal);
      try {
        const image = 'registry.example.com/disk/wanted:v1';
        await applySpec(admin, NODE, { images: [{ image }] });
        const held = await waitForStatus(admin, NODE, (o) => o.status?.imageFs?.pullsPaused === true, { what: 'pulls paused at 95%' });
        expect(held.status?.imageFs).to.deep.equal({ usedBytes: 950 * 4096, capacityBytes: 1000 * 4096, usedPercent: 95, pullsPaused: true });
        await sleep(500);
        expect(fake.callsOf('PullImage')).to.have.length(0);

        figures.bfree = 500;
        const done = await waitForStatus(admin, NODE, (o) => allIn('Completed', [image])(o) && o.status?.imageFs?.pullsPaused === false, {
          what: 'pulls resumed at 50%',
        });
        expect(done.status?.imageFs?.usedPercent).to.equal(50);
        expect(fake.callsOf('PullImage')).to.have.length(1);
      } finally {
        stop.abort();
        await running;
        client.close();
      }
    });
  });
});
