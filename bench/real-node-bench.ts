// What every benchmark on real kubelets shares: the cluster set up the same way (real nodes, each behind its own
// paced registry link, kwarm installed from its chart, a namespace for the workloads), torn down whatever
// happens; the nodes' images read and removed through CRI; durations printed the same way.
import { readFileSync } from 'node:fs';
import { GrpcImageRuntime } from '../agent/cri/grpc-runtime.ts';
import { errorText } from '../lib/errors.ts';
import { BUSYBOX } from '../local-cluster/busybox-images.ts';
import { helmInstallKwarm, waitKwarmReady, type KwarmInstallation } from '../local-cluster/kwarm-install.ts';
import { linkNodesToRegistry, type NodeRegistryLink } from '../local-cluster/node-registry-link.ts';
import { buildAndPushImage } from '../local-cluster/oci-image.ts';
import { startRealCluster, type RealCluster } from '../local-cluster/real-cluster.ts';
import type { RealNode } from '../local-cluster/real-node.ts';
import { waitFor } from '../local-cluster/wait.ts';
import { BenchRun } from './bench-run.ts';
import { summarize } from './stats.ts';

export interface RealNodeBenchOptions {
  nodes: number;
  /** Each node's registry link, for all its connections together. */
  rateMBps: number;
  /** Created (and its default ServiceAccount waited for) before `body` runs. */
  namespace: string;
  /** Further `helm install --set` values. */
  helmSet?: Readonly<Record<string, string | number | boolean>>;
}

export interface RealNodeBench {
  bench: BenchRun;
  cluster: RealCluster;
  link: NodeRegistryLink;
  kwarm: KwarmInstallation;
}

/**
 * Sets the cluster up, runs `body`, and stops the load sampling, the links and the cluster afterwards, also
 * when set-up or `body` throws.
 */
export async function runRealNodeBench(o: RealNodeBenchOptions, body: (b: RealNodeBench) => Promise<void>): Promise<void> {
  const bench = await BenchRun.start();
  let cluster: RealCluster | undefined;
  let link: NodeRegistryLink | undefined;
  try {
    const t0 = performance.now();
    const c = await startRealCluster({ nodes: o.nodes });
    cluster = c;
    link = await linkNodesToRegistry(c, { bytesPerSecond: o.rateMBps * 1e6 });
    const kwarm = await helmInstallKwarm(c, o.helmSet === undefined ? {} : { set: o.helmSet });
    await waitKwarmReady(c, kwarm.images);
    await c.kubectl(['create', 'namespace', o.namespace]);
    await waitFor(async () => (await c.kubectl(['get', 'serviceaccount', 'default', '-n', o.namespace], { allowFailure: true })).code === 0,
      { what: `the default ServiceAccount of ${o.namespace}`, timeoutMs: 60_000, intervalMs: 250 });
    const extra = Object.entries(o.helmSet ?? {}).map(([k, v]) => ` --set ${k}=${String(v)}`).join('');
    console.log(`set-up: ${o.nodes} real nodes, kwarm installed from the chart${extra}, each node's registry link paced at ${o.rateMBps} MB/s, in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await body({ bench, cluster: c, link, kwarm });
  } finally {
    await bench.stop();
    await link?.stop();
    await cluster?.stop();
  }
}

/**
 * Pushes an app image of `layers` random layers of `mib / layers` MiB each plus the static busybox, whose
 * entrypoint sleeps; `mib` 0: one small layer. Returns the name the nodes pull it by (through their links).
 */
export async function pushSleeperApp(cluster: RealCluster, link: NodeRegistryLink, repository: string, tag: string, mib: number, layers: number): Promise<string> {
  const layer = Math.round((mib * 2 ** 20) / layers);
  const pushed = await buildAndPushImage(cluster.registry, {
    repository, tag, layers: mib > 0 ? Array.from({ length: layers }, () => layer) : [4096],
    files: [{ path: 'bin/busybox', content: readFileSync(BUSYBOX), mode: 0o755 }],
    entrypoint: ['/bin/busybox', 'sleep', '86400'],
  });
  return link.nodeImage(pushed.reference);
}

/** The repo tags on the node, from its containerd through CRI. */
export async function nodeImages(node: RealNode): Promise<string[]> {
  const cri = new GrpcImageRuntime({ endpoint: node.containerd.socket });
  try {
    return (await cri.listImages({ signal: AbortSignal.timeout(30_000) })).flatMap((i) => i.repoTags);
  } finally {
    cri.close();
  }
}

/**
 * Removes the images from every node through CRI (a failure is printed, not thrown: the image may not be on
 * that node) and returns those still there afterwards, as "node: image".
 */
export async function removeFromNodes(nodes: readonly RealNode[], images: readonly string[]): Promise<string[]> {
  for (const n of nodes) {
    const cri = new GrpcImageRuntime({ endpoint: n.containerd.socket });
    try {
      for (const image of images) {
        try {
          await cri.removeImage(image, { signal: AbortSignal.timeout(30_000) });
        } catch (err) {
          console.log(`  (could not remove ${image} from ${n.name}: ${errorText(err)})`);
        }
      }
    } finally {
      cri.close();
    }
  }
  return (await Promise.all(nodes.map(async (n) => (await nodeImages(n)).filter((t) => images.includes(t)).map((t) => `${n.name}: ${t}`)))).flat();
}

/** "median 12.3 s (10.1-15.0)" for samples in seconds. */
export function secondsLine(samplesS: readonly number[]): string {
  const s = summarize(samplesS);
  return `median ${s.median.toFixed(1)} s (${s.min.toFixed(1)}-${s.max.toFixed(1)})`;
}
