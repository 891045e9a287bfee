// The peers' pre-pulling mechanisms measured on real kubelets, in one run, against kwarm and the kubelet
// alone: the same 3 nodes, registry and throttled per-node links for every approach.
//
//   node_modules/.bin/node bench/peers.ts [--reps=3] [--counts=1,8] [--mib=20] [--rate-mbps=25]
//   (or KWARM_BENCH_PEERS_REPS=1 etc. in the environment, for quick runs)
//
// Approaches (bench/peers-manifests.ts: plain Kubernetes objects in the shape each tool's documentation and
// manifests describe; their code is not run): one Job per (node, image) as kube-fledged, a DaemonSet of
// sleeping containers as kubernetes-image-puller, the kubelet alone (a Deployment with one pod per node
// running the images), and kwarm installed from its chart with a PrePullPolicy listing the images.
//
// Each cell (approach, image count, repetition) pushes fresh images of --mib random MiB (one layer each, no
// shell: the peers copy a static busybox in, as they do), creates the approach's objects at once and measures:
// - time until every node has every image: each node's CRI image list polled every 250 ms;
// - API writes, pods and Jobs created: the kube-apiserver audit log (local-cluster/control-plane.ts writes every
//   create/update/patch/delete at Metadata level) from just before the create until the approach is done
//   (Jobs finished and deleted as kube-fledged's default retention does; DaemonSet / Deployment pods Ready;
//   kwarm's PrePullImages Ready), Lease renewals left out;
// - CPU and memory requested: the sum of the scheduler's view of the approach's pods (kwarm: its agent and
//   controller pods);
// - CPU and memory used on the nodes: the cgroup v1 accounting (cpuacct.usage, memory.usage_in_bytes) of every
//   container of the nodes' containerd (sandboxes included), read every 500 ms, and the CPU time of the nodes'
//   kubelet and containerd processes from /proc.
// Afterwards the objects are deleted and the images removed from every node through CRI.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GrpcImageRuntime } from '../agent/cri/grpc-runtime.ts';
import { pushSleeperImage } from '../local-cluster/busybox-images.ts';
import { KWARM_NAMESPACE } from '../local-cluster/kwarm-access.ts';
import { buildAndPushImage } from '../local-cluster/oci-image.ts';
import type { RealCluster } from '../local-cluster/real-cluster.ts';
import type { RealNode } from '../local-cluster/real-node.ts';
import { waitFor } from '../local-cluster/wait.ts';
import { attributedWrites, containerUsage, countWrites, missingImages, type CgroupReading, type WriteCount } from './peers-figures.ts';
import {
  APPROACH_LABELS, APPROACHES, CELL_LABEL, fledgedJobs, kubeletDeployment, kwarmPolicy, ON_IMAGE_CHANGE, pullerDaemonSet,
  totalRequests, type Approach, type CellSpec, type PodSpecLike, type Requests,
} from './peers-manifests.ts';
import { processFigures } from './proc-stats.ts';
import { nodeImages, removeFromNodes, runRealNodeBench } from './real-node-bench.ts';

const env = (k: string, d: string): string => process.env[`KWARM_BENCH_PEERS_${k}`] ?? d;
const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: env('REPS', '3') },
    counts: { type: 'string', default: env('COUNTS', '1,8') },
    mib: { type: 'string', default: env('MIB', '20') },
    'rate-mbps': { type: 'string', default: env('RATE_MBPS', '25') },
    approaches: { type: 'string', default: env('APPROACHES', APPROACHES.join(',')) },
  },
});
const REPS = Number(args.reps);
const COUNTS = args.counts.split(',').map(Number);
const MIB = Number(args.mib);
const RATE_MBPS = Number(args['rate-mbps']);
const ONLY = args.approaches.split(',').filter((a): a is Approach => (APPROACHES as readonly string[]).includes(a));
const NODES = 3;
const NS = 'bench-peers';
const CELL_TIMEOUT_MS = 600_000;
const SAMPLE_MS = 500;
const CPUACCT = '/sys/fs/cgroup/cpuacct/k8s.io';
const MEMORY = '/sys/fs/cgroup/memory/k8s.io';

interface PodJson {
  metadata: { name: string };
  spec: PodSpecLike & { nodeName?: string };
  status: { phase?: string; conditions?: { type: string; status: string }[] };
}

