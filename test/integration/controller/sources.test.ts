// Image lists rather than workloads, against a real API server, real agents each with its own containerd, and
// a real registry, with the chart's RBAC: a policy's static `spec.images` lands on the nodes its node
// targeting selects (matchExpressions, Gt affinity, tolerations) and on a node that joins later, and leaves
// when taken off the list; ConfigMaps' images land, follow edits without restarts and leave with the
// ConfigMap; a malformed key gives ConfigMapsValid=False and one Event naming ConfigMap and key while a
// good key keeps working; and an idle controller writes nothing.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import type { PrePullImage } from '../../../api/v1alpha1/index.ts';
import { listedImageName } from '../../../controller/derive/listed-images.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, getPolicy, getPrePullImage, specImages, type NodeSpecFixture } from '../../../local-cluster/cluster-fixtures.ts';

const KWARM_NS = 'kwarm-sources';
const APP_NS = 'sources-app';
const TIER = 'kwarm-test/tier';
const NODES: NodeSpecFixture[] = [
  { name: 'src-1', labels: { [TIER]: 'a', 'kwarm-test/cores': '4' } },
  { name: 'src-2', labels: { [TIER]: 'b', 'kwarm-test/cores': '8' } },
  // Tainted: the static policy's tolerations do not cover it.
  { name: 'src-3', labels: { [TIER]: 'a', 'kwarm-test/cores': '8' }, taints: [{ key: 'kwarm-test/dedicated', value: 'db', effect: 'NoSchedule' }] },
];
const LATE: NodeSpecFixture = { name: 'src-4', labels: { [TIER]: 'b', 'kwarm-test/cores': '16' } };
const KWARM = '/apis/kwarm.io/v1alpha1';

