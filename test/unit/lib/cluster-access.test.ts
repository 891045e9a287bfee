import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestOptions } from 'node:https';
import {
  ClusterAccessError,
  defaultAccessSource,
  inClusterAccess,
  kubeconfigAccess,
  loadClusterAccess,
  loadKubeconfig,
  parseKubeconfig,
  type ClusterAccess,
  type KubeconfigSelection,
} from '../../../lib/cluster-access.ts';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** TLS material as text (the options type also allows key objects, which these tests never set). */
function text(v: unknown): string {
  return Buffer.isBuffer(v) || typeof v === 'string' ? v.toString() : `unexpected ${typeof v}`;
}

function kubeconfig(opts: { cluster?: Record<string, unknown>; user?: Record<string, unknown>; context?: Record<string, unknown>; current?: string | null } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64('CA-PEM'), ...opts.cluster } }],
    users: [{ name: 'u', user: { token: 'tok', ...opts.user } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', ...opts.context } }],
    ...(opts.current === null ? {} : { 'current-context': opts.current ?? 'ctx' }),
  });
}

function parse(text: string, dir = '/etc/kube'): KubeconfigSelection {
  return parseKubeconfig([{ text, dir, path: join(dir, 'config') }]);
}

function direct(text: string, dir?: string): Extract<KubeconfigSelection, { kind: 'direct' }> {
  const s = parse(text, dir);
  if (s.kind !== 'direct') throw new Error(`expected a direct selection, got ${s.kind}`);
  return s;
}

async function applied(access: ClusterAccess): Promise<RequestOptions> {
  const o: RequestOptions = { headers: { accept: 'application/json' } };
  await access.applyToHTTPSOptions(o);
  return o;
}

function authorization(o: RequestOptions): unknown {
  return (o.headers as Record<string, unknown>).authorization;
}

describe('lib/cluster-access: in-cluster ServiceAccount', () => {
  let dir: string;

  beforeEach(() => {
    dir = makeTempDir('sa');
    writeFileSync(join(dir, 'token'), 'token-one\n');
    writeFileSync(join(dir, 'ca.crt'), 'PEM');
  });

  afterEach(() => {
    removeDir(dir);
  });

  it('points at the service address with the mounted CA and token', async () => {
    const access = inClusterAccess({ host: '10.96.0.1', port: '443', dir });
    expect(access.getCurrentCluster()).to.include({ server: 'https://10.96.0.1:443' });
    const o = await applied(access);
    expect(String(o.ca)).to.equal('PEM');
    expect(o.headers).to.deep.equal({ accept: 'application/json', authorization: 'Bearer token-one' });
  });

  it('brackets an IPv6 service address', () => {
    expect(inClusterAccess({ host: 'fd00::1', port: '6443', dir }).getCurrentCluster()?.server).to.equal('https://[fd00::1]:6443');
  });

  it('reads the token file again once the cached one is older than the cache time (the kubelet rotates it)', async () => {
    let now = 0;
    const access = inClusterAccess({ host: 'h', port: '1', dir, tokenCacheMs: 1000, now: () => now });
    expect(authorization(await applied(access))).to.equal('Bearer token-one');
    writeFileSync(join(dir, 'token'), 'token-two');
    now = 999;
    expect(authorization(await applied(access))).to.equal('Bearer token-one');
    now = 1000;
    expect(authorization(await applied(access))).to.equal('Bearer token-two');
  });

  it('fails a request, not the start, when the token file is empty', async () => {
    writeFileSync(join(dir, 'token'), '\n');
    const access = inClusterAccess({ host: 'h', port: '1', dir });
    let error: unknown;
    await access.applyToHTTPSOptions({}).catch((err: unknown) => { error = err; });
    expect(error).to.be.instanceOf(ClusterAccessError);
    expect(String(error)).to.match(/token is empty/);
  });

  it('refuses to start outside a cluster, saying to use --kubeconfig', () => {
    expect(() => inClusterAccess({ host: undefined, port: '443', dir })).to.throw(ClusterAccessError, /--kubeconfig/);
    expect(() => inClusterAccess({ host: 'h', port: '', dir })).to.throw(ClusterAccessError);
  });
});

