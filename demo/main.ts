// npm run demo: kwarm end to end on a machine without a cluster. Starts the harness's real-node cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, and three nodes with a kubelet, containerd and
// kube-proxy each, in network namespaces of their own), gives each node a bandwidth-limited link to the
// registry (so pulls take long enough to watch), installs kwarm with `helm install` from charts/kwarm (its
// images built from this repository), applies the samples and shows the pre-pull live as a nodes x images
// table. Then the user's side: the new version's pods start on every node, and the kubelets' own events say
// how long each waited for its image. Everything stops at the end, on Ctrl-C, or after 10 minutes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decode } from '../api/schema.ts';
import { nodeImageSetSchema, type NodeImageSet } from '../api/v1alpha1/index.ts';
import { imageWait, type KubeletEvent } from '../bench/rollout-figures.ts';
import { errorText } from '../lib/errors.ts';
import { KubeClient } from '../lib/kube-client.ts';
import { BUSYBOX } from '../local-cluster/busybox-images.ts';
import { buildKwarmImages } from '../local-cluster/kwarm-images.ts';
import { helmInstallKwarm, waitKwarmReady } from '../local-cluster/kwarm-install.ts';
import { linkNodesToRegistry, type NodeRegistryLink } from '../local-cluster/node-registry-link.ts';
import { buildAndPushImage, type PushedImage } from '../local-cluster/oci-image.ts';
import { startRealCluster, type RealCluster } from '../local-cluster/real-cluster.ts';
import { waitFor } from '../local-cluster/wait.ts';
import { renderTable } from './live-table.ts';
import { podWaitSummary, renderPodWaits, type PodWait } from './pod-waits.ts';

const NODES = ['node-1', 'node-2', 'node-3'];
const NAMESPACE = 'demo';
const MiB = 1024 * 1024;
/** Per node, all its connections together; a 24 MiB image then takes about 3 s, long enough to watch. */
const BYTES_PER_SECOND = 8 * MiB;
const SAMPLES = join(import.meta.dirname, '..', 'deploy', 'samples');

const stop = new AbortController();
const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(10 * 60_000)]);
process.once('SIGINT', () => { stop.abort(new Error('interrupted')); });
process.once('SIGTERM', () => { stop.abort(new Error('terminated')); });

const live = process.stdout.isTTY;
const say = (line: string): void => { process.stdout.write(`${line}\n`); };

async function listNodeImageSets(client: KubeClient): Promise<NodeImageSet[]> {
  const page = await client.list('/apis/kwarm.io/v1alpha1/nodeimagesets', {}, signal);
  return page.items.flatMap((raw) => {
    const r = decode(nodeImageSetSchema, raw);
    return r.ok ? [r.value] : [];
  });
}

/** Redraws the table until `done` holds for the NodeImageSets; returns the last screen. */
async function watchTable(client: KubeClient, title: string, images: string[], done: (sets: NodeImageSet[]) => boolean): Promise<string> {
  const started = Date.now();
  let last = '';
  for (;;) {
    const sets = await listNodeImageSets(client);
    const screen = `${title} (${((Date.now() - started) / 1000).toFixed(1)} s)\n\n${renderTable({ nodeImageSets: sets, images, now: Date.now() })}`;
    if (live) process.stdout.write(`\x1b[H\x1b[2J${screen}\n`);
    else if (screen.split('\n').slice(1).join('\n') !== last.split('\n').slice(1).join('\n')) say(`${screen}\n`);
    last = screen;
    if (done(sets)) return screen;
    await sleep(250, undefined, { signal });
  }
}

const completedEverywhere = (image: string) => (sets: NodeImageSet[]): boolean =>
  NODES.every((n) => sets.find((s) => s.metadata.name === n)?.status?.images?.some((i) => i.image === image && i.phase === 'Completed') === true);

