// npm run demo: kwarm end to end on a machine without a cluster. Starts a real control plane (etcd,
// kube-apiserver, kube-controller-manager), a registry behind a bandwidth-limited proxy (so pulls take long
// enough to watch), three simulated nodes (a containerd and a kwarm-agent each, Node objects without
// kubelets), and kwarm-controller; applies the samples, changes the Deployment's image and shows the
// pre-pull live as a nodes x images table. Everything stops at the end, on Ctrl-C, or after 5 minutes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decode } from '../api/schema.ts';
import { nodeImageSetSchema, type NodeImageSet } from '../api/v1alpha1/index.ts';
import { KubeClient } from '../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../local-cluster/containerd.ts';
import { startControlPlane, type ControlPlane } from '../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../local-cluster/controller-process.ts';
import { installCrds } from '../local-cluster/crds.ts';
import { buildAndPushImage } from '../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../local-cluster/registry.ts';
import { startThrottledProxy, type ThrottledProxy } from '../local-cluster/throttled-proxy.ts';
import { createNode } from '../local-cluster/cluster-fixtures.ts';
import { renderTable } from './live-table.ts';
import { errorText } from '../lib/errors.ts';

const NODES = ['node-1', 'node-2', 'node-3'];
const NAMESPACE = 'demo';
const MiB = 1024 * 1024;
/** Per connection; a 24 MiB image then takes about 3 s, long enough to watch. */
const BYTES_PER_SECOND = 8 * MiB;
const SAMPLES = join(import.meta.dirname, '..', 'deploy', 'samples');

const stop = new AbortController();
const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(5 * 60_000)]);
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
  let cp: ControlPlane | undefined;
  let registry: TestRegistry | undefined;
  let proxy: ThrottledProxy | undefined;
  const runtimes: TestContainerd[] = [];
  const agents: AgentProcess[] = [];
  let controller: ControllerProcess | undefined;
  let client: KubeClient | undefined;
  try {
    say('kwarm demo: starting a local control plane, a registry, three nodes and kwarm (nothing leaves 127.0.0.1)');
    cp = await startControlPlane({ controllerManager: true });
    await installCrds(cp);
    client = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'demo' });
    const slow = await startThrottledProxy(registry, BYTES_PER_SECOND);
    proxy = slow;
    const v1 = await buildAndPushImage(registry, { repository: 'demo/my-app', tag: 'v1', layers: [12 * MiB, 4 * MiB], signal });
    const v2 = await buildAndPushImage(registry, { repository: 'demo/my-app', tag: 'v2', layers: [16 * MiB, 8 * MiB], signal });
    // The nodes pull through the slow proxy.
    const ref = (tag: string): string => `${slow.host}/demo/my-app:${tag}`;
    say(`  registry ${registry.host}, seen by the nodes through ${slow.host} at ${BYTES_PER_SECOND / MiB} MiB/s per connection`);
    say(`  images demo/my-app:v1 (${(v1.totalBytes / MiB).toFixed(0)} MiB) and :v2 (${(v2.totalBytes / MiB).toFixed(0)} MiB)`);

    for (const name of NODES) {
      const rt = await startContainerd({ name, registries: [slow] });
      runtimes.push(rt);
      await createNode(client, { name }, signal);
      agents.push(await startAgentProcess({
        nodeName: name, kubeconfig: await agentKubeconfig(cp, { namespace: 'kwarm-system', nodeName: name }),
        criSocket: rt.socket, namespace: 'kwarm-system', logLevel: 'warn',
      }));
    }
    for (const a of agents) await a.waitReady();
    controller = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp), name: 'demo-controller', logLevel: 'warn' });
    say('  3 nodes (containerd + kwarm-agent each) and kwarm-controller are running, with the Helm chart\'s RBAC');

    say('\n$ kubectl apply -f deploy/samples/prepullpolicy_basic.yaml');
    await cp.kubectl(['apply', '-f', join(SAMPLES, 'prepullpolicy_basic.yaml')]);
    say(`$ kubectl apply -n ${NAMESPACE} -f deploy/samples/deployment_example.yaml   # image: my-registry/my-app:v2 -> ${ref('v1')}`);
    await cp.kubectl(['create', 'namespace', NAMESPACE]);
    const sample = readFileSync(join(SAMPLES, 'deployment_example.yaml'), 'utf8').replace('my-registry/my-app:v2', ref('v1'));
    await cp.kubectl(['apply', '-n', NAMESPACE, '-f', '-'], { input: sample });
    await watchTable(client, `Pre-pulling ${ref('v1')}`, [ref('v1'), ref('v2')], completedEverywhere(ref('v1')));

    say(`\n$ kubectl set image -n ${NAMESPACE} deployment/my-app app=${ref('v2')}`);
    const changed = Date.now();
    await cp.kubectl(['set', 'image', '-n', NAMESPACE, 'deployment/my-app', `app=${ref('v2')}`]);
    const screen = await watchTable(client, `Image changed: pre-pulling ${ref('v2')}`, [ref('v1'), ref('v2')], completedEverywhere(ref('v2')));
    const seconds = ((Date.now() - changed) / 1000).toFixed(1);
    if (live) process.stdout.write('\x1b[H\x1b[2J');
    say(`${screen}\n`);
    say(`$ kubectl wait -n ${NAMESPACE} --for=condition=Ready prepullimage/deployment.my-app.app`);
    say((await cp.kubectl(['wait', '-n', NAMESPACE, '--for=condition=Ready', 'prepullimage/deployment.my-app.app', '--timeout=60s'])).stdout.trim());
    say(`$ kubectl get prepullimages -n ${NAMESPACE}`);
    say((await cp.kubectl(['get', 'prepullimages', '-n', NAMESPACE])).stdout.trim());
    say('$ kubectl get nodeimagesets');
    say((await cp.kubectl(['get', 'nodeimagesets'])).stdout.trim());
    say(`\nThe new image reached all ${NODES.length} nodes ${seconds} s after the Deployment changed, before any pod needed it.`);
  } finally {
    say('\nkwarm demo: cleaning up');
    await controller?.stop();
    for (const a of agents) await a.dispose();
    for (const rt of runtimes) await rt.dispose();
    await proxy?.stop();
    await registry?.dispose();
    client?.close();
    await cp?.stop();
  }
}

main().then(() => { process.exit(0); }, (err: unknown) => {
  process.stderr.write(`kwarm demo failed: ${errorText(err)}\n`);
  process.exit(1);
});