describe('controller: static image lists and ConfigMaps, with agents and containerd', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  const runtimes = new Map<string, TestContainerd>();
  const cris = new Map<string, GrpcImageRuntime>();
  const agents: AgentProcess[] = [];
  let controller: ControllerProcess | undefined;
  let kubeconfig: string;
  let img: Record<'s1' | 's2' | 'c1' | 'c2' | 'c3' | 'g1', PushedImage>;
  const ac = new AbortController();
  const signal = ac.signal;

  async function addNode(n: NodeSpecFixture): Promise<void> {
    const rt = await startContainerd({ name: n.name, registries: [registry!] });
    runtimes.set(n.name, rt);
    cris.set(n.name, new GrpcImageRuntime({ endpoint: rt.socket }));
    await createNode(admin, n, signal);
    const agent = await startAgentProcess({
      nodeName: n.name, kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NS, nodeName: n.name }), criSocket: rt.socket, namespace: KWARM_NS, verifyInterval: '5m',
    });
    agents.push(agent);
    await agent.waitReady();
  }

  async function present(node: string, ref: string): Promise<boolean> {
    return (await cris.get(node)!.imageStatus(ref, { signal: AbortSignal.timeout(10_000) })) !== undefined;
  }

  /** Waits until exactly `nodes` (of all nodes started) want `ref` in their NodeImageSet spec. */
  async function wantedOn(ref: string, nodes: readonly string[], what: string): Promise<void> {
    await waitFor(async () => {
      for (const n of runtimes.keys()) {
        if ((await specImages(admin, n, signal)).includes(ref) !== nodes.includes(n)) return false;
      }
      return true;
    }, { what: `${what}: ${ref} wanted on exactly ${nodes.join(', ') || 'no node'}`, timeoutMs: 60_000 });
  }

  async function completed(ns: string, name: string, what: string): Promise<PrePullImage> {
    return waitFor(async () => {
      const p = await getPrePullImage(admin, ns, name, signal);
      return p?.status?.phase === 'Completed' && p.status.observedGeneration === p.metadata.generation ? p : undefined;
    }, { what: `${what} (PrePullImage ${ns}/${name}) to be Completed`, timeoutMs: 90_000 });
  }

  async function applyYaml(yaml: string): Promise<void> {
    await cp.kubectl(['apply', '-f', '-'], { input: yaml });
  }

  function staticPolicy(images: readonly PushedImage[]): string {
    return `apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata: {name: sources-static}
spec:
  selector: {matchLabels: {kwarm-test/sources: no-workload-has-this}}
  images: [${images.map((i) => JSON.stringify(i.reference)).join(', ')}]
  nodeSelector:
    matchExpressions: [{key: ${TIER}, operator: In, values: [a, b]}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: kwarm-test/cores, operator: Gt, values: ["2"]}]}]
  tolerations: [{key: kwarm-test/gpu, operator: Exists}]
  retry: {maxAttempts: 2, backoffSeconds: 1}
`;
  }

  function configMap(name: string, data: Record<string, string>): string {
    return JSON.stringify({
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { namespace: APP_NS, name, labels: { 'kwarm-test/images': 'true' } },
      data,
    });
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'sources' });
    const push = (repository: string): Promise<PushedImage> => buildAndPushImage(registry!, { repository, tag: 'v1', layers: [32 * 1024] });
    const [s1, s2, c1, c2, c3, g1] = await Promise.all(['static/one', 'static/two', 'cm/one', 'cm/two', 'cm/three', 'cm/good'].map(push));
    img = { s1: s1!, s2: s2!, c1: c1!, c2: c2!, c3: c3!, g1: g1! };
    kubeconfig = await controllerKubeconfig(cp, KWARM_NS);
    for (const n of NODES) await addNode(n);
    await cp.kubectl(['create', 'namespace', APP_NS]);
    controller = await ControllerProcess.start({ kubeconfig, namespace: KWARM_NS, name: 'controller-sources', args: ['--resync-period=2s'] });
  });

  after(async () => {
    await controller?.stop();
    for (const a of agents) await a.dispose();
    for (const c of cris.values()) c.close();
    for (const rt of runtimes.values()) await rt.dispose();
    await registry?.dispose();
    await cp.kubectl(['delete', 'prepullpolicy', 'sources-static', 'sources-cm', '--ignore-not-found'], { allowFailure: true });
    await cp.kubectl(['delete', 'namespace', APP_NS, '--wait=false'], { allowFailure: true });
    await deleteNodes(admin, [...NODES.map((n) => n.name), LATE.name].filter((n) => runtimes.has(n)), signal);
    ac.abort();
    admin.close();
  });

  it('keeps a static list on the targeted nodes (2 of 3), on a node that joins later, and drops an image taken off the list', async () => {
    await applyYaml(staticPolicy([img.s1, img.s2]));
    const name1 = listedImageName('static', 'sources-static', img.s1.reference);
    const ppi = await completed(KWARM_NS, name1, 'static image s1');
    expect(ppi.metadata.ownerReferences?.[0]).to.include({ kind: 'PrePullPolicy', name: 'sources-static', controller: true });
    expect(ppi.metadata.labels).to.include({ 'app.kubernetes.io/managed-by': 'kwarm-controller', 'kwarm.io/policy': 'sources-static' });
    expect(ppi.spec.nodes.selector?.matchExpressions).to.deep.equal([{ key: TIER, operator: 'In', values: ['a', 'b'] }]);
    expect(ppi.spec.nodes.tolerations).to.deep.equal([{ key: 'kwarm-test/gpu', operator: 'Exists' }]);
    expect(ppi.spec.retry).to.deep.equal({ maxAttempts: 2, backoffSeconds: 1 });
    expect(ppi.status?.ready).to.equal('2/2');
    await completed(KWARM_NS, listedImageName('static', 'sources-static', img.s2.reference), 'static image s2');
    for (const ref of [img.s1.reference, img.s2.reference]) {
      await wantedOn(ref, ['src-1', 'src-2'], 'the static list');
      expect(await present('src-1', ref)).to.equal(true);
      expect(await present('src-2', ref)).to.equal(true);
      expect(await present('src-3', ref)).to.equal(false);
    }

    // A node that joins later gets the list.
    await addNode(LATE);
    await wantedOn(img.s1.reference, ['src-1', 'src-2', 'src-4'], 'after src-4 joined');
    await waitFor(async () => (await present('src-4', img.s1.reference)) && (await present('src-4', img.s2.reference)), { what: 'the static list in src-4\'s containerd', timeoutMs: 60_000 });
    await waitFor(async () => (await getPrePullImage(admin, KWARM_NS, name1, signal))?.status?.ready === '3/3', { what: 'READY 3/3 for s1' });

    const policy = await waitFor(async () => {
      const p = await getPolicy(admin, 'sources-static', signal);
      return p?.status?.images === 2 && p.status.conditions?.find((c) => c.type === 'Ready')?.reason === 'ImagesPresent' ? p : undefined;
    }, { what: 'the static policy to count 2 images and be Ready' });
    expect(policy.status?.watchedWorkloads).to.equal(0);
    expect(policy.status?.conditions?.find((c) => c.type === 'ConfigMapsValid')).to.equal(undefined);

    // Off the list: its PrePullImage goes, and so does the image from every NodeImageSet.
    await applyYaml(staticPolicy([img.s1]));
    await waitFor(async () => (await getPrePullImage(admin, KWARM_NS, listedImageName('static', 'sources-static', img.s2.reference), signal)) === undefined, { what: 's2\'s PrePullImage to be deleted' });
    await wantedOn(img.s2.reference, [], 'after s2 left the list');
    await wantedOn(img.s1.reference, ['src-1', 'src-2', 'src-4'], 's1 stays');
  });

  it('pre-pulls the images a ConfigMap lists, follows edits without restarts, and drops them with the ConfigMap', async () => {
    await applyYaml(`apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata: {name: sources-cm}
spec:
  selector: {matchLabels: {kwarm-test/sources: no-workload-has-this}}
  configMaps:
    selector: {matchLabels: {kwarm-test/images: "true"}}
    namespaces: [${APP_NS}]
  nodeSelector: {matchLabels: {${TIER}: a}}
  retry: {maxAttempts: 2, backoffSeconds: 1}
`);
    // src-1, not the tainted src-3: without tolerations, listed images meet taints as a pod without tolerations
    // would (finding 6 of the expert review).
    const targets = ['src-1'];
    await applyYaml(configMap('app-images', { images: JSON.stringify([img.c1.reference]), more: `# second list\n${img.c2.reference}\n` }));
    const c1 = listedImageName('configmap', 'app-images', img.c1.reference);
    const c2 = listedImageName('configmap', 'app-images', img.c2.reference);
    const first = await completed(APP_NS, c1, 'ConfigMap image c1');
    expect(first.metadata.ownerReferences?.[0]).to.include({ apiVersion: 'v1', kind: 'ConfigMap', name: 'app-images', controller: true });
    expect(first.metadata.annotations).to.include({ 'kwarm.io/source': 'configmap', 'kwarm.io/configmap-keys': 'images' });
    await completed(APP_NS, c2, 'ConfigMap image c2');
    for (const ref of [img.c1.reference, img.c2.reference]) {
      await wantedOn(ref, targets, 'the ConfigMap');
      for (const n of targets) expect(await present(n, ref)).to.equal(true);
    }
    const policy = await waitFor(async () => {
      const p = await getPolicy(admin, 'sources-cm', signal);
      return p?.status?.watchedConfigMaps === 1 && p.status.images === 2 ? p : undefined;
    }, { what: 'the ConfigMap policy to count 1 ConfigMap and 2 images' });
    expect(policy.status?.conditions?.find((c) => c.type === 'ConfigMapsValid')).to.include({ status: 'True', reason: 'ImageListsValid' });

    // An edit: c2's line goes, c3 comes.
    await applyYaml(configMap('app-images', { images: JSON.stringify([img.c1.reference]), more: `${img.c3.reference}\n` }));
    const c3 = listedImageName('configmap', 'app-images', img.c3.reference);
    await completed(APP_NS, c3, 'ConfigMap image c3 after the edit');
    await waitFor(async () => (await getPrePullImage(admin, APP_NS, c2, signal)) === undefined, { what: 'c2\'s PrePullImage to be deleted after the edit' });
    await wantedOn(img.c2.reference, [], 'after c2 left the ConfigMap');
    await wantedOn(img.c3.reference, targets, 'after c3 joined the ConfigMap');
    for (const n of targets) expect(await present(n, img.c3.reference)).to.equal(true);

    // The ConfigMap goes: so do its images.
    await cp.kubectl(['-n', APP_NS, 'delete', 'configmap', 'app-images']);
    for (const name of [c1, c3]) await waitFor(async () => (await getPrePullImage(admin, APP_NS, name, signal)) === undefined, { what: `${name} to be deleted with its ConfigMap` });
    await wantedOn(img.c1.reference, [], 'after the ConfigMap was deleted');
    await wantedOn(img.c3.reference, [], 'after the ConfigMap was deleted');
  });

  async function brokenEvents(): Promise<{ reason: string; message: string; kind: string }[]> {
    const list = await admin.list(`/api/v1/namespaces/${APP_NS}/events`, { fieldSelector: 'involvedObject.name=broken' }, signal);
    return list.items.map((e) => {
      const ev = e as { reason?: string; message?: string; involvedObject?: { kind?: string } };
      return { reason: ev.reason ?? '', message: ev.message ?? '', kind: ev.involvedObject?.kind ?? '' };
    });
  }

  it('reports a malformed key once, by ConfigMap and key, while a good key keeps working', async () => {
    await applyYaml(configMap('broken', { bad: `["${img.c1.reference}", `, good: img.g1.reference }));
    const g1 = listedImageName('configmap', 'broken', img.g1.reference);
    await completed(APP_NS, g1, 'the good key\'s image');
    const condition = await waitFor(async () => {
      const c = (await getPolicy(admin, 'sources-cm', signal))?.status?.conditions?.find((x) => x.type === 'ConfigMapsValid');
      return c?.status === 'False' ? c : undefined;
    }, { what: 'ConfigMapsValid=False' });
    expect(condition.reason).to.equal('InvalidImageList');
    expect(condition.message).to.contain(`ConfigMap ${APP_NS}/broken key "bad"`);
    expect(condition.message).to.contain('not a valid JSON array');
    expect(condition.message).to.not.contain('"good"');

    await waitFor(async () => (await brokenEvents()).length > 0, { what: 'an Event on the ConfigMap' });
    // Several resync passes later, still one.
    await new Promise((r) => setTimeout(r, 6000));
    const all = await brokenEvents();
    expect(all).to.have.length(1);
    expect(all[0]).to.include({ reason: 'InvalidImageList', kind: 'ConfigMap' });
    expect(all[0]!.message).to.contain('key "bad"');

    // Fixed: the condition goes back to True, and the images of the fixed key land.
    await applyYaml(configMap('broken', { bad: JSON.stringify([img.c1.reference]), good: img.g1.reference }));
    await waitFor(async () => (await getPolicy(admin, 'sources-cm', signal))?.status?.conditions?.find((x) => x.type === 'ConfigMapsValid')?.status === 'True', { what: 'ConfigMapsValid=True after the fix' });
    await completed(APP_NS, listedImageName('configmap', 'broken', img.c1.reference), 'the fixed key\'s image');
  });

  it('writes nothing during idle resyncs, and never writes a ConfigMap', async () => {
    await new Promise((r) => setTimeout(r, 3000));
    const before = await controller!.writes();
    const passes = (await controller!.metric('kwarm_reconcile_duration_seconds_count'))!;
    await new Promise((r) => setTimeout(r, 5000));
    expect(await controller!.metric('kwarm_reconcile_duration_seconds_count')).to.be.above(passes + 1);
    expect(await controller!.writes()).to.equal(before);
    const cm = await admin.get(`/api/v1/namespaces/${APP_NS}/configmaps/broken`, signal) as { metadata: { managedFields?: { manager?: string }[] } };
    expect((cm.metadata.managedFields ?? []).map((f) => f.manager)).to.not.include('kwarm-controller');
    const ppis = await admin.list(`${KWARM}/namespaces/${APP_NS}/prepullimages`, {}, signal);
    expect(ppis.items.length).to.equal(2);
  });

  it('after a restart, writes nothing and does not repeat an Event for a problem already reported', async () => {
    await applyYaml(configMap('broken', { bad: JSON.stringify([img.c1.reference]), good: img.g1.reference, worse: 'NOT AN IMAGE' }));
    await waitFor(async () => (await brokenEvents()).some((e) => e.message.includes('key "worse"')), { what: 'the Event for key "worse"' });
    await waitFor(async () => (await getPolicy(admin, 'sources-cm', signal))?.status?.conditions?.find((x) => x.type === 'ConfigMapsValid')?.message.includes('"worse"'), { what: 'the condition to name "worse"' });
    const eventsBefore = (await brokenEvents()).length;
    await controller!.stop();
    controller = await ControllerProcess.start({ kubeconfig, namespace: KWARM_NS, name: 'controller-sources-2', args: ['--resync-period=2s'] });
    await waitFor(async () => ((await controller!.metric('kwarm_reconcile_duration_seconds_count')) ?? 0) >= 3, { what: 'three passes of the new controller' });
    expect(await controller.writes()).to.equal(0);
    expect((await brokenEvents()).length).to.equal(eventsBefore);
    const ppis = await admin.list(`${KWARM}/namespaces/${APP_NS}/prepullimages`, {}, signal);
    expect(ppis.items.length).to.equal(2);
  });
});
