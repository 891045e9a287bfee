import { expect } from 'chai';
import { caBundleOf, caBundlePatch } from '../../../../controller/webhook/ca-bundle.ts';
import { webhookConfig, type WebhookFlags } from '../../../../controller/webhook/options.ts';
import { allowAdmission } from '../../../../controller/webhook/admission-allow.ts';

const CA = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';

describe('webhook: caBundle patch', () => {
  const config = (bundles: (string | undefined)[]): unknown => ({
    metadata: { name: 'kwarm-rollout-gate', resourceVersion: '42' },
    webhooks: bundles.map((b, i) => ({ name: `w${i}.kwarm.io`, clientConfig: { service: { name: 's', namespace: 'n' }, ...(b === undefined ? {} : { caBundle: b }) } })),
  });

  it('writes the CA into every webhook that lacks it, testing each name and the resourceVersion', () => {
    expect(caBundlePatch(config([undefined, 'b2xk']), CA)).to.deep.equal([
      { op: 'test', path: '/metadata/resourceVersion', value: '42' },
      { op: 'test', path: '/webhooks/0/name', value: 'w0.kwarm.io' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: caBundleOf(CA) },
      { op: 'test', path: '/webhooks/1/name', value: 'w1.kwarm.io' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: caBundleOf(CA) },
    ]);
  });

  it('writes nothing when every caBundle holds the CA, or when there are no webhooks', () => {
    expect(caBundlePatch(config([caBundleOf(CA), caBundleOf(CA)]), CA)).to.deep.equal([]);
    expect(caBundlePatch({ metadata: {} }, CA)).to.deep.equal([]);
    expect(Buffer.from(caBundleOf(CA), 'base64').toString()).to.equal(CA);
  });
});

describe('webhook: flags', () => {
  const flags: WebhookFlags = {
    'webhook-port': 9443, 'webhook-tls': 'self-managed', 'webhook-cert-dir': '/etc/kwarm/webhook-certs',
    'webhook-secret': 'kwarm-webhook-cert', 'webhook-configuration': 'kwarm-rollout-gate', 'webhook-service': 'kwarm-webhook',
  };

  it('makes a typed configuration per TLS mode', () => {
    expect(webhookConfig(flags, 'kwarm-system')).to.deep.equal({
      port: 9443, namespace: 'kwarm-system', service: 'kwarm-webhook',
      tls: { kind: 'self-managed', secret: 'kwarm-webhook-cert', configuration: 'kwarm-rollout-gate' },
    });
    expect(webhookConfig({ ...flags, 'webhook-tls': 'files' }, 'ns').tls).to.deep.equal({ kind: 'files', certDir: '/etc/kwarm/webhook-certs' });
  });

  it('names the flag that is wrong', () => {
    expect(() => webhookConfig({ ...flags, 'webhook-port': 70000 }, 'n')).to.throw(/--webhook-port/);
    expect(() => webhookConfig({ ...flags, 'webhook-service': 'Not_A_Service' }, 'n')).to.throw(/--webhook-service/);
    expect(() => webhookConfig({ ...flags, 'webhook-secret': 'UPPER' }, 'n')).to.throw(/--webhook-secret/);
    expect(() => webhookConfig({ ...flags, 'webhook-configuration': '' }, 'n')).to.throw(/--webhook-configuration/);
    expect(() => webhookConfig({ ...flags, 'webhook-tls': 'files', 'webhook-cert-dir': '' }, 'n')).to.throw(/--webhook-cert-dir/);
  });
});

describe('webhook: placeholder /mutate-pods handler', () => {
  it('allows with the request\'s uid and no patch; refuses what is no AdmissionReview', async () => {
    expect(await allowAdmission({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1' } }))
      .to.deep.equal({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
    let failed = false;
    await allowAdmission({}).catch(() => { failed = true; });
    expect(failed).to.equal(true);
  });
});