interface CellFigures {
  allImagesMs: number;
  doneMs: number;
  writes: WriteCount;
  requested: Requests;
  containerCpuSeconds: number;
  containerPeakMemoryBytes: number;
  nodeDaemonsCpuSeconds: number;
  failedJobs: number;
}

// --- reading the nodes ---------------------------------------------------------------------------------

function readNumber(path: string): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined;
  }
}

function taskDir(node: RealNode): string {
  return join(node.dir, 'run-containerd', 'io.containerd.runtime.v2.task', 'k8s.io');
}

/** The node's containers as containerd's task directories list them (the cgroups are shared by all nodes). */
function containerIds(node: RealNode): string[] {
  try {
    return readdirSync(taskDir(node));
  } catch {
    return [];
  }
}

/** The pod namespace of a container or sandbox, from the annotations containerd's CRI puts in its OCI spec. */
function podNamespace(node: RealNode, id: string): string | undefined {
  try {
    const spec = JSON.parse(readFileSync(join(taskDir(node), id, 'config.json'), 'utf8')) as { annotations?: Record<string, string> };
    return spec.annotations?.['io.kubernetes.cri.sandbox-namespace'];
  } catch {
    return undefined;
  }
}

/** Reads the cgroups of every container of the approach's pods (by namespace) on every node every SAMPLE_MS. */
class UsageSampler {
  readonly readings: CgroupReading[] = [];
  #pass = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #nodes: readonly RealNode[];
  readonly #namespace: string;
  readonly #namespaces = new Map<string, string | undefined>();

  constructor(nodes: readonly RealNode[], namespace: string) {
    this.#nodes = nodes;
    this.#namespace = namespace;
  }

  #mine(node: RealNode, id: string): boolean {
    const key = `${node.name}/${id}`;
    if (!this.#namespaces.has(key)) this.#namespaces.set(key, podNamespace(node, id));
    return this.#namespaces.get(key) === this.#namespace;
  }

  start(): void {
    this.sample();
    this.#timer = setInterval(() => { this.sample(); }, SAMPLE_MS);
  }

  sample(): void {
    const pass = this.#pass++;
    for (const n of this.#nodes) {
      for (const id of containerIds(n)) {
        if (!this.#mine(n, id)) continue;
        const cpuNs = readNumber(join(CPUACCT, id, 'cpuacct.usage'));
        const memoryBytes = readNumber(join(MEMORY, id, 'memory.usage_in_bytes'));
        if (cpuNs !== undefined && memoryBytes !== undefined) this.readings.push({ pass, container: `${n.name}/${id}`, cpuNs, memoryBytes });
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.sample();
  }
}

function descendants(pid: number): number[] {
  const out = [pid];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(' ')) if (c !== '') out.push(...descendants(Number(c)));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** CPU seconds so far of every node's kubelet and containerd (their wrappers and what they forked and wait for). */
function nodeDaemonsCpu(nodes: readonly RealNode[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const n of nodes) {
    for (const root of [n.kubelet.pid, n.containerd.process.pid]) {
      if (root === undefined) continue;
      for (const pid of descendants(root)) {
        try {
          out.set(pid, processFigures(pid).cpuSeconds);
        } catch {
          // Gone meanwhile.
        }
      }
    }
  }
  return out;
}

function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, cpu] of after) s += cpu - (before.get(pid) ?? 0);
  return s;
}

async function removeImages(nodes: readonly RealNode[], images: readonly string[]): Promise<void> {
  const left = await removeFromNodes(nodes, images);
  if (left.length > 0) throw new Error(`images still on nodes after removal: ${left.join(', ')}`);
}

// --- one cell ------------------------------------------------------------------------------------------

async function podsJson(cluster: RealCluster, args: readonly string[]): Promise<PodJson[]> {
  const { stdout } = await cluster.kubectl(['get', 'pods', ...args, '-o', 'json']);
  return (JSON.parse(stdout) as { items: PodJson[] }).items;
}

