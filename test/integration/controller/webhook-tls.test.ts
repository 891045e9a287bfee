// The webhook server and its self-managed TLS against a real API server, with the chart's RBAC for the
// controller (rolloutGate.enabled): the Secret is created and owned by the webhook configuration, the caBundle
// holds its CA, the served certificate verifies against that CA for the Service name, replicas racing end up
// serving one certificate, a deleted Secret or a reset caBundle is repaired, and the server swaps certificates
// without a restart. Also the HTTP side (paths, methods, body cap, handler errors) and files mode.
import { expect } from 'chai';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import winston from 'winston';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { helm } from '../../../local-cluster/helm.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { field, str } from '../../../lib/raw.ts';
import { serviceDnsNames, issueCertificates, SECRET_KEYS } from '../../../controller/webhook/cert-decision.ts';
import { DEFAULT_SOURCES, decodeSecretData } from '../../../controller/webhook/cert-secret.ts';
import { MAX_BODY_BYTES } from '../../../controller/webhook/https-server.ts';
import { allowAdmission } from '../../../controller/webhook/admission-allow.ts';
import { startWebhookServer, type WebhookServer, type WebhookRoutes } from '../../../controller/webhook/webhook-server.ts';

const RELEASE = 'kwarm-wh';
const NS = 'kwarm-wh-test';
const CONFIG = `${RELEASE}-rollout-gate`;
const SECRET = `${RELEASE}-webhook-cert`;
const SERVICE = `${RELEASE}-webhook`;
const HOST = `${SERVICE}.${NS}.svc`;
const log = winston.createLogger({ silent: true });

interface Reply { status: number; body: unknown; peerCert: string }

/** POSTs (or sends `method`) to the server on 127.0.0.1 as the API server would: SNI and verification for the Service name. */
function call(port: number, ca: string, path: string, body: string, method = 'POST'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca, servername: HOST, headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      const peer = res.socket as unknown as { getPeerX509Certificate(): X509Certificate | undefined };
      const peerCert = peer.getPeerX509Certificate()?.toString() ?? '';
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, body: parsed, peerCert });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const review = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1' } });

