// What users feel: a Deployment's image change rolled out on real kubelets: the kubelet alone, kwarm installed
// from its chart, and kwarm with its rollout gate, in one run, interleaved.
//
//   node_modules/.bin/node bench/user-rollout.ts [--reps=5] [--replicas=6] [--mib=200] [--rate-mbps=25]
//
// The cluster is the harness's real-node cluster (local-cluster/real-cluster.ts: 3 kubelets, scheduler,
// containerd per node) with kwarm installed by `helm install` from charts/kwarm with rolloutGate.enabled=true
// (the webhook is called for every pod; only a policy with rolloutGate.enabled gates any), the README's basic
// policy, and a policy with rolloutGate.enabled.
// Each node reaches the registry through its own link paced at --rate-mbps (local-cluster/throttled-proxy.ts,
// 'shared' shape: all of that node's connections together), so a node pulling is bounded by its link as on a
// real network (local-cluster/node-registry-link.ts: pods name the registry 127.0.0.1:5001, each node's own).
//
// Three Deployments of --replicas sleeping pods, spread evenly over the nodes: "kwarm" is labelled
// kwarm.io/enabled=true (the basic policy selects it), "gate" is selected by the gate policy, "kubelet" by none
// (no PrePullImage exists for it, which the run checks). Each repetition pushes a fresh image of --mib random
// MiB per Deployment (new layers, so nothing is cached on any node) and changes each Deployment's image with
// `kubectl set image`, the modes' order rotating per repetition, timing until `kubectl rollout status` returns.
// Before each timed change the Deployment's PrePullImage (kwarm modes) exists and is Completed for its current
// image: the webhook admits a workload's pods ungated while it has no PrePullImage at all. The rollout is RollingUpdate maxSurge 1,
// maxUnavailable 0 (a new pod must be Ready before an old one goes), so pods start one after the other and a
// pod on a node the image has not reached yet waits for it. Per pod, the wait for the image is the kubelet's
// own figure (its Pulled event: 0 when "already present", else the pull time including waiting); per rollout,
// the mean pod start of the kubelets' kubelet_pod_start_total_duration_seconds and
// kubelet_pod_start_sli_duration_seconds histograms (read through the API server's node proxy). With the gate,
// per pod, how long it stayed gated: its creation to kwarm's RolloutGateReleased (or RolloutGateTimedOut) Event,
// both API timestamps in whole seconds; a pod without either Event was admitted ungated.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WORKLOAD_ANNOTATION } from '../api/v1alpha1/index.ts';
import { errorText } from '../lib/errors.ts';
import { REPO_ROOT } from '../local-cluster/kwarm-images.ts';
import type { RealCluster } from '../local-cluster/real-cluster.ts';
import { waitFor } from '../local-cluster/wait.ts';
import { sleeperDeployment } from '../local-cluster/workloads.ts';
import { pushSleeperApp, removeFromNodes, runRealNodeBench, secondsLine } from './real-node-bench.ts';
import { gateHold, histogramTotals, imageWait, meanBetweenMs, type HistogramTotals, type KubeletEvent } from './rollout-figures.ts';

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    replicas: { type: 'string', default: '6' },
    mib: { type: 'string', default: '200' },
    'rate-mbps': { type: 'string', default: '25' },
  },
});
const REPS = Number(args.reps);
const REPLICAS = Number(args.replicas);
const MIB = Number(args.mib);
const RATE_MBPS = Number(args['rate-mbps']);
const NODES = 3;
const NS = 'bench-rollout';
const MODES = ['kubelet', 'kwarm', 'gate'] as const;
type Mode = (typeof MODES)[number];
const LAYERS = 4;
const ROLLOUT_TIMEOUT_S = 900;
const GATE_LABEL = 'bench.kwarm.io/rollout-gate';
const GATE_POLICY = 'bench-rollout-gate';
/** Far beyond a pull of the image on this loaded machine, so the gate comes off because the image is warm. */
const GATE_TIMEOUT = '10m';
const LABELS: Readonly<Record<Mode, string>> = { kubelet: 'kubelet alone', kwarm: 'kwarm (chart)', gate: 'kwarm with the rollout gate' };
const TOTAL = 'kubelet_pod_start_total_duration_seconds';
const SLI = 'kubelet_pod_start_sli_duration_seconds';

interface PodJson {
  metadata: { name: string; creationTimestamp: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase?: string };
}

function deployment(mode: Mode, image: string): string {
  return sleeperDeployment({
    name: mode, namespace: NS, image, replicas: REPLICAS, placement: 'spread',
    ...(mode === 'kwarm' ? { labels: { 'kwarm.io/enabled': 'true' } } : mode === 'gate' ? { labels: { [GATE_LABEL]: 'true' } } : {}),
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
  });
}

