// Benchmark: what the agent adds to a pull. The same image (default 50 MiB, two random layers) is
// pulled into the same real containerd, alternately by a bare CRI PullImage call and through the
// agent (NodeImageSet spec written -> watch -> survey -> PullImage), side by side in one run; the
// image is removed before each pull, so every pull fetches all layers. Then the idle agent's RSS
// and CPU are measured from /proc.
//
//   node_modules/.bin/node bench/agent-overhead.ts [--runs=5] [--size-mb=50] [--idle-seconds=20]
//
// "Through the agent" is timed from just before the spec is written until the agent logs the image
// as pulled (PullImage returned and ImageStatus confirmed it) — the moment a pod could use it; the
// time until the status says Completed is printed as well (status writes are coalesced to about one
// per second, so it trails).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { GrpcImageRuntime } from '../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../lib/kube-client.ts';
import { API_VERSION } from '../api/v1alpha1/group.ts';
import { decodeNodeImageSet, NODE_IMAGE_SETS_PATH } from '../agent/node-image-set-watch.ts';
import { agentInClusterCredentials, agentKubeconfig, startAgentProcess, type AgentProcess } from '../test/support/agent-process.ts';
import { startContainerd, type TestContainerd } from '../test/support/containerd.ts';
import { startControlPlane, type ControlPlane } from '../test/support/control-plane.ts';
import { installCrds } from '../test/support/crds.ts';
import { buildAndPushImage } from '../test/support/oci-image.ts';
import { startRegistry, type TestRegistry } from '../test/support/registry.ts';

const MiB = 1024 * 1024;
const NODE = 'bench-node';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'size-mb': { type: 'string', default: '50' },
    'idle-seconds': { type: 'string', default: '20' },
    // Run agent/main.ts with type stripping instead of the compiled build the image ships.
    source: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const SIZE_MB = Number(args['size-mb']);
const IDLE_SECONDS = Number(args['idle-seconds']);

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function summary(xs: readonly number[]): string {
  return `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}; runs: ${xs.map((x) => x.toFixed(0)).join(', ')})`;
}

/** Resident set size and consumed CPU time (user + system, seconds) of a process, from /proc. */
function procFigures(pid: number): { rssBytes: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  // Fields after the command name (which is in parentheses and may hold spaces): utime is the 14th field overall.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  // USER_HZ is 100 on every Linux this runs on.
  return { rssBytes: rssKb * 1024, cpuSeconds: ticks / 100 };
}

/** Time of the agent's "image pulled" log line for `image` at or after `since` (ms). */
function pulledLogTime(agent: AgentProcess, image: string, since: number): number | undefined {
  for (const e of agent.logEntries()) {
    if (e.message !== 'image pulled' || e.image !== image || typeof e.timestamp !== 'string') continue;
    const at = Date.parse(e.timestamp);
    if (at >= since) return at;
  }
  return undefined;
}

async function statusRound(client: KubeClient, image: string): Promise<number | undefined> {
  const raw = await client.get(`${NODE_IMAGE_SETS_PATH}/${NODE}`, AbortSignal.timeout(10_000));
  const s = decodeNodeImageSet(raw)?.status?.images?.find((i) => i.image === image);
  return s?.phase === 'Completed' ? s.round : undefined;
}

/** `npm run build`'s output (dist/, next to proto/ so the CRI proto is found); built here. */
async function compiledAgent(): Promise<string> {
  const root = join(import.meta.dirname, '..');
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  await new Promise<void>((resolve, reject) => {
    execFile(tsc, ['-p', join(root, 'tsconfig.build.json')], { cwd: root }, (err, stdout) => {
      // Type errors elsewhere in the tree do not stop emitting; a missing output does.
      if (err !== null && !existsSync(join(root, 'dist', 'agent', 'main.js'))) reject(new Error(`tsc failed: ${stdout}`));
      else resolve();
    });
  });
  return join(root, 'dist', 'agent', 'main.js');
}

