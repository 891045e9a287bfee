// kwarm-controller at scale on a real API server: Node objects without kubelets, Deployments selected by
// one PrePullPolicy, and this process playing every agent (it marks each NodeImageSet's images Completed
// as soon as they appear). Reports the controller's RSS and CPU, the time from one Deployment's image
// change to all affected NodeImageSets updated, the API writes per image change and during an idle resync;
// then restarts the controller, whose first list of 5,000 NodeImageSets is its memory peak, and which must
// write nothing (everything it would write is already there).
//
//   node_modules/.bin/node bench/controller-scale.ts [--nodes=5000] [--deployments=2000] [--pools=40]
//       [--restart-node-args='none|--max-semi-space-size=4'] (extra restarts with these Node flags, to compare)
//       [--controller-log=debug] (the controller's log level; with KWARM_KEEP_TEST_DIRS=1 its log is kept)
//       [--controller-node-args='--cpu-prof --cpu-prof-dir=/tmp/prof'] (added to the chart's Node flags of the
//       first controller, for example to profile it)
//       [--write-concurrency=N] (the controller's --write-concurrency; default: the controller's)
//       [--changes=4] (image changes, on another pool each, alternating with and without the chart's priority
//       level for the agents' status writes; the odd ones with it)
//
// Deployments are spread over node pools (a pod nodeSelector), as real clusters partition workloads;
// every node of a pool pre-pulls the images of the pool's Deployments (deployments/pools images per node).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import { isNotFound, KubeClient } from '../lib/kube-client.ts';
import { ListWatch } from '../lib/list-watch.ts';
import { startControlPlane } from '../local-cluster/control-plane.ts';
import { waitFor } from '../local-cluster/wait.ts';
import { ControllerProcess, controllerKubeconfig, metricValue } from '../local-cluster/controller-process.ts';
import { installCrds } from '../local-cluster/crds.ts';
import { AGENT_SA, installKwarmAccess, KWARM_NAMESPACE } from '../local-cluster/kwarm-access.ts';
import { summarize } from './stats.ts';
import { chartControllerNodeArgs, compiledController } from './compiled-binaries.ts';
import { eachLimited } from '../lib/each-limited.ts';
import { apiServerSample, describeApiServerWindow, type ApiServerSample } from './api-server-figures.ts';
import { busyPercent, machineTicks, type MachineTicks } from './proc-stats.ts';
import { positiveIntArg } from './cli-args.ts';
import { completedImageStatus } from './simulated-agent.ts';
import { metaTime } from '../controller/write/api-objects.ts';

const NODES = positiveIntArg('nodes', 5000);
const DEPLOYMENTS = positiveIntArg('deployments', 2000);
const POOLS = positiveIntArg('pools', 40);
const NAMESPACES = 20;
const restartNodeArgs = (process.argv.find((a) => a.startsWith('--restart-node-args='))?.slice('--restart-node-args='.length) ?? '')
  .split('|').filter((x) => x !== '').map((set) => set.trim().split(/\s+/u).filter((x) => x !== '' && x !== 'none'));
const controllerLogArg = process.argv.find((a) => a.startsWith('--controller-log='))?.slice('--controller-log='.length) ?? 'info';
if (controllerLogArg !== 'info' && controllerLogArg !== 'debug') throw new Error('--controller-log must be info or debug');
const CONTROLLER_LOG: 'info' | 'debug' = controllerLogArg;
const controllerNodeArgs = (process.argv.find((a) => a.startsWith('--controller-node-args='))?.slice('--controller-node-args='.length) ?? '')
  .split(/\s+/u).filter((x) => x !== '');
