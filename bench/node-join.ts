// A node joins and a Deployment scales onto it (what a cluster autoscaler's scale-up does), on real kubelets,
// without and with kwarm's node warm-up barrier, interleaved in one run.
//
//   node_modules/.bin/node bench/node-join.ts [--reps=5] [--mib=200] [--rate-mbps=25]
//   KWARM_BENCH_REPS=1 npm run bench:node-join        a quick run while developing (--reps wins over the env)
//
// The cluster is the harness's real-node cluster (local-cluster/real-cluster.ts) with two standing nodes and
// kwarm installed by `helm install` from charts/kwarm; a PrePullPolicy with gateNewNodes selects the Deployment.
// Each node reaches the registry through its own link paced at --rate-mbps (local-cluster/node-registry-link.ts;
// a joining node gets its link before its kubelet starts, so before any pod can land on it).
//
// The Deployment runs one pod per node (required anti-affinity) on the standing nodes. Each repetition, per mode:
// scale it to 3 (one pod Pending, nowhere to go), then a third node joins: "plain" registers as nodes usually do,
// "barrier" registers with kwarm's startup taint kwarm.io/warming:NoSchedule. Timed, from the API's own
// timestamps (whole seconds): the new Node's creation to its Ready condition, to the Pending pod's Ready
// condition on it, and (barrier) to ImagesWarm=True, written with the taint's removal. The pod's own wait for its
// image is the kubelet's Pulled event (0 when "already present on machine"). Then the pod on the new node is
// scaled away (pod-deletion-cost) and the node removed, so every join starts from an empty containerd.
import { parseArgs } from 'node:util';
import { DEFAULT_WARMUP_TAINT_KEY } from '../api/v1alpha1/index.ts';
import type { NodeRegistryLink } from '../local-cluster/node-registry-link.ts';
import type { RealCluster } from '../local-cluster/real-cluster.ts';
import { waitFor } from '../local-cluster/wait.ts';
import { sleeperDeployment } from '../local-cluster/workloads.ts';
import { pushSleeperApp, runRealNodeBench, secondsLine } from './real-node-bench.ts';
import { imageWait, type KubeletEvent } from './rollout-figures.ts';

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: process.env.KWARM_BENCH_REPS ?? '5' },
    mib: { type: 'string', default: '200' },
    'rate-mbps': { type: 'string', default: '25' },
  },
});
const REPS = Number(args.reps);
const MIB = Number(args.mib);
const RATE_MBPS = Number(args['rate-mbps']);
if (!Number.isInteger(REPS) || REPS < 1) throw new Error('--reps (or KWARM_BENCH_REPS) must be a whole number of at least 1');
if (!(MIB > 0) || !(RATE_MBPS > 0)) throw new Error('--mib and --rate-mbps must be positive');
const STANDING = 2;
const NS = 'bench-node-join';
const APP = 'app';
const POLICY = 'bench-node-join';
const LAYERS = 4;
const TAINT = { key: DEFAULT_WARMUP_TAINT_KEY, effect: 'NoSchedule' } as const;
const MODES = ['plain', 'barrier'] as const;
type Mode = (typeof MODES)[number];
const JOIN_TIMEOUT_MS = 900_000;

interface Condition { type: string; status: string; reason?: string; lastTransitionTime?: string }
interface NodeJson {
  metadata: { name: string; creationTimestamp: string };
  spec: { taints?: { key: string }[] };
  status: { conditions?: Condition[] };
}
interface PodJson {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: Condition[] };
}

interface JoinFigures {
  nodeReadyS: number;
  podReadyS: number;
  podScheduledS: number;
  imageWaitMs: number;
  /** barrier: creation to ImagesWarm=True, and its reason. */
  liftS?: number;
  liftReason?: string;
}

function deployment(image: string, replicas: number): string {
  return sleeperDeployment({ name: APP, namespace: NS, image, replicas, labels: { 'bench.kwarm.io/node-join': 'true' }, placement: 'one-per-node' });
}

const conditionTime = (conditions: readonly Condition[] | undefined, type: string): number | undefined => {
  const c = conditions?.find((x) => x.type === type && x.status === 'True');
  return c?.lastTransitionTime === undefined ? undefined : Date.parse(c.lastTransitionTime);
};

async function appPods(cluster: RealCluster): Promise<PodJson[]> {
  const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NS, '-l', `app=${APP}`, '-o', 'json']);
  return (JSON.parse(stdout) as { items: PodJson[] }).items;
}