describe('lib/cluster-access: kubeconfig parsing', () => {
  it('resolves the current context to its cluster and user (token, inline CA, namespace)', async () => {
    const s = direct(kubeconfig({ context: { namespace: 'team' } }));
    expect(s.context).to.equal('ctx');
    expect(s.namespace).to.equal('team');
    expect(s.cluster).to.deep.include({ name: 'c', server: 'https://127.0.0.1:6443', insecureSkipTlsVerify: false, tlsServerName: undefined });
    expect(s.user.credentials).to.deep.equal({ kind: 'token', token: 'tok' });
    const o = await applied(kubeconfigAccess(s));
    expect(String(o.ca)).to.equal('CA-PEM');
    expect(o.rejectUnauthorized).to.equal(undefined);
    expect(o.headers).to.deep.equal({ accept: 'application/json', authorization: 'Bearer tok' });
    expect(kubeconfigAccess(s).getCurrentCluster()?.server).to.equal('https://127.0.0.1:6443');
  });

  it('reads the YAML kubectl and the test harness write', () => {
    const yaml = `apiVersion: v1
kind: Config
clusters:
- name: kwarm-test
  cluster:
    server: https://127.0.0.1:34567
    certificate-authority-data: ${b64('PEM')}
users:
- name: system:serviceaccount:kwarm-system:kwarm-agent
  user:
    token: eyJhbGciOi.abc.def
contexts:
- name: agent@kwarm-test
  context:
    cluster: kwarm-test
    user: system:serviceaccount:kwarm-system:kwarm-agent
current-context: agent@kwarm-test
`;
    const s = direct(yaml);
    expect(s.cluster.server).to.equal('https://127.0.0.1:34567');
    expect(s.user).to.deep.include({ name: 'system:serviceaccount:kwarm-system:kwarm-agent', credentials: { kind: 'token', token: 'eyJhbGciOi.abc.def' } });
  });

  it('makes file paths relative to the kubeconfig\'s directory and keeps absolute ones', () => {
    const s = direct(kubeconfig({
      cluster: { 'certificate-authority-data': undefined, 'certificate-authority': 'pki/ca.crt' },
      user: { token: undefined, tokenFile: '/run/token', 'client-certificate': 'me.crt', 'client-key': '../keys/me.key' },
    }), '/home/me/.kube');
    expect(s.cluster.certificateAuthority).to.deep.equal({ kind: 'file', path: '/home/me/.kube/pki/ca.crt' });
    expect(s.user.credentials).to.deep.equal({ kind: 'tokenFile', path: '/run/token' });
    expect(s.user.clientCertificate).to.deep.equal({ cert: { kind: 'file', path: '/home/me/.kube/me.crt' }, key: { kind: 'file', path: '/home/me/keys/me.key' } });
  });

  it('prefers inline data to files and an inline token to a token file, as kubectl does', () => {
    const s = direct(kubeconfig({
      cluster: { 'certificate-authority': '/ca.crt' },
      user: { tokenFile: '/token', username: 'admin', password: 'pw', 'client-certificate': '/c', 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
    }));
    expect(s.cluster.certificateAuthority).to.deep.equal({ kind: 'data', data: Buffer.from('CA-PEM') });
    expect(s.user.credentials).to.deep.equal({ kind: 'token', token: 'tok' });
    expect(s.user.clientCertificate?.cert).to.deep.equal({ kind: 'data', data: Buffer.from('CERT') });
  });

  it('applies insecure-skip-tls-verify (without the CA), tls-server-name, a client certificate and basic auth', async () => {
    const s = direct(kubeconfig({
      cluster: { 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes.default' },
      user: { token: undefined, username: 'admin', password: 'secret', 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
    }));
    const o = await applied(kubeconfigAccess(s));
    expect(o.ca).to.equal(undefined);
    expect(o.rejectUnauthorized).to.equal(false);
    expect(o.servername).to.equal('kubernetes.default');
    expect(String(o.cert)).to.equal('CERT');
    expect(text(o.key)).to.equal('KEY');
    expect(o.auth).to.equal('admin:secret');
    expect(authorization(o)).to.equal(undefined);
  });

  it('sends no credentials for a context without a user, and accepts a plain http server', async () => {
    const s = direct(kubeconfig({ cluster: { server: 'http://127.0.0.1:8080', 'certificate-authority-data': undefined }, context: { user: undefined } }));
    expect(s.user.credentials).to.deep.equal({ kind: 'none' });
    const o = await applied(kubeconfigAccess(s));
    expect(o.headers).to.deep.equal({ accept: 'application/json' });
    expect(o.ca).to.equal(undefined);
  });

  it('merges a KUBECONFIG list: the first file naming an entry and the first current-context win', () => {
    const first = JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: 'https://first:6443' } }],
      users: [{ name: 'u', user: { token: 'first' } }],
    });
    const second = JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: 'https://second:6443' } }, { name: 'other', cluster: { server: 'https://other:6443' } }],
      users: [{ name: 'u', user: { token: 'second' } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }, { name: 'o', context: { cluster: 'other', user: 'u' } }],
      'current-context': 'ctx',
    });
    const third = JSON.stringify({ 'current-context': 'o' });
    const s = parseKubeconfig([
      { text: first, dir: '/a', path: '/a/config' },
      { text: '', dir: '/b', path: '/b/empty' },
      { text: second, dir: '/c', path: '/c/config' },
      { text: third, dir: '/d', path: '/d/config' },
    ]);
    expect(s.kind).to.equal('direct');
    if (s.kind !== 'direct') return;
    expect(s.context).to.equal('ctx');
    expect(s.cluster.server).to.equal('https://first:6443');
    expect(s.user.credentials).to.deep.equal({ kind: 'token', token: 'first' });
  });

  it('leaves exec plugins, auth providers and impersonation to client-node, with the paths made absolute', () => {
    for (const [user, reason] of [
      [{ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } }, 'exec credential plugin'],
      [{ 'auth-provider': { name: 'oidc', config: {} } }, 'auth-provider'],
      [{ as: 'jane' }, 'impersonation'],
    ] as const) {
      const s = parse(kubeconfig({ cluster: { 'certificate-authority': 'ca.crt' }, user: { token: undefined, ...user } }), '/home/me/.kube');
      expect(s.kind).to.equal('delegate');
      if (s.kind !== 'delegate') continue;
      expect(s.reason).to.equal(reason);
      expect(s.context).to.equal('ctx');
      expect(s.config).to.deep.include({ 'current-context': 'ctx' });
      expect(JSON.stringify(s.config)).to.include('"certificate-authority":"/home/me/.kube/ca.crt"');
    }
  });

  it('says what is wrong with an unusable kubeconfig', () => {
    const cases: [string, RegExp][] = [
      [kubeconfig({ current: null }), /no current-context/],
      [kubeconfig({ current: 'nope' }), /context nope not found/],
      [kubeconfig({ context: { cluster: 'gone' } }), /cluster gone of context ctx not found/],
      [kubeconfig({ context: { user: 'gone' } }), /user gone of context ctx not found/],
      [kubeconfig({ cluster: { server: undefined } }), /cluster c has no server/],
      [kubeconfig({ cluster: { server: 'not a url' } }), /not a URL/],
      [kubeconfig({ cluster: { server: 'ftp://x' } }), /neither https nor http/],
      [kubeconfig({ cluster: { 'proxy-url': 'http://proxy:3128' } }), /proxy-url is not supported/],
      [kubeconfig({ cluster: { 'insecure-skip-tls-verify': 'yes please' } }), /insecure-skip-tls-verify must be true or false/],
      [kubeconfig({ user: { 'client-certificate-data': b64('CERT') } }), /client-certificate and client-key must be given together/],
      [kubeconfig({ user: { token: 42 } }), /token must be a string/],
      [JSON.stringify({ clusters: { c: {} } }), /clusters must be a list/],
      [JSON.stringify({ clusters: [{ cluster: {} }] }), /needs a name/],
      ['- just\n- a list\n', /expected a mapping/],
      ['a: [unclosed', /not YAML/],
    ];
    for (const [text, message] of cases) {
      expect(() => parse(text), message.source).to.throw(ClusterAccessError, message);
    }
    expect(() => parseKubeconfig([]), 'no files').to.throw(ClusterAccessError, /no kubeconfig file/);
  });
});

