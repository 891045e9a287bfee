// The Argo Workflows source on a real API server, with the controller and two agents (each with its own
// containerd) pulling from a real registry, under the chart's RBAC. Without Argo's CRDs the policy says
// NotInstalled, Deployments are still pre-pulled and the controller stays quiet; once the CRDs are installed
// (kwarm's own test CRDs, test/support/argo-crds) the source turns active without a restart, and the images
// of a WorkflowTemplate, a CronWorkflow and a ClusterWorkflowTemplate reach the nodes their templates'
// pods could run on; editing or deleting the objects takes the images off the NodeImageSets again.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { installArgoCrds, removeArgoCrds } from '../../support/argo-crds.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, getPolicy, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const KWARM_NS = 'kwarm-system';
const NS = 'argo-src';
const POLICY = 'argo-src';
const POOL = 'argo-src';
/** Node a has the label argo-zone=a, node b argo-zone=b and a taint only GPU templates tolerate. */
const NODE_A = 'argo-a';
const NODE_B = 'argo-b';
const NODES = [NODE_A, NODE_B];
const SELECT = { 'kwarm-test/suite': 'argo-src' };

type ImageName = 'deploy' | 'build' | 'lintInit' | 'gpu' | 'cron' | 'cluster';

function manifest(o: unknown): string {
  return JSON.stringify(o);
}