const ready = (p: PodJson): boolean => (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

interface Done {
  /** The pods whose requests count (read before any is deleted). */
  pods: PodJson[];
  failedJobs: number;
}

/** Waits until the approach considers its work done; for Jobs, also deletes them as kube-fledged does. */
async function waitDone(cluster: RealCluster, approach: Approach, spec: CellSpec): Promise<Done> {
  const sel = `${CELL_LABEL}=${spec.cell}`;
  const opts = { timeoutMs: CELL_TIMEOUT_MS, intervalMs: 500 };
  switch (approach) {
    case 'jobs': {
      const expected = spec.nodes.length * spec.images.length;
      const failed = await waitFor(async () => {
        const { stdout } = await cluster.kubectl(['get', 'jobs', '-n', NS, '-l', sel, '-o', 'json']);
        const jobs = (JSON.parse(stdout) as { items: { status: { conditions?: { type: string; status: string }[] } }[] }).items;
        const finished = jobs.filter((j) => (j.status.conditions ?? []).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True'));
        if (jobs.length !== expected || finished.length !== expected) return undefined;
        return finished.filter((j) => (j.status.conditions ?? []).some((c) => c.type === 'Failed' && c.status === 'True')).length;
      }, { what: `${expected} Jobs of ${spec.cell} finished`, ...opts });
      const pods = await podsJson(cluster, ['-n', NS, '-l', sel]);
      await cluster.kubectl(['delete', 'jobs', '-n', NS, '-l', sel, '--cascade=background', '--wait=false']);
      await waitFor(async () => (await podsJson(cluster, ['-n', NS, '-l', sel])).length === 0, { what: `the pods of ${spec.cell}'s Jobs gone`, ...opts });
      return { pods, failedJobs: failed };
    }
    case 'daemonset':
    case 'kubelet': {
      const pods = await waitFor(async () => {
        const p = await podsJson(cluster, ['-n', NS, '-l', sel]);
        return p.length === spec.nodes.length && p.every(ready) ? p : undefined;
      }, { what: `${spec.nodes.length} pods of ${spec.cell} Ready`, ...opts });
      return { pods, failedJobs: 0 };
    }
    case 'kwarm': {
      await waitFor(async () => {
        const { stdout } = await cluster.kubectl(['get', 'prepullimages', '-n', KWARM_NAMESPACE, '-l', `kwarm.io/policy=${spec.cell}`, '-o', 'json']);
        const ppis = (JSON.parse(stdout) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] }).items;
        return ppis.length === spec.images.length && ppis.every((p) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
      }, { what: `${spec.images.length} PrePullImages of policy ${spec.cell} Ready`, ...opts });
      return { pods: await podsJson(cluster, ['-n', KWARM_NAMESPACE]), failedJobs: 0 };
    }
  }
}

function objectsOf(approach: Approach, spec: CellSpec): unknown[] {
  switch (approach) {
    case 'jobs': return fledgedJobs(spec);
    case 'daemonset': return [pullerDaemonSet(spec)];
    case 'kubelet': return [kubeletDeployment(spec)];
    case 'kwarm': return [kwarmPolicy(spec)];
  }
}

async function cleanUp(cluster: RealCluster, approach: Approach, spec: CellSpec): Promise<void> {
  const sel = `${CELL_LABEL}=${spec.cell}`;
  const opts = { timeoutMs: 300_000, intervalMs: 500 };
  if (approach === 'kwarm') {
    await cluster.kubectl(['delete', 'prepullpolicy', spec.cell, '--wait=true']);
    // The agents must no longer want the images, or they would pull them back after the removal.
    await waitFor(async () => {
      const { stdout } = await cluster.kubectl(['get', 'nodeimagesets', '-o', 'json']);
      return spec.images.every((i) => !stdout.includes(`"${i}"`));
    }, { what: `${spec.cell}'s images gone from every NodeImageSet`, ...opts });
  } else if (approach !== 'jobs') {
    await cluster.kubectl(['delete', approach === 'daemonset' ? 'daemonset' : 'deployment', spec.cell, '-n', NS, '--wait=true']);
    await waitFor(async () => (await podsJson(cluster, ['-n', NS, '-l', sel])).length === 0, { what: `the pods of ${spec.cell} gone`, ...opts });
  }
}

async function runCell(cluster: RealCluster, approach: Approach, spec: CellSpec): Promise<CellFigures> {
  const auditPath = cluster.controlPlane.auditLogPath;
  const sampler = new UsageSampler(cluster.nodes, approach === 'kwarm' ? KWARM_NAMESPACE : NS);
  const daemonsBefore = nodeDaemonsCpu(cluster.nodes);
  sampler.start();
  const auditStart = statSync(auditPath).size;
  const t0 = performance.now();
  await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objectsOf(approach, spec) }) });
  const allImagesMs = await waitFor(async () => {
    const missing = (await Promise.all(cluster.nodes.map(async (n) => missingImages(spec.images, await nodeImages(n))))).flat();
    return missing.length === 0 ? performance.now() - t0 : undefined;
  }, { what: `every image of ${spec.cell} on every node`, timeoutMs: CELL_TIMEOUT_MS, intervalMs: 250 });
  const done = await waitDone(cluster, approach, spec);
  const doneMs = performance.now() - t0;
  // Writes that follow the last state change (Events, status) land within a moment.
  await new Promise((r) => setTimeout(r, 2000));
  sampler.stop();
  const daemonsAfter = nodeDaemonsCpu(cluster.nodes);
  const audit = readFileSync(auditPath).subarray(auditStart).toString('utf8');
  const writes = countWrites(attributedWrites(audit));
  const usage = containerUsage(sampler.readings);
  if (usage.containers === 0) throw new Error(`no container cgroup of ${spec.cell}'s pods was readable under ${CPUACCT} and ${MEMORY}: is this a cgroup v1 machine as local-cluster/real-node.ts assumes?`);
  return {
    allImagesMs, doneMs, writes,
    requested: totalRequests(done.pods.map((p) => p.spec)),
    containerCpuSeconds: usage.cpuSeconds,
    containerPeakMemoryBytes: usage.peakMemoryBytes,
    nodeDaemonsCpuSeconds: cpuDelta(daemonsBefore, daemonsAfter),
    failedJobs: done.failedJobs,
  };
}

