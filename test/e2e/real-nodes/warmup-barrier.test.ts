// The node warm-up barrier on real kubelets: kwarm installed from its chart, a PrePullPolicy with gateNewNodes,
// and nodes that join the cluster registered with kwarm's startup taint (kubelet registerWithTaints, as
// --register-with-taints, Karpenter startupTaints or a cluster autoscaler's startup taints put it there).
//
// A Deployment with one pod per node (required anti-affinity) and one replica more than the cluster has nodes
// keeps a pod Pending until a new node can take it, as an autoscaler scale-up does. What is checked is what
// users see: the scheduler puts no pod on the new node while kwarm's taint is on, the taint comes off only once
// the node's agent reports the gating image Completed (or, with no agent on the node, at --warmup-timeout), the
// ImagesWarm condition and the Node Event say why, and the pod starts with the kubelet's "already present on
// machine". Last, the Node writes kwarm must never make are tried with the tokens the kubelets gave kwarm's own
// pods (read from the node's kubelet directory, never printed).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_WARMUP_TAINT_KEY } from '../../../api/v1alpha1/index.ts';
import { KubeApiError, KubeClient } from '../../../lib/kube-client.ts';
import { BUSYBOX } from '../../../local-cluster/busybox-images.ts';
import { helm } from '../../../local-cluster/helm.ts';
import { KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { describePods, helmInstallKwarm, kwarmLogs, kwarmPods, podReady, RELEASE, waitKwarmLeader, waitKwarmReady, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { clientWithToken, kubeletIssuedToken } from '../../../local-cluster/pod-tokens.ts';
import type { RealNode } from '../../../local-cluster/real-node.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { sleeperDeployment } from '../../../local-cluster/workloads.ts';

const NS = 'e2e-warmup';
const APP = 'warm-app';
const POLICY = 'e2e-warmup';
const TAINT = DEFAULT_WARMUP_TAINT_KEY;
const STARTUP_TAINT = { key: TAINT, effect: 'NoSchedule' } as const;
/** Long enough for a node with a working agent to warm on a loaded machine; the agent-less case lowers it. */
const TIMEOUT_WORKING = '5m';
/**
 * The agent-less node's wait, all of it spent in the test: long enough to see the node held with
 * AgentNotReporting (the condition came 1 s after Ready, Ready about 1 s after the Node's creation), no longer.
 */
const TIMEOUT_NO_AGENT_S = 30;
const FOREIGN = { key: 'kwarm-e2e/foreign', value: 'x', effect: 'PreferNoSchedule' } as const;

interface Condition { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }
interface NodeJson {
  metadata: { name: string; resourceVersion: string; creationTimestamp: string; labels?: Record<string, string> };
  spec: { taints?: { key: string; value?: string; effect: string }[] };
  status: { conditions?: Condition[] };
}
interface PodJson {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
  status: { phase?: string };
}
interface EventJson {
  type?: string;
  reason?: string;
  message?: string;
  involvedObject: { name?: string; kind?: string };
}
interface NisJson {
  spec?: { gatingImages?: number; images?: { image: string; gatesNode?: boolean }[] };
  status?: { images?: { image: string; phase: string }[] };
}

/** One look at the new node, its NodeImageSet and the app's pods, while the barrier decides. */
interface Snapshot {
  atMs: number;
  tainted: boolean;
  warm: Condition | undefined;
  gatingPhase: string;
  podsOnNode: number;
  pending: number;
}

// One pod per node: the replica beyond the node count waits for a node to join, as in a scale-up.
function deployment(image: string, replicas: number): string {
  return sleeperDeployment({ name: APP, namespace: NS, image, replicas, labels: { 'kwarm-e2e/warmup': 'true' }, placement: 'one-per-node' });
}

describe('e2e on real nodes: the warm-up barrier holds a joining node until its images are warm', function () {
  this.timeout(900_000);
  let cluster: RealCluster;
  let kwarm: KwarmInstallation | undefined;
  let image: string;
  const joined: RealNode[] = [];

  async function node(name: string): Promise<NodeJson> {
    return JSON.parse((await cluster.kubectl(['get', 'node', name, '-o', 'json'])).stdout) as NodeJson;
  }
  const warmCondition = (n: NodeJson): Condition | undefined => n.status.conditions?.find((c) => c.type === 'ImagesWarm');
  const tainted = (n: NodeJson): boolean => (n.spec.taints ?? []).some((t) => t.key === TAINT);

  async function appPods(): Promise<PodJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NS, '-l', `app=${APP}`, '-o', 'json']);
    return (JSON.parse(stdout) as { items: PodJson[] }).items;
  }

  async function nodeImageSet(name: string): Promise<NisJson | undefined> {
    const r = await cluster.kubectl(['get', 'nodeimageset', name, '-o', 'json'], { allowFailure: true });
    return r.code === 0 ? JSON.parse(r.stdout) as NisJson : undefined;
  }

  /**
   * Read in this order so that the one look is consistent although the reads are seconds apart on a loaded
   * machine: a pod bound to the node before the node read means the taint was gone by then, and a taint seen
   * before the NodeImageSet read means the image was not Completed earlier than that read says.
   */
  async function snapshot(name: string, t0: number): Promise<Snapshot> {
    const pods = await appPods();
    const n = await node(name);
    const set = await nodeImageSet(name);
    return {
      atMs: Date.now() - t0,
      tainted: tainted(n),
      warm: warmCondition(n),
      gatingPhase: set?.status?.images?.find((i) => i.image === image)?.phase ?? '-',
      podsOnNode: pods.filter((p) => p.spec.nodeName === name).length,
      pending: pods.filter((p) => p.spec.nodeName === undefined).length,
    };
  }

  /** Snapshots every half second until the app's pod on `name` runs; the history, for the assertions. */
  async function watchUntilPodRuns(name: string, timeoutMs: number): Promise<Snapshot[]> {
    const t0 = Date.now();
    const seen: Snapshot[] = [];
    try {
      await waitFor(async () => {
        seen.push(await snapshot(name, t0));
        return (await appPods()).some((p) => p.spec.nodeName === name && p.status.phase === 'Running');
      }, { what: `the app's pod running on ${name}`, timeoutMs, intervalMs: 500 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${history(seen)}\n${describePods(await kwarmPods(cluster))}\n${await kwarmLogs(cluster, 15)}`);
    }
    return seen;
  }

  function history(seen: readonly Snapshot[]): string {
    let last = '';
    const lines: string[] = [];
    for (const s of seen) {
      const line = `taint=${String(s.tainted)} ImagesWarm=${s.warm?.status ?? '-'}/${s.warm?.reason ?? '-'} image=${s.gatingPhase} podsOnNode=${s.podsOnNode} pending=${s.pending}`;
      if (line !== last) lines.push(`  +${(s.atMs / 1000).toFixed(1)} s ${line}`);
      last = line;
    }
    return lines.join('\n');
  }

  async function nodeEvents(name: string): Promise<EventJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.kind=Node,involvedObject.name=${name}`, '-o', 'json']);
    return (JSON.parse(stdout) as { items: EventJson[] }).items;
  }

  /** The kubelet's Pulling/Pulled events of the app's pod on `name`, once there is a Pulled one. */
  async function imageEventsOnNode(name: string): Promise<EventJson[]> {
    const pod = (await appPods()).find((p) => p.spec.nodeName === name);
    if (pod === undefined) throw new Error(`no app pod on ${name}`);
    return waitFor(async () => {
      const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
      const mine = (JSON.parse(stdout) as { items: EventJson[] }).items.filter((e) => e.involvedObject.kind === 'Pod' && e.involvedObject.name === pod.metadata.name
        && (e.reason === 'Pulling' || e.reason === 'Pulled'));
      return mine.some((e) => e.reason === 'Pulled') ? mine : undefined;
    }, { what: `the kubelet's image events of ${pod.metadata.name}`, timeoutMs: 60_000, intervalMs: 500 });
  }

  async function scaleToOneMoreThanNodes(): Promise<number> {
    const replicas = cluster.nodes.length + 1;
    await cluster.kubectl(['scale', `deployment/${APP}`, '-n', NS, `--replicas=${replicas}`]);
    await waitFor(async () => {
      const pods = await appPods();
      return pods.length === replicas && pods.filter((p) => p.status.phase === 'Running').length === replicas - 1
        && pods.filter((p) => p.spec.nodeName === undefined).length === 1;
    }, { what: `${replicas - 1} app pods running and one Pending`, timeoutMs: 240_000, intervalMs: 1000 });
    return replicas;
  }

  before(async () => {
    cluster = await sharedRealCluster();
    kwarm = await helmInstallKwarm(cluster, { set: { 'controller.warmup.timeout': TIMEOUT_WORKING } });
    const { controllers } = await waitKwarmReady(cluster, kwarm.images);
    // The barrier runs on the leader only, and the nodes below must join while it runs: after an earlier
    // install, its Lease lasts until it expires (seen: about 10 s after Ready, when the image was already there).
    await waitKwarmLeader(cluster, controllers);
    await cluster.kubectl(['create', 'namespace', NS]);
    await waitFor(async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', NS], { allowFailure: true })).code === 0,
      { what: `the default ServiceAccount of ${NS}`, timeoutMs: 60_000, intervalMs: 250 });
    await cluster.controlPlane.apply(JSON.stringify({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
      spec: { selector: { matchLabels: { 'kwarm-e2e/warmup': 'true' }, namespaces: [NS] }, gateNewNodes: true },
    }));
    const pushed = await buildAndPushImage(cluster.registry, {
      repository: 'e2e/warm-app', tag: 'v1', layers: [48 * 2 ** 20],
      files: [{ path: 'bin/busybox', content: readFileSync(BUSYBOX), mode: 0o755 }],
      entrypoint: ['/bin/busybox', 'sleep', '86400'],
    });
    image = cluster.nodeImage(pushed.reference);
    await cluster.controlPlane.apply(deployment(image, cluster.nodes.length));
    await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=240s']);
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    await cluster.kubectl(['delete', 'prepullpolicy', POLICY, '--ignore-not-found'], { allowFailure: true });
    await kwarm?.uninstall();
    // The nodes this file added leave the shared cluster (after kwarm, whose agents ran there): the other files'
    // tests size their Deployments by the node count, and each extra node is load on a 2-core machine.
    for (const n of joined) await cluster.removeNode(n.name);
  });

  it('a node registered with the taint takes no pod until its gating image is Completed, then its pod starts on the image already present', async () => {
    await scaleToOneMoreThanNodes();
    const added = await cluster.addNode({ registerWithTaints: [STARTUP_TAINT] });
    joined.push(added);
    const seen = await watchUntilPodRuns(added.name, 300_000);
    const text = history(seen);
    console.log(`      [figures] ${added.name} from Ready:\n${text}`);

    expect(seen[0]?.tainted, `registered with ${TAINT}\n${text}`).to.equal(true);
    // The barrier held: the node was Ready, tainted and not yet warm, with the pod Pending, at least once.
    expect(seen.some((s) => s.tainted && s.gatingPhase !== 'Completed' && s.pending === 1 && s.podsOnNode === 0), `held while pulling\n${text}`).to.equal(true);
    // The taint never came off before the image was Completed, and no pod was on the node while it was on.
    expect(seen.filter((s) => !s.tainted && s.gatingPhase !== 'Completed'), `taint lifted before Completed\n${text}`).to.deep.equal([]);
    expect(seen.filter((s) => s.tainted && s.podsOnNode > 0), `pod on the tainted node\n${text}`).to.deep.equal([]);
    const holding = seen.find((s) => s.tainted && s.warm !== undefined)?.warm;
    expect(holding?.status, `ImagesWarm while held\n${text}`).to.equal('False');

    const set = await nodeImageSet(added.name);
    expect(set?.spec?.images?.find((i) => i.image === image)?.gatesNode, 'the entry gates the node').to.equal(true);
    expect(set?.spec?.gatingImages).to.equal(1);
    const after = await node(added.name);
    expect(tainted(after)).to.equal(false);
    expect(warmCondition(after)).to.include({ status: 'True', reason: 'ImagesPresent' });
    const events = (await nodeEvents(added.name)).filter((e) => e.reason?.startsWith('Warmup') === true);
    expect(events.map((e) => `${e.type ?? ''}/${e.reason ?? ''}`)).to.deep.equal(['Normal/WarmupComplete']);

    const pulls = await imageEventsOnNode(added.name);
    const said = pulls.map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`).join('; ');
    expect(pulls.filter((e) => e.reason === 'Pulling'), said).to.deep.equal([]);
    expect(pulls.some((e) => e.reason === 'Pulled' && (e.message ?? '').includes('already present on machine')), said).to.equal(true);
  });

  it('with no agent on the joining node, the taint comes off at the timeout, with the Warning Event and the condition\'s reason', async () => {
    // The agent DaemonSet kept to the nodes there are now: the next node never gets an agent. One upgrade also
    // lowers the timeout.
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: cluster.nodes.map((n) => n.name) }] }] } } };
    await helm(['upgrade', RELEASE, join(import.meta.dirname, '..', '..', '..', 'charts', 'kwarm'), '-n', KWARM_NAMESPACE, '--reuse-values',
      '--set', `controller.warmup.timeout=${TIMEOUT_NO_AGENT_S}s`, '--set-json', `agent.affinity=${JSON.stringify(affinity)}`], { cp: cluster.controlPlane });
    await cluster.kubectl(['rollout', 'status', 'deployment/kwarm-controller', '-n', KWARM_NAMESPACE, '--timeout=180s']);
    await cluster.kubectl(['rollout', 'status', 'daemonset/kwarm-agent', '-n', KWARM_NAMESPACE, '--timeout=300s']);
    await waitKwarmReady(cluster, kwarm!.images);
    const controllerArgs = (await cluster.kubectl(['get', 'deployment', 'kwarm-controller', '-n', KWARM_NAMESPACE, '-o', 'jsonpath={.spec.template.spec.containers[0].args}'])).stdout;
    expect(controllerArgs).to.include(`--warmup-timeout=${TIMEOUT_NO_AGENT_S}s`);

    await scaleToOneMoreThanNodes();
    const added = await cluster.addNode({ registerWithTaints: [STARTUP_TAINT] });
    joined.push(added);
    const seen = await watchUntilPodRuns(added.name, (TIMEOUT_NO_AGENT_S + 240) * 1000);
    const text = history(seen);
    console.log(`      [figures] ${added.name} (no agent) from Ready:\n${text}`);

    expect((await kwarmPods(cluster, 'agent')).filter((p) => p.spec?.nodeName === added.name), 'no agent pod on the node').to.deep.equal([]);
    expect(seen[0]?.tainted, text).to.equal(true);
    expect(seen.filter((s) => s.tainted && s.podsOnNode > 0), `pod on the tainted node\n${text}`).to.deep.equal([]);
    expect(seen.some((s) => s.tainted && s.warm?.status === 'False' && s.warm.reason === 'AgentNotReporting'), `AgentNotReporting while held\n${text}`).to.equal(true);

    const after = await node(added.name);
    const warm = warmCondition(after);
    expect(tainted(after)).to.equal(false);
    expect(warm).to.include({ status: 'True', reason: 'TimedOut' });
    expect(warm?.message).to.match(new RegExp(`^warm-up timeout of ${TIMEOUT_NO_AGENT_S}s passed before the images were warm \\(AgentNotReporting: `, 'u'));
    // Not before the timeout, counted from the node's creation (the API's times have whole seconds).
    const liftedAfterS = (Date.parse(warm?.lastTransitionTime ?? '') - Date.parse(after.metadata.creationTimestamp)) / 1000;
    expect(liftedAfterS, 'seconds from creation to ImagesWarm=True').to.be.at.least(TIMEOUT_NO_AGENT_S - 1);
    console.log(`      [figures] ${added.name}: taint lifted ${liftedAfterS.toFixed(0)} s after the node's creation (timeout ${TIMEOUT_NO_AGENT_S} s)`);
    const events = (await nodeEvents(added.name)).filter((e) => e.reason?.startsWith('Warmup') === true);
    expect(events.map((e) => `${e.type ?? ''}/${e.reason ?? ''}`)).to.deep.equal(['Warning/WarmupTimedOut']);
    expect(events[0]?.message).to.equal(warm?.message);
    // Failed open: the pod runs there, and its kubelet pulled the image itself.
    const pulls = await imageEventsOnNode(added.name);
    expect(pulls.map((e) => e.reason)).to.include('Pulling');
  });

  describe('the Node writes kwarm must never make, with the tokens the kubelets gave its pods', () => {
    let target: string;
    let other: string;
    let controllerClient: KubeClient | undefined;
    let agentClient: KubeClient | undefined;
    const ac = new AbortController();


    async function refused(write: () => Promise<unknown>): Promise<KubeApiError> {
      try {
        await write();
      } catch (err) {
        if (err instanceof KubeApiError) return err;
        throw err;
      }
      throw new Error('the write was accepted');
    }

    before(async () => {
      const [first] = joined;
      if (first === undefined) throw new Error('the first test added no node');
      target = first.name;
      // The agent on the target node (it has one: the upgrade kept agents where they were).
      const agent = (await kwarmPods(cluster, 'agent')).find((p) => p.spec?.nodeName === target);
      const controller = (await kwarmPods(cluster, 'controller')).find(podReady);
      if (agent === undefined || controller === undefined) throw new Error(`kwarm's pods: ${describePods(await kwarmPods(cluster))}`);
      other = cluster.nodes.map((n) => n.name).find((n) => n !== target) ?? '';
      controllerClient = clientWithToken(cluster, await kubeletIssuedToken(cluster, controller), 'kwarm-controller');
      agentClient = clientWithToken(cluster, await kubeletIssuedToken(cluster, agent), 'kwarm-agent');
      await cluster.kubectl(['taint', 'nodes', target, `${FOREIGN.key}=${FOREIGN.value}:${FOREIGN.effect}`]);
      // The tokens are the real ones: each reads what its role allows.
      await ctl().get(`/api/v1/nodes/${target}`, ac.signal);
      await agt().get(`/apis/kwarm.io/v1alpha1/nodeimagesets/${target}`, ac.signal);
    });

    after(() => {
      ac.abort();
      controllerClient?.close();
      agentClient?.close();
    });

    const set = <T>(c: T | undefined): T => {
      if (c === undefined) throw new Error('no client: the before hook failed');
      return c;
    };
    const ctl = (): KubeClient => set(controllerClient);
    const agt = (): KubeClient => set(agentClient);
    const nodePath = (name: string): string => `/api/v1/nodes/${name}`;
    const statusPath = (name: string): string => `/api/v1/nodes/${name}/status`;
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['controller: adding a taint (kwarm\'s own again)', () => ctl().patch(nodePath(target), 'json', [{ op: 'add', path: '/spec/taints/-', value: STARTUP_TAINT }], ac.signal), /only remove its own taint/u],
      ['controller: removing another taint', () => ctl().patch(nodePath(target), 'merge', { spec: { taints: null } }, ac.signal), /only remove its own taint/u],
      ['controller: changing a label', () => ctl().patch(nodePath(target), 'merge', { metadata: { labels: { 'kwarm-e2e/evil': 'x' } } }, ac.signal), /labels/u],
      ['controller: writing another condition', () => ctl().patch(statusPath(target), 'strategic', { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'Evil', message: 'x' }] } }, ac.signal), /only write the ImagesWarm condition/u],
      ['controller: cordoning', () => ctl().patch(nodePath(target), 'merge', { spec: { unschedulable: true } }, ac.signal), /spec/u],
      ['agent: removing a taint of its own node', () => agt().patch(nodePath(target), 'merge', { spec: { taints: null } }, ac.signal), /forbidden/u],
      ['agent: writing ImagesWarm on its own node', () => agt().patch(statusPath(target), 'strategic', { status: { conditions: [{ type: 'ImagesWarm', status: 'True', reason: 'ImagesPresent', message: 'x' }] } }, ac.signal), /forbidden/u],
      ['agent: changing a label of its own node', () => agt().patch(nodePath(target), 'merge', { metadata: { labels: { 'kwarm-e2e/evil': 'x' } } }, ac.signal), /forbidden/u],
      ['agent: writing the status of another node\'s NodeImageSet', () => agt().patch(`/apis/kwarm.io/v1alpha1/nodeimagesets/${other}/status`, 'merge', { status: { heartbeatTime: new Date().toISOString() } }, ac.signal), /may write only nodeimagesets\//u],
    ];
    for (const [title, write, says] of cases) {
      it(`refused: ${title}`, async () => {
        // What the writes would change (the kubelet's heartbeats change the rest meanwhile).
        const nodes = async (): Promise<unknown[]> => Promise.all([target, other].map(async (name) => {
          const n = await node(name);
          return { taints: n.spec.taints, labels: n.metadata.labels, conditions: (n.status.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason ?? ''}`) };
        }));
        const before = await nodes();
        const err = await refused(write);
        expect(err.status, err.message).to.equal(403);
        expect(err.message).to.match(says);
        expect(await nodes(), 'the nodes unchanged').to.deep.equal(before);
      });
    }
  });
});
