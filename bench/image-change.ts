// Benchmark (issue 6, items 2 and 3): what one Deployment image change costs with kwarm, on a real API
// server with the real controller and one real agent + containerd per simulated node.
//   - Reaction: from the Deployment patch to the NodeImageSet spec naming the new image (controller),
//     to the first PullImage each eligible node's containerd logs (its own timestamp: the runtime saw
//     the call), to every node's status Completed and to the PrePullImage's phase Completed.
//   - API writes: every write request in the API server's audit log during the change, by who made it;
//     kwarm's writes per node and image next to what one Job per (node, image) would cost (computed,
//     bench/job-style-model.ts).
//
//   node_modules/.bin/node bench/image-change.ts [--reps=10] [--scenarios=3:0,20:0,20:10] [--size-mb=5] [--source]
//
// A scenario "N:B" makes the change on a Deployment whose pods fit N nodes, with the controller's
// --max-concurrent-pulls=B (0: no cluster-wide budget). The cluster has as many nodes as the largest
// scenario; each node runs its own agent and its own containerd (no sharing), all on this machine.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import winston from 'winston';
import { ListWatch } from '../lib/list-watch.ts';
import { ControllerProcess, controllerKubeconfig } from '../local-cluster/controller-process.ts';
import { AGENT_SA, CONTROLLER_SA, KWARM_NAMESPACE } from '../local-cluster/kwarm-access.ts';
import { buildAndPushImage, type PushedImage } from '../local-cluster/oci-image.ts';
import { auditWrites, createNode, type AuditWrite } from '../local-cluster/cluster-fixtures.ts';
import { startBenchCluster, type BenchCluster } from './bench-cluster.ts';
import { BenchRun } from './bench-run.ts';
import { compiledAgent } from './compiled-binaries.ts';
import { firstPullEvent, pullLogEvents } from './containerd-log.ts';
import { JOB_STYLE_STEPS, jobStyleCost } from './job-style-model.ts';
import { summarize } from './stats.ts';
import { NodeImageSetTimeline } from './status-timeline.ts';

const MB = 1_000_000;
const NS = 'bench';
const SETTLE_MS = 3000;

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '10' },
    scenarios: { type: 'string', default: '3:0,20:0,20:10' },
    'size-mb': { type: 'string', default: '5' },
    source: { type: 'boolean', default: false },
  },
});
const REPS = Number(args.reps);
const SIZE_MB = Number(args['size-mb']);

interface Scenario {
  nodes: number;
  budget: number;
  key: string;
  deployment: string;
}

const SCENARIOS: Scenario[] = args.scenarios.split(',').map((s) => {
  const [n, b] = s.split(':').map(Number);
  if (n === undefined || !Number.isInteger(n) || n < 1 || b === undefined || !Number.isInteger(b) || b < 0) throw new Error(`--scenarios: "${s}" is not N:B`);
  const key = `${n}n.${b === 0 ? 'unlimited' : `budget${b}`}`;
  return { nodes: n, budget: b, key, deployment: `app-${n}-${b}` };
});
if (!Number.isInteger(REPS) || REPS < 5) throw new Error('--reps must be at least 5');
const NODE_COUNT = Math.max(...SCENARIOS.map((s) => s.nodes));
const nodeName = (i: number): string => `node-${String(i).padStart(2, '0')}`;
const poolLabel = (n: number): string => `kwarm-bench/first-${n}`;

const CONTROLLER_USER = `system:serviceaccount:${KWARM_NAMESPACE}:${CONTROLLER_SA}`;
const AGENT_USER = `system:serviceaccount:${KWARM_NAMESPACE}:${AGENT_SA}`;

function deploymentBody(s: Scenario, image: string): unknown {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { namespace: NS, name: s.deployment, labels: { app: s.deployment, 'kwarm.io/enabled': 'true' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: s.deployment } },
      template: {
        metadata: { labels: { app: s.deployment } },
        spec: { nodeSelector: { [poolLabel(s.nodes)]: 'true' }, containers: [{ name: 'app', image }] },
      },
    },
  };
}