describe('controller: the Argo Workflows source', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  const runtimes: TestContainerd[] = [];
  const cris = new Map<string, GrpcImageRuntime>();
  const agents: AgentProcess[] = [];
  let controller: ControllerProcess | undefined;
  let images: Record<ImageName, PushedImage>;
  const ac = new AbortController();
  const signal = ac.signal;

  const present = async (node: string, ref: string): Promise<boolean> =>
    (await cris.get(node)!.imageStatus(ref, { signal: AbortSignal.timeout(10_000) })) !== undefined;

  const argoCondition = async (): Promise<{ status: string; reason: string; message: string } | undefined> =>
    (await getPolicy(admin, POLICY, signal))?.status?.conditions?.find((c) => c.type === 'ArgoSourceActive');

  const logLines = (): string[] => readFileSync(controller!.process.logFile, 'utf8').split('\n').filter((l) => l.trim() !== '');

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    // Another file may have left them; this suite starts without Argo.
    await removeArgoCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'argo-src' });
    const push = (repository: string): Promise<PushedImage> => buildAndPushImage(registry!, { repository, tag: 'v1', layers: [32 * 1024] });
    const [deploy, build, lintInit, gpu, cron, cluster] = await Promise.all(
      ['argo/deploy', 'argo/build', 'argo/lint-init', 'argo/gpu', 'argo/cron', 'argo/cluster'].map(push),
    );
    images = { deploy: deploy!, build: build!, lintInit: lintInit!, gpu: gpu!, cron: cron!, cluster: cluster! };
    for (const name of NODES) {
      const rt = await startContainerd({ name, registries: [registry] });
      runtimes.push(rt);
      cris.set(name, new GrpcImageRuntime({ endpoint: rt.socket }));
      await createNode(admin, {
        name,
        labels: { 'kwarm-test/pool': POOL, 'argo-zone': name === NODE_A ? 'a' : 'b' },
        ...(name === NODE_B ? { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] } : {}),
      }, signal);
      agents.push(await startAgentProcess({
        nodeName: name, kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NS, nodeName: name }), criSocket: rt.socket, namespace: KWARM_NS, verifyInterval: '5m',
      }));
    }
    for (const a of agents) await a.waitReady();
    await cp.kubectl(['create', 'namespace', NS]);
    // Info level: what an operator would see; discovery every 2 s so the test need not wait a minute, and
    // resyncs every 2 s so idle passes are seen.
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(cp, KWARM_NS), namespace: KWARM_NS, name: 'controller-argo', logLevel: 'info',
      args: ['--argo-discovery-interval=2s', '--resync-period=2s'],
    });
  });

  after(async () => {
    await controller?.stop();
    for (const a of agents) await a.dispose();
    for (const c of cris.values()) c.close();
    for (const rt of runtimes) await rt.dispose();
    await registry?.dispose();
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await cp.kubectl(['delete', 'prepullpolicy', POLICY], { allowFailure: true });
    await removeArgoCrds(cp).catch(() => undefined);
    await deleteNodes(admin, NODES, signal);
    ac.abort();
    admin.close();
  });

  it('without the Argo CRDs: the policy says NotInstalled, Deployments are pre-pulled, and the controller stays quiet', async () => {
    await cp.kubectl(['apply', '-f', '-'], { input: manifest({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
      spec: { selector: { matchLabels: SELECT }, workloadKinds: ['Deployment', 'WorkflowTemplate', 'ClusterWorkflowTemplate', 'CronWorkflow'] },
    }) });
    await cp.kubectl(['apply', '-f', '-'], { input: manifest({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { namespace: NS, name: 'web', labels: SELECT },
      spec: {
        replicas: 1, selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { nodeSelector: { 'kwarm-test/pool': POOL, 'argo-zone': 'a' }, containers: [{ name: 'app', image: images.deploy.reference }] } },
      },
    }) });

    const cond = await waitFor(async () => {
      const c = await argoCondition();
      return c?.status === 'False' ? c : undefined;
    }, { what: 'ArgoSourceActive=False', timeoutMs: 30_000 });
    expect(cond.reason).to.equal('NotInstalled');
    for (const kind of ['WorkflowTemplate', 'ClusterWorkflowTemplate', 'CronWorkflow']) expect(cond.message).to.contain(kind);

    await waitFor(() => present(NODE_A, images.deploy.reference), { what: 'the Deployment image in node a\'s containerd', timeoutMs: 60_000 });
    expect(await present(NODE_B, images.deploy.reference)).to.equal(false);

    // Several discovery rounds (every 2 s) and resyncs: nothing to log, nothing retried.
    await new Promise((r) => setTimeout(r, 1000));
    const before = logLines().length;
    const passes = (await controller!.metric('kwarm_reconcile_duration_seconds_count')) ?? 0;
    await new Promise((r) => setTimeout(r, 7000));
    const added = logLines().slice(before);
    expect(added, added.join('\n')).to.deep.equal([]);
    // No error loop: passes come from resyncs (every 2 s), not back to back.
    expect((await controller!.metric('kwarm_reconcile_duration_seconds_count')) ?? 0).to.be.within(passes + 1, passes + 5);
    const argoComplaints = logLines().filter((l) => /argoproj/.test(l) && /warn|error/i.test(l));
    expect(argoComplaints, argoComplaints.join('\n')).to.deep.equal([]);
  });

  it('turns active once the CRDs are installed, without a restart; template images land on their templates\' nodes', async () => {
    await installArgoCrds(cp);
    await waitFor(async () => (await argoCondition())?.status === 'True', { what: 'ArgoSourceActive=True after installing the CRDs', timeoutMs: 30_000 });

    // Workflow-level placement: pool and zone a. The gpu template replaces them with zone b and its taint.
    await cp.kubectl(['apply', '-f', '-'], { input: manifest({
      apiVersion: 'argoproj.io/v1alpha1', kind: 'WorkflowTemplate', metadata: { namespace: NS, name: 'ci', labels: SELECT },
      spec: {
        entrypoint: 'main',
        nodeSelector: { 'kwarm-test/pool': POOL, 'argo-zone': 'a' },
        templates: [
          { name: 'main', steps: [[{ name: 'build', template: 'build' }], [{ name: 'gpu', template: 'gpu' }]] },
          { name: 'build', initContainers: [{ name: 'fetch', image: images.lintInit.reference }], container: { image: images.build.reference, command: ['make'] } },
          { name: 'gpu', nodeSelector: { 'kwarm-test/pool': POOL, 'argo-zone': 'b' }, tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }], script: { image: images.gpu.reference, source: 'train' } },
          { name: 'param', container: { image: '{{inputs.parameters.image}}' } },
        ],
      },
    }) });
    await cp.kubectl(['apply', '-f', '-'], { input: manifest({
      apiVersion: 'argoproj.io/v1alpha1', kind: 'CronWorkflow', metadata: { namespace: NS, name: 'nightly', labels: SELECT },
      spec: {
        schedule: '0 3 * * *',
        workflowSpec: {
          entrypoint: 'run',
          nodeSelector: { 'kwarm-test/pool': POOL },
          tolerations: [{ key: 'gpu', operator: 'Exists' }],
          templates: [{ name: 'run', containerSet: { containers: [{ name: 'a', image: images.cron.reference }] } }],
        },
      },
    }) });
    await cp.kubectl(['apply', '-f', '-'], { input: manifest({
      apiVersion: 'argoproj.io/v1alpha1', kind: 'ClusterWorkflowTemplate', metadata: { name: 'argo-src-shared', labels: SELECT },
      spec: { nodeSelector: { 'kwarm-test/pool': POOL, 'argo-zone': 'a' }, templates: [{ name: 'x', container: { image: images.deploy.reference }, sidecars: [{ name: 's', image: images.cluster.reference }] }] },
    }) });

    const expected: Record<string, ImageName[]> = { [NODE_A]: ['deploy', 'build', 'lintInit', 'cron', 'cluster'], [NODE_B]: ['gpu', 'cron'] };
    for (const [node, names] of Object.entries(expected)) {
      for (const n of names) await waitFor(() => present(node, images[n].reference), { what: `${n} in ${node}'s containerd`, timeoutMs: 90_000 });
    }
    expect((await specImages(admin, NODE_A, signal)).sort()).to.deep.equal(expected[NODE_A]!.map((n) => images[n].reference).sort());
    expect((await specImages(admin, NODE_B, signal)).sort()).to.deep.equal(expected[NODE_B]!.map((n) => images[n].reference).sort());

    const ppis = JSON.parse((await cp.kubectl(['get', 'prepullimages', '-A', '-l', `kwarm.io/policy=${POLICY}`, '-o', 'json'])).stdout) as {
      items: { metadata: { namespace: string; name: string; ownerReferences?: { kind: string; name: string; apiVersion: string }[] }; spec: { image: string } }[];
    };
    const cwt = ppis.items.filter((p) => p.metadata.ownerReferences?.[0]?.kind === 'ClusterWorkflowTemplate');
    expect(cwt.map((p) => p.metadata.namespace)).to.deep.equal([KWARM_NS, KWARM_NS]);
    expect(cwt[0]!.metadata.ownerReferences![0]).to.include({ apiVersion: 'argoproj.io/v1alpha1', name: 'argo-src-shared' });
    const wt = ppis.items.filter((p) => p.metadata.ownerReferences?.[0]?.kind === 'WorkflowTemplate');
    expect(wt.map((p) => p.spec.image).sort()).to.deep.equal([images.build.reference, images.gpu.reference, images.lintInit.reference].sort());
    expect(wt.every((p) => p.metadata.namespace === NS && p.metadata.name.startsWith('workflowtemplate.ci.'))).to.equal(true);

    // Settled: idle resyncs with Argo objects write nothing.
    await waitFor(async () => (await getPolicy(admin, POLICY, signal))?.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'ImagesPresent', { what: 'the policy to be Ready', timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 6000));
    const writes = await controller!.writes();
    const passes = (await controller!.metric('kwarm_reconcile_duration_seconds_count')) ?? 0;
    await new Promise((r) => setTimeout(r, 5000));
    expect((await controller!.metric('kwarm_reconcile_duration_seconds_count')) ?? 0).to.be.above(passes + 1);
    expect(await controller!.writes()).to.equal(writes);
  });

  it('removes an image taken out of a template, and the images of deleted objects, from the NodeImageSets', async () => {
    // The gpu step goes: its image leaves node b; the rest stays.
    await cp.kubectl(['apply', '-f', '-'], { input: manifest({
      apiVersion: 'argoproj.io/v1alpha1', kind: 'WorkflowTemplate', metadata: { namespace: NS, name: 'ci', labels: SELECT },
      spec: {
        entrypoint: 'main',
        nodeSelector: { 'kwarm-test/pool': POOL, 'argo-zone': 'a' },
        templates: [
          { name: 'main', steps: [[{ name: 'build', template: 'build' }]] },
          { name: 'build', initContainers: [{ name: 'fetch', image: images.lintInit.reference }], container: { image: images.build.reference } },
        ],
      },
    }) });
    await waitFor(async () => !(await specImages(admin, NODE_B, signal)).includes(images.gpu.reference), { what: 'the gpu image to leave node b', timeoutMs: 30_000 });
    expect(await specImages(admin, NODE_A, signal)).to.include(images.build.reference);

    await cp.kubectl(['-n', NS, 'delete', 'cronworkflow', 'nightly']);
    await cp.kubectl(['delete', 'clusterworkflowtemplate', 'argo-src-shared']);
    for (const node of NODES) {
      await waitFor(async () => {
        const wanted = await specImages(admin, node, signal);
        return !wanted.includes(images.cron.reference) && !wanted.includes(images.cluster.reference);
      }, { what: `the CronWorkflow's and ClusterWorkflowTemplate's images to leave ${node}`, timeoutMs: 30_000 });
    }
    // The Deployment image stays on node a: the Deployment still wants it.
    expect((await specImages(admin, NODE_A, signal)).sort()).to.deep.equal([images.deploy.reference, images.build.reference, images.lintInit.reference].sort());
  });

  it('goes back to NotInstalled when the CRDs are removed, and keeps pre-pulling Deployments', async () => {
    await removeArgoCrds(cp);
    const cond = await waitFor(async () => {
      const c = await argoCondition();
      return c?.status === 'False' ? c : undefined;
    }, { what: 'ArgoSourceActive=False after removing the CRDs', timeoutMs: 30_000 });
    expect(cond.reason).to.equal('NotInstalled');
    await waitFor(async () => {
      const wanted = await specImages(admin, NODE_A, signal);
      return wanted.length === 1 && wanted[0] === images.deploy.reference;
    }, { what: 'node a to want only the Deployment image', timeoutMs: 30_000 });
    // Settled: no more log lines from retried Argo watches.
    await new Promise((r) => setTimeout(r, 3000));
    const before = logLines().length;
    await new Promise((r) => setTimeout(r, 5000));
    const added = logLines().slice(before);
    expect(added, added.join('\n')).to.deep.equal([]);
  });
});
