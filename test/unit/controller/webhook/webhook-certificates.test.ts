import { expect } from 'chai';
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { children, namedBits, oid, time, unsignedInteger } from '../../../../controller/webhook/der.ts';
import {
  DEFAULT_TIMING, dnsNamesOf, issueCertificates, planCertificates, SECRET_KEYS, serviceDnsNames, type CertSecretData, type IssueSources,
} from '../../../../controller/webhook/cert-decision.ts';
import { buildCertificate, commonNameSubject, subjectOf } from '../../../../controller/webhook/x509.ts';

const DAY = 24 * 3600 * 1000;
const T0 = Date.parse('2026-06-01T12:00:00Z');
const NAMES = serviceDnsNames('kwarm-webhook', 'kwarm-system');
const sources: IssueSources = {
  newKey: (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  randomBytes: (n) => randomBytes(n),
};

function issueAll(nowMs = T0, names: readonly string[] = NAMES): Required<CertSecretData> {
  return issueCertificates({ plan: { kind: 'issue-all', reason: 'test' }, current: {}, dnsNames: names, caCommonName: 'kwarm-webhook-ca@kwarm-system', nowMs }, sources);
}

describe('webhook certificates: DER encoding', () => {
  it('encodes lengths, integers, object identifiers, named bits and times as X.690 says', () => {
    expect(oid('1.2.840.10045.4.3.2').toString('hex')).to.equal('06082a8648ce3d040302');
    expect(unsignedInteger(Buffer.from([0x80])).toString('hex')).to.equal('02020080');
    expect(unsignedInteger(Buffer.from([0, 0, 5])).toString('hex')).to.equal('020105');
    // digitalSignature, keyCertSign, cRLSign: 1000 0110, one unused bit.
    expect(namedBits([0, 5, 6]).toString('hex')).to.equal('03020186');
    expect(namedBits([0]).toString('hex')).to.equal('03020780');
    expect(time(Date.parse('2049-12-31T23:59:59Z')).toString('ascii', 2)).to.equal('491231235959Z');
    expect(time(Date.parse('2050-01-01T00:00:00Z')).toString('ascii', 2)).to.equal('20500101000000Z');
    const long = Buffer.alloc(300, 1);
    const seq = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x2c + 4]), Buffer.from([0x04, 0x82, 0x01, 0x2c]), long]);
    expect(children(seq)).to.have.length(1);
    expect(children(seq)[0]!.length).to.equal(304);
  });
});

describe('webhook certificates: building them', () => {
  it('makes a CA and a serving certificate that Node verifies, with the Service names, serverAuth and the right validity', () => {
    const d = issueAll();
    const ca = new X509Certificate(d[SECRET_KEYS.caCert]);
    const cert = new X509Certificate(d[SECRET_KEYS.cert]);
    expect(ca.ca).to.equal(true);
    expect(cert.ca).to.equal(false);
    expect(ca.verify(ca.publicKey)).to.equal(true);
    expect(cert.verify(ca.publicKey)).to.equal(true);
    expect(cert.checkIssued(ca)).to.equal(true);
    expect(dnsNamesOf(cert)).to.deep.equal(['kwarm-webhook.kwarm-system.svc', 'kwarm-webhook.kwarm-system.svc.cluster.local']);
    expect(cert.checkHost('kwarm-webhook.kwarm-system.svc')).to.equal('kwarm-webhook.kwarm-system.svc');
    expect(cert.checkHost('other.kwarm-system.svc')).to.equal(undefined);
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']);
    expect(Date.parse(cert.validFrom)).to.equal(T0 - DEFAULT_TIMING.backdateMs);
    expect(Date.parse(cert.validTo)).to.equal(T0 + DEFAULT_TIMING.servingLifetimeMs);
    expect(Date.parse(ca.validTo)).to.equal(T0 + DEFAULT_TIMING.caLifetimeMs);
    expect(cert.checkPrivateKey(createPrivateKey(d[SECRET_KEYS.key]))).to.equal(true);
    expect(ca.checkPrivateKey(createPrivateKey(d[SECRET_KEYS.caKey]))).to.equal(true);
    expect(cert.serialNumber).to.not.equal(ca.serialNumber);
  });

  it('repeats the signer\'s subject byte for byte as the issuer, and keeps serials positive', () => {
    const key = sources.newKey();
    const subject = commonNameSubject('some CA');
    const pem = buildCertificate({ serial: Buffer.alloc(16, 0xff), commonName: 'x.svc', notBeforeMs: T0, notAfterMs: T0 + DAY, key, role: { kind: 'server', dnsNames: ['x.svc'] } },
      { subject, privateKey: key });
    const cert = new X509Certificate(pem);
    expect(subjectOf(cert.raw).equals(commonNameSubject('x.svc'))).to.equal(true);
    expect(cert.issuer).to.equal('CN=some CA');
    expect(cert.serialNumber.startsWith('7F')).to.equal(true);
    expect(() => buildCertificate({ serial: Buffer.alloc(16), commonName: 'x', notBeforeMs: T0, notAfterMs: T0, key, role: { kind: 'ca' } }, { subject, privateKey: key }))
      .to.throw(/end after it starts/);
    expect(() => buildCertificate({ serial: Buffer.alloc(16), commonName: 'x', notBeforeMs: T0, notAfterMs: T0 + 1, key, role: { kind: 'server', dnsNames: [] } }, { subject, privateKey: key }))
      .to.throw(/at least one DNS name/);
  });
});