/** PrePullImages by name: the image their spec names and the phase their status gives for that spec. */
interface PpiView { image: string; completed: boolean }

function decodePpi(raw: unknown): PpiView | undefined {
  const o = raw as { metadata?: { generation?: number }; spec?: { image?: unknown }; status?: { phase?: unknown; observedGeneration?: unknown } };
  if (typeof o.spec?.image !== 'string') return undefined;
  // A status is about the current spec only once it has observed its generation.
  const current = o.status?.observedGeneration === o.metadata?.generation;
  return { image: o.spec.image, completed: current && o.status?.phase === 'Completed' };
}

function auditSince(path: string, offset: number): { writes: AuditWrite[]; end: number } {
  const buf = readFileSync(path);
  return { writes: auditWrites(buf.subarray(offset).toString('utf8')), end: buf.length };
}

function resourceOf(w: AuditWrite): string {
  return w.subresource === undefined ? w.resource : `${w.resource}/${w.subresource}`;
}

async function main(): Promise<void> {
  const bench = await BenchRun.start();
  const { figures, notes, machine } = bench;
  const stop = new AbortController();
  const signal = stop.signal;
  let cluster: BenchCluster | undefined;
  let controller: ControllerProcess | undefined;
  const running: Promise<void>[] = [];
  try {
    cluster = await startBenchCluster();
    const { cp, admin, registry } = cluster;

    // Images first, so building them does not load the machine while anything is timed.
    const images = new Map<string, PushedImage[]>();
    for (const s of SCENARIOS) {
      const list: PushedImage[] = [];
      for (let r = 0; r <= REPS; r++) {
        list.push(await buildAndPushImage(registry, { repository: `bench/${s.deployment}`, tag: `v${r}`, layers: [SIZE_MB * MB] }));
      }
      images.set(s.key, list);
    }
    console.log(`${SCENARIOS.length * (REPS + 1)} images of ${SIZE_MB} MB pushed`);

    for (let i = 0; i < NODE_COUNT; i++) {
      const labels: Record<string, string> = {};
      for (const s of SCENARIOS) if (i < s.nodes) labels[poolLabel(s.nodes)] = 'true';
      await createNode(admin, { name: nodeName(i), labels }, signal);
      await cluster.addNode(nodeName(i));
    }
    await cp.kubectl(['create', 'namespace', NS]);
    await cp.kubectl(['apply', '-f', join(import.meta.dirname, '..', 'deploy', 'samples', 'prepullpolicy_basic.yaml')]);
    console.log(`${NODE_COUNT} nodes, each with its own containerd`);

    const entry = args.source ? undefined : await compiledAgent();
    for (const node of cluster.nodes) await cluster.startAgent(node, { entry, readyTimeoutMs: 60_000 });
    console.log(`${NODE_COUNT} agents ready (${entry ?? 'agent/main.ts, type stripping'}, in-cluster credentials)`);

    const timeline = new NodeImageSetTimeline(admin);
    running.push((await timeline.start(signal)).running);
    const ppiCompleted = new Map<string, number>();
    const ppis = new ListWatch<PpiView>({
      client: admin, path: `/apis/kwarm.io/v1alpha1/namespaces/${NS}/prepullimages`, decode: decodePpi, log: winston.createLogger({ silent: true }),
      onChange: (key, v) => {
        const k = `${key}\n${v?.image ?? ''}`;
        if (v?.completed === true && !ppiCompleted.has(k)) ppiCompleted.set(k, Date.now());
      },
    });
    running.push(ppis.run(signal));
    await ppis.waitForSync(signal);

    const kubeconfig = await controllerKubeconfig(cp);
    const auditPath = cp.auditLogPath;
    const jobPerPair = jobStyleCost(1, 1);
    for (const s of SCENARIOS) {
      console.log(`\n${s.nodes} eligible nodes, --max-concurrent-pulls=${s.budget}:`);
      controller = await ControllerProcess.start({ kubeconfig, name: `controller-${s.key}`, args: [`--max-concurrent-pulls=${s.budget}`], logLevel: 'info' });
      const list = images.get(s.key)!;
      const nodes = Array.from({ length: s.nodes }, (_, i) => i);
      const ppiKey = (image: string): string => `${NS}/deployment.${s.deployment}.app\n${image}`;
      const waitAllDone = async (image: string): Promise<void> => {
        await timeline.waitFor(`every node Completed with ${image}`, () => (nodes.every((i) => timeline.statusAt(nodeName(i), image, 'Completed') !== undefined) ? true : undefined), 300_000);
        await timeline.waitFor(`the PrePullImage Completed with ${image}`, () => ppiCompleted.get(ppiKey(image)), 120_000);
      };
      // Warm-up (not counted): the Deployment appears, every node pulls its first image.
      await admin.create(`/apis/apps/v1/namespaces/${NS}/deployments`, deploymentBody(s, list[0]!.reference), signal);
      await waitAllDone(list[0]!.reference);
      await sleep(SETTLE_MS);

      const firstPull: number[] = [];
      const specSeen: number[] = [];
      const nodeCompleted: number[] = [];
      const lastFirstPull: number[] = [];
      const allCompleted: number[] = [];
      const ppiDone: number[] = [];
      const perNodeImage: number[] = [];
      const controllerWrites: number[] = [];
      const agentWrites: number[] = [];
      // Per kind of write ("controller: patch nodeimagesets"), the count in each change.
      const byKind = new Map<string, number[]>();
      let leaseWrites = 0;
      let failedWrites = 0;
      for (let r = 1; r <= REPS; r++) {
        const image = list[r]!.reference;
        const auditStart = statSync(auditPath).size;
        const t0 = Date.now();
        await admin.patch(`/apis/apps/v1/namespaces/${NS}/deployments/${s.deployment}`, 'merge', { spec: { template: { spec: { containers: [{ name: 'app', image }] } } } }, signal);
        await waitAllDone(image);
        const pulls: number[] = [];
        for (const i of nodes) {
          const events = pullLogEvents(readFileSync(cluster.nodes[i]!.containerd.logFile, 'utf8'));
          const start = firstPullEvent(events, image, 'start', t0);
          if (start === undefined) throw new Error(`${nodeName(i)}: containerd logged no PullImage of ${image}`);
          pulls.push(start.at - t0);
          specSeen.push(timeline.specAt(nodeName(i), image)! - t0);
          nodeCompleted.push(timeline.statusAt(nodeName(i), image, 'Completed')! - t0);
        }
        firstPull.push(...pulls);
        lastFirstPull.push(Math.max(...pulls));
        allCompleted.push(Math.max(...nodes.map((i) => timeline.statusAt(nodeName(i), image, 'Completed')!)) - t0);
        ppiDone.push(ppiCompleted.get(ppiKey(image))! - t0);
        // Trailing writes (status roll-up, Events) land within the settle time.
        await sleep(SETTLE_MS);
        const { writes } = auditSince(auditPath, auditStart);
        let ctl = 0;
        let agt = 0;
        for (const counts of byKind.values()) counts.push(0);
        for (const w of writes) {
          if (w.user !== CONTROLLER_USER && w.user !== AGENT_USER) continue;
          if (w.resource === 'leases') {
            leaseWrites++;
            continue;
          }
          if (w.code !== undefined && w.code >= 300) failedWrites++;
          if (w.user === CONTROLLER_USER) ctl++;
          else agt++;
          const k = `${w.user === CONTROLLER_USER ? 'controller' : 'agent'}: ${w.verb} ${resourceOf(w)}`;
          const counts = byKind.get(k) ?? Array.from({ length: r }, () => 0);
          counts[r - 1] = (counts[r - 1] ?? 0) + 1;
          byKind.set(k, counts);
        }
        controllerWrites.push(ctl);
        agentWrites.push(agt);
        perNodeImage.push((ctl + agt) / s.nodes);
        const p = summarize(pulls);
        console.log(`  rep ${r}: first PullImage p50 ${p.median.toFixed(0)} ms, last node ${p.max.toFixed(0)} ms; all Completed ${allCompleted.at(-1)!.toFixed(0)} ms; writes ${ctl} controller + ${agt} agents`);
      }
      await controller.stop();
      controller = undefined;

      const id = (what: string): string => `image-change.${s.key}.${what}`;
      const n = `${s.nodes} nodes${s.budget === 0 ? '' : `, budget ${s.budget}`}`;
      figures.measured(id('spec'), `${n}: Deployment patch -> NodeImageSet spec names the image (each node)`, 'ms', specSeen);
      figures.measured(id('first-pull'), `${n}: Deployment patch -> first PullImage at containerd (each node)`, 'ms', firstPull);
      figures.measured(id('first-pull-last-node'), `${n}: Deployment patch -> first PullImage on the last node`, 'ms', lastFirstPull);
      figures.measured(id('node-completed'), `${n}: Deployment patch -> node status Completed (each node)`, 'ms', nodeCompleted);
      figures.measured(id('all-completed'), `${n}: Deployment patch -> every node Completed`, 'ms', allCompleted);
      figures.measured(id('ppi-completed'), `${n}: Deployment patch -> PrePullImage phase Completed`, 'ms', ppiDone);
      figures.measured(id('writes-controller'), `${n}: controller writes per image change`, 'writes', controllerWrites);
      figures.measured(id('writes-agents'), `${n}: agent writes per image change (all nodes)`, 'writes', agentWrites);
      figures.measured(id('writes-per-node-image'), `${n}: kwarm writes per node per image`, 'writes', perNodeImage);
      const job = jobStyleCost(s.nodes, 1);
      figures.computed(id('job-style-writes'), `${n}: one Job per (node, image), writes per image change`, 'writes', job.writes);
      figures.computed(id('job-style-objects'), `${n}: one Job per (node, image), objects created per image change`, 'objects', job.objects);
      const fp = summarize(firstPull);
      console.log(`  first PullImage: p50 ${fp.median.toFixed(0)} ms, p99 ${fp.p99.toFixed(0)} ms over ${fp.n} (node, change) samples (goal: p99 <= 1000 ms)`);
      for (const [k, counts] of [...byKind].sort(([a], [b]) => a.localeCompare(b))) {
        figures.measured(id(`kind.${k}`), `${n}: ${k}, per image change`, 'writes', counts);
      }
      console.log(`  Lease writes (background, not counted): ${leaseWrites}; writes answered with an error: ${failedWrites}`);
      if (failedWrites > 0) notes.push(`${n}: ${failedWrites} of the counted writes were answered with an error (a conflict is retried, so both count)`);
    }
    figures.computed('job-style.writes-per-node-image', 'one Job per (node, image): writes per node per image (lower bound)', 'writes', jobPerPair.writes);
    figures.computed('job-style.objects-per-node-image', 'one Job per (node, image): objects created per node per image', 'objects', jobPerPair.objects);
    console.log(`\njob-style model, per (node, image): ${JOB_STYLE_STEPS.map((st) => `${st.actor}: ${st.write} x${st.writes}`).join('; ')}`);

    notes.push(`every node has its own kwarm-agent (${entry === undefined ? 'agent/main.ts, type stripping' : 'compiled build'}, in-cluster credentials) and its own containerd; all ${NODE_COUNT} nodes, the API server, etcd, the controller and the registry share this machine's ${machine.cores} cores`);
    notes.push(`the Deployment's image changes to a fresh ${SIZE_MB} MB single-layer image each time; times are from just before the PATCH request to: the watch delivering the NodeImageSet spec / status (this process's clock), containerd's own log timestamp of PullImage`);
    notes.push('controller with leader election off (one replica), default flags apart from --max-concurrent-pulls; writes counted from the API server audit log (every create/update/patch/delete request, including ones answered with an error), Lease renewals left out');
    await bench.finish('image-change', process.argv.slice(2), {
      reps: REPS, scenarios: args.scenarios, imageMB: SIZE_MB, nodes: NODE_COUNT, compiledAgent: entry !== undefined,
    });
  } finally {
    stop.abort();
    await bench.stop();
    await controller?.stop();
    await Promise.allSettled(running);
    await cluster?.dispose();
  }
}

await main();
