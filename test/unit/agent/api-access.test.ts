import { expect } from 'chai';
import { agentAccessSource } from '../../../agent/api-access.ts';
import { pullSecretFromObject } from '../../../agent/secret-reader.ts';

describe('agent/api-access', () => {
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  it('uses --kubeconfig when given', () => {
    expect(agentAccessSource('/etc/kwarm/kubeconfig', env)).to.deep.equal({ kind: 'kubeconfig', paths: ['/etc/kwarm/kubeconfig'] });
  });

  it('otherwise the pod\'s ServiceAccount, never $KUBECONFIG or ~/.kube/config of the node', () => {
    expect(agentAccessSource(undefined, env)).to.deep.equal({ kind: 'in-cluster', host: '10.96.0.1', port: '443' });
    expect(agentAccessSource('', {})).to.deep.equal({ kind: 'in-cluster', host: undefined, port: undefined });
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
