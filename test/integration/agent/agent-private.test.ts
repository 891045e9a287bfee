// Private images: pull secrets copied into kwarm's namespace authenticate pulls from an htpasswd registry; the
// agent gets them as the chart runs it (--pull-secrets-from=controller): from the controller's pull credentials
// endpoint, which checks the node in the agent's pod-bound token, since the agent's RBAC allows no Secret read.
// A wrong secret fails with reason Unauthorized without hot retries; no password ever shows in the agent's
// log, the controller's log, the status or Events.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import winston from 'winston';
import { startCredentialsServer, type CredentialsServer } from '../../../controller/credentials/server.ts';
import { createNode, deleteNodes } from '../../../local-cluster/cluster-fixtures.ts';
import { controllerKubeconfig } from '../../../local-cluster/kwarm-access.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { applySpec, imageStatus, readNodeImageSet, waitForStatus } from './node-image-sets.ts';

const NODE = 'agent-private-node';
const NAMESPACE = 'kwarm-system';
const USER = 'kwarm-puller';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const WRONG_PASSWORD = `wrong-${randomBytes(12).toString('hex')}`;

interface SecretObject {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace: string };
  type: string;
  data: Record<string, string>;
}

function dockerConfigSecret(name: string, registry: string, username: string, password: string): SecretObject {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  const config = JSON.stringify({ auths: { [registry]: { username, password, auth } } });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: NAMESPACE },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
  };
}

