// Benchmark (issue 6, items 1 and 5): what the agent adds to a pull, and what the agent costs in
// memory and CPU. The same images (5, 50 and 200 MB; one layer and four) are pulled into one real
// containerd from a real registry on loopback, alternately by a bare CRI PullImage call and through
// the agent (NodeImageSet spec written -> watch -> survey -> PullImage -> ImageStatus -> status),
// side by side in one run. The image is removed before each pull, so every pull fetches all layers.
//
//   node_modules/.bin/node bench/agent-overhead.ts [--runs=5] [--sizes=5,50,200] [--layers=1,4] [--idle-seconds=60] [--source]
//
// Through the agent is timed from just before the spec is written until
//   - "on node": the agent's "image pulled" log line (PullImage returned and ImageStatus confirmed it:
//     the moment a pod could use the image), and
//   - "Completed": the watch delivering status phase Completed (status writes are coalesced to about
//     one per second, so this trails).
// containerd's own log gives the PullImage call as the runtime saw it, for both paths alike.
// Then the idle agent's RSS and CPU are measured from /proc.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../local-cluster/agent-process.ts';
import type { TestContainerd } from '../local-cluster/containerd.ts';
import { KWARM_NAMESPACE } from '../local-cluster/kwarm-access.ts';
import { buildAndPushImage, type PushedImage } from '../local-cluster/oci-image.ts';
import { startBenchCluster, type BenchCluster } from './bench-cluster.ts';
import { BenchRun } from './bench-run.ts';
import { compiledAgent } from './compiled-binaries.ts';
import { pulledAt } from './agent-log.ts';
import { firstPullEvent, pullLogEvents } from './containerd-log.ts';
import { cpuPercent, processFigures } from './proc-stats.ts';
import { median, pairedDifferences } from './stats.ts';
import { NodeImageSetTimeline } from './status-timeline.ts';

const MB = 1_000_000;
const NODE = 'bench-node';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    sizes: { type: 'string', default: '5,50,200' },
    layers: { type: 'string', default: '1,4' },
    'idle-seconds': { type: 'string', default: '60' },
    // Run agent/main.ts with type stripping instead of the compiled build the image ships.
    source: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const SIZES = args.sizes.split(',').map(Number);
const LAYERS = args.layers.split(',').map(Number);
const IDLE_SECONDS = Number(args['idle-seconds']);
if (!Number.isInteger(RUNS) || RUNS < 1 || SIZES.some((s) => !(s > 0)) || LAYERS.some((l) => !Number.isInteger(l) || l < 1)) {
  throw new Error('--runs, --sizes and --layers must be positive numbers');
}

interface Config {
  key: string;
  label: string;
  image: PushedImage;
}

function layerSizes(totalBytes: number, layers: number): number[] {
  const each = Math.floor(totalBytes / layers);
  return Array.from({ length: layers }, (_, i) => (i === layers - 1 ? totalBytes - each * (layers - 1) : each));
}

/** containerd's own start and return times of the first PullImage of `image` at or after `since`. */
async function runtimePull(containerd: TestContainerd, image: string, since: number): Promise<{ start: number; end: number }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const events = pullLogEvents(readFileSync(containerd.logFile, 'utf8'));
    // containerd's clock and ours are the same clock; a little slack for the log line being written first.
    const start = firstPullEvent(events, image, 'start', since - 5);
    const end = start === undefined ? undefined : firstPullEvent(events, image, 'return', start.at);
    if (start !== undefined && end !== undefined) return { start: start.at, end: end.at };
    if (Date.now() > deadline) throw new Error(`containerd logged no PullImage of ${image} after ${new Date(since).toISOString()}`);
    await sleep(20);
  }
}

