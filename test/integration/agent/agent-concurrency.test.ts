// The per-node concurrency limit: the NodeImageSet's maxConcurrentPulls, capped by the agent's
// --max-pulls-per-node, is never exceeded. Counted where it cannot be fudged: by the scripted CRI
// server (PullImage calls it is serving at once) and by the agent's kwarm_active_pulls gauge.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { FakeCri } from '../../support/fake-cri.ts';
import { allIn, applySpec, waitForStatus } from './node-image-sets.ts';

const NODE = 'agent-concurrency-node';
const IMAGES = Array.from({ length: 8 }, (_, i) => `registry.example.com/concurrency/img-${i}:v1`);

/** Samples the gauge until `until` settles; returns the highest value seen. */
async function sampleGauge(agent: AgentProcess, until: Promise<unknown>): Promise<{ max: number; samples: number }> {
  const settled = { done: false };
  void until.finally(() => { settled.done = true; });
  let max = 0;
  let samples = 0;
  while (!settled.done) {
    max = Math.max(max, (await agent.metric('kwarm_active_pulls')) ?? 0);
    samples++;
    await sleep(10);
  }
  return { max, samples };
}

describe('agent: concurrency limit', function () {
  this.timeout(120_000);
  let admin: KubeClient;
  let fake: FakeCri | undefined;
  let agent: AgentProcess | undefined;

  before(async () => {
    const cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    fake = await FakeCri.start({ defaultPull: { kind: 'succeed', delayMs: 400 } });
    const kubeconfigFor = (nodeName: string): Promise<string> => agentKubeconfig(cp, { namespace: 'kwarm-system', nodeName });
    agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: fake.socket, maxPullsPerNode: 4, verifyInterval: '5m' });
    await agent.waitReady();
  });

  after(async () => {
    await agent?.dispose();
    await fake?.stop();
    admin.close();
  });

  it('runs at most the NodeImageSet\'s maxConcurrentPulls at once, and uses all of them', async () => {
    await applySpec(admin, NODE, { maxConcurrentPulls: 3, images: IMAGES.map((image) => ({ image })) });
    const completed = waitForStatus(admin, NODE, allIn('Completed', IMAGES), { what: 'all 8 Completed' });
    const gauge = await sampleGauge(agent!, completed);
    await completed;
    console.log(`      [figures] limit 3: fake CRI saw at most ${fake!.maxActivePulls} pulls at once; gauge max ${gauge.max} over ${gauge.samples} samples`);
    expect(fake!.callsOf('PullImage')).to.have.length(8);
    expect(fake!.maxActivePulls).to.equal(3);
    expect(gauge.max).to.be.at.most(3);
    expect(gauge.samples).to.be.greaterThan(5);
  });

  it('caps a larger maxConcurrentPulls at --max-pulls-per-node', async () => {
    fake!.maxActivePulls = 0;
    // A raised round makes the agent pull everything again.
    await applySpec(admin, NODE, { maxConcurrentPulls: 10, images: IMAGES.map((image) => ({ image, round: 1 })) });
    const completed = waitForStatus(admin, NODE, (o) => allIn('Completed', IMAGES)(o) && o.status?.images?.every((i) => i.round === 1) === true, {
      what: 'all 8 Completed in round 1',
    });
    const gauge = await sampleGauge(agent!, completed);
    await completed;
    console.log(`      [figures] limit 10 capped at 4: fake CRI saw at most ${fake!.maxActivePulls} at once; gauge max ${gauge.max}`);
    expect(fake!.callsOf('PullImage')).to.have.length(16);
    expect(fake!.maxActivePulls).to.equal(4);
    expect(gauge.max).to.be.at.most(4);
  });
});
