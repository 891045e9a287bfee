// X.509 v3 certificates for the webhook (RFC 5280): a CA that signs, and a serving certificate for the
// Service's DNS names. Keys are ECDSA P-256, signatures ECDSA with SHA-256, which Go's crypto/x509 (the API
// server) and Node's TLS both accept. Everything comes in as parameters (keys, times, serial), so this module
// reads no clock; the signature itself uses the key's randomness.
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import {
  bitString, boolean, children, explicit, implicitPrimitive, namedBits, octetString, oid, sequence, set, smallInteger, time,
  unsignedInteger, utf8String, type Der,
} from './der.ts';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

export interface CertificateSpec {
  /** Up to 20 bytes; the top bit is ignored so the serial stays positive. */
  readonly serial: Buffer;
  readonly commonName: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** The certified key (its public half is taken). */
  readonly key: KeyObject;
  /** A CA (basicConstraints cA, keyCertSign) or a TLS server certificate (serverAuth, the DNS names as SANs). */
  readonly role: { readonly kind: 'ca' } | { readonly kind: 'server'; readonly dnsNames: readonly string[] };
}

/** Who signs: the certificate's own key (self-signed CA) or a CA's key and subject. */
export interface Signer {
  /** The signer's subject as DER (a Name): the issuer field must repeat it byte for byte. */
  readonly subject: Der;
  readonly privateKey: KeyObject;
}

/** A Name with only a common name. */
export function commonNameSubject(commonName: string): Der {
  return sequence(set(sequence(oid(OID.commonName), utf8String(commonName))));
}

/** The subject (a Name, as DER) of a certificate: the sixth element of its TBSCertificate. */
export function subjectOf(certificateDer: Buffer): Der {
  const [tbs] = children(certificateDer);
  const subject = tbs === undefined ? undefined : children(tbs)[5];
  if (subject === undefined) throw new Error('not an X.509 v3 certificate');
  return subject;
}

function extension(id: string, critical: boolean, value: Der): Der {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** The SubjectPublicKeyInfo of a key, as DER. */
function spki(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/** A key identifier: SHA-1 of the SubjectPublicKeyInfo (RFC 5280 §4.2.1.2 allows any such method). */
export function keyIdentifier(key: KeyObject): Buffer {
  return createHash('sha1').update(spki(key)).digest();
}

/** A certificate in PEM, signed by `signer`. */
export function buildCertificate(spec: CertificateSpec, signer: Signer): string {
  if (spec.serial.length === 0 || spec.serial.length > 20) throw new Error('a certificate serial has 1 to 20 bytes');
  if (spec.notAfterMs <= spec.notBeforeMs) throw new Error('a certificate must end after it starts');
  const serial = Buffer.from(spec.serial);
  serial.writeUInt8(serial.readUInt8(0) & 0x7f, 0);
  if (serial.every((b) => b === 0)) serial[serial.length - 1] = 1;
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const extensions: Der[] = [];
  switch (spec.role.kind) {
    case 'ca':
      extensions.push(
        extension(OID.basicConstraints, true, sequence(boolean(true))),
        extension(OID.keyUsage, true, namedBits([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
        extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spec.key))),
      );
      break;
    case 'server':
      if (spec.role.dnsNames.length === 0) throw new Error('a serving certificate needs at least one DNS name');
      extensions.push(
        extension(OID.basicConstraints, true, sequence()),
        extension(OID.keyUsage, true, namedBits([KEY_USAGE.digitalSignature])),
        extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
        // dNSName is [2] IMPLICIT IA5String.
        extension(OID.subjectAltName, false, sequence(...spec.role.dnsNames.map((d) => implicitPrimitive(2, Buffer.from(d, 'ascii'))))),
        extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyIdentifier(signer.privateKey)))),
      );
      break;
    default: {
      const unreachable: never = spec.role;
      return unreachable;
    }
  }
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(serial),
    algorithm,
    signer.subject,
    sequence(time(spec.notBeforeMs), time(spec.notAfterMs)),
    commonNameSubject(spec.commonName),
    spki(spec.key),
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: signer.privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}
