// End to end through real pods: kwarm installed from its chart on the real-node cluster (kubelets, scheduler,
// pod network; images built from this repository), the README's basic PrePullPolicy, and a labelled Deployment
// with one pod per node. What users feel is checked where they see it: the kubelet's events on the new pods
// ("already present on machine", no "Pulling"), kwarm's pods coming back after deletions and restarts, and the
// images on every node as the runtime reports them.
//
// The rollouts are paused while the image changes (`kubectl rollout pause`, `set image`, `resume` once kwarm
// reports the image on every node), so whether a pod waited is decided by kwarm and not by a race with the
// kubelet; the Deployment's PrePullImage follows the paused template, as it would for a user.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { BUSYBOX, pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { REPO_ROOT } from '../../../local-cluster/kwarm-images.ts';
import { describePods, helmInstallKwarm, kwarmLogs, kwarmPods, podReady, waitKwarmReady, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { sleeperDeployment } from '../../../local-cluster/workloads.ts';

const NS = 'e2e-shop';
/** Finding 4: a PrePullImage with a pull secret, pulled with credentials the agents got from the controller. */
const CREDS_NS = 'e2e-creds';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const APP = 'shop';

interface PodJson {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase?: string };
}
interface EventJson {
  reason?: string;
  message?: string;
  involvedObject: { name?: string; kind?: string };
}
interface CredsNisJson {
  metadata: { name: string };
  spec?: { images?: { image: string; pullSecrets?: string[] }[] };
  status?: { images?: { image: string; phase: string; message?: string }[] };
}
interface NisJson {
  metadata: { name: string };
  status?: { images?: { image: string; phase: string; attempts?: number }[] };
}

function appDeployment(image: string, replicas: number): string {
  // All old pods go before new ones start (Recreate): each node gets a new pod of its own, and that pod has to
  // find the image on the node (no surge pod elsewhere).
  return sleeperDeployment({ name: APP, namespace: NS, image, replicas, labels: { 'kwarm.io/enabled': 'true' }, placement: 'spread', strategy: { type: 'Recreate' } });
}