describe('agent: private images with pull secrets from the kwarm namespace, served by the controller', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let node: TestContainerd | undefined;
  let cri: GrpcImageRuntime;
  let agent: AgentProcess | undefined;
  let images: Record<'good' | 'wrong' | 'both' | 'none' | 'missing', PushedImage>;
  let controllerClient: KubeClient | undefined;
  let credentials: CredentialsServer | undefined;
  let controllerLog = '';
  /** The agent flags of the chart's default, with the endpoint's address instead of its Service's. */
  const credentialArgs = (): string[] => ['--pull-secrets-from=controller', `--pull-credentials-url=https://127.0.0.1:${credentials!.port}`];

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ auth: { username: USER, password: PASSWORD } });
    node = await startContainerd({ name: NODE, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: node.socket });
    const kubeconfigFor = (nodeName: string): Promise<string> => agentKubeconfig(cp!, { namespace: NAMESPACE, nodeName });
    // Pod-bound tokens name their node only when the Node object exists.
    for (const name of [NODE, `${NODE}-rotate`]) {
      await createNode(admin, { name }, AbortSignal.timeout(30_000)).catch((err: unknown) => { if (!String(err).includes('already exists')) throw err; });
    }
    const names = ['good', 'wrong', 'both', 'none', 'missing'] as const;
    const pushed = await Promise.all(names.map((n) => buildAndPushImage(registry!, { repository: `private/${n}`, tag: 'v1', layers: [64 * 1024] })));
    images = Object.fromEntries(names.map((n, i) => [n, pushed[i]!])) as typeof images;
    // Installs the agent's access in kwarm's namespace (and the namespace) before the secrets go there.
    const kubeconfig = await kubeconfigFor(NODE);
    const secrets = '/api/v1/namespaces/kwarm-system/secrets';
    for (const s of [
      dockerConfigSecret('regcred-good', registry.host, USER, PASSWORD),
      dockerConfigSecret('regcred-wrong', registry.host, USER, WRONG_PASSWORD),
      // Credentials for another registry are never sent to this one.
      dockerConfigSecret('regcred-elsewhere', 'other.example.com', USER, PASSWORD),
    ]) await admin.apply(`${secrets}/${s.metadata.name}`, s, 'kwarm-tests', AbortSignal.timeout(30_000));
    // The controller's side, with the chart's controller RBAC.
    controllerClient = new KubeClient(cp.kubeConfig(await controllerKubeconfig(cp, NAMESPACE)));
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => { controllerLog += c.toString('utf8'); });
    credentials = await startCredentialsServer({
      port: 0, host: '127.0.0.1', namespace: NAMESPACE, service: 'kwarm-credentials', secret: 'kwarm-credentials-cert',
      caConfigMap: 'kwarm-credentials-ca', agentServiceAccount: 'kwarm-agent',
    }, { client: controllerClient, log: winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] }) });
    await waitFor(() => credentials!.check().ok, { timeoutMs: 30_000, what: 'the pull credentials server is ready' });
    agent = await startAgentProcess({ nodeName: NODE, kubeconfig, criSocket: node.socket, verifyInterval: '5m', args: credentialArgs() });
    await agent.waitReady();
  });

  after(async () => {
    await agent?.dispose();
    await credentials?.close();
    controllerClient?.close();
    await deleteNodes(admin, [NODE, `${NODE}-rotate`], AbortSignal.timeout(30_000)).catch(() => undefined);
    cri.close();
    await node?.dispose();
    await registry?.dispose();
    admin.close();
  });

  it('pulls with the right secret, fails with reason Unauthorized with a wrong or missing one, and tries each matching secret', async () => {
    const retry = { maxAttempts: 3, backoffSeconds: 1 };
    await applySpec(admin, NODE, {
      images: [
        { image: images.good.reference, pullSecrets: ['regcred-good'], retry },
        { image: images.wrong.reference, pullSecrets: ['regcred-wrong', 'regcred-elsewhere'], retry },
        { image: images.both.reference, pullSecrets: ['regcred-wrong', 'regcred-good'], retry },
        { image: images.none.reference, retry },
        { image: images.missing.reference, pullSecrets: ['regcred-does-not-exist'], retry },
      ],
    });
    const settled = (obj: Parameters<Parameters<typeof waitForStatus>[2]>[0]): boolean =>
      obj.status?.images?.length === 5 && obj.status.images.every((i) => i.phase === 'Completed' || i.phase === 'Failed');
    const obj = await waitForStatus(admin, NODE, settled, { what: 'every image Completed or Failed' });

    for (const ok of [images.good, images.both]) {
      expect(imageStatus(obj, ok.reference)).to.include({ phase: 'Completed', imageId: ok.configDigest });
      expect((await cri.imageStatus(ok.reference, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(ok.configDigest);
    }
    for (const bad of [images.wrong, images.none, images.missing]) {
      const s = imageStatus(obj, bad.reference)!;
      expect(s, bad.reference).to.include({ phase: 'Failed', reason: 'Unauthorized', attempts: 1 });
      expect(s.message).to.match(/401 Unauthorized/);
      expect(await cri.imageStatus(bad.reference, { signal: AbortSignal.timeout(10_000) })).to.equal(undefined);
    }
    expect(imageStatus(obj, images.missing.reference)?.message).to.include('regcred-does-not-exist');
    console.log(`      [observed] wrong secret: ${imageStatus(obj, images.wrong.reference)?.message ?? ''}`);
  });

  it('does not retry an Unauthorized pull (permanent)', async () => {
    const pullsBefore = await agent!.metric('kwarm_pulls_total', { status: 'failed' });
    await sleep(2500);
    expect(await agent!.metric('kwarm_pulls_total', { status: 'failed' })).to.equal(pullsBefore);
    expect(imageStatus(await readNodeImageSet(admin, NODE), images.wrong.reference)?.attempts).to.equal(1);
    expect(await agent!.metric('kwarm_cri_errors_total', { reason: 'Unauthorized' })).to.be.at.least(4);
  });

  it('retries an Unauthorized pull once its pull secret is rotated, with no spec change', async () => {
    const ROTATE_NODE = `${NODE}-rotate`;
    const secrets = '/api/v1/namespaces/kwarm-system/secrets';
    const img = await buildAndPushImage(registry!, { repository: 'private/rotated', tag: 'v1', layers: [64 * 1024] });
    await admin.apply(`${secrets}/regcred-rotating`, dockerConfigSecret('regcred-rotating', registry!.host, USER, WRONG_PASSWORD), 'kwarm-tests', AbortSignal.timeout(30_000));
    // The secrets are looked at again with each verify pass (here every second).
    const rotating = await startAgentProcess({
      nodeName: ROTATE_NODE, kubeconfig: await agentKubeconfig(cp, { namespace: NAMESPACE, nodeName: ROTATE_NODE }), criSocket: node!.socket, verifyInterval: '1s', args: credentialArgs(),
    });
    try {
      await rotating.waitReady();
      await applySpec(admin, ROTATE_NODE, { images: [{ image: img.reference, pullSecrets: ['regcred-rotating'], retry: { maxAttempts: 1, backoffSeconds: 1 } }] });
      const failed = await waitForStatus(admin, ROTATE_NODE, (o) => imageStatus(o, img.reference)?.phase === 'Failed', { what: 'Failed with the old password' });
      expect(imageStatus(failed, img.reference)).to.include({ reason: 'Unauthorized', attempts: 1 });
      // Unchanged secret: no new attempt however many verify passes go by.
      await sleep(2500);
      expect(await rotating.metric('kwarm_pulls_total')).to.equal(1);

      await admin.apply(`${secrets}/regcred-rotating`, dockerConfigSecret('regcred-rotating', registry!.host, USER, PASSWORD), 'kwarm-tests', AbortSignal.timeout(30_000));
      const done = await waitForStatus(admin, ROTATE_NODE, (o) => imageStatus(o, img.reference)?.phase === 'Completed', { what: 'Completed after the rotation', timeoutMs: 30_000 });
      expect(imageStatus(done, img.reference)).to.include({ imageId: img.configDigest, attempts: 1 });
      expect(await rotating.metric('kwarm_pulls_total', { status: 'succeeded' })).to.equal(1);
      expect(rotating.logText()).to.include('pull secrets changed since the Unauthorized pull');
    } finally {
      await rotating.dispose();
    }
  });

  it('the password appears nowhere in the agent log, the NodeImageSet or Events', async () => {
    const forms = [PASSWORD, WRONG_PASSWORD, ...[PASSWORD, WRONG_PASSWORD].map((p) => Buffer.from(`${USER}:${p}`).toString('base64'))];
    const log = agent!.logText();
    expect(log.length).to.be.greaterThan(1000);
    expect(log).to.include('regcred-good');
    expect(controllerLog).to.include('pull credentials served');
    for (const f of forms) expect(controllerLog.includes(f), 'controller log').to.equal(false);
    const { stdout: nis } = await cp.kubectl(['get', 'nodeimageset', NODE, '-o', 'json']);
    const { stdout: events } = await cp.kubectl(['get', 'events', '--all-namespaces', '-o', 'json']);
    for (const f of forms) {
      expect(log.includes(f), 'agent log').to.equal(false);
      expect(nis.includes(f), 'NodeImageSet').to.equal(false);
      expect(events.includes(f), 'Events').to.equal(false);
    }
  });
});