async function nodeJson(cluster: RealCluster, name: string): Promise<NodeJson> {
  return JSON.parse((await cluster.kubectl(['get', 'node', name, '-o', 'json'])).stdout) as NodeJson;
}

async function join(cluster: RealCluster, link: NodeRegistryLink, mode: Mode, image: string): Promise<JoinFigures> {
  await cluster.kubectl(['scale', `deployment/${APP}`, '-n', NS, `--replicas=${STANDING + 1}`]);
  await waitFor(async () => {
    const pods = await appPods(cluster);
    return pods.length === STANDING + 1 && pods.filter((p) => p.status.phase === 'Running').length === STANDING && pods.some((p) => p.spec.nodeName === undefined);
  }, { what: `${STANDING} app pods running and one Pending`, timeoutMs: 300_000, intervalMs: 1000 });

  const node = await cluster.addNode({ ...(mode === 'barrier' ? { registerWithTaints: [TAINT] } : {}), beforeKubelet: (n) => link.addNode(n) });
  const pod = await waitFor(async () => (await appPods(cluster)).find((p) => p.spec.nodeName === node.name && conditionTime(p.status.conditions, 'Ready') !== undefined),
    { what: `the app's pod Ready on ${node.name}`, timeoutMs: JOIN_TIMEOUT_MS, intervalMs: 1000 });
  const n = await nodeJson(cluster, node.name);
  const created = Date.parse(n.metadata.creationTimestamp);
  const since = (t: number | undefined, what: string): number => {
    if (t === undefined) throw new Error(`${node.name}: no ${what} time`);
    return (t - created) / 1000;
  };
  const waited = await waitFor(async () => {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    const w = imageWait((JSON.parse(stdout) as { items: KubeletEvent[] }).items, pod.metadata.name, image);
    return w.kind === 'unknown' ? undefined : w;
  }, { what: `the kubelet's Pulled event of ${pod.metadata.name}`, timeoutMs: 60_000, intervalMs: 500 });
  const warm = n.status.conditions?.find((c) => c.type === 'ImagesWarm');
  if (n.spec.taints?.some((t) => t.key === TAINT.key) === true) throw new Error(`${node.name} still carries ${TAINT.key} with a pod Ready on it`);
  if (mode === 'plain' && warm !== undefined) throw new Error(`kwarm wrote ImagesWarm on ${node.name}, which joined without its taint`);
  const f: JoinFigures = {
    nodeReadyS: since(conditionTime(n.status.conditions, 'Ready'), 'Ready'),
    podReadyS: since(conditionTime(pod.status.conditions, 'Ready'), 'pod Ready'),
    podScheduledS: since(conditionTime(pod.status.conditions, 'PodScheduled'), 'pod scheduled'),
    imageWaitMs: waited.kind === 'pulled' ? waited.ms : 0,
    ...(mode === 'barrier' ? { liftS: since(conditionTime(n.status.conditions, 'ImagesWarm'), 'ImagesWarm=True'), liftReason: warm?.reason ?? 'none' } : {}),
  };
  console.log(`  ${mode} (${node.name}): node Ready +${f.nodeReadyS} s, ${f.liftS === undefined ? '' : `taint lifted +${f.liftS} s (${f.liftReason ?? ''}), `}pod scheduled +${f.podScheduledS} s, pod Ready +${f.podReadyS} s, pod's image wait ${waited.kind === 'pulled' ? `${(waited.ms / 1000).toFixed(1)} s` : 'none (already present)'}`);

  // The pod on the new node goes first when the Deployment scales back, then the node goes.
  await cluster.kubectl(['annotate', 'pod', pod.metadata.name, '-n', NS, 'controller.kubernetes.io/pod-deletion-cost=-1000', '--overwrite']);
  await cluster.kubectl(['scale', `deployment/${APP}`, '-n', NS, `--replicas=${STANDING}`]);
  await waitFor(async () => !(await appPods(cluster)).some((p) => p.metadata.name === pod.metadata.name),
    { what: `${pod.metadata.name} gone`, timeoutMs: 120_000, intervalMs: 1000 });
  await cluster.removeNode(node.name);
  return f;
}

