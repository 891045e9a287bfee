// The whole system: kwarm-controller and three kwarm-agents (each with its own containerd) on a real API
// server and real registries. The seed's flow (label a Deployment, change its image: the new image lands in
// every eligible node's containerd, READY 3/3, `kubectl wait` returns), a private image whose secret lives
// only in the workload's namespace (imagePullSecrets.inherit through the ServiceAccount), and no write by
// the controller to any Deployment.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../local-cluster/control-plane.ts';
import { CONTROLLER_USER, ControllerProcess, controllerKubeconfig } from '../../local-cluster/controller-process.ts';
import { installCrds } from '../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../local-cluster/registry.ts';
import { waitFor } from '../../local-cluster/wait.ts';
import { freePort } from '../../local-cluster/ports.ts';
import { auditWrites, createNode, deleteNodes, deployment, getPrePullImage, specImages } from '../../local-cluster/cluster-fixtures.ts';

const SAMPLES = join(import.meta.dirname, '..', '..', 'deploy', 'samples');
const NODES = ['e2e-node-1', 'e2e-node-2', 'e2e-node-3'];
const POOL = 'e2e';
const KWARM_NS = 'kwarm-system';
const APP_NS = 'e2e-shop';
const PRIVATE_NS = 'e2e-private';
const USER = 'e2e-puller';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

describe('e2e: controller and agents with containerd', function () {
  this.timeout(420_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let plain: TestRegistry | undefined;
  let privateRegistry: TestRegistry | undefined;
  const runtimes: TestContainerd[] = [];
  const cris: GrpcImageRuntime[] = [];
  const agents: AgentProcess[] = [];
  let controller: ControllerProcess | undefined;
  let images: { v1: PushedImage; v2: PushedImage; secret: PushedImage };
  const ac = new AbortController();
  const signal = ac.signal;

  async function presentEverywhere(ref: string): Promise<boolean> {
    for (const cri of cris) if ((await cri.imageStatus(ref, { signal: AbortSignal.timeout(10_000) })) === undefined) return false;
    return true;
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    plain = await startRegistry({ name: 'e2e-plain' });
    privateRegistry = await startRegistry({ name: 'e2e-private', auth: { username: USER, password: PASSWORD } });
    const [v1, v2, secret] = await Promise.all([
      buildAndPushImage(plain, { repository: 'shop/my-app', tag: 'v1', layers: [256 * 1024] }),
      buildAndPushImage(plain, { repository: 'shop/my-app', tag: 'v2', layers: [256 * 1024, 64 * 1024] }),
      buildAndPushImage(privateRegistry, { repository: 'secret/app', tag: 'v1', layers: [128 * 1024] }),
    ]);
    images = { v1, v2, secret };
    const kubeconfigFor = (nodeName: string): Promise<string> => agentKubeconfig(cp, { namespace: KWARM_NS, nodeName });
    // As the chart runs them: agents get pull secrets from the controller's endpoint (their RBAC reads no Secret).
    // The controller starts first, so its port is taken right after it was found free.
    const credentialsPort = await freePort();
    controller = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp, KWARM_NS), namespace: KWARM_NS, name: 'controller-e2e',
      args: ['--pull-credentials', `--pull-credentials-port=${credentialsPort}`] });
    const agentArgs = ['--pull-secrets-from=controller', `--pull-credentials-url=https://127.0.0.1:${credentialsPort}`];
    for (const name of NODES) {
      const rt = await startContainerd({ name, registries: [plain, privateRegistry] });
      runtimes.push(rt);
      cris.push(new GrpcImageRuntime({ endpoint: rt.socket }));
      await createNode(admin, { name, labels: { 'kwarm-test/pool': POOL } }, signal);
      const agent = await startAgentProcess({ nodeName: name, kubeconfig: await kubeconfigFor(name), criSocket: rt.socket, namespace: KWARM_NS, verifyInterval: '5m', args: agentArgs });
      agents.push(agent);
    }
    for (const a of agents) await a.waitReady();
  });

  after(async () => {
    await controller?.stop();
    for (const a of agents) await a.dispose();
    for (const c of cris) c.close();
    for (const rt of runtimes) await rt.dispose();
    await plain?.dispose();
    await privateRegistry?.dispose();
    for (const ns of [APP_NS, PRIVATE_NS]) await cp.kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
    await cp.kubectl(['delete', 'prepullpolicy', 'default', 'e2e-private'], { allowFailure: true });
    await deleteNodes(admin, NODES, signal);
    ac.abort();
    admin.close();
  });

  it('pre-pulls the new image of a labelled Deployment into every node\'s containerd: READY 3/3, Completed, kubectl wait returns', async () => {
    await cp.kubectl(['apply', '-f', join(SAMPLES, 'prepullpolicy_basic.yaml')]);
    await cp.kubectl(['create', 'namespace', APP_NS]);
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment(APP_NS, 'my-app', images.v1.reference, { pool: POOL })) });
    await waitFor(async () => (await getPrePullImage(admin, APP_NS, 'deployment.my-app.app', signal))?.status?.phase === 'Completed', { what: 'v1 to be pre-pulled', timeoutMs: 120_000 });

    const started = Date.now();
    await cp.kubectl(['-n', APP_NS, 'set', 'image', 'deployment/my-app', `app=${images.v2.reference}`]);
    const wait = await cp.kubectl(['-n', APP_NS, 'wait', '--for=condition=Ready', 'prepullimage/deployment.my-app.app', '--timeout=120s']);
    expect(wait.stdout).to.contain('condition met');
    const ppi = await getPrePullImage(admin, APP_NS, 'deployment.my-app.app', signal);
    // kubectl wait may have seen the v1 Ready condition if it ran before the controller; insist on v2.
    await waitFor(async () => {
      const p = await getPrePullImage(admin, APP_NS, 'deployment.my-app.app', signal);
      return p?.spec.image === images.v2.reference && p.status?.phase === 'Completed' && p.status.observedGeneration === p.metadata.generation;
    }, { what: 'v2 Completed', timeoutMs: 120_000 });
    console.log(`    [e2e] image change to Completed on 3 nodes in ${Date.now() - started} ms (${ppi?.status?.ready ?? '?'} at kubectl wait)`);
    expect(await presentEverywhere(images.v2.reference)).to.equal(true);
    const table = await cp.kubectl(['-n', APP_NS, 'get', 'prepullimages']);
    expect(table.stdout).to.match(/3\/3\s+Completed/);
    const again = await cp.kubectl(['-n', APP_NS, 'wait', '--for=condition=Ready', 'prepullimage/deployment.my-app.app', '--timeout=10s']);
    expect(again.stdout).to.contain('condition met');
    for (const n of NODES) expect(await specImages(admin, n, signal)).to.deep.equal([images.v2.reference]);
  });

  it('supports the README\'s gated rollout: pause, set image, wait for the PrePullImage, resume', async () => {
    const ppi = 'prepullimage/deployment.my-app.app';
    await cp.kubectl(['-n', APP_NS, 'rollout', 'pause', 'deployment/my-app']);
    await cp.kubectl(['-n', APP_NS, 'set', 'image', 'deployment/my-app', `app=${images.v1.reference}`]);
    await cp.kubectl(['-n', APP_NS, 'wait', `--for=jsonpath={.spec.image}=${images.v1.reference}`, ppi, '--timeout=60s']);
    const ready = await cp.kubectl(['-n', APP_NS, 'wait', '--for=condition=Ready', ppi, '--timeout=120s']);
    expect(ready.stdout).to.contain('condition met');
    // Ready now describes the new image on every node, while the rollout is still paused.
    const p = await getPrePullImage(admin, APP_NS, 'deployment.my-app.app', signal);
    expect(p?.spec.image).to.equal(images.v1.reference);
    expect(p?.status?.ready).to.equal('3/3');
    expect(await presentEverywhere(images.v1.reference)).to.equal(true);
    await cp.kubectl(['-n', APP_NS, 'rollout', 'resume', 'deployment/my-app']);
  });

  it('pulls a private image with the ServiceAccount\'s secret from the workload namespace (imagePullSecrets.inherit)', async () => {
    await cp.kubectl(['create', 'namespace', PRIVATE_NS]);
    const auth = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    const config = JSON.stringify({ auths: { [privateRegistry!.host]: { username: USER, password: PASSWORD, auth } } });
    await cp.kubectl(['-n', PRIVATE_NS, 'create', 'secret', 'generic', 'regcred', '--type=kubernetes.io/dockerconfigjson', `--from-literal=.dockerconfigjson=${config}`]);
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace: PRIVATE_NS, name: 'puller' }, imagePullSecrets: [{ name: 'regcred' }] }) });
    await cp.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata: {name: e2e-private}
