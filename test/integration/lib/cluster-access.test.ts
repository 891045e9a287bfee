// Kubeconfigs read without client-node, used by KubeClient against the real API server (token, CA, token file
// rotation, insecure-skip-tls-verify) and against a TLS endpoint that requires a client certificate (the test
// API server has no client CA, so certificates are proven on a Node TLS server with openssl-made keys).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { loadKubeconfig, parseKubeconfig } from '../../../lib/cluster-access.ts';
import { KubeApiError, KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';

function kubeconfigText(server: string, cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'test',
    clusters: [{ name: 'test', cluster: { server, ...cluster } }],
    users: [{ name: 'test', user }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
  });
}

function namespaceName(body: unknown): unknown {
  return typeof body === 'object' && body !== null && 'metadata' in body && typeof body.metadata === 'object' && body.metadata !== null && 'name' in body.metadata
    ? body.metadata.name
    : undefined;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to fail');
}

describe('lib/cluster-access: kubeconfigs against real TLS endpoints', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let dir: string;
  let adminToken: string;
  let caPem: Buffer;
  const clients: KubeClient[] = [];
  const client = (c: KubeClient): KubeClient => {
    clients.push(c);
    return c;
  };

  before(async () => {
    cp = await sharedControlPlane();
    dir = makeTempDir('cluster-access');
    const admin = parseKubeconfig([{ text: readFileSync(cp.adminKubeconfig, 'utf8'), dir: cp.dir, path: cp.adminKubeconfig }]);
    if (admin.kind !== 'direct' || admin.user.credentials.kind !== 'token' || admin.cluster.certificateAuthority?.kind !== 'data') {
      throw new Error('the harness\'s admin kubeconfig is expected to carry a token and inline CA data');
    }
    adminToken = admin.user.credentials.token;
    caPem = admin.cluster.certificateAuthority.data;
  });

  after(() => {
    for (const c of clients) c.close();
    removeDir(dir);
  });

  it('reaches the API server with the harness\'s kubeconfig (token, inline CA)', async () => {
    const c = client(new KubeClient(await loadKubeconfig([cp.adminKubeconfig])));
    expect(namespaceName(await c.get('/api/v1/namespaces/default', AbortSignal.timeout(10_000)))).to.equal('default');
  });

  it('reads a CA file and a token file next to the kubeconfig, and follows the token when it rotates', async () => {
    writeFileSync(join(dir, 'ca.crt'), caPem);
    writeFileSync(join(dir, 'token'), `${adminToken}\n`);
    const path = join(dir, 'files.kubeconfig');
    writeFileSync(path, kubeconfigText(cp.server, { 'certificate-authority': 'ca.crt' }, { tokenFile: 'token' }));
    let now = 0;
    const c = client(new KubeClient(await loadKubeconfig([path], { fileCacheMs: 1000, now: () => now })));
    expect(namespaceName(await c.get('/api/v1/namespaces/default', AbortSignal.timeout(10_000)))).to.equal('default');
    writeFileSync(join(dir, 'token'), 'not-a-valid-token');
    now = 1000;
    const err = await failure(c.get('/api/v1/namespaces/default', AbortSignal.timeout(10_000)));
    expect(err).to.be.instanceOf(KubeApiError);
    expect((err as KubeApiError).status).to.equal(401);
  });

  it('skips server verification only when insecure-skip-tls-verify says so', async () => {
    const insecure = join(dir, 'insecure.kubeconfig');
    writeFileSync(insecure, kubeconfigText(cp.server, { 'insecure-skip-tls-verify': true }, { token: adminToken }));
    const c = client(new KubeClient(await loadKubeconfig([insecure])));
    expect(namespaceName(await c.get('/api/v1/namespaces/default', AbortSignal.timeout(10_000)))).to.equal('default');

    const noCa = join(dir, 'no-ca.kubeconfig');
    writeFileSync(noCa, kubeconfigText(cp.server, {}, { token: adminToken }));
    const strict = client(new KubeClient(await loadKubeconfig([noCa])));
    const err = await failure(strict.get('/api/v1/namespaces/default', AbortSignal.timeout(10_000)));
    expect(String(err)).to.match(/certificate/i);
  });

  describe('client certificates', () => {
    let pki: string;
    let server: Server;
    let url: string;

    before(async () => {
      pki = join(dir, 'pki');
      const openssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }); };
      execFileSync('mkdir', ['-p', pki]);
      const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      openssl('req', '-x509', ...key, '-keyout', join(pki, 'ca.key'), '-out', join(pki, 'ca.crt'), '-days', '1', '-subj', '/CN=kwarm-test-ca');
      writeFileSync(join(pki, 'server.ext'), 'subjectAltName=DNS:kwarm-api.test\n');
      for (const [name, cn, ext] of [['server', 'kwarm-api', ['-extfile', join(pki, 'server.ext')]], ['client', 'jane', []]] as const) {
        openssl('req', ...key, '-keyout', join(pki, `${name}.key`), '-out', join(pki, `${name}.csr`), '-subj', `/CN=${cn}`);
        openssl('x509', '-req', '-in', join(pki, `${name}.csr`), '-CA', join(pki, 'ca.crt'), '-CAkey', join(pki, 'ca.key'), '-CAcreateserial',
          '-out', join(pki, `${name}.crt`), '-days', '1', ...ext);
      }
      server = createServer({
        key: readFileSync(join(pki, 'server.key')),
        cert: readFileSync(join(pki, 'server.crt')),
        ca: readFileSync(join(pki, 'ca.crt')),
        requestCert: true,
        rejectUnauthorized: true,
      }, (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ metadata: { name: peer.subject.CN } }));
      });
      await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('TLS server has no port');
      url = `https://127.0.0.1:${address.port}`;
    });

    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    });

    it('presents the client certificate from files, verifying the server by tls-server-name', async () => {
      const path = join(pki, 'cert.kubeconfig');
      writeFileSync(path, kubeconfigText(url, { 'certificate-authority': 'ca.crt', 'tls-server-name': 'kwarm-api.test' }, { 'client-certificate': 'client.crt', 'client-key': 'client.key' }));
      const c = client(new KubeClient(await loadKubeconfig([path])));
      expect(namespaceName(await c.get('/whoami', AbortSignal.timeout(10_000)))).to.equal('jane');
    });

    it('presents the client certificate from inline data', async () => {
      const data = (name: string): string => readFileSync(join(pki, name)).toString('base64');
      const path = join(dir, 'cert-data.kubeconfig');
      writeFileSync(path, kubeconfigText(url, { 'certificate-authority-data': data('ca.crt'), 'tls-server-name': 'kwarm-api.test' }, { 'client-certificate-data': data('client.crt'), 'client-key-data': data('client.key') }));
      const c = client(new KubeClient(await loadKubeconfig([path])));
      expect(namespaceName(await c.get('/whoami', AbortSignal.timeout(10_000)))).to.equal('jane');
    });

    it('fails the handshake without a client certificate, and with a server name the certificate does not carry', async () => {
      const noCert = join(pki, 'no-cert.kubeconfig');
      writeFileSync(noCert, kubeconfigText(url, { 'certificate-authority': 'ca.crt', 'tls-server-name': 'kwarm-api.test' }, {}));
      const anonymous = client(new KubeClient(await loadKubeconfig([noCert])));
      expect(await failure(anonymous.get('/whoami', AbortSignal.timeout(10_000)))).to.be.instanceOf(Error);

      const wrongName = join(pki, 'wrong-name.kubeconfig');
      writeFileSync(wrongName, kubeconfigText(url, { 'certificate-authority': 'ca.crt' }, { 'client-certificate': 'client.crt', 'client-key': 'client.key' }));
      const mismatched = client(new KubeClient(await loadKubeconfig([wrongName])));
      expect(String(await failure(mismatched.get('/whoami', AbortSignal.timeout(10_000))))).to.match(/altnames|IP: 127\.0\.0\.1/i);
    });
  });
});