describe('e2e on real nodes: pods start on images kwarm pre-pulled', function () {
  this.timeout(600_000);
  let cluster: RealCluster;
  let kwarm: KwarmInstallation | undefined;
  let replicas: number;
  let tagCount = 0;

  /** A runnable app image of `mib` random MiB in the cluster's registry, named as the nodes pull it. */
  async function pushApp(mib = 8): Promise<string> {
    const tag = `v${++tagCount}`;
    const pushed = mib <= 0
      ? await pushSleeperImage(cluster.registry, `e2e/${APP}`, tag)
      : await buildAndPushImage(cluster.registry, {
        repository: `e2e/${APP}`, tag, layers: [mib * 2 ** 20],
        files: [{ path: 'bin/busybox', content: readFileSync(BUSYBOX), mode: 0o755 }],
        entrypoint: ['/bin/busybox', 'sleep', '86400'],
      });
    return cluster.nodeImage(pushed.reference);
  }

  async function nodeImageSets(): Promise<NisJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'nodeimagesets', '-o', 'json']);
    return (JSON.parse(stdout) as { items: NisJson[] }).items;
  }

  function phaseOn(sets: readonly NisJson[], node: string, image: string): string {
    return sets.find((s) => s.metadata.name === node)?.status?.images?.find((i) => i.image === image)?.phase ?? '-';
  }

  /** Waits until every node's NodeImageSet reports `image` Completed and the node's containerd has it. */
  async function waitOnEveryNode(image: string, timeoutMs = 180_000): Promise<number> {
    const started = Date.now();
    let last: NisJson[] = [];
    try {
      await waitFor(async () => {
        last = await nodeImageSets();
        return cluster.nodes.every((n) => phaseOn(last, n.name, image) === 'Completed');
      }, { what: `${image} Completed on every node`, timeoutMs, intervalMs: 500 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${cluster.nodes.map((n) => `${n.name}: ${phaseOn(last, n.name, image)}`).join(', ')}\n${describePods(await kwarmPods(cluster))}\n${await kwarmLogs(cluster, 10)}`);
    }
    const elapsed = Date.now() - started;
    for (const n of cluster.nodes) expect(await onNode(n.name, image), `${image} in ${n.name}'s containerd`).to.equal(true);
    return elapsed;
  }

  async function onNode(node: string, image: string): Promise<boolean> {
    const cri = new GrpcImageRuntime({ endpoint: cluster.node(node).containerd.socket });
    try {
      return (await cri.imageStatus(image, { signal: AbortSignal.timeout(10_000) })) !== undefined;
    } finally {
      cri.close();
    }
  }

  async function appPods(): Promise<PodJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NS, '-l', `app=${APP}`, '-o', 'json']);
    return (JSON.parse(stdout) as { items: PodJson[] }).items;
  }

  /** The kubelet's image events of each pod: whether it pulled or found the image present. */
  async function imageEvents(pods: readonly PodJson[]): Promise<Map<string, EventJson[]>> {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    const events = (JSON.parse(stdout) as { items: EventJson[] }).items;
    return new Map(pods.map((p) => [p.metadata.name, events.filter((e) => e.involvedObject.kind === 'Pod' && e.involvedObject.name === p.metadata.name && (e.reason === 'Pulling' || e.reason === 'Pulled'))]));
  }

  /** Pauses the rollout, sets the image, waits for kwarm on every node, resumes; returns the new pods. */
  async function changeImage(image: string, whilePaused: () => Promise<void> = async () => { await waitOnEveryNode(image); }): Promise<PodJson[]> {
    // A patch, not `rollout pause`: that fails on a Deployment left paused (a test that failed mid-change).
    await cluster.kubectl(['patch', `deployment/${APP}`, '-n', NS, '--type=merge', '-p', '{"spec":{"paused":true}}']);
    await cluster.kubectl(['set', 'image', `deployment/${APP}`, `app=${image}`, '-n', NS]);
    await whilePaused();
    await cluster.kubectl(['rollout', 'resume', `deployment/${APP}`, '-n', NS]);
    await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=180s']);
    return waitFor(async () => {
      const pods = (await appPods()).filter((p) => p.spec.containers[0]?.image === image && p.status.phase === 'Running');
      return pods.length === replicas ? pods : undefined;
    }, { what: `${replicas} running pods of ${image}`, timeoutMs: 60_000, intervalMs: 500 });
  }

  /** Every new pod's kubelet found the image already present: one "Pulled ... already present" event, no "Pulling". */
  async function expectNoPodWaited(pods: readonly PodJson[], image: string): Promise<void> {
    expect(new Set(pods.map((p) => p.spec.nodeName)).size, 'one new pod per node').to.equal(replicas);
    const events = await waitFor(async () => {
      const e = await imageEvents(pods);
      return [...e.values()].every((list) => list.length > 0) ? e : undefined;
    }, { what: 'the kubelet\'s image events of the new pods', timeoutMs: 30_000, intervalMs: 500 });
    for (const p of pods) {
      const list = events.get(p.metadata.name) ?? [];
      const text = list.map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`).join('; ');
      expect(list.filter((e) => e.reason === 'Pulling'), `${p.metadata.name} on ${p.spec.nodeName ?? '?'} pulled: ${text}`).to.deep.equal([]);
      expect(list.some((e) => e.reason === 'Pulled' && (e.message ?? '').includes(image) && (e.message ?? '').includes('already present on machine')), `${p.metadata.name}: ${text}`).to.equal(true);
    }
  }

  before(async () => {
    cluster = await sharedRealCluster();
    // verifyInterval short, so an image removed from a node (as kubelet GC does) is noticed within the test.
    kwarm = await helmInstallKwarm(cluster, { set: { 'agent.verifyInterval': '10s' } });
    await waitKwarmReady(cluster, kwarm.images);
    // The README's basic policy, unchanged.
    await cluster.kubectl(['apply', '--server-side', '-f', join(REPO_ROOT, 'deploy', 'samples', 'prepullpolicy_basic.yaml')]);
    await cluster.kubectl(['create', 'namespace', NS]);
    await waitFor(async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', NS], { allowFailure: true })).code === 0,
      { what: `the default ServiceAccount of ${NS}`, timeoutMs: 60_000, intervalMs: 250 });
    replicas = cluster.nodes.length;
    const v1 = await pushApp();
    await cluster.controlPlane.apply(appDeployment(v1, replicas));
    await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=180s']);
    await waitOnEveryNode(v1);
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', NS, CREDS_NS, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    await cluster.kubectl(['delete', '-f', join(REPO_ROOT, 'deploy', 'samples', 'prepullpolicy_basic.yaml'), '--ignore-not-found'], { allowFailure: true });
    await kwarm?.uninstall();
  });

  it('seed flow: after an image change the new pod on every node starts with the image already present, no pull', async () => {
    const v2 = await pushApp();
    let prePullMs = 0;
    const pods = await changeImage(v2, async () => { prePullMs = await waitOnEveryNode(v2); });
    console.log(`      [figures] kwarm had ${v2.split('/').pop() ?? ''} on ${replicas} nodes ${prePullMs} ms after set image`);
    await expectNoPodWaited(pods, v2);
  });

  it('a node that joins later gets its agent pod and the images', async () => {
    const current = (await appPods())[0]?.spec.containers[0]?.image;
    expect(current).to.be.a('string');
    const node = await cluster.addNode();
    await waitKwarmReady(cluster, kwarm!.images);
    const agents = (await kwarmPods(cluster, 'agent')).filter((p) => p.spec?.nodeName === node.name);
    expect(agents, 'one agent pod on the new node').to.have.length(1);
    expect(podReady(agents[0]!)).to.equal(true);
    await waitOnEveryNode(current!);
    expect(await onNode(node.name, current!)).to.equal(true);
    replicas = cluster.nodes.length;
    await cluster.kubectl(['scale', `deployment/${APP}`, '-n', NS, `--replicas=${replicas}`]);
    await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=180s']);
    // The pod the scale-up put on the new node found the image there too.
    const onNew = (await appPods()).filter((p) => p.spec.nodeName === node.name);
    expect(onNew).to.have.length(1);
    const events = await waitFor(async () => {
      const e = (await imageEvents(onNew)).get(onNew[0]!.metadata.name) ?? [];
      return e.length > 0 ? e : undefined;
    }, { what: 'the image event of the pod on the new node', timeoutMs: 30_000, intervalMs: 500 });
    expect(events.map((e) => e.reason)).to.not.include('Pulling');
  });

  it('the agent pod deleted mid-pull and the controller pod deleted mid-rollout come back, and every node converges', async () => {
    const big = await pushApp(96);
    const before = new Set((await kwarmPods(cluster)).map((p) => p.metadata?.name));
    const pods = await changeImage(big, async () => {
      // Mid-pull: the first node whose agent reports the image Pulling loses its agent pod.
      const pulling = await waitFor(async () => {
        const sets = await nodeImageSets();
        return cluster.nodes.find((n) => phaseOn(sets, n.name, big) === 'Pulling')?.name;
      }, { what: `a node pulling ${big}`, timeoutMs: 120_000, intervalMs: 200 });
      const agent = (await kwarmPods(cluster, 'agent')).find((p) => p.spec?.nodeName === pulling);
      const controller = (await kwarmPods(cluster, 'controller'))[0];
      await cluster.kubectl(['delete', 'pod', '-n', KWARM_NAMESPACE, agent?.metadata?.name ?? '', controller?.metadata?.name ?? '', '--wait=false']);
      const replaced = await waitKwarmReady(cluster, kwarm!.images);
      const now = [...replaced.agents, ...replaced.controllers].map((p) => p.metadata?.name);
      expect(now, 'the deleted agent pod was replaced').to.not.include(agent?.metadata?.name);
      expect(now, 'the deleted controller pod was replaced').to.not.include(controller?.metadata?.name);
      expect(now.filter((n) => !before.has(n))).to.have.length(2);
      await waitOnEveryNode(big);
    });
    await expectNoPodWaited(pods, big);
  });

  it('the node\'s containerd restarts: the agent keeps working (or its probe restarts it) and the node converges', async () => {
    const node = cluster.nodes[0]!.name;
    await cluster.restartContainerd(node);
    const next = await pushApp();
    const pods = await changeImage(next);
    await waitKwarmReady(cluster, kwarm!.images);
    await expectNoPodWaited(pods, next);
  });

  // Finding 4 on real pods: with the chart's default (agent.pullSecretsFrom=controller) each agent gets its node's
  // pull credentials from the controller's endpoint through the Service's cluster IP (kube-proxy), proving its node
  // with the token the kubelet mounted. The registry takes anonymous pulls, so what is checked is the credentials'
  // path: the controller served each node, the agents may read no Secret, no password is logged.
  it('pulls an image with a pull secret on every node through the controller; nothing logs the password', async () => {
    const c = cluster;
    const pushed = await buildAndPushImage(c.registry, { repository: 'e2e/creds', tag: 'v1', layers: [256 * 1024] });
    const image = c.nodeImage(pushed.reference);
    const host = image.split('/')[0]!;
    const config = JSON.stringify({ auths: { [host]: { username: 'u', password: PASSWORD, auth: Buffer.from(`u:${PASSWORD}`).toString('base64') } } });
    await c.kubectl(['create', 'namespace', CREDS_NS]);
    await c.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1', kind: 'List', items: [
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'regcred', namespace: CREDS_NS }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(config).toString('base64') } },
          { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'creds', namespace: CREDS_NS }, spec: { image, nodes: { names: c.nodes.map((n) => n.name) }, imagePullSecrets: [{ name: 'regcred' }] } },
        ],
      }),
    });
    let sets: CredsNisJson[] = [];
    try {
      await waitFor(async () => {
        sets = (JSON.parse((await c.kubectl(['get', 'nodeimagesets', '-o', 'json'])).stdout) as { items: CredsNisJson[] }).items;
        return c.nodes.every((n) => sets.find((s) => s.metadata.name === n.name)?.status?.images?.find((i) => i.image === image)?.phase === 'Completed');
      }, { what: `${image} Completed on every node`, timeoutMs: 240_000, intervalMs: 1000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${JSON.stringify(sets.map((s) => s.status?.images))}\n${describePods(await kwarmPods(c))}\n${await kwarmLogs(c, 30)}`);
    }
    for (const n of c.nodes) {
      const entry = sets.find((s) => s.metadata.name === n.name)?.spec?.images?.find((i) => i.image === image);
      expect(entry?.pullSecrets?.[0], n.name).to.match(/^kwarm-pull\./);
    }
    const controllerLogs: string[] = [];
    for (const p of await kwarmPods(c, 'controller')) {
      controllerLogs.push((await c.kubectl(['logs', '-n', KWARM_NAMESPACE, p.metadata?.name ?? ''])).stdout);
    }
    const logs = controllerLogs.join('\n');
    for (const n of c.nodes) expect(logs, `served to ${n.name}`).to.match(new RegExp(`pull credentials served[^\\n]*"node":"${n.name}"`));
    const all = `${logs}\n${await kwarmLogs(c, 500)}`;
    for (const form of [PASSWORD, Buffer.from(`u:${PASSWORD}`).toString('base64')]) expect(all.includes(form)).to.equal(false);
    // The agent's own token may not read the copy.
    const can = await c.kubectl(['auth', 'can-i', 'get', `secrets/${sets[0]!.spec!.images!.find((i) => i.image === image)!.pullSecrets![0]!}`, '-n', KWARM_NAMESPACE,
      `--as=system:serviceaccount:${KWARM_NAMESPACE}:kwarm-agent`], { allowFailure: true });
    expect(can.stdout.trim()).to.equal('no');
  });

  it('an image the kubelet\'s own image GC removes from a node is pulled again', async function () {
    // RealNode.collectImages restarts the kubelet with a 1 % threshold and waits for its pass at start-up (seconds;
    // the 420 s limit covers the kubelet's next periodic pass). Every unused image on the node goes, kwarm's too.
    this.timeout(600_000);
    const image = cluster.nodeImage((await pushSleeperImage(cluster.registry, 'e2e/gc-victim', 'v1')).reference);
    await cluster.controlPlane.apply(JSON.stringify({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'gc-victim', namespace: NS },
      spec: { image, nodes: { selector: { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] } } },
    }));
    await waitOnEveryNode(image);
    // The node that joined last: its agent has seen no containerd restart in this file.
    const node = cluster.nodes.at(-1)!;
    const collected = Date.now();
    // Done as soon as the image is gone: kwarm may pull it back before the kubelet's restart is over.
    await node.collectImages(async () => !(await onNode(node.name, image)));
    console.log(`      [figures] kubelet image GC on ${node.name} removed ${image} after ${Math.round((Date.now() - collected) / 1000)} s`);
    const started = Date.now();
    await waitFor(async () => onNode(node.name, image), { what: `${image} pulled again on ${node.name}`, timeoutMs: 90_000, intervalMs: 500 });
    console.log(`      [figures] pulled again ${Date.now() - started} ms after the kubelet removed it (agent verify interval 10 s)`);
  });
});