async function main(): Promise<void> {
  const bench = await BenchRun.start();
  const { figures, notes } = bench;
  let cluster: BenchCluster | undefined;
  let withKubeconfig: AgentProcess | undefined;
  const stop = new AbortController();
  try {
    cluster = await startBenchCluster();
    const { cp, admin, registry } = cluster;
    const node = await cluster.addNode(NODE);
    const { containerd } = node;
    const cri = node.cri();
    const timeline = new NodeImageSetTimeline(admin, { fieldSelector: `metadata.name=${NODE}` });
    await timeline.start(stop.signal);

    const configs: Config[] = [];
    for (const size of SIZES) {
      for (const layers of LAYERS) {
        const image = await buildAndPushImage(registry, { repository: `bench/app-${size}mb-${layers}l`, tag: 'v1', layers: layerSizes(size * MB, layers) });
        configs.push({ key: `${size}mb.${layers}l`, label: `${size} MB, ${layers} layer${layers > 1 ? 's' : ''}`, image });
      }
    }
    console.log(`${configs.length} images pushed; ${RUNS} runs per path and image, after one warm-up run each`);

    // As in a pod: the compiled build (what Dockerfile.agent ships), in-cluster ServiceAccount
    // credentials, default intervals, info logs.
    const entry = args.source ? undefined : await compiledAgent();
    const agent = await cluster.startAgent(node, { entry });
    console.log(`agent: ${entry ?? 'agent/main.ts (type stripping)'}, in-cluster credentials`);
    const pid = agent.process.pid!;
    await sleep(2000);
    const rssAtStart = processFigures(pid).rssMiB;

    const signal = (): AbortSignal => AbortSignal.any([stop.signal, AbortSignal.timeout(300_000)]);
    const rssWhilePulling: number[] = [];
    let round = 0;
    for (const c of configs) {
      const ref = c.image.reference;
      const bare: number[] = [];
      const onNode: number[] = [];
      const completed: number[] = [];
      const pullCall: number[] = [];
      const runtimeBare: number[] = [];
      const runtimeAgent: number[] = [];
      const cpuPulling: number[] = [];
      const toPullStart: number[] = [];
      const afterPull: number[] = [];
      console.log(`\n${c.label} (${(c.image.totalBytes / MB).toFixed(1)} MB downloaded per pull):`);
      for (let run = 0; run <= RUNS; run++) {
        const order = run % 2 === 0 ? ['bare', 'agent'] as const : ['agent', 'bare'] as const;
        for (const path of order) {
          await cri.removeImage(ref, { signal: signal() });
          await sleep(300);
          if (path === 'bare') {
            const since = Date.now();
            const t0 = performance.now();
            await cri.pullImage(ref, undefined, { signal: signal() });
            const took = performance.now() - t0;
            const rt = await runtimePull(containerd, ref, since);
            if (run > 0) {
              bare.push(took);
              runtimeBare.push(rt.end - rt.start);
            }
            continue;
          }
          round++;
          const before = (await agent.metric('kwarm_pull_duration_seconds_sum', { status: 'succeeded' })) ?? 0;
          const cpuBefore = processFigures(pid);
          const t0 = Date.now();
          await cluster.applySpec(NODE, { images: [{ image: ref, round }] }, signal());
          // The agent's log line says when the image was on the node; polling CRI for it instead
          // would load containerd while it pulls. RSS is sampled on the way.
          let present: number | undefined;
          let lastSample = 0;
          while ((present = pulledAt(agent.logEntries(), ref, t0)) === undefined) {
            if (Date.now() - t0 > 300_000) throw new Error(`the agent did not pull ${ref} within 300 s\n${agent.process.tail(20)}`);
            if (Date.now() - lastSample >= 100) {
              lastSample = Date.now();
              rssWhilePulling.push(processFigures(pid).rssMiB);
            }
            await sleep(20);
          }
          const done = await timeline.waitFor(`${ref} Completed in round ${round}`, () => timeline.statusAt(NODE, ref, 'Completed', round), 60_000);
          const cpuAfter = processFigures(pid);
          const after = (await agent.metric('kwarm_pull_duration_seconds_sum', { status: 'succeeded' })) ?? 0;
          const rt = await runtimePull(containerd, ref, t0);
          await cluster.clearSpec(NODE, signal());
          if (run > 0) {
            onNode.push(present - t0);
            completed.push(done - t0);
            pullCall.push((after - before) * 1000);
            runtimeAgent.push(rt.end - rt.start);
            toPullStart.push(rt.start - t0);
            afterPull.push(present - rt.end);
            cpuPulling.push(cpuPercent(cpuBefore, cpuAfter, (done - t0) / 1000));
          }
        }
      }
      const id = (what: string): string => `overhead.${c.key}.${what}`;
      figures.measured(id('bare'), `${c.label}: bare CRI PullImage`, 'ms', bare);
      figures.measured(id('on-node'), `${c.label}: through the agent, image on the node`, 'ms', onNode);
      figures.measured(id('completed'), `${c.label}: through the agent, status Completed`, 'ms', completed);
      figures.measured(id('agent-pull-call'), `${c.label}: the agent's own PullImage call`, 'ms', pullCall);
      figures.measured(id('added'), `${c.label}: added by the agent around its PullImage call (paired per run)`, 'ms', pairedDifferences(onNode, pullCall));
      figures.measured(id('runtime-bare'), `${c.label}: PullImage as containerd logged it, bare`, 'ms', runtimeBare);
      figures.measured(id('runtime-agent'), `${c.label}: PullImage as containerd logged it, through the agent`, 'ms', runtimeAgent);
      figures.measured(id('to-pull-start'), `${c.label}: spec written -> containerd receives the agent's PullImage`, 'ms', toPullStart);
      figures.measured(id('after-pull'), `${c.label}: containerd returns PullImage -> agent logs the image as pulled`, 'ms', afterPull);
      figures.measured(id('agent-cpu'), `${c.label}: agent CPU while pulling (spec written -> Completed)`, '%', cpuPulling);
      const ratio = median(onNode) / median(bare);
      console.log(`  => ratio on node / bare ${ratio.toFixed(3)} (goal <= 1.05), ${(median(onNode) - median(bare)).toFixed(0)} ms added; to Completed ${(median(completed) / median(bare)).toFixed(3)}`);
    }

    figures.measured('footprint.agent.rss-start', 'agent RSS after start (in-cluster credentials, as in a pod)', 'MiB', [rssAtStart]);
    figures.measured('footprint.agent.rss-pulling', 'agent RSS while pulling (sampled every 100 ms)', 'MiB', rssWhilePulling);

    // Idle with every image of the run in the spec (all present, so nothing is pulled): they stay
    // Completed while the agent checks them periodically.
    round++;
    await cluster.applySpec(NODE, { images: configs.map((c) => ({ image: c.image.reference, round })) }, signal());
    await timeline.waitFor('every image Completed for the idle phase', () => (configs.every((c) => timeline.statusAt(NODE, c.image.reference, 'Completed', round) !== undefined) ? true : undefined), 60_000);

    // Idle: everything Completed, default intervals (verify 5m, disk check 30s, runtime probe 5s),
    // measured in windows of 10 s. A second agent, on its own node and started with --kubeconfig,
    // shows the memory @kubernetes/client-node adds.
    withKubeconfig = await startAgentProcess({
      nodeName: `${NODE}-kubeconfig`,
      kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NAMESPACE, nodeName: `${NODE}-kubeconfig` }),
      criSocket: containerd.socket, logLevel: 'info', ...(entry !== undefined ? { entry } : {}),
    });
    await withKubeconfig.waitReady();
    await sleep(5000);
    const windows = Math.max(1, Math.round(IDLE_SECONDS / 10));
    const idleCpu: number[] = [];
    const idleRss: number[] = [];
    const kubeconfigRss: number[] = [];
    for (let w = 0; w < windows; w++) {
      const a = processFigures(pid);
      const t0 = performance.now();
      await sleep(10_000);
      const b = processFigures(pid);
      idleCpu.push(cpuPercent(a, b, (performance.now() - t0) / 1000));
      idleRss.push(b.rssMiB);
      kubeconfigRss.push(processFigures(withKubeconfig.process.pid!).rssMiB);
    }
    figures.measured('footprint.agent.rss-idle', 'agent RSS idle (in-cluster credentials)', 'MiB', idleRss);
    figures.measured('footprint.agent.cpu-idle', 'agent CPU idle (10 s windows)', '%', idleCpu);
    figures.measured('footprint.agent.rss-idle-kubeconfig', 'agent RSS idle with --kubeconfig (loads @kubernetes/client-node)', 'MiB', kubeconfigRss);
    figures.measured('footprint.agent.peak-rss', 'agent peak RSS over the whole run (VmHWM)', 'MiB', [processFigures(pid).peakRssMiB]);

    notes.push(`agent: ${entry === undefined ? 'agent/main.ts run with type stripping' : 'compiled build (dist/agent/main.js), as Dockerfile.agent ships it'}, in-cluster ServiceAccount credentials, default flags, log level info`);
    notes.push('one containerd 1.6 (native snapshotter) and one docker-registry on loopback; images of random (incompressible) bytes, layers gzip level 0; each pull fetches every layer (image removed before)');
    notes.push('bare and agent paths alternate in order run by run; one warm-up run of each path per image is not counted');
    await bench.finish('agent-overhead', process.argv.slice(2), {
      runs: RUNS, sizesMB: SIZES.join(','), layers: LAYERS.join(','), idleSeconds: windows * 10, compiledAgent: entry !== undefined,
    });
  } finally {
    stop.abort();
    await bench.stop();
    await withKubeconfig?.dispose();
    await cluster?.dispose();
  }
}

await main();
