import { expect } from 'chai';
import { credentialsConfig, type CredentialsFlags } from '../../../../controller/credentials/options.ts';

describe('credentials endpoint: flags', () => {
  const flags: CredentialsFlags = {
    'pull-credentials-port': 9444, 'pull-credentials-service': 'kwarm-credentials', 'pull-credentials-secret': 'kwarm-credentials-cert',
    'pull-credentials-ca-configmap': 'kwarm-credentials-ca', 'agent-service-account': 'kwarm-agent',
  };

  it('makes the configuration of the defaults', () => {
    expect(credentialsConfig(flags, 'kwarm-system')).to.deep.equal({
      port: 9444, namespace: 'kwarm-system', service: 'kwarm-credentials', secret: 'kwarm-credentials-cert',
      caConfigMap: 'kwarm-credentials-ca', agentServiceAccount: 'kwarm-agent',
    });
  });

  for (const [flag, value, message] of [
    ['pull-credentials-port', 70000, '--pull-credentials-port 70000 is not a port'],
    ['pull-credentials-port', 1.5, '--pull-credentials-port 1.5 is not a port'],
    ['pull-credentials-service', 'Kwarm', '--pull-credentials-service "Kwarm" is not a Service name'],
    ['pull-credentials-service', 'a.b', '--pull-credentials-service "a.b" is not a Service name'],
    ['pull-credentials-service', 'x'.repeat(64), 'is not a Service name'],
    ['pull-credentials-secret', 'bad_name', '--pull-credentials-secret "bad_name" is not an object name'],
    ['pull-credentials-ca-configmap', '-ca', '--pull-credentials-ca-configmap "-ca" is not an object name'],
    ['agent-service-account', 'x'.repeat(254), 'is not an object name'],
  ] as const) {
    it(`refuses --${flag}=${String(value).slice(0, 12)}, naming the flag`, () => {
      expect(() => credentialsConfig({ ...flags, [flag]: value }, 'kwarm-system')).to.throw(message);
    });
  }
});
