// A throw-away certificate authority for the real-node cluster, made with the openssl command: the API
// server's serving certificate (valid for every address it is reached by, loopback forwarder included) and
// client certificates for the kubelets (system:node:<name> in system:nodes, as the Node authorizer expects),
// kube-proxy and the API server's calls to kubelets. EC P-256 keys, so making one costs milliseconds.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
}

export interface CertRequest {
  /** File name stem in the PKI dir. */
  file: string;
  commonName: string;
  organization?: string;
  /** Subject alternative names: DNS names and IP addresses. */
  dnsNames?: readonly string[];
  ips?: readonly string[];
}

export interface Pki {
  readonly dir: string;
  /** The CA certificate: trusted by clients for the API server, and by the API server and kubelets for clients. */
  readonly caFile: string;
  /** A certificate for server and client use, signed by the CA. */
  issue(req: CertRequest): Promise<CertPair>;
}

const DAYS = '7';

function openssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(new Error(`openssl ${args.slice(0, 3).join(' ')} failed: ${stderr.trim() || err.message}`));
    });
  });
}

// Only the extensions given on the command line, none from the system's openssl.cnf (whose defaults would
// mark every certificate as a CA).
const CONFIG = '[req]\ndistinguished_name = dn\n[dn]\n';

const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** dn: "/O=.../CN=...", with / and = in values escaped as openssl wants. */
function subject(commonName: string, organization: string | undefined): string {
  const esc = (v: string): string => v.replace(/[/=+\\]/g, (c) => `\\${c}`);
  return `${organization === undefined ? '' : `/O=${esc(organization)}`}/CN=${esc(commonName)}`;
}

export async function createPki(dir: string): Promise<Pki> {
  const config = join(dir, 'openssl.cnf');
  writeFileSync(config, CONFIG);
  const caFile = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  await openssl(['req', '-config', config, '-x509', '-new', ...keyArgs, '-keyout', caKey, '-out', caFile, '-days', DAYS,
    '-subj', '/CN=kwarm-local-cluster-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return {
    dir,
    caFile,
    async issue(req) {
      const cert = join(dir, `${req.file}.crt`);
      const key = join(dir, `${req.file}.key`);
      const sans = [...(req.dnsNames ?? []).map((d) => `DNS:${d}`), ...(req.ips ?? []).map((ip) => `IP:${ip}`)];
      await openssl(['req', '-config', config, '-x509', '-new', ...keyArgs, '-keyout', key, '-out', cert, '-days', DAYS,
        '-subj', subject(req.commonName, req.organization), '-CA', caFile, '-CAkey', caKey,
        '-addext', 'basicConstraints=critical,CA:FALSE',
        '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment',
        '-addext', 'extendedKeyUsage=serverAuth,clientAuth',
        ...(sans.length > 0 ? ['-addext', `subjectAltName=${sans.join(',')}`] : [])]);
      return { cert, key };
    },
  };
}