describe('lib/cluster-access: loading', () => {
  let dir: string;

  beforeEach(() => {
    dir = makeTempDir('kubeconfig');
  });

  afterEach(() => {
    removeDir(dir);
  });

  it('reads CA, certificate and token files relative to the kubeconfig, the token again after the cache time', async () => {
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki', 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'me.crt'), 'CERT-FILE');
    writeFileSync(join(dir, 'me.key'), 'KEY-FILE');
    writeFileSync(join(dir, 'token'), 'first\n');
    const path = join(dir, 'config');
    writeFileSync(path, kubeconfig({
      cluster: { 'certificate-authority-data': undefined, 'certificate-authority': 'pki/ca.crt' },
      user: { token: undefined, tokenFile: 'token', 'client-certificate': 'me.crt', 'client-key': 'me.key' },
    }));
    let now = 0;
    const access = await loadKubeconfig([path], { fileCacheMs: 1000, now: () => now });
    const o = await applied(access);
    expect([text(o.ca), text(o.cert), text(o.key), authorization(o)]).to.deep.equal(['CA-FILE', 'CERT-FILE', 'KEY-FILE', 'Bearer first']);
    writeFileSync(join(dir, 'token'), 'second');
    now = 500;
    expect(authorization(await applied(access))).to.equal('Bearer first');
    now = 1000;
    expect(authorization(await applied(access))).to.equal('Bearer second');
  });

  it('hands an exec user to client-node\'s KubeConfig, on the selected context', async () => {
    const path = join(dir, 'config');
    writeFileSync(path, kubeconfig({ user: { token: undefined, exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } } }));
    const access = await loadKubeconfig([path]);
    const { KubeConfig } = await import('@kubernetes/client-node');
    expect(access).to.be.instanceOf(KubeConfig);
    expect(access.getCurrentCluster()?.server).to.equal('https://127.0.0.1:6443');
  });

  it('names the file it cannot read', async () => {
    let error: unknown;
    await loadKubeconfig([join(dir, 'missing')]).catch((err: unknown) => { error = err; });
    expect(error).to.be.instanceOf(ClusterAccessError);
    expect(String(error)).to.include(join(dir, 'missing'));
  });

  it('loads the in-cluster source from the ServiceAccount directory', async () => {
    writeFileSync(join(dir, 'token'), 'sa-token');
    writeFileSync(join(dir, 'ca.crt'), 'SA-CA');
    const access = await loadClusterAccess({ kind: 'in-cluster', host: '10.0.0.1', port: '443' }, { serviceAccountDir: dir });
    expect(access.getCurrentCluster()?.server).to.equal('https://10.0.0.1:443');
    expect(authorization(await applied(access))).to.equal('Bearer sa-token');
  });

  it('chooses the source in kubectl\'s order: flag, $KUBECONFIG list, ~/.kube/config, in-cluster', () => {
    const none = (): boolean => false;
    const all = (): boolean => true;
    const env = { KUBECONFIG: '/a:/b::', HOME: '/home/me', KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
    expect(defaultAccessSource('/flag', env, all)).to.deep.equal({ kind: 'kubeconfig', paths: ['/flag'] });
    expect(defaultAccessSource(undefined, env, all)).to.deep.equal({ kind: 'kubeconfig', paths: ['/a', '/b'] });
    expect(defaultAccessSource(undefined, { ...env, KUBECONFIG: '' }, (p) => p === '/home/me/.kube/config')).to.deep.equal({ kind: 'kubeconfig', paths: ['/home/me/.kube/config'] });
    expect(defaultAccessSource(undefined, { ...env, KUBECONFIG: '' }, none)).to.deep.equal({ kind: 'in-cluster', host: '10.0.0.1', port: '443' });
  });
});