// --- main ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await runRealNodeBench({ nodes: NODES, rateMBps: RATE_MBPS, namespace: NS }, async ({ bench, cluster: c, link: nodeLink }) => {
    // The tool image every peer copies its binary from: on every node beforehand (each peer's own image would be).
    const tool = c.nodeImage((await pushSleeperImage(c.registry, 'bench/peers-tool', '1', 0)).reference);
    for (const n of c.nodes) {
      const cri = new GrpcImageRuntime({ endpoint: n.containerd.socket });
      try {
        await cri.pullImage(tool, undefined, { signal: AbortSignal.timeout(120_000) });
      } finally {
        cri.close();
      }
    }

    const nodes = c.nodes.map((n) => n.name);
    const results = new Map<string, CellFigures[]>();
    let pushed = 0;
    for (let rep = 1; rep <= REPS; rep++) {
      for (const count of COUNTS) {
        // Rotate the order per repetition so no approach always runs first (or right after a given other).
        const order = ONLY.map((_a, i) => ONLY[(i + rep - 1) % ONLY.length]!);
        for (const approach of order) {
          const cell = `${approach}-${count}-r${rep}`;
          const images: string[] = [];
          for (let i = 0; i < count; i++) {
            const p = await buildAndPushImage(c.registry, { repository: 'bench/peers', tag: `${cell}-${++pushed}`, layers: [MIB * 2 ** 20] });
            images.push(nodeLink.nodeImage(p.reference));
          }
          const spec: CellSpec = { cell, namespace: NS, images, nodes, busybox: tool };
          console.log(`${cell}: ${APPROACH_LABELS[approach]}, ${count} image(s) of ${MIB} MiB`);
          const f = await runCell(c, approach, spec);
          console.log(`  every node has every image after ${(f.allImagesMs / 1000).toFixed(1)} s, done after ${(f.doneMs / 1000).toFixed(1)} s; ${f.writes.total} API writes, ${f.writes.podsCreated} pods and ${f.writes.jobsCreated} Jobs created${f.failedJobs > 0 ? `, ${f.failedJobs} Jobs FAILED` : ''}; requested ${f.requested.cpuMillis}m CPU ${(f.requested.memoryBytes / 2 ** 20).toFixed(0)} MiB; containers used ${f.containerCpuSeconds.toFixed(2)} CPU s, peak ${(f.containerPeakMemoryBytes / 2 ** 20).toFixed(0)} MiB; kubelet+containerd ${f.nodeDaemonsCpuSeconds.toFixed(2)} CPU s`);
          const key = `${approach}.${count}`;
          results.set(key, [...(results.get(key) ?? []), f]);
          await cleanUp(c, approach, spec);
          await removeImages(c.nodes, images);
        }
      }
    }

    const log = bench.figures;
    for (const count of COUNTS) {
      for (const approach of ONLY) {
        const runs = results.get(`${approach}.${count}`) ?? [];
        if (runs.length === 0) continue;
        const id = (what: string): string => `peers.${approach}.${count}.${what}`;
        const label = `${APPROACH_LABELS[approach]}, ${count} image${count === 1 ? '' : 's'}`;
        log.measured(id('all-images'), `${label}: time until every node has every image`, 'ms', runs.map((r) => r.allImagesMs));
        log.measured(id('done'), `${label}: time until the approach is done`, 'ms', runs.map((r) => r.doneMs));
        log.measured(id('writes'), `${label}: API writes (audit log, Leases left out)`, 'writes', runs.map((r) => r.writes.total));
        log.measured(id('writes-per-pair'), `${label}: API writes per (node, image)`, 'writes', runs.map((r) => r.writes.total / (NODES * count)));
        log.measured(id('pods-created'), `${label}: pods created`, 'pods', runs.map((r) => r.writes.podsCreated));
        log.measured(id('jobs-created'), `${label}: Jobs created`, 'Jobs', runs.map((r) => r.writes.jobsCreated));
        log.measured(id('failed-jobs'), `${label}: Jobs failed`, 'Jobs', runs.map((r) => r.failedJobs));
        log.measured(id('requested-cpu'), `${label}: CPU requested by its pods`, 'millicores', runs.map((r) => r.requested.cpuMillis));
        log.measured(id('requested-memory'), `${label}: memory requested by its pods`, 'MiB', runs.map((r) => r.requested.memoryBytes / 2 ** 20));
        log.measured(id('used-cpu'), `${label}: CPU used by the nodes' containers (cgroups)`, 'CPU s', runs.map((r) => r.containerCpuSeconds));
        log.measured(id('used-memory'), `${label}: peak memory of the nodes' containers (cgroups)`, 'MiB', runs.map((r) => r.containerPeakMemoryBytes / 2 ** 20));
        log.measured(id('daemons-cpu'), `${label}: CPU used by the nodes' kubelets and containerds (/proc)`, 'CPU s', runs.map((r) => r.nodeDaemonsCpuSeconds));
        const kinds = [...new Set(runs.flatMap((r) => Object.keys(r.writes.byKind)))].sort();
        for (const k of kinds) log.measured(`${id('by')}.${k}`, k, 'writes', runs.map((r) => r.writes.byKind[k] ?? 0));
      }
    }
    for (const a of ONLY) bench.notes.push(`on an image change, ${APPROACH_LABELS[a]}: ${ON_IMAGE_CHANGE[a]}`);
    bench.notes.push(`${NODES} real nodes (kubelet, containerd 1.6, kube-proxy in network namespaces) on one machine shared with six other workers' builds and tests; each node's registry link paced at ${RATE_MBPS} MB/s for all its connections together; kubelets pull in parallel (serializeImagePulls false)`);
    bench.notes.push(`each cell: fresh images of ${MIB} MiB (one random layer, no shell), the approach's objects created at once with one \`kubectl create\`; afterwards deleted and the images removed from every node through CRI; approaches in rotating order per repetition`);
    bench.notes.push('the peers\' approaches are plain Kubernetes objects in the shape their documentation and manifests describe (bench/peers-manifests.ts), not their code: no ImageCache status writes or controller of their own are counted; the tool image holding the static busybox they copy in is on every node beforehand');
    bench.notes.push(`used: the cgroup v1 accounting of the approach's containers on the nodes (its pods' namespace; kwarm: kwarm-system, its agents and controller; pod sandboxes included), read every ${SAMPLE_MS} ms (CPU: growth over the cell, a container that exits loses at most its last ${SAMPLE_MS} ms; memory: the highest sum over one reading, page cache charged to the containers included), and the CPU time of the kubelet and containerd processes from /proc; requested: the sum of the pods' requests as the scheduler counts them (kwarm: its agent and controller pods, which stay)`);
    await bench.finish('peers', process.argv.slice(2), { reps: REPS, counts: COUNTS.join(','), nodes: NODES, imageMiB: MIB, rateMBps: RATE_MBPS, approaches: ONLY.join(',') });
  });
}

await main();
