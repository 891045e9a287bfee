// Finding 4 of the expert review: every agent token could GET every pull-secret copy in kwarm's namespace, so root
// on one node read every registry credential of the cluster. Now the agent's Role (chart default) has no Secret
// access at all, and the controller's endpoint serves an agent only the copies its own node's NodeImageSet names:
// the node comes from the TokenReview of the agent's pod-bound token (real API server, real TokenReview, the
// chart's RBAC for both the controller and the agents).
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import winston from 'winston';
import { ControllerSecretSource } from '../../../agent/secret-reader.ts';
import { startCredentialsServer, type CredentialsServer } from '../../../controller/credentials/server.ts';
import { KubeApiError, KubeClient } from '../../../lib/kube-client.ts';
import { createNode, deleteNodes } from '../../../local-cluster/cluster-fixtures.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { agentKubeconfig, agentToken, CONTROLLER_SA, controllerKubeconfig, KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { applySpec, deleteNodeImageSet } from '../agent/node-image-sets.ts';

const NS = KWARM_NAMESPACE;
const RUN = randomBytes(3).toString('hex');
const NODE_A = `f04-a-${RUN}`;
const NODE_B = `f04-b-${RUN}`;
const COPY_A = `kwarm-pull.team-a.regcred-${RUN}`;
const COPY_B = `kwarm-pull.team-b.regcred-${RUN}`;
const OPAQUE = `f04-opaque-${RUN}`;
const PASSWORD_A = `pw-a-${randomBytes(12).toString('hex')}`;
const PASSWORD_B = `pw-b-${randomBytes(12).toString('hex')}`;
const SERVICE = 'kwarm-credentials';
const CA_CONFIGMAP = 'kwarm-credentials-ca';
const CERT_SECRET = 'kwarm-credentials-cert';

function pullSecret(name: string, password: string): unknown {
  const config = JSON.stringify({ auths: { 'registry.f04.test': { username: 'u', password, auth: Buffer.from(`u:${password}`).toString('base64') } } });
  return {
    apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS },
    type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
  };
}


