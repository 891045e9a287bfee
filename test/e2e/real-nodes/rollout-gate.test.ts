// The rollout gate end to end on real kubelets and a real scheduler: kwarm installed from its chart with
// rolloutGate.enabled, a PrePullPolicy with rolloutGate.enabled, and a labelled Deployment. After an image change
// the new pods are created gated by the webhook (the API server calls it over TLS), wait while kwarm pulls, are
// released by the controller once the image is on every node (Event RolloutGateReleased), and start with the
// kubelet's "already present" event and no "Pulling". helm uninstall leaves no pod gated (the pre-delete hook).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ROLLOUT_GATE_NAME } from '../../../api/v1alpha1/index.ts';
import { BUSYBOX } from '../../../local-cluster/busybox-images.ts';
import { helmInstallKwarm, kwarmLogs, waitKwarmReady, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const NS = 'e2e-gate';
const APP = 'gated';
const POLICY = 'e2e-rollout-gate';

interface PodJson {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { nodeName?: string; containers: { image: string }[]; schedulingGates?: { name: string }[] };
  status: { phase?: string };
}
interface EventJson { reason?: string; message?: string; involvedObject: { name?: string; kind?: string } }

describe('e2e on real nodes: the rollout gate (chart, webhook, release loop, uninstall hook)', function () {
  this.timeout(600_000);
  let cluster: RealCluster;
  let kwarm: KwarmInstallation | undefined;
  let tagCount = 0;

  async function pushApp(mib: number): Promise<string> {
    const pushed = await buildAndPushImage(cluster.registry, {
      repository: `e2e/${APP}`, tag: `v${++tagCount}`, layers: [mib * 2 ** 20],
      files: [{ path: 'bin/busybox', content: readFileSync(BUSYBOX), mode: 0o755 }],
      entrypoint: ['/bin/busybox', 'sleep', '86400'],
    });
    return cluster.nodeImage(pushed.reference);
  }

  function deployment(image: string, replicas: number): string {
    return JSON.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment',
      metadata: { name: APP, namespace: NS, labels: { app: APP, 'kwarm-e2e/gate': 'true' } },
      spec: {
        replicas, selector: { matchLabels: { app: APP } },
        // New pods are created at once on an image change (maxUnavailable 0): the webhook sees them before kwarm
        // can have pulled anything, so they are gated for certain.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: replicas, maxUnavailable: 0 } },
        template: {
          metadata: { labels: { app: APP } },
          spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image }] },
        },
      },
    });
  }

  async function pods(): Promise<PodJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NS, '-l', `app=${APP}`, '-o', 'json']);
    return (JSON.parse(stdout) as { items: PodJson[] }).items;
  }

  async function events(): Promise<EventJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    return (JSON.parse(stdout) as { items: EventJson[] }).items;
  }

  const gated = (p: PodJson): boolean => p.spec.schedulingGates?.some((g) => g.name === ROLLOUT_GATE_NAME) ?? false;

  before(async () => {
    cluster = await sharedRealCluster();
    kwarm = await helmInstallKwarm(cluster, { set: { 'rolloutGate.enabled': true } });
    await waitKwarmReady(cluster, kwarm.images);
    await cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
        spec: { selector: { matchLabels: { 'kwarm-e2e/gate': 'true' }, namespaces: [NS] }, rolloutGate: { enabled: true, timeout: '5m' } },
      }),
    });
    await cluster.kubectl(['create', 'namespace', NS]);
    await waitFor(async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', NS], { allowFailure: true })).code === 0,
      { what: `the default ServiceAccount of ${NS}`, timeoutMs: 60_000, intervalMs: 250 });
    // A new workload has no PrePullImage yet, so its first pods are admitted ungated: roll it out first.
    await cluster.controlPlane.apply(deployment(await pushApp(1), cluster.nodes.length));
    await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=180s']);
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    await cluster.kubectl(['delete', 'prepullpolicy', POLICY, '--ignore-not-found'], { allowFailure: true });
    await kwarm?.uninstall();
  });

  it('an image change: new pods wait gated while kwarm pulls, then start with the image already present', async () => {
    const v2 = await pushApp(24);
    await cluster.kubectl(['set', 'image', `deployment/${APP}`, `app=${v2}`, '-n', NS]);
    const seenGated = await waitFor(async () => (await pods()).find((p) => p.spec.containers[0]?.image === v2 && gated(p)),
      { what: 'a new pod created with kwarm\'s scheduling gate', timeoutMs: 60_000, intervalMs: 200 });
    expect(seenGated.spec.nodeName, 'a gated pod is not scheduled').to.equal(undefined);
    await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=240s']);
    const fresh = await waitFor(async () => {
      const list = (await pods()).filter((p) => p.spec.containers[0]?.image === v2 && p.status.phase === 'Running');
      return list.length === cluster.nodes.length ? list : undefined;
    }, { what: 'the new pods running', timeoutMs: 60_000, intervalMs: 500 });
    const all = await waitFor(async () => {
      const e = await events();
      return fresh.every((p) => e.some((x) => x.involvedObject.name === p.metadata.name && x.reason === 'Pulled')) ? e : undefined;
    }, { what: 'the kubelet\'s Pulled events', timeoutMs: 30_000, intervalMs: 500 });
    for (const p of fresh) {
      const mine = all.filter((x) => x.involvedObject.name === p.metadata.name);
      const text = mine.map((x) => `${x.reason ?? ''}: ${x.message ?? ''}`).join('; ');
      expect(mine.filter((x) => x.reason === 'Pulling'), `${p.metadata.name} pulled: ${text}`).to.deep.equal([]);
      expect(mine.some((x) => x.reason === 'Pulled' && (x.message ?? '').includes('already present on machine')), text).to.equal(true);
      expect(mine.some((x) => x.reason === 'RolloutGateReleased' && (x.message ?? '').includes('ImagesWarm')), `${p.metadata.name} released by kwarm: ${text}\n${await kwarmLogs(cluster, 10)}`).to.equal(true);
    }
  });

  it('helm uninstall leaves no pod gated', async () => {
    // An image that does not exist: the pods stay gated (until the 5m timeout) ...
    const missing = cluster.nodeImage(`${cluster.registry.host}/e2e/${APP}:missing`);
    await cluster.kubectl(['set', 'image', `deployment/${APP}`, `app=${missing}`, '-n', NS]);
    await waitFor(async () => (await pods()).some((p) => p.spec.containers[0]?.image === missing && gated(p)),
      { what: 'a gated pod of the missing image', timeoutMs: 60_000, intervalMs: 200 });
    // ... until kwarm goes: the pre-delete hook removes the gate before the controller is deleted.
    const installed = kwarm;
    kwarm = undefined;
    await installed?.uninstall();
    const left = (await pods()).filter(gated);
    expect(left.map((p) => p.metadata.name)).to.deep.equal([]);
    const e = await events();
    expect(e.some((x) => x.reason === 'RolloutGateReleased' && (x.message ?? '').includes('Uninstalled'))).to.equal(true);
  });
});