async function main(): Promise<void> {
  let cluster: RealCluster | undefined;
  let link: NodeRegistryLink | undefined;
  let client: KubeClient | undefined;
  try {
    const began = Date.now();
    const since = (t: number): string => `${((Date.now() - t) / 1000).toFixed(1)} s`;
    /** Where the time went, for the last line. */
    const phases: string[] = [];
    const phase = (what: string, from: number): void => { phases.push(`${what} ${since(from)}`); };
    // kwarm's images are built (or their cached layers checked) while the cluster starts: neither needs the other.
    const kwarmImages = buildKwarmImages(signal);
    kwarmImages.catch(() => { /* awaited, with its error, by the install below */ });
    say('kwarm demo: starting a local cluster of three real nodes (kubelet + containerd each) and a registry; nothing leaves the machine');
    const c = await startRealCluster({ nodes: NODES.length, log: (line) => { say(`  ${line}`); } });
    cluster = c;
    phase('cluster', began);
    client = new KubeClient(c.controlPlane.kubeConfig());

    say('\n$ helm install kwarm ./charts/kwarm -n kwarm-system --create-namespace   # images built from this repository');
    const installing = Date.now();
    await kwarmImages;
    const kwarm = await helmInstallKwarm(c);
    // While the kubelets pull kwarm's images and start its pods, the demo's own images are built and pushed
    // and the slow links set up; the user's objects go in as soon as helm has installed the CRDs.
    const ready = waitKwarmReady(c, kwarm.images);
    ready.catch(() => { /* awaited below */ });
    const slow = await linkNodesToRegistry(c, { bytesPerSecond: BYTES_PER_SECOND });
    link = slow;
    const busybox = readFileSync(BUSYBOX);
    const app = (tag: string, layers: number[]): Promise<PushedImage> => buildAndPushImage(c.registry, {
      repository: 'demo/my-app', tag, layers, signal,
      files: [{ path: 'bin/busybox', content: busybox, mode: 0o755 }],
      entrypoint: ['/bin/busybox', 'sleep', '86400'],
    });
    const v1 = await app('v1', [12 * MiB, 4 * MiB]);
    const v2 = await app('v2', [16 * MiB, 8 * MiB]);
    const ref = (p: PushedImage): string => slow.nodeImage(p.reference);
    say(`  each node reaches the registry as ${slow.host}, through its own link of ${BYTES_PER_SECOND / MiB} MiB/s (kwarm's own images come directly)`);
    say(`  images demo/my-app:v1 (${(v1.totalBytes / MiB).toFixed(0)} MiB) and :v2 (${(v2.totalBytes / MiB).toFixed(0)} MiB)`);

    say('\n$ kubectl apply -f deploy/samples/prepullpolicy_basic.yaml');
    await c.kubectl(['apply', '-f', join(SAMPLES, 'prepullpolicy_basic.yaml')]);
    say(`$ kubectl apply -n ${NAMESPACE} -f deploy/samples/deployment_example.yaml   # image -> ${ref(v1)}, replicas: ${NODES.length}`);
    await c.kubectl(['create', 'namespace', NAMESPACE]);
    await waitFor(async () => (await c.kubectl(['get', 'serviceaccount', 'default', '-n', NAMESPACE], { allowFailure: true })).code === 0,
      { what: `the default ServiceAccount of ${NAMESPACE}`, timeoutMs: 60_000, intervalMs: 250 });
    const sample = readFileSync(join(SAMPLES, 'deployment_example.yaml'), 'utf8')
      .replace('my-registry/my-app:v2', ref(v1)).replace('replicas: 2', `replicas: ${NODES.length}`);
    await c.kubectl(['apply', '-n', NAMESPACE, '-f', '-'], { input: sample });
    const { agents } = await ready;
    phase('helm install to kwarm Ready', installing);
    say(`  kwarm-controller and ${agents.length} kwarm-agent pods Ready ${since(installing)} after helm install (${since(began)} since the start)`);
    const images = [ref(v1), ref(v2)];
    const firstVersion = Date.now();
    await watchTable(client, `Pre-pulling ${ref(v1)}`, images, completedEverywhere(ref(v1)));
    await c.kubectl(['rollout', 'status', '-n', NAMESPACE, 'deployment/my-app', '--timeout=300s']);
    phase('v1 on every node and rolled out', firstVersion);

    // The rollout waits while kwarm pre-pulls, as a user would do it, so the new pods do not race kwarm.
    say(`\n$ kubectl rollout pause -n ${NAMESPACE} deployment/my-app`);
    await c.kubectl(['rollout', 'pause', '-n', NAMESPACE, 'deployment/my-app']);
    say(`$ kubectl set image -n ${NAMESPACE} deployment/my-app app=${ref(v2)}`);
    const changed = Date.now();
    await c.kubectl(['set', 'image', '-n', NAMESPACE, 'deployment/my-app', `app=${ref(v2)}`]);
    const screen = await watchTable(client, `Image changed: pre-pulling ${ref(v2)}`, images, completedEverywhere(ref(v2)));
    const seconds = ((Date.now() - changed) / 1000).toFixed(1);
    phase('image change to v2 on every node', changed);
    if (live) process.stdout.write('\x1b[H\x1b[2J');
    say(`${screen}\n`);
    say(`$ kubectl wait -n ${NAMESPACE} --for=condition=Ready prepullimage/deployment.my-app.app`);
    say((await c.kubectl(['wait', '-n', NAMESPACE, '--for=condition=Ready', 'prepullimage/deployment.my-app.app', '--timeout=60s'])).stdout.trim());
    say(`$ kubectl get prepullimages -n ${NAMESPACE}`);
    say((await c.kubectl(['get', 'prepullimages', '-n', NAMESPACE])).stdout.trim());
    say(`$ kubectl rollout resume -n ${NAMESPACE} deployment/my-app && kubectl rollout status -n ${NAMESPACE} deployment/my-app`);
    const resumed = Date.now();
    await c.kubectl(['rollout', 'resume', '-n', NAMESPACE, 'deployment/my-app']);
    say((await c.kubectl(['rollout', 'status', '-n', NAMESPACE, 'deployment/my-app', '--timeout=300s'])).stdout.trim().split('\n').pop() ?? '');
    const rolledOut = ((Date.now() - resumed) / 1000).toFixed(1);
    phase('v2 rollout', resumed);
    const waits = await podWaits(c, ref(v2));
    say(`\nThe new version's pods, and how long each one's kubelet waited for the image (its Pulled event):\n`);
    say(renderPodWaits(waits));
    say(`\nThe new image reached all ${NODES.length} nodes ${seconds} s after the Deployment changed; the rollout then took ${rolledOut} s: ${podWaitSummary(waits)}.`);
    say(`(demo: ${since(began)} in all: ${phases.join(', ')})`);
  } finally {
    say('\nkwarm demo: cleaning up');
    client?.close();
    await link?.stop();
    await cluster?.stop();
  }
}

