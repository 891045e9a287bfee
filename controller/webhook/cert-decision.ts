// The webhook's self-managed certificates, decided from what the Secret holds and the time: keep them, issue a
// new serving certificate from the same CA, or start over with a new CA. Pure: the clock, the keys and the
// serial numbers come in as parameters, and parsing uses Node's X.509 reader (no I/O).
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { errorText } from '../../lib/errors.ts';
import { buildCertificate, commonNameSubject, subjectOf } from './x509.ts';

/** The keys of the Secret (type kubernetes.io/tls, plus the CA's pair so the serving certificate can be renewed). */
export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

export interface CertificateTiming {
  readonly caLifetimeMs: number;
  readonly servingLifetimeMs: number;
  /** Renew once this fraction of a certificate's lifetime has passed. */
  readonly renewAfterFraction: number;
  /** notBefore is set this far in the past, for API servers whose clock is behind ours. */
  readonly backdateMs: number;
}

const DAY_MS = 24 * 3600 * 1000;

export const DEFAULT_TIMING: CertificateTiming = {
  caLifetimeMs: 10 * 365 * DAY_MS,
  servingLifetimeMs: 365 * DAY_MS,
  renewAfterFraction: 2 / 3,
  backdateMs: 3600 * 1000,
};

/** The DNS names of a Service, as the API server names it when it calls the webhook (and the long form). */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

/** The Secret's data, decoded from base64 (absent keys missing). */
export type CertSecretData = Readonly<Partial<Record<(typeof SECRET_KEYS)[keyof typeof SECRET_KEYS], string>>>;

export type CertificatePlan =
  | { readonly kind: 'keep'; readonly renewAtMs: number }
  | { readonly kind: 'issue-serving'; readonly reason: string }
  | { readonly kind: 'issue-all'; readonly reason: string };

interface Parsed {
  cert: X509Certificate;
  key: KeyObject;
}

function parsePair(certPem: string | undefined, keyPem: string | undefined, what: string): Parsed | string {
  if (certPem === undefined || certPem === '' || keyPem === undefined || keyPem === '') return `no ${what} in the Secret`;
  try {
    const cert = new X509Certificate(certPem);
    const key = createPrivateKey(keyPem);
    if (!cert.checkPrivateKey(key)) return `the ${what} key does not match its certificate`;
    return { cert, key };
  } catch (err) {
    return `the ${what} cannot be read: ${errorText(err)}`;
  }
}

function renewAt(cert: X509Certificate, fraction: number): number {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return from + (to - from) * fraction;
}

/** The DNS names in a certificate's subjectAltName. */
export function dnsNamesOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
}

/** What to do with the Secret's certificates at `nowMs`, for a serving certificate valid for `dnsNames`. */
export function planCertificates(data: CertSecretData, dnsNames: readonly string[], nowMs: number, timing: CertificateTiming = DEFAULT_TIMING): CertificatePlan {
  const ca = parsePair(data[SECRET_KEYS.caCert], data[SECRET_KEYS.caKey], 'CA');
  if (typeof ca === 'string') return { kind: 'issue-all', reason: ca };
  if (!ca.cert.ca) return { kind: 'issue-all', reason: 'the CA certificate is not a CA' };
  if (Date.parse(ca.cert.validFrom) > nowMs) return { kind: 'issue-all', reason: `the CA is not valid before ${ca.cert.validFrom}` };
  const caRenewAt = renewAt(ca.cert, timing.renewAfterFraction);
  if (nowMs >= caRenewAt) return { kind: 'issue-all', reason: `the CA expires on ${ca.cert.validTo}` };

  const serving = parsePair(data[SECRET_KEYS.cert], data[SECRET_KEYS.key], 'serving certificate');
  if (typeof serving === 'string') return { kind: 'issue-serving', reason: serving };
  if (!serving.cert.checkIssued(ca.cert) || !serving.cert.verify(ca.cert.publicKey)) {
    return { kind: 'issue-serving', reason: 'the serving certificate is not signed by the CA' };
  }
  const have = new Set(dnsNamesOf(serving.cert));
  const missing = dnsNames.filter((d) => !have.has(d));
  if (missing.length > 0) return { kind: 'issue-serving', reason: `the serving certificate does not name ${missing.join(', ')}` };
  if (Date.parse(serving.cert.validFrom) > nowMs) return { kind: 'issue-serving', reason: `the serving certificate is not valid before ${serving.cert.validFrom}` };
  const servingRenewAt = renewAt(serving.cert, timing.renewAfterFraction);
  if (nowMs >= servingRenewAt) return { kind: 'issue-serving', reason: `the serving certificate expires on ${serving.cert.validTo}` };
  return { kind: 'keep', renewAtMs: Math.min(caRenewAt, servingRenewAt) };
}

/** What issuing needs from outside: fresh keys and serial numbers. */
export interface IssueSources {
  readonly newKey: () => KeyObject;
  readonly randomBytes: (n: number) => Buffer;
}

export interface IssueRequest {
  readonly plan: Exclude<CertificatePlan, { kind: 'keep' }>;
  /** The Secret's data as read; its CA is kept when the plan is issue-serving. */
  readonly current: CertSecretData;
  readonly dnsNames: readonly string[];
  /** The CA's common name; it names the owner so `openssl x509 -text` says whose CA this is. */
  readonly caCommonName: string;
  readonly nowMs: number;
  readonly timing?: CertificateTiming;
}

function pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The Secret's new data (PEM strings, before base64) for a plan that issues. */
export function issueCertificates(req: IssueRequest, src: IssueSources): Required<CertSecretData> {
  const timing = req.timing ?? DEFAULT_TIMING;
  const notBeforeMs = req.nowMs - timing.backdateMs;
  let caCertPem: string;
  let caKey: KeyObject;
  const kept = req.plan.kind === 'issue-serving' ? parsePair(req.current[SECRET_KEYS.caCert], req.current[SECRET_KEYS.caKey], 'CA') : undefined;
  if (kept !== undefined && typeof kept !== 'string') {
    caCertPem = kept.cert.toString();
    caKey = kept.key;
  } else {
    caKey = src.newKey();
    caCertPem = buildCertificate({
      serial: src.randomBytes(16), commonName: req.caCommonName, notBeforeMs, notAfterMs: req.nowMs + timing.caLifetimeMs,
      key: caKey, role: { kind: 'ca' },
    }, { subject: commonNameSubject(req.caCommonName), privateKey: caKey });
  }
  const caCert = new X509Certificate(caCertPem);
  const key = src.newKey();
  const first = req.dnsNames[0];
  if (first === undefined) throw new Error('a serving certificate needs at least one DNS name');
  const certPem = buildCertificate({
    serial: src.randomBytes(16), commonName: first, notBeforeMs,
    // Never past the CA: a chain is only as valid as its shortest link.
    notAfterMs: Math.min(req.nowMs + timing.servingLifetimeMs, Date.parse(caCert.validTo)),
    key, role: { kind: 'server', dnsNames: req.dnsNames },
  }, { subject: subjectOf(caCert.raw), privateKey: caKey });
  return { [SECRET_KEYS.caCert]: caCertPem, [SECRET_KEYS.caKey]: pem(caKey), [SECRET_KEYS.cert]: certPem, [SECRET_KEYS.key]: pem(key) };
}