async function kubeletMetrics(cluster: RealCluster): Promise<Map<string, { total: HistogramTotals; sli: HistogramTotals }>> {
  const out = new Map<string, { total: HistogramTotals; sli: HistogramTotals }>();
  for (const n of cluster.nodes) {
    const { stdout } = await cluster.kubectl(['get', '--raw', `/api/v1/nodes/${n.name}/proxy/metrics`]);
    out.set(n.name, { total: histogramTotals(stdout, TOTAL), sli: histogramTotals(stdout, SLI) });
  }
  return out;
}

function meanOverNodes(before: Map<string, { total: HistogramTotals; sli: HistogramTotals }>, after: typeof before, key: 'total' | 'sli'): number | undefined {
  const sum = (m: typeof before): HistogramTotals => [...m.values()].reduce((a, v) => ({ sum: a.sum + v[key].sum, count: a.count + v[key].count }), { sum: 0, count: 0 });
  return meanBetweenMs(sum(before), sum(after));
}

interface PpiJson {
  metadata: { name: string; generation?: number; annotations?: Record<string, string> };
  spec: { image: string };
  status?: { phase?: string; observedGeneration?: number };
}

/**
 * Waits until the Deployment's PrePullImage pre-pulls `image` and is Completed for it, so that the timed rollout
 * starts from what a user's steady state is (and the gate's webhook finds the workload's PrePullImage).
 */
async function waitPrePullImage(cluster: RealCluster, mode: Mode, image: string): Promise<void> {
  await waitFor(async () => {
    const { stdout } = await cluster.kubectl(['get', 'prepullimages', '-n', NS, '-o', 'json']);
    const mine = (JSON.parse(stdout) as { items: PpiJson[] }).items.filter((p) => p.metadata.annotations?.[WORKLOAD_ANNOTATION] === `Deployment/${mode}`);
    return mine.length === 1 && mine.every((p) => p.spec.image === image && p.status?.phase === 'Completed' && p.status.observedGeneration === p.metadata.generation);
  }, { what: `the PrePullImage of Deployment ${NS}/${mode} Completed for ${image}`, timeoutMs: 600_000, intervalMs: 500 });
}

interface RolloutFigures {
  rolloutMs: number;
  waitsMs: number[];
  podsThatPulled: number;
  /** Per new pod: creation to the gate's removal (0: admitted ungated). */
  gatedMs: number[];
  podsGated: number;
  gateTimeouts: number;
  startTotalMs: number | undefined;
  startSliMs: number | undefined;
}

async function rollout(cluster: RealCluster, mode: Mode, image: string): Promise<RolloutFigures> {
  const before = await kubeletMetrics(cluster);
  const t0 = performance.now();
  await cluster.kubectl(['set', 'image', `deployment/${mode}`, `app=${image}`, '-n', NS]);
  await cluster.kubectl(['rollout', 'status', `deployment/${mode}`, '-n', NS, `--timeout=${ROLLOUT_TIMEOUT_S}s`]);
  const rolloutMs = performance.now() - t0;
  const pods = await waitFor(async () => {
    const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NS, '-l', `app=${mode}`, '-o', 'json']);
    const fresh = (JSON.parse(stdout) as { items: PodJson[] }).items.filter((p) => p.spec.containers[0]?.image === image && p.status.phase === 'Running');
    return fresh.length === REPLICAS ? fresh : undefined;
  }, { what: `${REPLICAS} running pods of ${image}`, timeoutMs: 60_000, intervalMs: 500 });
  const { waits, events } = await waitFor(async () => {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    const all = (JSON.parse(stdout) as { items: KubeletEvent[] }).items;
    const w = pods.map((p) => imageWait(all, p.metadata.name, image));
    return w.every((x) => x.kind !== 'unknown') ? { waits: w, events: all } : undefined;
  }, { what: `the kubelets' Pulled events of the ${mode} pods`, timeoutMs: 60_000, intervalMs: 500 });
  // kwarm records its release Event before the pod can be scheduled, so it is in the same list as the pod's Pulled.
  const holds = pods.map((p) => gateHold(events, p.metadata.name, p.metadata.creationTimestamp));
  if (mode !== 'gate' && holds.some((h) => h.kind === 'held')) throw new Error(`pods of Deployment ${mode} were gated, whose policy does not enable the rollout gate`);
  const after = await kubeletMetrics(cluster);
  const waitsMs = waits.map((w) => (w.kind === 'pulled' ? w.ms : 0));
  const nodes = new Set(pods.map((p) => p.spec.nodeName));
  const gated = mode === 'gate' ? `; gated ${holds.map((h) => (h.kind === 'held' ? `${(h.ms / 1000).toFixed(0)} s${h.timedOut ? ' (TIMED OUT)' : ''}` : 'no')).join(', ')}` : '';
  console.log(`  ${mode}: rollout ${(rolloutMs / 1000).toFixed(1)} s; pods per node ${[...nodes].map((n) => `${n ?? '?'}=${pods.filter((p) => p.spec.nodeName === n).length}`).join(' ')}; image waits ${waits.map((w) => (w.kind === 'pulled' ? `${(w.ms / 1000).toFixed(1)} s` : 'none')).join(', ')}${gated}`);
  return {
    rolloutMs, waitsMs,
    podsThatPulled: waits.filter((w) => w.kind === 'pulled').length,
    gatedMs: holds.map((h) => (h.kind === 'held' ? h.ms : 0)),
    podsGated: holds.filter((h) => h.kind === 'held').length,
    gateTimeouts: holds.filter((h) => h.kind === 'held' && h.timedOut).length,
    startTotalMs: meanOverNodes(before, after, 'total'),
    startSliMs: meanOverNodes(before, after, 'sli'),
  };
}

