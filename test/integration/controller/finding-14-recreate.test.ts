// Finding 14 of the expert review (controller side): re-creating a purgeOnDelete workload (`kubectl replace
// --force`, helm uninstall + install) deletes its PrePullImage while a successor of the same name is already
// wanted. The controller used to plan only the purge in that window, so the agent removed the image from the
// node under the new pods, and pulled it again once the old object was gone. Here, on a real API server (with
// its garbage collector) with the controller, an agent and its containerd: the Deployment is replaced with
// --force and the old PrePullImage deleted, and the image never leaves the node (the agent answers the removal
// Kept, Wanted); the PrePullImage comes back for the new Deployment.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { errorText } from '../../../lib/errors.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import type { PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, deployment, getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';

const NODE = 'f14-node';
const POOL = 'finding-14';
const NS = 'finding-14';
const POLICY = 'finding-14';
const KWARM_NS = 'kwarm-system';
const PPI = 'deployment.app.app';

describe('finding 14: re-creating a purgeOnDelete workload keeps its image on the nodes', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let runtime: TestContainerd | undefined;
  let cri: GrpcImageRuntime | undefined;
  let agent: AgentProcess | undefined;
  let controller: ControllerProcess | undefined;
  let app: PushedImage;
  const ac = new AbortController();
  const signal = ac.signal;

  function manifest(): string {
    const d = deployment(NS, 'app', app.reference, { pool: POOL }) as { metadata: { labels: Record<string, string> } };
    d.metadata.labels = { app: 'app', 'kwarm-test/suite': POOL };
    return JSON.stringify(d);
  }

  async function present(): Promise<boolean> {
    return (await cri!.imageStatus(app.reference, { signal: AbortSignal.timeout(10_000) })) !== undefined;
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'finding-14' });
    app = await pushSleeperImage(registry, 'f14/app', 'v1', 64 * 1024);
    runtime = await startContainerd({ name: NODE, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: runtime.socket });
    await createNode(admin, { name: NODE, labels: { 'kwarm-test/pool': POOL } }, signal);
    agent = await startAgentProcess({
      nodeName: NODE, kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NS, nodeName: NODE }), criSocket: runtime.socket, namespace: KWARM_NS, verifyInterval: '5m',
    });
    await agent.waitReady();
    await cp.kubectl(['create', 'namespace', NS]);
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(cp, KWARM_NS), namespace: KWARM_NS, name: 'controller-f14', args: ['--resync-period=2s'],
    });
  });

  after(async () => {
    await controller?.stop();
    await agent?.dispose();
    cri?.close();
    await runtime?.dispose();
    await registry?.dispose();
    // The controller is gone: drop any finalizer left so the namespace can go.
    await cp.kubectl(['-n', NS, 'patch', 'prepullimage', PPI, '--type=merge', '-p', '{"metadata":{"finalizers":null}}'], { allowFailure: true });
    await cp.kubectl(['delete', 'prepullpolicy', POLICY], { allowFailure: true });
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await deleteNodes(admin, [NODE], signal).catch(() => undefined);
    ac.abort();
    admin.close();
  });

  it('kubectl replace --force: the image stays on the node, the old PrePullImage goes, its successor is Ready', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
        spec: { selector: { matchLabels: { 'kwarm-test/suite': POOL } }, nodeSelector: { matchLabels: { 'kwarm-test/pool': POOL } }, purgeOnDelete: true },
      }),
    });
    await cp.kubectl(['apply', '-f', '-'], { input: manifest() });
    await waitFor(async () => (await getPrePullImage(admin, NS, PPI, signal))?.status?.phase === 'Completed', { what: 'the image pulled', timeoutMs: 60_000 });
    expect(await present()).to.equal(true);
    const first = await getPrePullImage(admin, NS, PPI, signal);
    expect(first?.metadata.finalizers).to.include('kwarm.io/purge');
    const oldUid = first?.metadata.uid;

    // Watch the runtime the whole time the workload is replaced.
    let absentSeen = 0;
    const sampling = new AbortController();
    const sampler = (async () => {
      while (!sampling.signal.aborted) {
        if (!(await present())) absentSeen++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await cp.kubectl(['replace', '--force', '-f', '-'], { input: manifest() });
      // The garbage collector deletes the old Deployment's PrePullImage unless the controller re-owned it to the
      // new Deployment first (it often does: seen here). Delete it as the collector would when it wins the race,
      // so the window the finding is about (old one being deleted, successor wanted) happens on every run.
      await cp.kubectl(['-n', NS, 'delete', 'prepullimage', PPI, '--wait=false']);
      const newDeployment = await cp.kubectl(['-n', NS, 'get', 'deployment', 'app', '-o', 'jsonpath={.metadata.uid}']);
      // The old PrePullImage is purged (answered) and goes; its successor, owned by the new Deployment, is Completed.
      await waitFor(async () => {
        const p = await getPrePullImage(admin, NS, PPI, signal);
        return p !== undefined && p.metadata.uid !== oldUid && p.metadata.deletionTimestamp === undefined &&
          p.metadata.ownerReferences?.some((o) => o.uid === newDeployment.stdout) === true && p.status?.phase === 'Completed';
      }, { what: 'the successor PrePullImage Completed', timeoutMs: 120_000 }).catch(async (err: unknown) => {
        const p = await getPrePullImage(admin, NS, PPI, signal);
        throw new Error(`${errorText(err)}: ${JSON.stringify(p?.metadata)} ${JSON.stringify(p?.status)}\n${controller?.tail(20) ?? ''}`);
      });
    } finally {
      sampling.abort();
      await sampler;
    }
    expect(absentSeen, 'samples with the image missing from containerd').to.equal(0);
    expect(await present()).to.equal(true);
    expect((await agent!.metric('kwarm_removals_total', { result: 'Removed' })) ?? 0).to.equal(0);
  });
});
