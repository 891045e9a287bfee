// Finding 6 of the expert review: a released pair counted against the budget for its whole retry window, so an
// image whose registry refuses connections held a slot through every back-off (up to maxAttempts × an hour).
// Here, on a real API server with the controller process (--max-concurrent-pulls=1) and one agent as shipped with
// its own containerd: an image on a loopback port where nothing listens fails and waits out a two-minute
// back-off; meanwhile a good image from the test registry is released and pulled on the same node.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { errorText } from '../../../lib/errors.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { freePort } from '../../../local-cluster/ports.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, listNodeImageSets } from '../../../local-cluster/cluster-fixtures.ts';

const NODE = 'f06b-node';
const KWARM_NS = 'kwarm-system';
const NS = 'finding-06-backoff';

describe('finding 06: a pair waiting out its retry back-off holds no budget slot', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let runtime: TestContainerd | undefined;
  let agent: AgentProcess | undefined;
  let controller: ControllerProcess | undefined;
  const ac = new AbortController();
  const signal = ac.signal;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'f06b' });
    runtime = await startContainerd({ name: NODE, registries: [registry] });
    await createNode(admin, { name: NODE }, signal);
    agent = await startAgentProcess({
      nodeName: NODE, kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NS, nodeName: NODE }), criSocket: runtime.socket, namespace: KWARM_NS,
    });
    await agent.waitReady();
    controller = await ControllerProcess.start({
      kubeconfig: await controllerKubeconfig(cp, KWARM_NS), namespace: KWARM_NS, name: 'controller-f06b', args: ['--max-concurrent-pulls=1'],
    });
    await cp.kubectl(['create', 'namespace', NS]);
  });

  after(async () => {
    await controller?.stop();
    await agent?.dispose();
    await runtime?.dispose();
    await registry?.dispose();
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await deleteNodes(admin, [NODE], signal).catch(() => undefined);
    ac.abort();
    admin.close();
  });

  async function apply(name: string, image: string, retry: { maxAttempts: number; backoffSeconds: number }): Promise<void> {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name, namespace: NS },
        spec: { image, nodes: { names: [NODE] }, retry },
      }),
    });
  }

  async function entries(): Promise<{ image: string; phase: string | undefined; reason: string | undefined }[]> {
    const set = (await listNodeImageSets(admin, signal)).find((s) => s.metadata.name === NODE);
    return (set?.spec.images ?? []).map((e) => {
      const st = set?.status?.images?.find((i) => i.image === e.image && i.round === e.round);
      return { image: e.image, phase: st?.phase, reason: st?.reason };
    });
  }

  it('with a budget of 1, an image in back-off does not stop a good image from being released and pulled', async () => {
    // Nothing listens there: every attempt is refused at once (RegistryUnavailable, which is retried).
    const bad = `127.0.0.1:${await freePort()}/f06b/unreachable:1`;
    const pushed = await buildAndPushImage(registry!, { repository: 'f06b/app', tag: 'v1', layers: [64 * 1024] });
    const good = `${registry!.host}/${pushed.repository}:${pushed.tag}`;
    const show = async (err: unknown): Promise<never> => {
      throw new Error(`${errorText(err)}\n${JSON.stringify(await entries())}\n${controller?.tail(30) ?? ''}`);
    };

    // The bad image first, alone: it takes the only slot, fails, and waits two minutes before its next attempt.
    await apply('bad', bad, { maxAttempts: 5, backoffSeconds: 120 });
    await waitFor(async () => (await entries()).some((e) => e.image === bad && e.phase === 'Pending' && e.reason === 'RegistryUnavailable'), {
      what: 'the bad image in back-off', timeoutMs: 60_000,
    }).catch(show);

    // Then the good one: it must not wait for the bad one's back-off (nor its four more attempts).
    await apply('good', good, { maxAttempts: 3, backoffSeconds: 5 });
    const started = Date.now();
    await waitFor(async () => (await entries()).some((e) => e.image === good && e.phase === 'Completed'), {
      what: 'the good image pulled while the bad one is in back-off', timeoutMs: 60_000,
    }).catch(show);
    console.log(`      [figures] good image released and pulled ${Date.now() - started} ms after it was applied, the bad one in a 120 s back-off`);

    const now = await entries();
    // Still in its first back-off: the good image did not get its slot by the bad one giving up.
    expect(now.find((e) => e.image === bad)).to.deep.include({ phase: 'Pending', reason: 'RegistryUnavailable' });
    const cri = new GrpcImageRuntime({ endpoint: runtime!.socket });
    try {
      expect((await cri.imageStatus(good, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(pushed.configDigest);
    } finally {
      cri.close();
    }
  });
});
