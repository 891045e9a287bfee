import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestOptions } from 'node:https';
import { InClusterConfigError, inClusterAccess } from '../../../agent/cluster-access.ts';
import { pullSecretFromObject } from '../../../agent/secret-reader.ts';
import { makeTempDir, removeDir } from '../../support/tmp.ts';

describe('agent/cluster-access (in-cluster ServiceAccount)', () => {
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
    expect(access.getCurrentCluster()).to.include({ server: 'https://10.96.0.1:443', skipTLSVerify: false });
    const opts: RequestOptions = { headers: { accept: 'application/json' } };
    await access.applyToHTTPSOptions(opts);
    expect(String(opts.ca)).to.equal('PEM');
    expect(opts.headers).to.deep.equal({ accept: 'application/json', authorization: 'Bearer token-one' });
  });

  it('brackets an IPv6 service address', () => {
    expect(inClusterAccess({ host: 'fd00::1', port: '6443', dir }).getCurrentCluster()?.server).to.equal('https://[fd00::1]:6443');
  });

  it('reads the token file again once the cached one is older than the cache time (the kubelet rotates it)', async () => {
    let now = 0;
    const access = inClusterAccess({ host: 'h', port: '1', dir, tokenCacheMs: 1000, now: () => now });
    const auth = async (): Promise<unknown> => {
      const o: RequestOptions = {};
      await access.applyToHTTPSOptions(o);
      return (o.headers as Record<string, string>).authorization;
    };
    expect(await auth()).to.equal('Bearer token-one');
    writeFileSync(join(dir, 'token'), 'token-two');
    now = 999;
    expect(await auth()).to.equal('Bearer token-one');
    now = 1000;
    expect(await auth()).to.equal('Bearer token-two');
  });

  it('refuses to start outside a cluster, saying to use --kubeconfig', () => {
    expect(() => inClusterAccess({ host: undefined, port: '443', dir })).to.throw(InClusterConfigError, /--kubeconfig/);
    expect(() => inClusterAccess({ host: 'h', port: '', dir })).to.throw(InClusterConfigError);
  });
});

describe('agent/secret-reader: pullSecretFromObject', () => {
  it('decodes the data values from base64 and keeps the type', () => {
    const s = pullSecretFromObject('kwarm-system', 'cred', {
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
    });
    expect(s).to.deep.equal({ namespace: 'kwarm-system', name: 'cred', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': '{"auths":{}}' } });
  });

  it('accepts a secret without data and rejects what is not a Secret', () => {
    expect(pullSecretFromObject('ns', 'empty', { type: 'Opaque' })).to.deep.equal({ namespace: 'ns', name: 'empty', type: 'Opaque', data: {} });
    expect(pullSecretFromObject('ns', 'x', 'nope')).to.equal(undefined);
    expect(pullSecretFromObject('ns', 'x', { data: ['a'] })).to.equal(undefined);
  });
});