describe('webhook: server and self-managed TLS on a real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let controllerClient: KubeClient;
  const servers: WebhookServer[] = [];
  let cleanup = '';

  const configPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${CONFIG}`;
  const secretPath = `/api/v1/namespaces/${NS}/secrets/${SECRET}`;
  const caBundle = async (): Promise<string> => {
    const raw = await admin.get(configPath, AbortSignal.timeout(10_000));
    return Buffer.from(str(field((field(raw, 'webhooks') as unknown[])[0], 'clientConfig', 'caBundle')) ?? '', 'base64').toString();
  };
  const secretData = async () => decodeSecretData(await admin.getOptional(secretPath, AbortSignal.timeout(10_000)));
  const start = async (routes: WebhookRoutes = { '/mutate-pods': allowAdmission }): Promise<WebhookServer> => {
    const s = await startWebhookServer({ port: 0, host: '127.0.0.1', namespace: NS, service: SERVICE, tls: { kind: 'self-managed', secret: SECRET, configuration: CONFIG } },
      routes, { client: controllerClient, log });
    servers.push(s);
    return s;
  };
  /** Waits until the server is ready and the API server's view (caBundle) verifies what it serves. */
  const trusted = async (s: WebhookServer): Promise<Reply> => waitFor(async () => {
    if (!s.check().ok) return undefined;
    const r = await call(s.port, await caBundle(), '/mutate-pods', review);
    return r.status === 200 ? r : undefined;
  }, { what: 'the webhook served with a certificate the caBundle verifies', timeoutMs: 30_000, intervalMs: 200 });

  before(async () => {
    cp = await sharedControlPlane();
    admin = new KubeClient(cp.kubeConfig());
    // The chart's objects for the controller with the rollout gate: ServiceAccount, RBAC, the webhook configuration.
    const { stdout } = await helm(['template', RELEASE, 'charts/kwarm', '-n', NS, '--set', 'rolloutGate.enabled=true']);
    const keep = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'MutatingWebhookConfiguration']);
    const docs = (loadAllYaml(stdout) as ({ kind: string; metadata: { name: string }; webhooks?: { objectSelector?: unknown }[] } | null)[])
      .filter((d) => d !== null && keep.has(d.kind) && (d.kind !== 'ServiceAccount' || d.metadata.name.endsWith('controller')));
    for (const d of docs) {
      // Nothing in the shared control plane may be sent to a webhook nobody serves there.
      if (d?.kind === 'MutatingWebhookConfiguration') for (const w of d.webhooks ?? []) w.objectSelector = { matchLabels: { 'kwarm.io/never': 'true' } };
    }
    const yaml = [`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS}\n`, ...docs.map((d) => dumpYaml(d))].join('---\n');
    cleanup = yaml;
    await cp.apply(yaml);
    controllerClient = new KubeClient(cp.kubeConfig(await cp.serviceAccountKubeconfig(NS, `${RELEASE}-controller`)));
  });

  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  after(async () => {
    admin.close();
    controllerClient.close();
    if (cleanup !== '') await cp.kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], { input: cleanup });
  });

  it('creates the Secret (owned by the webhook configuration), writes the CA into the caBundle and serves a certificate for the Service name', async () => {
    const s = await start();
    expect(s.check().ok).to.equal(false);
    const r = await trusted(s);
    expect(r.body).to.deep.equal({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
    const data = await secretData();
    expect(await caBundle()).to.equal(data[SECRET_KEYS.caCert]);
    expect(new X509Certificate(r.peerCert).fingerprint256).to.equal(new X509Certificate(data[SECRET_KEYS.cert] ?? '').fingerprint256);
    expect(new X509Certificate(r.peerCert).subjectAltName).to.equal(serviceDnsNames(SERVICE, NS).map((n) => `DNS:${n}`).join(', '));
    const secret = await admin.get(secretPath, AbortSignal.timeout(10_000));
    const config = await admin.get(configPath, AbortSignal.timeout(10_000));
    expect(str(field(secret, 'type'))).to.equal('kubernetes.io/tls');
    expect(field(secret, 'metadata', 'ownerReferences')).to.deep.equal([{
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: CONFIG, uid: str(field(config, 'metadata', 'uid')),
    }]);
    // A certificate not from this CA is refused by a client holding the caBundle, as the API server would.
    const other = issueCertificates({ plan: { kind: 'issue-all', reason: 't' }, current: {}, dnsNames: [HOST], caCommonName: 'other', nowMs: Date.now() }, DEFAULT_SOURCES);
    let refused = '';
    await call(s.port, other[SECRET_KEYS.caCert], '/mutate-pods', review).catch((err: unknown) => { refused = String(err); });
    expect(refused).to.match(/self-signed|unable to verify|signature/i);
  });

  it('a restarted replica and a second one serve the Secret\'s certificate as it is: nothing is re-issued', async () => {
    const before = await secretData();
    expect(before[SECRET_KEYS.cert]).to.be.a('string');
    const [a, b] = [await start(), await start()];
    const [ra, rb] = [await trusted(a), await trusted(b)];
    expect(ra.peerCert).to.equal(rb.peerCert);
    expect(await secretData()).to.deep.equal(before);
  });

  it('Secret deleted: a new CA and certificate, the caBundle follows, and the running servers swap to it on the same port', async () => {
    const [a, b] = [await start(), await start()];
    const old = (await trusted(a)).peerCert;
    await trusted(b);
    const oldCa = await caBundle();
    await admin.delete(secretPath, AbortSignal.timeout(10_000));
    await waitFor(async () => (await caBundle()) !== oldCa, { what: 'a new caBundle', timeoutMs: 30_000, intervalMs: 200 });
    const data = await secretData();
    expect(await caBundle()).to.equal(data[SECRET_KEYS.caCert]);
    // Both replicas, racing to re-create it, serve the one certificate that won.
    for (const s of [a, b]) {
      const r = await waitFor(async () => {
        const x = await call(s.port, await caBundle(), '/mutate-pods', review).catch(() => undefined);
        return x?.status === 200 ? x : undefined;
      }, { what: 'the new certificate served', timeoutMs: 30_000, intervalMs: 200 });
      expect(r.peerCert).to.not.equal(old);
      expect(new X509Certificate(r.peerCert).fingerprint256).to.equal(new X509Certificate(data[SECRET_KEYS.cert] ?? '').fingerprint256);
    }
  });

  it('a caBundle reset by someone else is written again', async () => {
    const s = await start();
    await trusted(s);
    const ca = await caBundle();
    await admin.patch(configPath, 'json', [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: Buffer.from('stale').toString('base64') }], AbortSignal.timeout(10_000));
    await waitFor(async () => (await caBundle()) === ca, { what: 'the caBundle restored', timeoutMs: 30_000, intervalMs: 200 });
  });

  it('answers 404 for other paths, 405 for other methods, 413 above the body limit, 400 for bad JSON, 500 with the reason when the handler fails', async () => {
    const s = await start({ '/mutate-pods': allowAdmission, '/fails': () => Promise.reject(new Error('no decision: cache not synced')) });
    await trusted(s);
    const ca = await caBundle();
    expect((await call(s.port, ca, '/other', review)).status).to.equal(404);
    expect((await call(s.port, ca, '/mutate-pods', '', 'GET')).status).to.equal(405);
    expect((await call(s.port, ca, '/mutate-pods', 'x'.repeat(MAX_BODY_BYTES + 1))).status).to.equal(413);
    expect((await call(s.port, ca, '/mutate-pods', '{not json')).status).to.equal(400);
    const failed = await call(s.port, ca, '/fails', review);
    expect(failed.status).to.equal(500);
    expect(failed.body).to.deep.equal({ error: 'no decision: cache not synced' });
    expect((await call(s.port, ca, '/mutate-pods', '{}')).status).to.equal(500);
  });
});

describe('webhook: certificate from files (cert-manager)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'kwarm-webhook-files-'));
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('serves tls.crt/tls.key from the directory and swaps to new files without a restart', async () => {
    const issue = () => issueCertificates({ plan: { kind: 'issue-all', reason: 't' }, current: {}, dnsNames: [HOST], caCommonName: 'cm', nowMs: Date.now() }, DEFAULT_SOURCES);
    // As the kubelet updates a Secret volume: new files beside, then one rename.
    const write = (d: ReturnType<typeof issue>, n: number): void => {
      const sub = join(dir, `..${n}`);
      rmSync(sub, { recursive: true, force: true });
      writeFileSync(`${sub}.crt`, d[SECRET_KEYS.cert]);
      writeFileSync(`${sub}.key`, d[SECRET_KEYS.key]);
      renameSync(`${sub}.crt`, join(dir, 'tls.crt'));
      renameSync(`${sub}.key`, join(dir, 'tls.key'));
    };
    const first = issue();
    const s = await startWebhookServer({ port: 0, host: '127.0.0.1', namespace: NS, service: SERVICE, tls: { kind: 'files', certDir: dir } },
      // The client is not used in files mode.
      { '/mutate-pods': allowAdmission }, { client: new KubeClient((await sharedControlPlane()).kubeConfig()), log });
    try {
      await waitFor(() => !s.check().ok, { what: 'not ready without files', timeoutMs: 5000 });
      write(first, 1);
      const r1 = await waitFor(async () => (await call(s.port, first[SECRET_KEYS.caCert], '/mutate-pods', review).catch(() => undefined)), { what: 'first certificate', timeoutMs: 20_000, intervalMs: 200 });
      expect(r1.status).to.equal(200);
      expect(s.check().ok).to.equal(true);
      const second = issue();
      write(second, 2);
      const r2 = await waitFor(async () => (await call(s.port, second[SECRET_KEYS.caCert], '/mutate-pods', review).catch(() => undefined)), { what: 'second certificate', timeoutMs: 20_000, intervalMs: 200 });
      expect(r2.peerCert).to.not.equal(r1.peerCert);
    } finally {
      await s.close();
    }
  });
});