const writeConcurrencyArg = process.argv.find((a) => a.startsWith('--write-concurrency='));
const WRITE_CONCURRENCY = writeConcurrencyArg === undefined ? undefined : positiveIntArg('write-concurrency', 0);
const CHANGES = positiveIntArg('changes', 4);
const RESYNC_SECONDS = 20;
const IDLE_RESYNCS = 3;
/** The chart's FlowSchema for the agents' status writes (charts/kwarm/templates/flowcontrol.yaml). */
const AGENT_STATUS_FLOW_SCHEMA = `${AGENT_SA}-status`;
const KWARM = '/apis/kwarm.io/v1alpha1';

/** The controller's V8 heap from its default metrics: what RSS holds beyond live objects shows here. */
function heapText(metrics: string): string {
  const mib = (name: string): string => ((metricValue(metrics, `kwarm_controller_nodejs_${name}`) ?? 0) / 2 ** 20).toFixed(0);
  return `heap used ${mib('heap_size_used_bytes')} MiB of ${mib('heap_size_total_bytes')} MiB, external ${mib('external_memory_bytes')} MiB`;
}

/** Polls `probe` every 50 ms (a failing probe is asked again, see waitFor) and returns how long it took (ms). */
async function waitUntil(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>, intervalMs = 50): Promise<number> {
  const start = Date.now();
  await waitFor(probe, { what, timeoutMs, intervalMs });
  return Date.now() - start;
}

function procStats(pid: number): { rssMiB: number; peakMiB: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 'NaN');
  // utime and stime are fields 14 and 15, after the parenthesised command name.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024, cpuSeconds: ticks / 100 };
}

/** What a window of the bench is compared by: the API server's figures, the machine's CPU, this process's CPU. */
interface WindowMark { readonly at: number; readonly api: ApiServerSample; readonly machine: MachineTicks; readonly benchCpu: NodeJS.CpuUsage; readonly load: string }

/** Where a window's time went: the API server, the machine (shared with whatever else runs), the simulator. */
function describeWindow(what: string, a: WindowMark, b: WindowMark): string {
  const wall = (b.at - a.at) / 1000;
  const bench = process.cpuUsage(a.benchCpu);
  return `${what}: API server ${describeApiServerWindow(a.api, b.api, wall)}; machine ${busyPercent(a.machine, b.machine).toFixed(0)}% busy ` +
    `(load ${a.load} -> ${b.load}); this bench process (simulated agents, watches, probes) CPU ${((bench.user + bench.system) / 1e6).toFixed(1)} s`;
}

/** What the simulated agents keep of a NodeImageSet. */
interface NisView { name: string; images: { image: string; round: number }[]; done: Set<string> }

