// Benchmark (issue 6, item 4): N images onto one node, through the agent with a per-node limit of 1, 2
// and 4 pulls at once, versus strictly serial bare CRI PullImage calls (what the kubelet does by
// default, serializeImagePulls: true): wall time until all N are on the node.
//
// A loopback registry answers faster than any real one, so concurrency would hardly matter; the
// registry is put behind a bandwidth-limited proxy, in two shapes:
//   - per-connection: each TCP connection gets --rate MB/s on its own: a distant registry, where one
//     stream is limited by round trips and windows;
//   - shared link: all connections together get --rate MB/s: the node's own link is the bottleneck
// (both local-cluster/throttled-proxy.ts).
//
//   node_modules/.bin/node bench/concurrency.ts [--runs=5] [--images=8] [--size-mb=8] [--rate-mb=4] [--links=per-connection,shared] [--source]
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { buildAndPushImage } from '../local-cluster/oci-image.ts';
import { startThrottledProxy, type ProxyLink, type ThrottledProxy } from '../local-cluster/throttled-proxy.ts';
import { startBenchCluster, type BenchCluster } from './bench-cluster.ts';
import { BenchRun } from './bench-run.ts';
import { compiledAgent } from './compiled-binaries.ts';
import { pulledAt } from './agent-log.ts';
import { cpuPercent, processFigures } from './proc-stats.ts';
import { median } from './stats.ts';
import { NodeImageSetTimeline } from './status-timeline.ts';

const MB = 1_000_000;
const NODE = 'bench-node';
const LIMITS = [1, 2, 4] as const;

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    images: { type: 'string', default: '8' },
    'size-mb': { type: 'string', default: '8' },
    'rate-mb': { type: 'string', default: '4' },
    links: { type: 'string', default: 'per-connection,shared' },
    source: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const IMAGES = Number(args.images);
const SIZE_MB = Number(args['size-mb']);
const RATE_MB = Number(args['rate-mb']);
const LINKS = args.links.split(',').map((l): ProxyLink => {
  if (l !== 'per-connection' && l !== 'shared') throw new Error(`--links: unknown link "${l}"`);
  return l;
});
if (!Number.isInteger(RUNS) || RUNS < 1 || !Number.isInteger(IMAGES) || IMAGES < 1 || !(SIZE_MB > 0) || !(RATE_MB > 0)) {
  throw new Error('--runs, --images, --size-mb and --rate-mb must be positive');
}

type Mode = { kind: 'serial' } | { kind: 'agent'; limit: number };

function modeKey(m: Mode): string {
  switch (m.kind) {
    case 'serial':
      return 'serial';
    case 'agent':
      return `limit${m.limit}`;
    default: {
      const never: never = m;
      throw new Error(`unhandled mode ${JSON.stringify(never)}`);
    }
  }
}