describe('finding 4: an agent reads only its own node\'s pull-secret copies', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let controllerClient: KubeClient;
  let agentA: KubeClient;
  let server: CredentialsServer | undefined;
  const logged = new PassThrough();
  let logText = '';
  logged.on('data', (c: Buffer) => { logText += c.toString('utf8'); });

  const source = (client: KubeClient, token: string): ControllerSecretSource => new ControllerSecretSource({
    service: SERVICE, url: `https://127.0.0.1:${server!.port}`, namespace: NS, caConfigMap: CA_CONFIGMAP, client,
    authorization: () => Promise.resolve(`Bearer ${token}`),
  });
  const signal = (): AbortSignal => AbortSignal.timeout(30_000);

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    controllerClient = new KubeClient(cp.kubeConfig(await controllerKubeconfig(cp, NS)));
    agentA = new KubeClient(cp.kubeConfig(await agentKubeconfig(cp, NODE_A, NS)));
    for (const name of [NODE_A, NODE_B]) await createNode(admin, { name }, signal());
    for (const [name, pw] of [[COPY_A, PASSWORD_A], [COPY_B, PASSWORD_B]] as const) {
      await admin.apply(`/api/v1/namespaces/${NS}/secrets/${name}`, pullSecret(name, pw), 'kwarm-tests', signal());
    }
    await admin.apply(`/api/v1/namespaces/${NS}/secrets/${OPAQUE}`, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: OPAQUE, namespace: NS }, type: 'Opaque', data: { token: Buffer.from(PASSWORD_A).toString('base64') },
    }, 'kwarm-tests', signal());
    const retry = { maxAttempts: 1, backoffSeconds: 1 };
    await applySpec(admin, NODE_A, { images: [{ image: `registry.f04.test/a:${RUN}`, pullSecrets: [COPY_A, OPAQUE], retry }] });
    await applySpec(admin, NODE_B, { images: [{ image: `registry.f04.test/b:${RUN}`, pullSecrets: [COPY_B], retry }] });
    const log = winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream: logged })] });
    // The controller's side with the chart's controller RBAC (TokenReviews, the CA ConfigMap, the copies).
    server = await startCredentialsServer({
      port: 0, host: '127.0.0.1', namespace: NS, service: SERVICE, secret: CERT_SECRET, caConfigMap: CA_CONFIGMAP, agentServiceAccount: 'kwarm-agent',
    }, { client: controllerClient, log });
    await waitFor(() => server!.check().ok, { timeoutMs: 30_000, what: 'the credentials server has a certificate and published its CA' });
  });

  after(async () => {
    await server?.close();
    for (const n of [NODE_A, NODE_B]) await deleteNodeImageSet(admin, n).catch(() => undefined);
    await deleteNodes(admin, [NODE_A, NODE_B], signal()).catch(() => undefined);
    for (const s of [COPY_A, COPY_B, OPAQUE, CERT_SECRET]) await admin.delete(`/api/v1/namespaces/${NS}/secrets/${s}`, signal()).catch(() => undefined);
    await admin.delete(`/api/v1/namespaces/${NS}/configmaps/${CA_CONFIGMAP}`, signal()).catch(() => undefined);
    controllerClient.close();
    agentA.close();
    admin.close();
  });

  it('the agent\'s own token (chart RBAC) can no longer GET a copy Secret: 403', async () => {
    let status: number | undefined;
    try {
      await agentA.get(`/api/v1/namespaces/${NS}/secrets/${COPY_A}`, signal());
    } catch (err) {
      status = err instanceof KubeApiError ? err.status : undefined;
    }
    expect(status).to.equal(403);
  });

  it('serves node A\'s token the copy A\'s NodeImageSet names, decoded, and node B\'s token B\'s', async () => {
    const a = await source(agentA, await agentToken(cp, NODE_A, NS)).read([COPY_A], signal());
    expect(a.missing).to.deep.equal([]);
    expect(a.secrets.map((s) => [s.name, s.type])).to.deep.equal([[COPY_A, 'kubernetes.io/dockerconfigjson']]);
    expect(a.secrets[0]!.data['.dockerconfigjson']).to.include(PASSWORD_A);
    expect(a.secrets[0]!.resourceVersion).to.be.a('string');
    const b = await source(agentA, await agentToken(cp, NODE_B, NS)).read([COPY_B], signal());
    expect(b.secrets[0]!.data['.dockerconfigjson']).to.include(PASSWORD_B);
  });

  it('refuses node A\'s token node B\'s copy, any Secret its NodeImageSet does not name, and Secrets that are not pull secrets (403)', async () => {
    const tokenA = await agentToken(cp, NODE_A, NS);
    const refused = async (names: string[]): Promise<string> => {
      try {
        await source(agentA, tokenA).read(names, signal());
      } catch (err) {
        return String(err instanceof Error ? err.message : err);
      }
      throw new Error(`${names.join(', ')} was served to node A`);
    };
    expect(await refused([COPY_B])).to.match(/HTTP 403.*does not name kwarm-pull\.team-b/);
    expect(await refused([COPY_A, COPY_B])).to.match(/HTTP 403/);
    expect(await refused([CERT_SECRET])).to.match(/HTTP 403.*does not name/);
    expect(await refused(['sh.helm.release.v1.kwarm.v1'])).to.match(/HTTP 403/);
    // Named by A's NodeImageSet, but an Opaque Secret: never served.
    expect(await refused([OPAQUE])).to.match(/HTTP 403.*not a pull secret/);
  });

  it('refuses other ServiceAccounts, tokens not bound to a pod on a node, bad tokens and no token', async () => {
    const post = async (authorization: string | undefined): Promise<number> => {
      const { request } = await import('node:https');
      const ca = (await admin.get(`/api/v1/namespaces/${NS}/configmaps/${CA_CONFIGMAP}`, signal()) as { data: Record<string, string> }).data['ca.crt'];
      return new Promise((resolve, reject) => {
        const req = request(`https://127.0.0.1:${server!.port}/pull-credentials`, {
          method: 'POST', ca, servername: `${SERVICE}.${NS}.svc`,
          headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
        }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
        req.on('error', reject);
        req.end(JSON.stringify({ names: [COPY_A] }));
      });
    };
    const controllerToken = (await cp.kubectl(['create', 'token', CONTROLLER_SA, '-n', NS, '--duration=10m'])).stdout.trim();
    const unboundAgentToken = (await cp.kubectl(['create', 'token', 'kwarm-agent', '-n', NS, '--duration=10m'])).stdout.trim();
    expect(await post(`Bearer ${controllerToken}`)).to.equal(403);
    expect(await post(`Bearer ${unboundAgentToken}`)).to.equal(403);
    expect(await post('Bearer not-a-token')).to.equal(401);
    expect(await post(undefined)).to.equal(401);
    expect(logText).to.include('only system:serviceaccount:kwarm-system:kwarm-agent may read pull credentials');
    expect(logText).to.include('not bound to a pod on a node');
  });

  it('logs names, never a credential', () => {
    expect(logText).to.include('pull credentials served');
    expect(logText).to.include(COPY_A);
    for (const secret of [PASSWORD_A, PASSWORD_B, Buffer.from(PASSWORD_A).toString('base64')]) expect(logText).to.not.include(secret);
  });
});