function decodeNis(raw: unknown): NisView | undefined {
  const o = raw as { metadata?: { name?: string }; spec?: { images?: { image: string; round?: number }[] }; status?: { images?: { image: string; phase: string; round?: number }[] } };
  const name = o.metadata?.name;
  if (name === undefined) return undefined;
  const images = (o.spec?.images ?? []).map((e) => ({ image: e.image, round: e.round ?? 0 }));
  const done = new Set((o.status?.images ?? []).filter((s) => s.phase === 'Completed').map((s) => `${s.image}@${String(s.round ?? 0)}`));
  return { name, images, done };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const log = winston.createLogger({ silent: true });
  // The controller as the chart runs it: compiled JavaScript (Dockerfile.controller) with the chart's
  // default NODE_OPTIONS.
  const main = await compiledController();
  const chartNodeArgs = chartControllerNodeArgs();
  console.log(`controller: ${[relative(process.cwd(), main), ...chartNodeArgs].join(' ')}`);
  const cp = await startControlPlane();
  const ac = new AbortController();
  const signal = ac.signal;
  let controller: ControllerProcess | undefined;
  let agentClient: KubeClient | undefined;
  const admin = new KubeClient(cp.kubeConfig(), { timeoutMs: 60_000 });
  const mark = async (): Promise<WindowMark> => ({
    at: Date.now(), api: apiServerSample(String(await admin.get('/metrics', signal))), machine: machineTicks(), benchCpu: process.cpuUsage(),
    load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?',
  });
  try {
    await installCrds(cp);
    console.log(`bench: ${NODES} nodes, ${DEPLOYMENTS} Deployments in ${POOLS} pools (${(DEPLOYMENTS / POOLS).toFixed(0)} images per node, ${(NODES / POOLS).toFixed(0)} nodes per pool)`);

    // --- the cluster -----------------------------------------------------------------------------------
    const now = metaTime(new Date());
    const nodeNames = Array.from({ length: NODES }, (_, i) => `node-${String(i).padStart(5, '0')}`);
    await eachLimited(nodeNames, 32, async (name) => {
      const pool = `p${Number(name.slice(5)) % POOLS}`;
      await admin.create('/api/v1/nodes', { metadata: { name, labels: { 'kubernetes.io/os': 'linux', 'kwarm-bench/pool': pool } } }, signal);
      await admin.patch(`/api/v1/nodes/${name}/status`, 'merge', { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'bench', lastHeartbeatTime: now, lastTransitionTime: now }] } }, signal);
    });
    for (let n = 0; n < NAMESPACES; n++) await admin.create('/api/v1/namespaces', { metadata: { name: `bench-${n}` } }, signal);
    await admin.create(`${KWARM}/prepullpolicies`, {
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: 'default' },
      spec: { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } } },
    }, signal);
    const deployment = (i: number, tag: string): { ns: string; name: string; body: unknown } => {
      const ns = `bench-${i % NAMESPACES}`;
      const name = `app-${i}`;
      return {
        ns, name,
        body: {
          apiVersion: 'apps/v1', kind: 'Deployment',
          metadata: { namespace: ns, name, labels: { app: name, 'kwarm.io/enabled': 'true' } },
          spec: {
            replicas: 1, selector: { matchLabels: { app: name } },
            template: {
              metadata: { labels: { app: name } },
              spec: {
                nodeSelector: { 'kwarm-bench/pool': `p${i % POOLS}` },
                // Nodes without a lifecycle controller keep the not-ready taint the API server adds on create.
                tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' }],
                containers: [{ name: 'app', image: `registry.bench.example/team-${i % NAMESPACES}/app-${i}:${tag}` }],
              },
            },
          },
        },
      };
    };
    await eachLimited(Array.from({ length: DEPLOYMENTS }, (_, i) => i), 32, async (i) => {
      const d = deployment(i, 'v1');
      await admin.create(`/apis/apps/v1/namespaces/${d.ns}/deployments`, d.body, signal);
    });
    console.log(`setup: ${NODES} nodes and ${DEPLOYMENTS} Deployments created in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // --- the simulated agents: complete whatever appears in a NodeImageSet ----------------------------------
    // As the chart's agent ServiceAccount, so the API server treats their status writes as it treats the real
    // agents' (the chart's RBAC and priority level). One token plays every node, so the admission policy that
    // holds a real agent to its own node's NodeImageSet is unbound here.
    await installKwarmAccess(cp);
    await admin.delete(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${AGENT_SA}-own-node-only`, signal);
    const agents = new KubeClient(cp.kubeConfig(await cp.serviceAccountKubeconfig(KWARM_NAMESPACE, AGENT_SA)), { timeoutMs: 60_000 });
    agentClient = agents;
    const pending = new Set<string>();
    let agentWrites = 0;
    const nis = new ListWatch<NisView>({
      client: admin, path: `${KWARM}/nodeimagesets`, decode: decodeNis, log,
      onChange: (_key, v) => {
        if (v !== undefined && v.images.some((e) => !v.done.has(`${e.image}@${e.round}`))) pending.add(v.name);
      },
    });
    const nisRunning = nis.run(signal);
    const agentsRunning = (async () => {
      while (!signal.aborted) {
        const batch = [...pending];
        pending.clear();
        await eachLimited(batch, 16, async (name) => {
          const v = nis.get(name);
          if (v === undefined) return;
          const images = v.images.map((e) => completedImageStatus(e.image, e.round, now));
          await agents.patch(`${KWARM}/nodeimagesets/${name}/status`, 'merge', { status: { images, desired: images.length, ready: images.length, pulling: 0, failed: 0 } }, signal)
            .then(() => { agentWrites++; }, () => { pending.add(name); });
        });
        await sleep(100, undefined, { signal }).catch(() => undefined);
      }
    })();

    // --- the controller -------------------------------------------------------------------------------------
    const kubeconfig = await controllerKubeconfig(cp);
    const startController = async (name: string, nodeArgs: readonly string[] = chartNodeArgs): Promise<ControllerProcess> => {
      const started = await ControllerProcess.start({
        kubeconfig, name, main, nodeArgs, logLevel: CONTROLLER_LOG, waitReady: false,
        args: [
          '--max-concurrent-pulls=0', '--write-qps=500', '--write-burst=500', `--resync-period=${RESYNC_SECONDS}s`,
          ...(WRITE_CONCURRENCY === undefined ? [] : [`--write-concurrency=${WRITE_CONCURRENCY}`]),
        ],
      });
      // A controller that never gets ready must not outlive the bench (it did, retrying a stopped API server).
      await started.waitReady(1_800_000).catch(async (err: unknown) => {
        await started.stop();
        throw err;
      });
      return started;
    };
    const tStart = Date.now();
    const startMark = await mark();
    controller = await startController('controller-bench', [...chartNodeArgs, ...controllerNodeArgs]);
    const pid = controller.process.pid ?? 0;
    const completed = async (): Promise<number> => (await controller!.metric('kwarm_prepullimages_by_phase', { phase: 'Completed' })) ?? 0;
    // Once a second: each probe scrapes the controller's /metrics, and 20 scrapes a second over the minutes of the
    // convergence would add their own CPU to the controller's figure.
    await waitUntil('every PrePullImage Completed', 1_800_000, async () => (await completed()) === DEPLOYMENTS && pending.size === 0, 1000);
    const initial = procStats(pid);
    console.log(`initial convergence: ${((Date.now() - tStart) / 1000).toFixed(1)} s to ${DEPLOYMENTS} PrePullImages Completed on ${NODES} NodeImageSets; controller CPU ${initial.cpuSeconds.toFixed(1)} s, RSS ${initial.rssMiB.toFixed(0)} MiB (peak ${initial.peakMiB.toFixed(0)} MiB); simulated agent status writes ${agentWrites}`);
    console.log(describeWindow('initial convergence', startMark, await mark()));

    // --- idle: a full resync with nothing changed ------------------------------------------------------------
    await sleep(5000);
    const idleText = await controller.metrics();
    const idleWrites = metricValue(idleText, 'kwarm_api_writes_total') ?? 0;
    const idlePasses = metricValue(idleText, 'kwarm_reconcile_duration_seconds_count') ?? 0;
    const idlePlan = metricValue(idleText, 'kwarm_reconcile_plan_duration_seconds_sum') ?? 0;
    const idleCpu = procStats(pid).cpuSeconds;
    // Three resync periods: three passes with nothing changed, whose computing time is the quiet pass's cost.
    await sleep((IDLE_RESYNCS * RESYNC_SECONDS + 5) * 1000);
    const afterIdle = await controller.metrics();
    const idle = {
      writes: (metricValue(afterIdle, 'kwarm_api_writes_total') ?? 0) - idleWrites,
      passes: (metricValue(afterIdle, 'kwarm_reconcile_duration_seconds_count') ?? 0) - idlePasses,
      cpu: procStats(pid).cpuSeconds - idleCpu,
      planMs: ((metricValue(afterIdle, 'kwarm_reconcile_plan_duration_seconds_sum') ?? 0) - idlePlan) * 1000,
    };
    console.log(`idle ${IDLE_RESYNCS * RESYNC_SECONDS + 5} s (resync period ${RESYNC_SECONDS} s): ${idle.passes} passes, ${idle.writes} API writes, controller CPU ${idle.cpu.toFixed(2)} s, ` +
      `${(idle.planMs / Math.max(1, idle.passes)).toFixed(0)} ms computing per pass (a pass with nothing changed)`);

    // --- image changes -------------------------------------------------------------------------------------
    // The API server's sustained write rate for NodeImageSet-sized writes on this machine, as the controller
    // sends them (8 at a time): one annotation patch per node of a pool. The controller's decoder keeps no
    // annotations, so these start no pass. A change's goal is 2 s + affected / rate.
    const poolNodes = (pool: number): string[] => nodeNames.filter((n) => Number(n.slice(5)) % POOLS === pool % POOLS);
    const probe = async (concurrency: number, what: string): Promise<number> => {
      const t = Date.now();
      const m = await mark();
      const nodes = poolNodes(7);
      // A starved API server answers 504 after its 60 s request timeout (seen at 32 in flight, load 65 on 2
      // cores): counted, not fatal, so the run still measures the change.
      let failed = 0;
      await eachLimited(nodes, concurrency, async (name) => {
        await admin.patch(`${KWARM}/nodeimagesets/${name}`, 'merge', { metadata: { annotations: { 'kwarm-bench/write-rate-probe': `${t}-${concurrency}` } } }, signal)
          .catch(() => { failed++; });
      });
      const rate = (nodes.length - failed) / Math.max(0.001, (Date.now() - t) / 1000);
      console.log(`${what}: ${rate.toFixed(1)} NodeImageSet writes/s (${nodes.length} annotation patches, ${concurrency} at a time, ${failed} failed)`);
      console.log(describeWindow(`  write-rate probe, ${concurrency} at a time`, m, await mark()));
      return rate;
    };
    // Twice, and the faster one counts: one probe the API server served slowly would make the goal laxer (a run
    // measured 22.6 writes/s 8 at a time, then 41.0 writes/s 32 at a time, though 32 in flight is usually no faster).
    const writeRate = Math.max(await probe(8, 'write-rate probe 1'), await probe(8, 'write-rate probe 2'));
    console.log(`API server sustained write rate: ${writeRate.toFixed(1)} NodeImageSet writes/s (the faster probe)`);
    // Whether more writes in flight would raise the rate (the controller's --write-concurrency).
    await probe(32, 'write-rate probe, 32 at a time');

    // The chart's priority level for the agents' status writes (agent.statusWriteShares), on for some changes
    // and off (its FlowSchema deleted) for the others, alternating, so both are measured side by side.
    const flowSchemaPath = `/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/${AGENT_STATUS_FLOW_SCHEMA}`;
    const { metadata: fsMeta, spec: fsSpec } = await admin.get(flowSchemaPath, signal) as { metadata: { name: string; labels?: Record<string, string> }; spec: unknown };
    const flowSchema = { apiVersion: 'flowcontrol.apiserver.k8s.io/v1', kind: 'FlowSchema', metadata: { name: fsMeta.name, labels: fsMeta.labels }, spec: fsSpec };
    const setAgentLevel = async (on: boolean): Promise<void> => {
      const exists = await admin.get(flowSchemaPath, signal).then(() => true, (err: unknown) => { if (isNotFound(err)) return false; throw err; });
      if (on === exists) return;
      if (on) await admin.create('/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas', flowSchema, signal);
      else await admin.delete(flowSchemaPath, signal);
      // measureChange's settle time (2 s) also covers the API server's flow-control configuration, which follows its watch.
    };
    interface ChangeResult { readonly levelOn: boolean; readonly toNisMs: number; readonly goalMs: number; readonly overhead: number }
    const measureChange = async (target: number, levelOn: boolean): Promise<ChangeResult> => {
      await setAgentLevel(levelOn);
      const label = `change ${target} (agents' status level ${levelOn ? 'on' : 'off'})`;
      const changed = deployment(target, 'v2');
      const newImage = `registry.bench.example/team-${target % NAMESPACES}/app-${target}:v2`;
      const affected = poolNodes(target);
      await sleep(2000);
      const before = await controller!.metrics();
      const passesBefore = metricValue(before, 'kwarm_reconcile_duration_seconds_count') ?? 0;
      const sumBefore = metricValue(before, 'kwarm_reconcile_duration_seconds_sum') ?? 0;
      const planBefore = metricValue(before, 'kwarm_reconcile_plan_duration_seconds_sum') ?? 0;
      const changeMark = await mark();
      const tChange = Date.now();
      // For lining up with the controller's log (--controller-log=debug: its 'reconciled' lines give passMs and specWritesMs).
      console.log(`${label}: Deployment patched at ${new Date(tChange).toISOString()}`);
      await admin.patch(`/apis/apps/v1/namespaces/${changed.ns}/deployments/${changed.name}`, 'merge', { spec: { template: { spec: { containers: [{ name: 'app', image: newImage }] } } } }, signal);
      let firstMs: number | undefined;
      await waitUntil('all affected NodeImageSets to want the new image', 300_000, () => {
        const done = affected.filter((n) => nis.get(n)?.images.some((e) => e.image === newImage) === true).length;
        if (done > 0) firstMs ??= Date.now() - tChange;
        return done === affected.length;
      });
      const toNis = Date.now() - tChange;
      console.log(describeWindow(`${label} until all affected NodeImageSets updated`, changeMark, await mark()));
      const toCompleted = await waitUntil('the PrePullImage to be Completed again', 300_000, async () => {
        const raw = await admin.get(`${KWARM}/namespaces/${changed.ns}/prepullimages/deployment.${changed.name}.app`, signal) as { spec: { image: string }; status?: { phase?: string } };
        return raw.spec.image === newImage && raw.status?.phase === 'Completed';
      });
      await sleep(5000);
      const after = await controller!.metrics();
      const kinds = ['prepullimages', 'prepullimages/status', 'nodeimagesets', 'events', 'prepullpolicies/status', 'secrets'];
      const byKind = kinds.map((k) => [k, (metricValue(after, 'kwarm_api_writes_total', { kind: k }) ?? 0) - (metricValue(before, 'kwarm_api_writes_total', { kind: k }) ?? 0)] as const);
      const total = (metricValue(after, 'kwarm_api_writes_total') ?? 0) - (metricValue(before, 'kwarm_api_writes_total') ?? 0);
      const passes = (metricValue(after, 'kwarm_reconcile_duration_seconds_count') ?? 0) - passesBefore;
      const passSeconds = (metricValue(after, 'kwarm_reconcile_duration_seconds_sum') ?? 0) - sumBefore;
      console.log(`${label} on ${affected.length} affected nodes: all their NodeImageSets updated in ${toNis} ms (since the Deployment patch; the first after ${firstMs ?? toNis} ms), PrePullImage Completed in ${toNis + toCompleted} ms`);
      const refused = (metricValue(after, 'kwarm_api_write_errors_total') ?? 0) - (metricValue(before, 'kwarm_api_write_errors_total') ?? 0);
      console.log(`  writes for the change: ${total} (${byKind.filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')}); affected nodes + constant = ${affected.length} + ${total - affected.length}; refused by the API server: ${refused}`);
      const goalMs = 2000 + (affected.length / writeRate) * 1000;
      console.log(`  goal: all ${affected.length} affected NodeImageSets within 2 s + ${affected.length} / ${writeRate.toFixed(1)} per s = ${(goalMs / 1000).toFixed(1)} s: ${toNis <= goalMs ? 'met' : 'MISSED'} (${(toNis / 1000).toFixed(1)} s)`);
      const planSeconds = (metricValue(after, 'kwarm_reconcile_plan_duration_seconds_sum') ?? 0) - planBefore;
      console.log(`  reconcile passes during the change: ${passes}, mean ${(passSeconds / Math.max(1, passes) * 1000).toFixed(0)} ms per pass over the whole cluster, of which ${(planSeconds / Math.max(1, passes) * 1000).toFixed(0)} ms computing (the rest waits for API writes)`);
      return { levelOn, toNisMs: toNis, goalMs, overhead: total - affected.length };
    };
    const changes: ChangeResult[] = [];
    for (let i = 0; i < CHANGES; i++) changes.push(await measureChange(7 + i, i % 2 === 0));
    await setAgentLevel(true);
    for (const on of [true, false]) {
      const of = changes.filter((c) => c.levelOn === on);
      if (of.length === 0) continue;
      const s = summarize(of.map((c) => c.toNisMs / 1000));
      const met = of.filter((c) => c.toNisMs <= c.goalMs).length;
      console.log(`image changes with the agents' status level ${on ? 'on (the chart\'s default)' : 'off'}: all NodeImageSets written in median ${s.median.toFixed(1)} s (${s.min.toFixed(1)}-${s.max.toFixed(1)}, n=${of.length}); goal met in ${met} of ${of.length}`);
    }
    const overheadMax = Math.max(...changes.map((c) => c.overhead));
    const final = procStats(pid);
    console.log(`controller: RSS ${final.rssMiB.toFixed(0)} MiB (peak ${final.peakMiB.toFixed(0)} MiB), CPU ${final.cpuSeconds.toFixed(1)} s in total; ${heapText(await controller.metrics())}`);

    // --- restart: list and watch everything again, plan, and find nothing to write --------------------------
    await controller.stop();
    const tRestart = Date.now();
    controller = await startController('controller-bench-restarted');
    const restartReadyMs = Date.now() - tRestart;
    const restartPid = controller.process.pid ?? 0;
    await sleep(5000);
    const restarted = procStats(restartPid);
    const restartWrites = metricValue(await controller.metrics(), 'kwarm_api_writes_total') ?? 0;
    console.log(`restart: synced and first pass done in ${(restartReadyMs / 1000).toFixed(1)} s, ${restartWrites} API writes; RSS ${restarted.rssMiB.toFixed(0)} MiB (peak ${restarted.peakMiB.toFixed(0)} MiB), CPU ${restarted.cpuSeconds.toFixed(1)} s; ${heapText(await controller.metrics())}`);
    // Extra restarts with other Node flags (--restart-node-args='--a=1|--b=2 --c'), to compare memory settings
    // on the same converged cluster; they do not count towards the goals.
    for (const set of restartNodeArgs) {
      await controller.stop();
      const t = Date.now();
      controller = await startController('controller-bench-variant', set);
      const readyMs = Date.now() - t;
      await sleep(5000);
      const v = procStats(controller.process.pid ?? 0);
      console.log(`restart variant [${set.join(' ') || 'no flags'}]: synced in ${(readyMs / 1000).toFixed(1)} s; RSS ${v.rssMiB.toFixed(0)} MiB (peak ${v.peakMiB.toFixed(0)} MiB), CPU ${v.cpuSeconds.toFixed(1)} s; ${heapText(await controller.metrics())}`);
    }
    const peak = Math.max(final.peakMiB, restarted.peakMiB);
    console.log(`goals: RSS <= 300 MiB: ${peak <= 300 ? 'met' : 'MISSED'} (peak ${peak.toFixed(0)} MiB, restart included); idle resync 0 writes: ${idle.writes === 0 ? 'met' : 'MISSED'}; writes per change <= affected nodes + constant: ${overheadMax <= 10 ? 'met' : 'MISSED'} (constant at most ${overheadMax}); restart 0 writes: ${restartWrites === 0 ? 'met' : 'MISSED'}`);
    ac.abort();
    await Promise.allSettled([nisRunning, agentsRunning]);
  } finally {
    ac.abort();
    await controller?.stop();
    admin.close();
    agentClient?.close();
    await cp.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
