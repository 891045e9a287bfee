// The agent's side of "is kwarm helping?" against real containerd and a real API server: what it records in
// NodeImageSet status for counting container starts (when an entry appeared, when kwarm's own pull made the
// image present and how long it took, the watermark), that an image it found present is not kwarm's pull, the
// time-to-warm histogram, and that all of it survives an agent restart without being observed again. Counting
// real container starts needs a kubelet: test/e2e/real-nodes/warm-starts.test.ts.
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

const NODE = 'agent-warm-starts';
const NAMESPACE = 'kwarm-system';

describe('agent: warm-start bookkeeping in NodeImageSet status', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let containerd: TestContainerd | undefined;
  let cri: GrpcImageRuntime | undefined;
  let agent: AgentProcess | undefined;
  let pulled: PushedImage;
  let found: PushedImage;

  const start = async (): Promise<AgentProcess> => {
    const a = await startAgentProcess({
      nodeName: NODE, kubeconfig: await agentKubeconfig(cp, { namespace: NAMESPACE, nodeName: NODE }), criSocket: containerd!.socket,
      verifyInterval: '5m', args: ['--container-starts-interval=1s'],
    });
    await a.waitReady();
    return a;
  };

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry();
    [pulled, found] = await Promise.all(['pulled', 'found'].map((n) =>
      buildAndPushImage(registry!, { repository: `warm-starts/${n}`, tag: 'v1', layers: [4 * 2 ** 20] }))) as [PushedImage, PushedImage];
    containerd = await startContainerd({ name: NODE, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: containerd.socket });
    // On the node before kwarm is asked for it (the kubelet, a node image).
    await cri.pullImage(found.reference, undefined, { signal: AbortSignal.timeout(60_000) });
    agent = await start();
  });

  after(async () => {
    await agent?.dispose();
    cri?.close();
    await containerd?.dispose();
    await registry?.dispose();
    admin.close();
  });

  it('records kwarm\'s own pull (warmSince, pullMilliseconds, time to warm) and only readySince for an image it found', async () => {
    const images = [pulled.reference, found.reference];
    const applied = Date.now();
    await applySpec(admin, NODE, { images: images.map((image) => ({ image })) });
    const done = await waitForStatus(admin, NODE, (o) => allIn('Completed', images)(o) && o.status?.startsCountedUntil !== undefined, { what: 'both Completed, watermark set' });
    const ours = imageStatus(done, pulled.reference)!;
    const theirs = imageStatus(done, found.reference)!;
    const wantedSince = Date.parse(ours.wantedSince ?? '');
    expect(wantedSince).to.be.within(applied - 1000, Date.now());
    expect(Date.parse(ours.warmSince ?? '')).to.be.at.least(wantedSince);
    expect(ours.readySince).to.equal(ours.warmSince);
    expect(ours.pullMilliseconds).to.be.a('number').and.greaterThan(0);
    expect(ours.timeToWarmMilliseconds).to.equal(Date.parse(ours.warmSince ?? '') - wantedSince);
    // Found, not pulled: present since the survey, but not kwarm's doing.
    expect(theirs.readySince).to.be.a('string');
    expect(theirs.warmSince).to.equal(undefined);
    expect(theirs.pullMilliseconds).to.equal(undefined);
    // Nothing started yet: no counts in status; the metric series exist at 0.
    expect(ours.warmStarts ?? 0).to.equal(0);
    expect(await agent!.metric('kwarm_container_starts_total', { result: 'warm' })).to.equal(0);
    expect(await agent!.metric('kwarm_container_starts_total', { result: 'cold' })).to.equal(0);
    expect(await agent!.metric('kwarm_time_to_warm_seconds_count')).to.equal(2);
    expect(await agent!.metric('kwarm_pull_seconds_saved_total')).to.equal(0);
  });

  it('a restarted agent keeps the bookkeeping and does not observe the time to warm again', async () => {
    const images = [pulled.reference, found.reference];
    const before = await waitForStatus(admin, NODE, allIn('Completed', images), { what: 'both Completed' });
    await agent!.dispose();
    agent = await start();
    // A spec change makes the new agent write (its first status shows what CRI has).
    await applySpec(admin, NODE, { images: images.map((image) => ({ image, round: 1 })) });
    const after = await waitForStatus(admin, NODE, (o) => allIn('Completed', images)(o) && imageStatus(o, pulled.reference)?.round === 1, { what: 'round 1 Completed' });
    const keep = ['wantedSince', 'timeToWarmMilliseconds'] as const;
    for (const image of images) {
      for (const k of keep) expect(imageStatus(after, image)?.[k], `${image} ${k}`).to.equal(imageStatus(before, image)?.[k]);
    }
    expect(after.status?.startsCountedUntil).to.equal(before.status?.startsCountedUntil);
    // The raised round re-pulled both; the image found on the node did not change, so it is still not kwarm's pull.
    expect(imageStatus(after, found.reference)?.warmSince).to.equal(undefined);
    expect(imageStatus(after, pulled.reference)?.warmSince).to.equal(imageStatus(before, pulled.reference)?.warmSince);
    expect(await agent.metric('kwarm_time_to_warm_seconds_count')).to.equal(0);
  });
});