interface PodJson {
  metadata: { name: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase?: string };
}

/** The running pods of `image` and, from their kubelets' events, how long each waited for it. */
async function podWaits(cluster: RealCluster, image: string): Promise<PodWait[]> {
  const pods = await waitFor(async () => {
    const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NAMESPACE, '-l', 'app=my-app', '-o', 'json']);
    const mine = (JSON.parse(stdout) as { items: PodJson[] }).items.filter((p) => p.spec.containers[0]?.image === image && p.status.phase === 'Running');
    return mine.length === NODES.length ? mine : undefined;
  }, { what: `${NODES.length} running pods of ${image}`, timeoutMs: 60_000, intervalMs: 500 });
  return waitFor(async () => {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', NAMESPACE, '-o', 'json']);
    const events = (JSON.parse(stdout) as { items: KubeletEvent[] }).items;
    const waits = pods.map((p) => ({ pod: p.metadata.name, node: p.spec.nodeName ?? '?', wait: imageWait(events, p.metadata.name, image) }));
    return waits.every((w) => w.wait.kind !== 'unknown') ? waits : undefined;
  }, { what: 'the kubelets\' Pulled events of the new pods', timeoutMs: 30_000, intervalMs: 500 });
}

main().then(() => { process.exit(0); }, (err: unknown) => {
  process.stderr.write(`kwarm demo failed: ${errorText(err)}\n`);
  process.exit(1);
});
