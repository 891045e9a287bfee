// Purge on a real API server with the controller and three agents, each with its own containerd, all with
// the chart's RBAC. One image on three nodes: on the first a real container (started through CRI) uses it,
// on the second another PrePullImage still wants it, on the third nothing holds it. Purging it (state
// Absent, then deletion with purgeOnDelete) removes it from the third node's containerd only, and says
// why it stayed on the others in the NodeImageSets and the PrePullImage; the finalizer lets go once every
// node has answered.
import { expect } from 'chai';
import { PURGE_FINALIZER } from '../../../api/v1alpha1/index.ts';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import type { PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { runContainer, type RunningContainer } from '../../../local-cluster/running-container.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, deployment, getNodeImageSet, getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';

const NODES = ['purge-1', 'purge-2', 'purge-3'] as const;
const [IN_USE, WANTED, FREE] = NODES;
const POOL = 'purge';
const NS = 'purge';
const KWARM_NS = 'kwarm-system';

function prePullImageYaml(name: string, image: string, extra: string): string {
  return `apiVersion: kwarm.io/v1alpha1
kind: PrePullImage
metadata: {name: ${name}, namespace: ${NS}}
spec:
  image: ${image}
  timeout: 2m
${extra}`;
}

describe('purge: removing an image from nodes through CRI RemoveImage', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  const runtimes: TestContainerd[] = [];
  const cris = new Map<string, GrpcImageRuntime>();
  const agents: AgentProcess[] = [];
  let controller: ControllerProcess | undefined;
  let container: RunningContainer | undefined;
  let app: PushedImage;
  const ac = new AbortController();
  const signal = ac.signal;

  async function present(node: string): Promise<boolean> {
    const cri = cris.get(node);
    if (cri === undefined) throw new Error(`no CRI client for ${node}`);
    return (await cri.imageStatus(app.reference, { signal: AbortSignal.timeout(10_000) })) !== undefined;
  }

  async function removalAnswer(node: string): Promise<{ result: string; reason?: string; message?: string } | undefined> {
    const nis = await getNodeImageSet(admin, node, signal);
    return nis?.status?.removals?.find((r) => r.image === app.reference);
  }

  async function agentMetric(node: string, result: string): Promise<number> {
    const a = agents.find((x) => x.nodeName === node);
    return (await a?.metric('kwarm_removals_total', { result })) ?? 0;
  }

  async function startAgent(name: string, socket: string): Promise<AgentProcess> {
    return startAgentProcess({
      nodeName: name, kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NS, nodeName: name }), criSocket: socket, namespace: KWARM_NS, verifyInterval: '5m',
    });
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'purge' });
    const pause = await pushSleeperImage(registry, 'purge/pause', '1', 0);
    app = await pushSleeperImage(registry, 'purge/app', 'v1', 64 * 1024);
    for (const name of NODES) {
      // Only the first node runs a container, so only it needs the sandbox image.
      const rt = await startContainerd({ name, registries: [registry], ...(name === IN_USE ? { sandboxImage: pause.reference } : {}) });
      runtimes.push(rt);
      cris.set(name, new GrpcImageRuntime({ endpoint: rt.socket }));
      await createNode(admin, { name, labels: { 'kwarm-test/pool': POOL } }, signal);
      agents.push(await startAgent(name, rt.socket));
    }
    for (const a of agents) await a.waitReady();
    await cp.kubectl(['create', 'namespace', NS]);
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(cp, KWARM_NS), namespace: KWARM_NS, name: 'controller-purge', args: ['--resync-period=2s'],
    });
  });

  after(async () => {
    await container?.remove();
    await controller?.stop();
    for (const a of agents) await a.dispose();
    for (const c of cris.values()) c.close();
    for (const rt of runtimes) await rt.dispose();
    await registry?.dispose();
    // Nothing may keep the namespace from going: the controller is gone, so drop any finalizer left.
    await cp.kubectl(['-n', NS, 'patch', 'prepullimage', 'app', '--type=merge', '-p', '{"metadata":{"finalizers":null}}'], { allowFailure: true });
    await cp.kubectl(['-n', NS, 'patch', 'prepullimage', 'deployment.web.app', '--type=merge', '-p', '{"metadata":{"finalizers":null}}'], { allowFailure: true });
    await cp.kubectl(['delete', 'prepullpolicy', POOL], { allowFailure: true });
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await deleteNodes(admin, NODES, signal);
    ac.abort();
    admin.close();
  });

  it('pulls the image onto three nodes and holds the purge finalizer of a PrePullImage with purgeOnDelete', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: prePullImageYaml('app', app.reference, `  purgeOnDelete: true\n  nodes: {selector: {matchLabels: {kwarm-test/pool: ${POOL}}}}\n`),
    });
    await cp.kubectl(['apply', '-f', '-'], { input: prePullImageYaml('still-wanted', app.reference, `  nodes: {names: [${WANTED}]}\n`) });
    const ready = await cp.kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'prepullimage/app', 'prepullimage/still-wanted', '--timeout=90s']);
    expect(ready.stdout).to.contain('condition met');
    for (const n of NODES) expect(await present(n), n).to.equal(true);
    const ppi = await waitFor(async () => {
      const p = await getPrePullImage(admin, NS, 'app', signal);
      return p?.metadata.finalizers?.includes(PURGE_FINALIZER) === true ? p : undefined;
    }, { what: 'the purge finalizer on the PrePullImage', timeoutMs: 30_000 });
    expect(ppi.status?.ready).to.equal('3/3');

    // A real container on the first node, from the pulled image.
    container = await runContainer({ socket: runtimes[0]!.socket, name: 'app', image: app.reference });
    const listed = await cris.get(IN_USE)!.listContainers({ signal: AbortSignal.timeout(10_000) });
    expect(listed.find((c) => c.id === container?.containerId)?.state).to.equal('running');
  });

  it('state Absent: removed from the free node, kept where a container uses it (InUse) and where another PrePullImage wants it (Wanted)', async () => {
    await cp.kubectl(['-n', NS, 'patch', 'prepullimage', 'app', '--type=merge', '-p', '{"spec":{"state":"Absent"}}']);
    const purged = await waitFor(async () => {
      const p = await getPrePullImage(admin, NS, 'app', signal);
      return p?.status?.purge?.pending === 0 && p.status.purge.total === 3 ? p : undefined;
    }, { what: 'every node to answer the removal', timeoutMs: 60_000 });
    expect(purged.status?.purge).to.include({ total: 3, removed: 1, kept: 2, failed: 0, pending: 0 });
    const byNode = new Map((purged.status?.purge?.nodes ?? []).map((n) => [n.node, n]));
    expect(byNode.get(IN_USE)).to.include({ result: 'Kept', reason: 'InUse' });
    expect(byNode.get(IN_USE)?.message).to.contain(container!.containerId.slice(0, 13));
    expect(byNode.get(WANTED)).to.include({ result: 'Kept', reason: 'Wanted' });
    expect(byNode.get(FREE)).to.include({ result: 'Removed' });
    // Kept ones are listed first.
    expect(purged.status?.purge?.nodes?.map((n) => n.result)).to.deep.equal(['Kept', 'Kept', 'Removed']);
    expect(purged.status?.conditions?.find((c) => c.type === 'Ready')).to.include({ status: 'False', reason: 'Purged' });

    // The per-node truth, in each NodeImageSet; the runtime agrees.
    expect(await removalAnswer(IN_USE)).to.include({ result: 'Kept', reason: 'InUse' });
    expect(await removalAnswer(WANTED)).to.include({ result: 'Kept', reason: 'Wanted' });
    expect(await removalAnswer(FREE)).to.include({ result: 'Removed' });
    expect(await present(FREE)).to.equal(false);
    expect(await present(IN_USE)).to.equal(true);
    expect(await present(WANTED)).to.equal(true);
    const nis = await getNodeImageSet(admin, FREE, signal);
    expect(nis?.spec.images.map((e) => e.image)).to.not.include(app.reference);
    expect(nis?.spec.removals.map((r) => r.image)).to.deep.equal([app.reference]);
    expect(await agentMetric(FREE, 'Removed')).to.equal(1);
    expect(await agentMetric(IN_USE, 'Kept')).to.equal(1);

    const events = await cp.kubectl(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=app', '-o', 'jsonpath={.items[*].reason}']);
    expect(events.stdout.split(' ')).to.include('Purged');

    // Settled: resyncs (every 2 s) write nothing.
    await new Promise((r) => setTimeout(r, 2500));
    const writes = await controller!.writes();
    await new Promise((r) => setTimeout(r, 5000));
    expect(await controller!.writes()).to.equal(writes);

    // Each entry is answered once: a restarted agent keeps the answer it finds and does not act again.
    const before = await removalAnswer(FREE);
    const i = agents.findIndex((a) => a.nodeName === FREE);
    await agents[i]!.dispose();
    agents[i] = await startAgent(FREE, runtimes[i]!.socket);
    await agents[i].waitReady();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await removalAnswer(FREE)).to.deep.equal(before);
    expect(await agentMetric(FREE, 'Removed')).to.equal(0);
    expect(await agentMetric(FREE, 'NotPresent')).to.equal(0);
  });

  it('back to Present: the removal goes and the image is pulled again', async () => {
    await cp.kubectl(['-n', NS, 'patch', 'prepullimage', 'app', '--type=merge', '-p', '{"spec":{"state":"Present"}}']);
    await waitFor(async () => (await getPrePullImage(admin, NS, 'app', signal))?.status?.phase === 'Completed', { what: 'app to be Completed again', timeoutMs: 60_000 });
    expect(await present(FREE)).to.equal(true);
    for (const n of NODES) {
      // The agents drop their answers with the entries.
      await waitFor(async () => {
        const nis = await getNodeImageSet(admin, n, signal);
        return nis?.spec.removals.length === 0 && (nis.status?.removals ?? []).length === 0;
      }, { what: `${n} to have no removals`, timeoutMs: 30_000 });
    }
    expect((await getPrePullImage(admin, NS, 'app', signal))?.status?.purge).to.equal(undefined);
  });

  it('deletion with purgeOnDelete: the same answers, then the finalizer goes and the PrePullImage disappears', async () => {
    await cp.kubectl(['-n', NS, 'delete', 'prepullimage', 'app', '--wait=false']);
    await waitFor(async () => (await getPrePullImage(admin, NS, 'app', signal)) === undefined, { what: 'the PrePullImage to be gone', timeoutMs: 60_000 });
    expect(await present(FREE)).to.equal(false);
    expect(await present(IN_USE)).to.equal(true);
    expect(await present(WANTED)).to.equal(true);
    const reasons = await cp.kubectl(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=app,reason=Purged', '-o', 'jsonpath={.items[*].message}']);
    expect(reasons.stdout).to.contain('removed from 1, kept on 2, failed on 0 of 3 nodes');
    // Nothing asks for the removal any more.
    for (const n of NODES) {
      await waitFor(async () => (await getNodeImageSet(admin, n, signal))?.spec.removals.length === 0, { what: `${n} to have no removals`, timeoutMs: 30_000 });
    }
    // Counted by the agent restarted above: only this removal.
    expect(await agentMetric(FREE, 'Removed')).to.equal(1);
  });

  it('a policy with purgeOnDelete: the derived PrePullImage carries the finalizer and purges when its workload leaves the policy', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata: {name: ${POOL}}
spec:
  selector: {matchLabels: {kwarm-test/suite: ${POOL}}}
  nodeSelector: {matchLabels: {kwarm-test/pool: ${POOL}}}
  purgeOnDelete: true
`,
    });
    const d = deployment(NS, 'web', app.reference, { pool: POOL }) as { metadata: { labels: Record<string, string> } };
    d.metadata.labels = { app: 'web', 'kwarm-test/suite': POOL };
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });
    const derived = await waitFor(async () => {
      const p = await getPrePullImage(admin, NS, 'deployment.web.app', signal);
      return p?.status?.phase === 'Completed' ? p : undefined;
    }, { what: 'the derived PrePullImage to be Completed', timeoutMs: 60_000 });
    expect(derived.spec.purgeOnDelete).to.equal(true);
    expect(derived.metadata.finalizers).to.deep.equal([PURGE_FINALIZER]);
    expect(await present(FREE)).to.equal(true);

    await cp.kubectl(['-n', NS, 'label', 'deployment/web', 'kwarm-test/suite-']);
    await waitFor(async () => (await getPrePullImage(admin, NS, 'deployment.web.app', signal)) === undefined, { what: 'the derived PrePullImage to be gone', timeoutMs: 60_000 });
    expect(await present(FREE)).to.equal(false);
    expect(await present(IN_USE)).to.equal(true);
    expect(await present(WANTED)).to.equal(true);
    const messages = await cp.kubectl(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=deployment.web.app,reason=Purged', '-o', 'jsonpath={.items[*].message}']);
    expect(messages.stdout).to.contain('removed from 1, kept on 2, failed on 0 of 3 nodes');
  });
});