async function main(): Promise<void> {
  let cp: ControlPlane | undefined;
  let registry: TestRegistry | undefined;
  let containerd: TestContainerd | undefined;
  let cri: GrpcImageRuntime | undefined;
  let agent: AgentProcess | undefined;
  let withKubeconfig: AgentProcess | undefined;
  let admin: KubeClient | undefined;
  try {
    cp = await startControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry();
    containerd = await startContainerd({ name: NODE, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: containerd.socket });
    const first = Math.round(SIZE_MB * 0.6);
    const image = await buildAndPushImage(registry, { repository: 'bench/app', tag: 'v1', layers: [first * MiB, (SIZE_MB - first) * MiB] });
    const ref = image.reference;
    console.log(`image ${ref}: ${(image.totalBytes / MiB).toFixed(1)} MiB in 2 layers; ${RUNS} runs per path`);

    // As in a pod: the compiled build (what Dockerfile.agent ships), in-cluster ServiceAccount
    // credentials, default intervals, info logs.
    const entry = args.source ? undefined : await compiledAgent();
    const inCluster = await agentInClusterCredentials(cp, { namespace: 'kwarm-system', nodeName: NODE });
    agent = await startAgentProcess({ nodeName: NODE, inCluster, criSocket: containerd.socket, logLevel: 'info', ...(entry !== undefined ? { entry } : {}) });
    console.log(`agent: ${entry ?? 'agent/main.ts (type stripping)'}`);
    await agent.waitReady();
    const pid = agent.process.pid!;
    await sleep(2000);
    const rssAtStart = procFigures(pid).rssBytes;

    const signal = (): AbortSignal => AbortSignal.timeout(120_000);
    // A warm-up pull of each path, not counted: page cache, connections, JIT.
    const bare: number[] = [];
    const viaAgent: number[] = [];
    const toStatus: number[] = [];
    const agentPullCall: number[] = [];
    for (let run = 0; run <= RUNS; run++) {
      const order = run % 2 === 0 ? ['bare', 'agent'] as const : ['agent', 'bare'] as const;
      for (const path of order) {
        await cri.removeImage(ref, { signal: signal() });
        await sleep(200);
        if (path === 'bare') {
          const t0 = performance.now();
          await cri.pullImage(ref, undefined, { signal: signal() });
          if (run > 0) bare.push(performance.now() - t0);
        } else {
          const before = (await agent.metric('kwarm_pull_duration_seconds_sum', { status: 'succeeded' })) ?? 0;
          const round = run + 1;
          const t0 = Date.now();
          await admin.apply(`${NODE_IMAGE_SETS_PATH}/${NODE}`, {
            apiVersion: API_VERSION, kind: 'NodeImageSet', metadata: { name: NODE }, spec: { images: [{ image: ref, round }] },
          }, 'kwarm-controller', signal());
          // The agent's own log line says when the image was on the node (pulled and checked);
          // polling CRI for it instead would load containerd while it pulls.
          let pulledAt: number | undefined;
          while ((pulledAt = pulledLogTime(agent, ref, t0)) === undefined) await sleep(50);
          const present = pulledAt - t0;
          while ((await statusRound(admin, ref)) !== round) await sleep(50);
          const completed = Date.now() - t0;
          const after = (await agent.metric('kwarm_pull_duration_seconds_sum', { status: 'succeeded' })) ?? 0;
          if (run > 0) {
            viaAgent.push(present);
            toStatus.push(completed);
            agentPullCall.push((after - before) * 1000);
          }
        }
      }
    }
    const overhead = median(viaAgent) / median(bare) - 1;
    // Paired per run: what the agent adds around its own PullImage call (watch, survey, queue),
    // free of the run-to-run spread of the pull itself.
    const added = viaAgent.map((v, i) => v - agentPullCall[i]!);
    console.log('');
    console.log(`bare CRI PullImage:                 ${summary(bare)}`);
    console.log(`through the agent (image on node):  ${summary(viaAgent)}`);
    console.log(`  the agent's own PullImage call:   ${summary(agentPullCall)}`);
    console.log(`  until status says Completed:      ${summary(toStatus)}`);
    console.log(`overhead (median agent / median bare - 1): ${(overhead * 100).toFixed(1)} % (${(median(viaAgent) - median(bare)).toFixed(0)} ms)`);
    console.log(`added by the agent around its PullImage call: ${summary(added)}; ${((median(added) / median(bare)) * 100).toFixed(1)} % of the bare median`);

    // Idle: everything Completed, default intervals (verify 5m, disk check 30s, runtime probe 5s).
    // A second agent, on its own node, started with --kubeconfig, for comparison of memory.
    withKubeconfig = await startAgentProcess({ nodeName: `${NODE}-kubeconfig`, kubeconfig: await agentKubeconfig(cp, { namespace: 'kwarm-system', nodeName: `${NODE}-kubeconfig` }), criSocket: containerd.socket, logLevel: 'info' });
    await withKubeconfig.waitReady();
    await sleep(5000);
    const a = procFigures(pid);
    const t0 = performance.now();
    await sleep(IDLE_SECONDS * 1000);
    const b = procFigures(pid);
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpuPercent = ((b.cpuSeconds - a.cpuSeconds) / wallSeconds) * 100;
    const kubeconfigRss = procFigures(withKubeconfig.process.pid!).rssBytes;
    console.log('');
    console.log(`agent RSS (in-cluster credentials, as in a pod): ${(rssAtStart / MiB).toFixed(1)} MiB after start, ${(b.rssBytes / MiB).toFixed(1)} MiB idle after ${RUNS + 1} rounds of pulls`);
    console.log(`agent RSS with --kubeconfig (loads @kubernetes/client-node), idle: ${(kubeconfigRss / MiB).toFixed(1)} MiB`);
    console.log(`agent idle CPU over ${wallSeconds.toFixed(0)} s: ${cpuPercent.toFixed(2)} % of one core (${((b.cpuSeconds - a.cpuSeconds) * 1000).toFixed(0)} ms CPU)`);
  } finally {
    await agent?.dispose();
    await withKubeconfig?.dispose();
    cri?.close();
    await containerd?.dispose();
    await registry?.dispose();
    admin?.close();
    await cp?.stop();
  }
}

await main();