spec:
  selector: {matchLabels: {kwarm-test/suite: e2e-private}}
  retry: {maxAttempts: 3, backoffSeconds: 1}
  imagePullSecrets: {inherit: true}
`,
    });
    const d = deployment(PRIVATE_NS, 'vault', images.secret.reference, { pool: POOL, serviceAccountName: 'puller' }) as { metadata: { labels: Record<string, string> } };
    d.metadata.labels = { app: 'vault', 'kwarm-test/suite': 'e2e-private' };
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });

    const done = await waitFor(async () => {
      const p = await getPrePullImage(admin, PRIVATE_NS, 'deployment.vault.app', signal);
      return p?.status?.phase === 'Completed' || p?.status?.phase === 'Failed' ? p : undefined;
    }, { what: 'the private image to finish', timeoutMs: 120_000 });
    expect(done.status?.phase, JSON.stringify(done.status)).to.equal('Completed');
    expect(done.status?.ready).to.equal('3/3');
    expect(done.status?.conditions?.find((c) => c.type === 'PullSecretsReady')).to.include({ status: 'True' });
    expect(await presentEverywhere(images.secret.reference)).to.equal(true);
    // The secret exists in the workload's namespace; kwarm reads only its own copy in kwarm-system.
    const copy = await admin.get(`/api/v1/namespaces/${KWARM_NS}/secrets/kwarm-pull.${PRIVATE_NS}.regcred`, signal) as { type: string };
    expect(copy.type).to.equal('kubernetes.io/dockerconfigjson');
    expect(await admin.getOptional(`/api/v1/namespaces/${KWARM_NS}/secrets/regcred`, signal)).to.equal(undefined);
  });

  it('never wrote to a Deployment', () => {
    const writes = auditWrites(readFileSync(cp.auditLogPath, 'utf8')).filter((w) => w.user === CONTROLLER_USER(KWARM_NS));
    expect(writes.length).to.be.above(0);
    expect(writes.filter((w) => ['deployments', 'statefulsets', 'daemonsets', 'jobs', 'cronjobs', 'pods'].includes(w.resource))).to.deep.equal([]);
  });
});