async function main(): Promise<void> {
  await runRealNodeBench({ nodes: STANDING, rateMBps: RATE_MBPS, namespace: NS }, async ({ bench, cluster: c, link: nodeLink }) => {
    await c.controlPlane.apply(JSON.stringify({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
      spec: { selector: { matchLabels: { 'bench.kwarm.io/node-join': 'true' }, namespaces: [NS] }, gateNewNodes: true },
    }));
    const image = await pushSleeperApp(c, nodeLink, 'bench/node-join', 'v1', MIB, LAYERS);
    await c.controlPlane.apply(deployment(image, STANDING));
    await c.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=900s']);

    const figures = new Map<Mode, JoinFigures[]>(MODES.map((m) => [m, []]));
    for (let rep = 1; rep <= REPS; rep++) {
      const order: Mode[] = rep % 2 === 1 ? ['plain', 'barrier'] : ['barrier', 'plain'];
      console.log(`repetition ${rep}/${REPS} (${order.join(', then ')}):`);
      for (const mode of order) figures.get(mode)?.push(await join(c, nodeLink, mode, image));
    }
    const lifts = (figures.get('barrier') ?? []).map((f) => f.liftReason ?? 'none');
    const notWarm = lifts.filter((r) => r !== 'ImagesPresent');
    if (notWarm.length > 0) throw new Error(`the barrier lifted for another reason than ImagesPresent (${lifts.join(', ')}): the figures would not show the barrier`);

    const log = bench.figures;
    const label = (m: Mode): string => (m === 'barrier' ? 'with the barrier' : 'without the barrier');
    for (const mode of MODES) {
      const runs = figures.get(mode) ?? [];
      log.measured(`node-join.${mode}.pod-ready`, `${label(mode)}: Node created to the first pod Ready on it`, 'ms', runs.map((r) => r.podReadyS * 1000));
      log.measured(`node-join.${mode}.pod-image-wait`, `${label(mode)}: that pod's wait for its image (kubelet Pulled event; 0 = already present)`, 'ms', runs.map((r) => r.imageWaitMs));
      log.measured(`node-join.${mode}.pod-scheduled`, `${label(mode)}: Node created to that pod scheduled`, 'ms', runs.map((r) => r.podScheduledS * 1000));
      log.measured(`node-join.${mode}.node-ready`, `${label(mode)}: Node created to Node Ready`, 'ms', runs.map((r) => r.nodeReadyS * 1000));
      console.log(`${label(mode)}: first pod Ready ${secondsLine(runs.map((r) => r.podReadyS))} after the node's creation; its image wait ${secondsLine(runs.map((r) => r.imageWaitMs / 1000))}`);
    }
    log.measured('node-join.barrier.taint-lifted', 'with the barrier: Node created to ImagesWarm=True (taint removed)', 'ms', (figures.get('barrier') ?? []).map((r) => (r.liftS ?? 0) * 1000));
    bench.notes.push(`${STANDING} standing real nodes and one that joins per repetition (kubelet, containerd 1.6, kube-proxy in network namespaces), on one machine shared with six other kwarm helpers working at the same time (see the load line); each node's registry link paced at ${RATE_MBPS} MB/s for all its connections together, so the ${MIB} MiB image takes about ${((MIB * 2 ** 20) / (RATE_MBPS * 1e6)).toFixed(1)} s of transfer per node`);
    bench.notes.push(`a Deployment with one pod per node (required pod anti-affinity) selected by a PrePullPolicy with gateNewNodes; per repetition and mode it is scaled to ${STANDING + 1} (one pod Pending), then a node joins: without the barrier as nodes usually register, with it registered with ${TAINT.key}:${TAINT.effect} (kubelet registerWithTaints); the two modes alternate in order; the pod and the node are removed after each join, so each join starts with an empty containerd`);
    bench.notes.push(`times from the API's own timestamps (whole seconds): the Node's creationTimestamp to its Ready condition, to the pod's PodScheduled and Ready conditions and (barrier) to ImagesWarm=True, which kwarm writes as it removes the taint; the pod's image wait is its kubelet's Pulled event (the pull time including waiting; 0 when "already present on machine"); every barrier lift was ImagesPresent (${lifts.length} of ${lifts.length})`);
    await bench.finish('node-join', process.argv.slice(2), { reps: REPS, nodes: STANDING + 1, standingNodes: STANDING, imageMiB: MIB, layers: LAYERS, rateMBps: RATE_MBPS });
  });
}

await main();
