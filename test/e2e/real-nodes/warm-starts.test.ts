// Warm and cold starts on real kubelets, checked against the kubelet's own events: a pod whose image kwarm
// pulled first counts warm on its node and the kubelet says "already present on machine"; a pod whose
// image kwarm had not pulled yet counts cold and the kubelet pulled it. kwarm is installed from its chart with
// one pull per node; "not yet" is made certain, not raced: the node's only pull slot is held by a big image
// pulled through a slow registry link while the cold pod starts.
import { expect } from 'chai';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { helmInstallKwarm, kwarmLogs, waitKwarmReady, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { linkNodesToRegistry, type NodeRegistryLink } from '../../../local-cluster/node-registry-link.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const NS = 'e2e-warm-starts';
/** The slow link: a 3 MiB warm image takes about 6 s, the 24 MiB blocker about 48 s. */
const LINK_BYTES_PER_SECOND = 512 * 1024;

interface ImageEntry {
  image: string;
  phase: string;
  warmStarts?: number;
  coldStarts?: number;
  pullMillisecondsSaved?: number;
  pullMilliseconds?: number;
}
interface NisJson { status?: { images?: ImageEntry[]; startsCountedUntil?: string } }
interface PpiJson { status?: { warmStarts?: number; coldStarts?: number; pullSecondsSaved?: number } }
interface EventJson { reason?: string; message?: string; involvedObject: { name?: string; kind?: string } }

describe('e2e on real nodes: kwarm counts warm and cold container starts', function () {
  this.timeout(600_000);
  let cluster: RealCluster;
  let kwarm: KwarmInstallation | undefined;
  let link: NodeRegistryLink | undefined;
  let node: string;

  async function entry(image: string): Promise<ImageEntry | undefined> {
    const { stdout } = await cluster.kubectl(['get', 'nodeimageset', node, '-o', 'json']);
    return (JSON.parse(stdout) as NisJson).status?.images?.find((i) => i.image === image);
  }

  async function waitEntry(image: string, what: string, ok: (e: ImageEntry) => boolean, timeoutMs = 120_000): Promise<ImageEntry> {
    let last: ImageEntry | undefined;
    try {
      return await waitFor(async () => {
        last = await entry(image);
        return last !== undefined && ok(last) ? last : undefined;
      }, { what, timeoutMs, intervalMs: 500 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast entry: ${JSON.stringify(last)}\n${await kwarmLogs(cluster, 20)}`);
    }
  }

  async function prePullImage(name: string, image: string): Promise<void> {
    await cluster.controlPlane.apply(JSON.stringify({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name, namespace: NS },
      spec: { image, nodes: { names: [node] } },
    }));
  }

  async function runPod(name: string, image: string): Promise<void> {
    await cluster.controlPlane.apply(JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS },
      spec: { nodeName: node, terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image, imagePullPolicy: 'IfNotPresent' }] },
    }));
    await cluster.kubectl(['wait', '--for=condition=Ready', `pod/${name}`, '-n', NS, '--timeout=180s']);
  }

  /** The kubelet's Pulling/Pulled events of a pod, as "reason: message". */
  async function imageEvents(pod: string): Promise<string[]> {
    return waitFor(async () => {
      const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
      const list = (JSON.parse(stdout) as { items: EventJson[] }).items
        .filter((e) => e.involvedObject.kind === 'Pod' && e.involvedObject.name === pod && (e.reason === 'Pulling' || e.reason === 'Pulled'))
        .map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`);
      return list.some((e) => e.startsWith('Pulled:')) ? list : undefined;
    }, { what: `the kubelet's image events of ${pod}`, timeoutMs: 30_000, intervalMs: 500 });
  }

  async function ppiStatus(name: string): Promise<PpiJson['status']> {
    const { stdout } = await cluster.kubectl(['get', 'prepullimage', name, '-n', NS, '-o', 'json']);
    return (JSON.parse(stdout) as PpiJson).status;
  }

  before(async () => {
    cluster = await sharedRealCluster();
    node = cluster.nodes[0]!.name;
    // One pull at a time per node, so a slow pull holds the node's only slot.
    kwarm = await helmInstallKwarm(cluster, { set: { 'controller.maxPullsPerNode': 1, 'agent.verifyInterval': '10s' } });
    await waitKwarmReady(cluster, kwarm.images);
    link = await linkNodesToRegistry(cluster, { bytesPerSecond: LINK_BYTES_PER_SECOND });
    await cluster.kubectl(['create', 'namespace', NS]);
    await waitFor(async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', NS], { allowFailure: true })).code === 0,
      { what: `the default ServiceAccount of ${NS}`, timeoutMs: 60_000, intervalMs: 250 });
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    await kwarm?.uninstall();
    await link?.stop();
  });

  it('a pod on an image kwarm pulled first counts warm, with the pull time saved; the kubelet found the image present', async () => {
    const warm = link!.nodeImage((await pushSleeperImage(cluster.registry, 'e2e/warm-start', 'v1', 3 * 2 ** 20)).reference);
    await prePullImage('warm', warm);
    const pulled = await waitEntry(warm, `${warm} Completed on ${node}`, (e) => e.phase === 'Completed');
    await runPod('warm', warm);
    const events = await imageEvents('warm');
    expect(events.filter((e) => e.startsWith('Pulling:')), events.join('; ')).to.deep.equal([]);
    expect(events.some((e) => e.includes('already present on machine')), events.join('; ')).to.equal(true);
    const counted = await waitEntry(warm, 'the warm start counted', (e) => (e.warmStarts ?? 0) > 0, 90_000);
    expect(counted.coldStarts ?? 0).to.equal(0);
    expect(counted.warmStarts).to.equal(1);
    expect(counted.pullMillisecondsSaved).to.be.greaterThan(1000);
    // The saving is kwarm's own measured pull of the image there.
    expect(counted.pullMillisecondsSaved).to.equal(pulled.pullMilliseconds);
    const rolled = await waitFor(async () => {
      const s = await ppiStatus('warm');
      return s?.warmStarts === 1 ? s : undefined;
    }, { what: 'the PrePullImage roll-up', timeoutMs: 60_000, intervalMs: 500 });
    expect(rolled).to.deep.include({ warmStarts: 1, pullSecondsSaved: Math.round((counted.pullMillisecondsSaved ?? 0) / 1000) });
    expect(rolled.coldStarts).to.equal(0);
    console.log(`      [figures] warm start on ${node}: kwarm's pull ${counted.pullMillisecondsSaved ?? 0} ms saved (3 MiB over ${LINK_BYTES_PER_SECOND} B/s)`);
  });

  it('a pod on a managed image kwarm had not pulled yet counts cold; the kubelet pulled it', async () => {
    const blocker = await buildAndPushImage(cluster.registry, { repository: 'e2e/warm-start-blocker', tag: 'v1', layers: [24 * 2 ** 20] });
    const blockerRef = link!.nodeImage(blocker.reference);
    // Direct from the registry (not the slow link): the kubelet pulls it in a moment.
    const cold = cluster.nodeImage((await pushSleeperImage(cluster.registry, 'e2e/cold-start', 'v1')).reference);
    await prePullImage('blocker', blockerRef);
    await waitEntry(blockerRef, `${blockerRef} Pulling on ${node}`, (e) => e.phase === 'Pulling');
    await prePullImage('cold', cold);
    await waitEntry(cold, `${cold} in ${node}'s NodeImageSet, waiting for the pull slot`, (e) => e.phase === 'Pending');
    await runPod('cold', cold);
    const events = await imageEvents('cold');
    expect(events.some((e) => e.startsWith('Pulling:')), events.join('; ')).to.equal(true);
    expect(events.some((e) => e.includes('already present')), events.join('; ')).to.equal(false);
    // kwarm was still pulling the blocker when the container started.
    expect((await entry(blockerRef))?.phase).to.equal('Pulling');
    const counted = await waitEntry(cold, 'the cold start counted', (e) => (e.coldStarts ?? 0) > 0, 90_000);
    expect(counted).to.deep.include({ coldStarts: 1 });
    expect(counted.warmStarts ?? 0).to.equal(0);
    expect(counted.pullMillisecondsSaved ?? 0).to.equal(0);
    await waitFor(async () => (await ppiStatus('cold'))?.coldStarts === 1, { what: 'the PrePullImage roll-up of the cold start', timeoutMs: 60_000, intervalMs: 500 });
    const { stdout } = await cluster.kubectl(['get', 'prepullimages', '-n', NS, '-o', 'wide']);
    expect(stdout).to.match(/WARM\s+COLD\s+SAVED/);
    console.log(`      [figures] kubectl get ppi -o wide:\n${stdout.trim().split('\n').map((l) => `        ${l}`).join('\n')}`);
  });
});