async function main(): Promise<void> {
  const bench = await BenchRun.start();
  const { figures, notes } = bench;
  const stop = new AbortController();
  let cluster: BenchCluster | undefined;
  const proxies: ThrottledProxy[] = [];
  try {
    cluster = await startBenchCluster();
    const { registry } = cluster;
    const rate = RATE_MB * MB;
    const links = new Map<ProxyLink, ThrottledProxy>();
    for (const link of LINKS) {
      const proxy = await startThrottledProxy(registry, rate, link);
      proxies.push(proxy);
      links.set(link, proxy);
    }
    const node = await cluster.addNode(NODE, [registry, ...links.values()]);
    const cri = node.cri();
    // Separate images (own random bytes) per link: the runtime shares blobs between references to the
    // same content, and CRI RemoveImage removes every reference of an image id.
    const repos = new Map<ProxyLink, string[]>();
    for (const link of LINKS) {
      const list: string[] = [];
      for (let i = 0; i < IMAGES; i++) {
        const img = await buildAndPushImage(registry, { repository: `bench/${link}-${i}`, tag: 'v1', layers: [SIZE_MB * MB] });
        list.push(`${img.repository}:${img.tag}`);
      }
      repos.set(link, list);
    }
    console.log(`${IMAGES} images of ${SIZE_MB} MB (one layer each) pushed; proxies at ${RATE_MB} MB/s: ${LINKS.join(', ')}`);

    const entry = args.source ? undefined : await compiledAgent();
    // --max-pulls-per-node only caps; the NodeImageSet's maxConcurrentPulls sets each run's limit.
    const agent = await cluster.startAgent(node, { entry, maxPullsPerNode: Math.max(...LIMITS) });
    const pid = agent.process.pid!;
    const timeline = new NodeImageSetTimeline(cluster.admin, { fieldSelector: `metadata.name=${NODE}` });
    await timeline.start(stop.signal);
    const signal = (): AbortSignal => AbortSignal.any([stop.signal, AbortSignal.timeout(600_000)]);

    let round = 0;
    const removeAll = async (refs: readonly string[]): Promise<void> => {
      for (const ref of refs) await cri.removeImage(ref, { signal: signal() });
      await sleep(500);
    };
    /** Pulls `refs` in `mode`; returns ms until all are on the node and, for the agent, until status said so. */
    const pullAll = async (refs: readonly string[], mode: Mode): Promise<{ onNode: number; completed?: number; agentCpu?: number }> => {
      switch (mode.kind) {
        case 'serial': {
          const t0 = performance.now();
          for (const ref of refs) await cri.pullImage(ref, undefined, { signal: signal() });
          return { onNode: performance.now() - t0 };
        }
        case 'agent': {
          round++;
          const r = round;
          const cpu0 = processFigures(pid);
          const t0 = Date.now();
          await cluster!.applySpec(NODE, { maxConcurrentPulls: mode.limit, images: refs.map((image) => ({ image, round: r })) }, signal());
          let last = 0;
          for (;;) {
            const entries = agent.logEntries();
            const times = refs.map((ref) => pulledAt(entries, ref, t0));
            if (times.every((t) => t !== undefined)) {
              last = Math.max(...times);
              break;
            }
            if (Date.now() - t0 > 600_000) throw new Error(`the agent did not pull all images within 600 s\n${agent.process.tail(20)}`);
            await sleep(50);
          }
          const done = await timeline.waitFor(`all Completed in round ${r}`, () => {
            const ts = refs.map((ref) => timeline.statusAt(NODE, ref, 'Completed', r));
            return ts.every((t) => t !== undefined) ? Math.max(...ts) : undefined;
          }, 60_000);
          const cpu1 = processFigures(pid);
          await cluster!.clearSpec(NODE, signal());
          return { onNode: last - t0, completed: done - t0, agentCpu: cpuPercent(cpu0, cpu1, (done - t0) / 1000) };
        }
        default: {
          const never: never = mode;
          throw new Error(`unhandled mode ${JSON.stringify(never)}`);
        }
      }
    };

    const modes: Mode[] = [{ kind: 'serial' }, ...LIMITS.map((limit): Mode => ({ kind: 'agent', limit }))];
    for (const link of LINKS) {
      const host = links.get(link)!.host;
      const refs = repos.get(link)!.map((r) => `${host}/${r}`);
      console.log(`\n${link === 'shared' ? 'shared link' : 'per-connection limit'}, ${RATE_MB} MB/s:`);
      // Warm-up, not counted: one image per mode (connections, JIT, page cache of the registry's files).
      for (const m of modes) {
        await removeAll(refs.slice(0, 1));
        await pullAll(refs.slice(0, 1), m);
      }
      const onNode = new Map<string, number[]>();
      const completed = new Map<string, number[]>();
      const cpu: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        // Rotate the order so slow drift of the machine's load does not favour one mode.
        const order = modes.map((_, i) => modes[(i + run) % modes.length]!);
        for (const m of order) {
          await removeAll(refs);
          const res = await pullAll(refs, m);
          const k = modeKey(m);
          onNode.set(k, [...(onNode.get(k) ?? []), res.onNode]);
          if (res.completed !== undefined) completed.set(k, [...(completed.get(k) ?? []), res.completed]);
          if (res.agentCpu !== undefined && m.kind === 'agent' && m.limit === Math.max(...LIMITS)) cpu.push(res.agentCpu);
        }
        console.log(`  run ${run + 1}: ${modes.map((m) => `${modeKey(m)} ${((onNode.get(modeKey(m))?.at(-1) ?? NaN) / 1000).toFixed(1)} s`).join(', ')}`);
      }
      await removeAll(refs);
      const id = (what: string): string => `concurrency.${link}.${what}`;
      const ideal = (IMAGES * SIZE_MB) / RATE_MB;
      figures.measured(id('serial'), `${link}: strictly serial bare CRI pulls (kubelet default)`, 'ms', onNode.get('serial')!);
      for (const limit of LIMITS) {
        figures.measured(id(`limit${limit}`), `${link}: through the agent, limit ${limit}, all on the node`, 'ms', onNode.get(`limit${limit}`)!);
        figures.measured(id(`limit${limit}.completed`), `${link}: through the agent, limit ${limit}, status all Completed`, 'ms', completed.get(`limit${limit}`)!);
      }
      figures.measured(id(`agent-cpu-limit${Math.max(...LIMITS)}`), `${link}: agent CPU while pulling at limit ${Math.max(...LIMITS)}`, '%', cpu);
      figures.computed(id('serial-transfer-time'), `${link}: serial transfer time at ${RATE_MB} MB/s (no overhead)`, 'ms', ideal * 1000);
      const serial = median(onNode.get('serial')!);
      console.log(`  speed-up over serial (medians): ${LIMITS.map((l) => `limit ${l}: ${(serial / median(onNode.get(`limit${l}`)!)).toFixed(2)}x`).join(', ')}`);
    }

    notes.push(`${IMAGES} images of ${SIZE_MB} MB (one layer of random bytes each) on one node with one containerd 1.6; registry on loopback behind a proxy pacing registry-to-node bytes at ${RATE_MB} MB/s (${LINKS.map((l) => (l === 'shared' ? 'shared link: all connections together' : 'per connection: each TCP connection on its own')).join('; ')})`);
    notes.push('"through the agent": one NodeImageSet spec listing all images with maxConcurrentPulls set to the limit, timed from the spec write to the last "image pulled" log line; serial: one bare CRI PullImage after the other from this process');
    notes.push(`modes are run in rotating order in each of ${RUNS} runs, after one warm-up pull per mode; all images are removed from containerd before each measured pull`);
    await bench.finish('concurrency', process.argv.slice(2), {
      runs: RUNS, images: IMAGES, imageMB: SIZE_MB, rateMBps: RATE_MB, links: LINKS.join(','), limits: LIMITS.join(','), compiledAgent: entry !== undefined,
    });
  } finally {
    stop.abort();
    await bench.stop();
    await cluster?.dispose();
    for (const p of proxies) await p.stop();
  }
}

await main();