describe('webhook certificates: the renewal decision', () => {
  it('issues everything when the Secret is empty, partial or unreadable', () => {
    expect(planCertificates({}, NAMES, T0)).to.deep.include({ kind: 'issue-all', reason: 'no CA in the Secret' });
    const d = issueAll();
    expect(planCertificates({ ...d, [SECRET_KEYS.caKey]: '' }, NAMES, T0).kind).to.equal('issue-all');
    expect(planCertificates({ ...d, [SECRET_KEYS.caCert]: 'garbage' }, NAMES, T0)).to.deep.include({ kind: 'issue-all' });
    const other = issueAll();
    expect(planCertificates({ ...d, [SECRET_KEYS.caKey]: other[SECRET_KEYS.caKey] }, NAMES, T0))
      .to.deep.equal({ kind: 'issue-all', reason: 'the CA key does not match its certificate' });
    // The serving certificate in the CA's place is no CA.
    expect(planCertificates({ ...d, [SECRET_KEYS.caCert]: d[SECRET_KEYS.cert], [SECRET_KEYS.caKey]: d[SECRET_KEYS.key] }, NAMES, T0))
      .to.deep.equal({ kind: 'issue-all', reason: 'the CA certificate is not a CA' });
  });

  it('keeps fresh certificates and says when to look again: two thirds into the shorter life', () => {
    const d = issueAll();
    const plan = planCertificates(d, NAMES, T0 + 1000);
    const from = T0 - DEFAULT_TIMING.backdateMs;
    expect(plan).to.deep.equal({ kind: 'keep', renewAtMs: from + (T0 + DEFAULT_TIMING.servingLifetimeMs - from) * (2 / 3) });
  });

  it('renews the serving certificate (same CA) before it expires, when names are missing, or when another CA signed it', () => {
    const d = issueAll();
    const late = T0 + 300 * DAY;
    const plan = planCertificates(d, NAMES, late);
    expect(plan.kind).to.equal('issue-serving');
    expect(planCertificates(d, [...NAMES, 'kwarm-webhook.other.svc'], T0)).to.deep.equal({ kind: 'issue-serving', reason: 'the serving certificate does not name kwarm-webhook.other.svc' });
    const foreign = issueAll();
    expect(planCertificates({ ...d, [SECRET_KEYS.cert]: foreign[SECRET_KEYS.cert], [SECRET_KEYS.key]: foreign[SECRET_KEYS.key] }, NAMES, T0))
      .to.deep.equal({ kind: 'issue-serving', reason: 'the serving certificate is not signed by the CA' });
    expect(planCertificates({ ...d, [SECRET_KEYS.key]: foreign[SECRET_KEYS.key] }, NAMES, T0))
      .to.deep.equal({ kind: 'issue-serving', reason: 'the serving certificate key does not match its certificate' });

    if (plan.kind === 'keep') throw new Error('unreachable');
    const renewed = issueCertificates({ plan, current: d, dnsNames: NAMES, caCommonName: 'ignored', nowMs: late }, sources);
    expect(renewed[SECRET_KEYS.caCert]).to.equal(d[SECRET_KEYS.caCert]);
    expect(renewed[SECRET_KEYS.caKey]).to.equal(d[SECRET_KEYS.caKey]);
    expect(renewed[SECRET_KEYS.cert]).to.not.equal(d[SECRET_KEYS.cert]);
    expect(planCertificates(renewed, NAMES, late).kind).to.equal('keep');
    const cert = new X509Certificate(renewed[SECRET_KEYS.cert]);
    expect(cert.verify(new X509Certificate(d[SECRET_KEYS.caCert]).publicKey)).to.equal(true);
  });

  it('starts over with a new CA two thirds into the CA\'s life, and never lets a serving certificate outlive its CA', () => {
    const d = issueAll();
    const late = T0 + Math.ceil(DEFAULT_TIMING.caLifetimeMs * (2 / 3));
    expect(planCertificates(d, NAMES, late).kind).to.equal('issue-all');
    const short = { ...DEFAULT_TIMING, caLifetimeMs: 100 * DAY };
    const s = issueCertificates({ plan: { kind: 'issue-all', reason: 't' }, current: {}, dnsNames: NAMES, caCommonName: 'ca', nowMs: T0, timing: short }, sources);
    expect(new X509Certificate(s[SECRET_KEYS.cert]).validTo).to.equal(new X509Certificate(s[SECRET_KEYS.caCert]).validTo);
  });

  it('does not trust certificates from the future (a clock far behind the issuer\'s)', () => {
    const d = issueAll(T0 + 30 * DAY);
    expect(planCertificates(d, NAMES, T0).kind).to.equal('issue-all');
  });
});