function fmt(samplesMs: readonly number[]): string {
  return secondsLine(samplesMs.map((ms) => ms / 1000));
}

async function main(): Promise<void> {
  const helmSet = { 'rolloutGate.enabled': true };
  await runRealNodeBench({ nodes: NODES, rateMBps: RATE_MBPS, namespace: NS, helmSet }, async ({ bench, cluster: c, link: nodeLink }) => {
    await c.kubectl(['apply', '--server-side', '-f', join(REPO_ROOT, 'deploy', 'samples', 'prepullpolicy_basic.yaml')]);
    await c.controlPlane.apply(JSON.stringify({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: GATE_POLICY },
      spec: { selector: { matchLabels: { [GATE_LABEL]: 'true' }, namespaces: [NS] }, rolloutGate: { enabled: true, timeout: GATE_TIMEOUT } },
    }));

    let tags = 0;
    const pushApp = async (mode: Mode, mib: number): Promise<string> => pushSleeperApp(c, nodeLink, 'bench/rollout', `${mode}-${++tags}`, mib, LAYERS);

    // The starting version: small, so set-up is quick; every Deployment spread over all nodes.
    const previous = new Map<Mode, string>();
    for (const mode of MODES) {
      const image = await pushApp(mode, 0);
      previous.set(mode, image);
      await c.controlPlane.apply(deployment(mode, image));
    }
    for (const mode of MODES) await c.kubectl(['rollout', 'status', `deployment/${mode}`, '-n', NS, `--timeout=${ROLLOUT_TIMEOUT_S}s`]);
    try {
      await c.kubectl(['get', '--raw', `/api/v1/nodes/${c.nodes[0]?.name ?? ''}/proxy/metrics`]);
    } catch (err) {
      throw new Error(`the kubelet's /metrics is not reachable through the API server: ${errorText(err)}`);
    }

    const figures = new Map<Mode, RolloutFigures[]>(MODES.map((m) => [m, []]));
    for (let rep = 1; rep <= REPS; rep++) {
      // Rotated per repetition, so no mode always runs first or right after a given other.
      const order = MODES.map((_m, i) => MODES[(i + rep - 1) % MODES.length] ?? 'kubelet');
      console.log(`repetition ${rep}/${REPS} (${order.join(', then ')}):`);
      for (const mode of order) {
        const image = await pushApp(mode, MIB);
        const current = previous.get(mode);
        if (mode !== 'kubelet' && current !== undefined) await waitPrePullImage(c, mode, current);
        const f = await rollout(c, mode, image);
        figures.get(mode)?.push(f);
        const old = previous.get(mode);
        if (old !== undefined) await removeFromNodes(c.nodes, [old]);
        previous.set(mode, image);
      }
    }
    const { stdout: ppis } = await c.kubectl(['get', 'prepullimages', '-n', NS, '-o', 'jsonpath={range .items[*]}{.spec.image}{"\\n"}{end}']);
    const kubeletImages = ppis.split('\n').filter((l) => l.includes('/bench/rollout:kubelet-'));
    if (kubeletImages.length > 0) throw new Error(`kwarm pre-pulled images of the unlabelled Deployment, so "kubelet alone" was not: ${kubeletImages.join(', ')}`);

    const log = bench.figures;
    for (const mode of MODES) {
      const runs = figures.get(mode) ?? [];
      const label = LABELS[mode];
      log.measured(`rollout.${mode}.rollout`, `${label}: set image to rollout complete`, 'ms', runs.map((r) => r.rolloutMs));
      log.measured(`rollout.${mode}.pod-image-wait`, `${label}: each new pod's wait for its image (kubelet Pulled event; 0 = already present)`, 'ms', runs.flatMap((r) => r.waitsMs));
      log.measured(`rollout.${mode}.pod-image-wait-sum`, `${label}: the new pods' waits for their image, summed per rollout`, 'ms', runs.map((r) => r.waitsMs.reduce((a, b) => a + b, 0)));
      log.measured(`rollout.${mode}.pods-that-pulled`, `${label}: new pods (of ${REPLICAS}) whose kubelet pulled the image`, 'pods', runs.map((r) => r.podsThatPulled));
      if (mode === 'gate') {
        log.measured(`rollout.${mode}.pod-gated`, `${label}: each new pod's time gated, creation to the gate's removal (0 = admitted ungated)`, 'ms', runs.flatMap((r) => r.gatedMs));
        log.measured(`rollout.${mode}.pods-gated`, `${label}: new pods (of ${REPLICAS}) created with the gate`, 'pods', runs.map((r) => r.podsGated));
        log.measured(`rollout.${mode}.gate-timeouts`, `${label}: gates removed at the timeout (${GATE_TIMEOUT}) rather than warm`, 'pods', runs.map((r) => r.gateTimeouts));
      }
      const total = runs.flatMap((r) => (r.startTotalMs === undefined ? [] : [r.startTotalMs]));
      const sli = runs.flatMap((r) => (r.startSliMs === undefined ? [] : [r.startSliMs]));
      if (total.length > 0) log.measured(`rollout.${mode}.start-total`, `${label}: mean pod start per rollout, ${TOTAL}`, 'ms', total);
      if (sli.length > 0) log.measured(`rollout.${mode}.start-sli`, `${label}: mean pod start per rollout, ${SLI} (image pulls excluded)`, 'ms', sli);
      console.log(`${label}: rollout ${fmt(runs.map((r) => r.rolloutMs))}; pod image wait ${fmt(runs.flatMap((r) => r.waitsMs))}${mode === 'gate' ? `; pod gated ${fmt(runs.flatMap((r) => r.gatedMs))}` : ''}`);
    }
    const gateRuns = figures.get('gate') ?? [];
    const timedOut = gateRuns.reduce((a, r) => a + r.gateTimeouts, 0);
    bench.notes.push(`${NODES} real nodes (kubelet, containerd 1.6, kube-proxy in network namespaces) on one shared, loaded machine; each node's registry link paced at ${RATE_MBPS} MB/s for all its connections together (a node's own link), so a ${MIB} MiB image takes about ${((MIB * 2 ** 20) / (RATE_MBPS * 1e6)).toFixed(1)} s of transfer per node`);
    bench.notes.push(`three Deployments of ${REPLICAS} replicas spread over the nodes (topology spread, maxSkew 1), RollingUpdate maxSurge 1 maxUnavailable 0; "kwarm" selected by the README's basic policy, "gate" by a policy with rolloutGate.enabled (timeout ${GATE_TIMEOUT}), "kubelet" by none (kwarm installed but no PrePullImage for it, checked); the chart installed with rolloutGate.enabled=true, so the webhook is called for the pods of all three`);
    bench.notes.push(`each of ${REPS} repetitions: a fresh image (${LAYERS} random layers, ${MIB} MiB, plus busybox) per Deployment, \`kubectl set image\` timed to \`kubectl rollout status\` returning, the three modes in rotating order; before it, kwarm's PrePullImage of the Deployment Completed for its current image; the previous image is removed from every node`);
    bench.notes.push(`time gated: a pod's creationTimestamp to kwarm's RolloutGateReleased Event on it (whole seconds both); 0 for a pod admitted without the gate (its image already warm); ${gateRuns.reduce((a, r) => a + r.podsGated, 0)} of ${gateRuns.length * REPLICAS} new pods gated, ${timedOut} released at the timeout`);
    bench.notes.push('pod image wait: the kubelet\'s Pulled event of each new pod (the time including waiting; 0 when "already present on machine"); pod start: the mean of the observations the kubelets\' pod start histograms made during the rollout, over all nodes');
    await bench.finish('user-rollout', process.argv.slice(2), { reps: REPS, replicas: REPLICAS, nodes: NODES, imageMiB: MIB, layers: LAYERS, rateMBps: RATE_MBPS, strategy: 'RollingUpdate maxSurge 1 maxUnavailable 0' });
  });
}

await main();
