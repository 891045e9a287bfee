// A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC, service-account token signing,
// an audit log of writes) and optionally kube-controller-manager (garbage collection, namespaces) and
// kube-scheduler, built from their Go modules by local-cluster/tools/build-binaries.sh. By default all on
// 127.0.0.1; for the real-node cluster (real-cluster.ts) inside the cluster's network namespace, reached by
// the test process through a loopback forwarder.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { cachedBinary } from './binaries.ts';
import { ManagedProcess, type StartOptions } from './process.ts';
import type { Pki } from './pki.ts';
import { freePort } from './ports.ts';
import { makeTempDir, removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';
import { errorText } from '../lib/errors.ts';

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface KubectlOptions {
  input?: string;
  kubeconfig?: string;
  /** Resolve with the result instead of throwing when kubectl exits non-zero. */
  allowFailure?: boolean;
}

export interface ControlPlaneOptions {
  /** Start kube-controller-manager too (garbage collector, namespace and service-account controllers). */
  controllerManager?: boolean;
  /** kube-controller-manager's --controllers; the default is what the tests without kubelets need. */
  controllers?: readonly string[];
  /** Start kube-scheduler too. */
  scheduler?: boolean;
  /** Run inside a network namespace (real nodes); default: every process on 127.0.0.1 of the test process. */
  network?: ControlPlaneNetwork;
}

/** Where the control plane runs when it is not the test process's loopback. */
export interface ControlPlaneNetwork {
  /** The API server binds to and advertises this address: the `kubernetes` Service's endpoint. */
  address: string;
  /** Starts a control-plane process there. */
  start(opts: StartOptions): ManagedProcess;
  /** Makes address:port reachable from the test process and returns the port on 127.0.0.1. */
  reach(port: number): Promise<number>;
  /** The API server's serving certificate (valid for `address`, the Service IP and 127.0.0.1) and client CA. */
  pki: Pki;
}

const DEFAULT_CONTROLLERS = ['garbagecollector', 'namespace', 'serviceaccount'];

export interface ControlPlane {
  /** https://127.0.0.1:<port>, as the test process reaches it. */
  readonly server: string;
  /** As processes beside it reach it: the same as `server`, or https://<network address>:6443. */
  readonly clusterServer: string;
  /** The CA that signed the API server's certificate. */
  readonly caFile: string;
  /** A kubeconfig file for a member of system:masters. */
  readonly adminKubeconfig: string;
  /** JSON lines, one per write request (create/update/patch/delete) at Metadata level. */
  readonly auditLogPath: string;
  readonly dir: string;
  kubeConfig(kubeconfigPath?: string): KubeConfig;
  kubectl(args: readonly string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** Server-side applies YAML (one or more documents) as the admin, or as the given kubeconfig's user. */
  apply(manifest: string, opts?: { kubeconfig?: string; namespace?: string }): Promise<void>;
  /** `kubectl wait --for=<condition>`, e.g. waitFor('prepullimage/app', 'condition=Ready', { namespace: 'demo' }). */
  waitFor(resource: string, condition: string, opts?: { namespace?: string; timeoutSeconds?: number }): Promise<void>;
  /**
   * A kubeconfig that authenticates as the ServiceAccount (created if missing) with a bound token from the
   * TokenRequest API. `boundPod` binds the token to a pod, as the kubelet does for a pod's projected token.
   */
  serviceAccountKubeconfig(namespace: string, name: string, opts?: { boundPod?: string }): Promise<string>;
  /** Stops kube-apiserver only (etcd keeps the data) and starts it again on the same port. */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
`;

function writeKubeconfig(path: string, server: string, caFile: string, user: string, token: string): void {
  const ca = readFileSync(caFile).toString('base64');
  const text = `apiVersion: v1
kind: Config
clusters:
- name: kwarm-test
  cluster:
    server: ${server}
    certificate-authority-data: ${ca}
users:
- name: ${user}
  user:
    token: ${token}
contexts:
- name: ${user}@kwarm-test
  context:
    cluster: kwarm-test
    user: ${user}
current-context: ${user}@kwarm-test
`;
  writeFileSync(path, text, { mode: 0o600 });
}

async function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => { resolve(false); });
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.end();
  });
}

async function readyz(server: string, token: string, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${server}/readyz`, {
      agent: new Agent({ ca }),
      headers: { authorization: `Bearer ${token}` },
      timeout: 2000,
    }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => { resolve(false); });
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.end();
  });
}

function failStart(proc: ManagedProcess, err: unknown): Error {
  const why = errorText(err);
  return new Error(`${proc.name} did not become ready: ${why}\n--- last lines of ${proc.logFile} ---\n${proc.tail()}`);
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const dir = makeTempDir('control-plane');
  const processes: ManagedProcess[] = [];
  const net = opts.network;
  const startProcess = (sopts: StartOptions): ManagedProcess => net === undefined ? ManagedProcess.start(sopts) : net.start(sopts);
  // Inside its own namespace every port is free; on the shared loopback ask the kernel.
  const port = (fixed: number): Promise<number> => net === undefined ? freePort() : Promise.resolve(fixed);
  try {
    const etcdPort = await port(2379);
    const peerPort = await port(2380);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = startProcess({
      name: 'etcd',
      command: cachedBinary('etcd'),
      args: [
        '--name=kwarm-test', `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=kwarm-test=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync', '--log-level=warn', '--quota-backend-bytes=4294967296',
      ],
      logFile: join(dir, 'etcd.log'),
    });
    processes.push(etcd);
    // In a namespace, the API server's /readyz (which checks etcd) is the first thing the test process can see.
    if (net === undefined) {
      await waitFor(() => httpOk(`${etcdUrl}/health`), { what: 'etcd /health', timeoutMs: 30_000 })
        .catch((err: unknown) => { throw failStart(etcd, err); });
    }

    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${adminToken},kwarm-admin,kwarm-admin,"system:masters"\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'audit-policy.yaml'), AUDIT_POLICY);
    const auditLogPath = join(dir, 'audit.log');
    const certDir = join(dir, 'pki');
    const apiPort = await port(6443);
    const address = net?.address ?? '127.0.0.1';
    const clusterServer = `https://${address}:${apiPort}`;
    const server = net === undefined ? clusterServer : `https://127.0.0.1:${await net.reach(apiPort)}`;

    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${address}`, `--advertise-address=${address}`, `--secure-port=${apiPort}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      ...(net === undefined ? [`--cert-dir=${certDir}`, '--authorization-mode=RBAC'] : await realNodeApiArgs(net.pki, address)),
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--api-audiences=https://kubernetes.default.svc.cluster.local',
      '--service-cluster-ip-range=10.96.0.0/16',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLogPath}`,
      '--audit-log-format=json', '--audit-log-mode=blocking',
      '--allow-privileged=true',
      '--v=1',
    ];
    const launchApiServer = (): ManagedProcess => startProcess({
      name: 'kube-apiserver', command: cachedBinary('kube-apiserver'), args: apiArgs, logFile: join(dir, 'kube-apiserver.log'),
    });
    let apiserver = launchApiServer();
    processes.push(apiserver);
    // Without a PKI the API server writes its self-signed serving certificate followed by its CA into the cert dir.
    const caFile = net?.pki.caFile ?? join(certDir, 'apiserver.crt');
    const waitReady = async (proc: ManagedProcess): Promise<void> => {
      await waitFor(async () => {
        if (!proc.running) throw new Error(`exited with code ${String(await proc.wait())}`);
        let ca: Buffer;
        try { ca = readFileSync(caFile); } catch { return false; }
        return readyz(server, adminToken, ca);
      }, { what: 'kube-apiserver /readyz', timeoutMs: 90_000, intervalMs: 250 })
        .catch((err: unknown) => { throw failStart(proc, err); });
    };
    await waitReady(apiserver);

    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    writeKubeconfig(adminKubeconfig, server, caFile, 'kwarm-admin', adminToken);
    // For the processes beside the API server (same as the admin's on loopback).
    const clusterKubeconfig = join(dir, 'cluster-admin.kubeconfig');
    writeKubeconfig(clusterKubeconfig, clusterServer, caFile, 'kwarm-admin', adminToken);

    if (opts.controllerManager ?? false) {
      const kcmPort = await port(10257);
      const kcm = startProcess({
        name: 'kube-controller-manager',
        command: cachedBinary('kube-controller-manager'),
        args: [
          `--kubeconfig=${clusterKubeconfig}`, '--leader-elect=false',
          `--controllers=${(opts.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
          '--bind-address=127.0.0.1', `--secure-port=${kcmPort}`,
          `--cert-dir=${join(dir, 'kcm-pki')}`,
          // The service-account-token controller signs legacy token Secrets; root-ca-cert-publisher writes
          // kube-root-ca.crt, which every projected service-account volume of a pod reads.
          `--service-account-private-key-file=${join(dir, 'sa.key')}`,
          ...(net === undefined ? [] : [`--root-ca-file=${caFile}`]),
          '--concurrent-gc-syncs=5', '--v=1',
        ],
        logFile: join(dir, 'kube-controller-manager.log'),
      });
      processes.push(kcm);
    }
    if (opts.scheduler ?? false) {
      const schedulerPort = await port(10259);
      processes.push(startProcess({
        name: 'kube-scheduler',
        command: cachedBinary('kube-scheduler'),
        args: [
          `--kubeconfig=${clusterKubeconfig}`, '--leader-elect=false',
          '--bind-address=127.0.0.1', `--secure-port=${schedulerPort}`, '--v=1',
        ],
        logFile: join(dir, 'kube-scheduler.log'),
      }));
    }

    const kubectlBin = cachedBinary('kubectl');
    const kubectl = (args: readonly string[], kopts: KubectlOptions = {}): Promise<KubectlResult> =>
      new Promise((resolve, reject) => {
        const child = execFile(kubectlBin, [`--kubeconfig=${kopts.kubeconfig ?? adminKubeconfig}`, ...args], {
          maxBuffer: 64 * 1024 * 1024,
          env: { ...process.env, KUBECONFIG: '' },
        }, (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
          const res = { stdout, stderr, code };
          if (code !== 0 && kopts.allowFailure !== true) {
            reject(new Error(`kubectl ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
          } else {
            resolve(res);
          }
        });
        if (kopts.input !== undefined) child.stdin?.end(kopts.input);
        else child.stdin?.end();
      });

    let saCounter = 0;
    const cp: ControlPlane = {
      server,
      clusterServer,
      caFile,
      adminKubeconfig,
      auditLogPath,
      dir,
      kubeConfig(path?: string): KubeConfig {
        const kc = new KubeConfig();
        kc.loadFromFile(path ?? adminKubeconfig);
        return kc;
      },
      kubectl,
      async apply(manifest, aopts = {}) {
        const ns = aopts.namespace === undefined ? [] : ['-n', aopts.namespace];
        await kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '--force-conflicts', ...ns, '-f', '-'], {
          input: manifest, ...(aopts.kubeconfig !== undefined ? { kubeconfig: aopts.kubeconfig } : {}),
        });
      },
      async waitFor(resource, condition, wopts = {}) {
        const ns = wopts.namespace === undefined ? [] : ['-n', wopts.namespace];
        await kubectl(['wait', `--for=${condition}`, `--timeout=${wopts.timeoutSeconds ?? 60}s`, ...ns, resource]);
      },
      async serviceAccountKubeconfig(namespace, name, sopts = {}) {
        await kubectl(['create', 'namespace', namespace], { allowFailure: true });
        await kubectl(['create', 'serviceaccount', name, '-n', namespace], { allowFailure: true });
        const args = ['create', 'token', name, '-n', namespace, '--duration=2h'];
        if (sopts.boundPod !== undefined) args.push('--bound-object-kind=Pod', `--bound-object-name=${sopts.boundPod}`);
        const { stdout } = await kubectl(args);
        const path = join(dir, `sa-${namespace}-${name}-${saCounter++}.kubeconfig`);
        writeKubeconfig(path, server, caFile, `system:serviceaccount:${namespace}:${name}`, stdout.trim());
        return path;
      },
      async restartApiServer() {
        await apiserver.stop();
        apiserver = launchApiServer();
        processes.push(apiserver);
        await waitReady(apiserver);
      },
      async stop() {
        running.delete(cp);
        for (const p of [...processes].reverse()) await p.stop();
        removeDir(dir);
      },
    };
    running.add(cp);
    console.log(`    [harness] kube-apiserver ${await serverVersion(kubectl)} + etcd ready at ${server} in ${Date.now() - started} ms${opts.controllerManager === true ? ' (with kube-controller-manager)' : ''}`);
    return cp;
  } catch (err) {
    for (const p of processes.reverse()) await p.stop();
    removeDir(dir);
    throw err;
  }
}

/** Own control planes (not the shared one) started and not stopped yet: a test whose after hook failed first leaves one. */
const running = new Set<ControlPlane>();

/** Stops every control plane still running (the root after hook), so none leaves its files behind. */
export async function stopLeftoverControlPlanes(): Promise<void> {
  for (const cp of [...running]) await cp.stop();
}

/**
 * With kubelets: a serving certificate for every name the API server is reached by, client certificates
 * (kubelets, kube-proxy) checked against the CA, the Node authorizer and NodeRestriction as in a real
 * cluster, and a client certificate for the API server's own calls to kubelets (logs, exec).
 */
async function realNodeApiArgs(pki: Pki, address: string): Promise<string[]> {
  const serving = await pki.issue({
    file: 'apiserver',
    commonName: 'kube-apiserver',
    dnsNames: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'],
    // 10.96.0.1: the `kubernetes` Service's ClusterIP (the first address of --service-cluster-ip-range).
    ips: [address, '10.96.0.1', '127.0.0.1'],
  });
  const kubeletClient = await pki.issue({ file: 'apiserver-kubelet-client', commonName: 'kube-apiserver-kubelet-client', organization: 'system:masters' });
  return [
    `--tls-cert-file=${serving.cert}`, `--tls-private-key-file=${serving.key}`,
    `--client-ca-file=${pki.caFile}`,
    `--kubelet-client-certificate=${kubeletClient.cert}`, `--kubelet-client-key=${kubeletClient.key}`,
    '--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction',
    // Kubelets by address: their names resolve nowhere, and a lookup would go to the machine's resolver.
    '--kubelet-preferred-address-types=InternalIP',
    // Admission webhooks behind a Service (kwarm's rollout gate) by a pod address from the Service's endpoints:
    // the control plane's namespace routes to every node's pod subnet but runs no kube-proxy for ClusterIPs.
    '--enable-aggregator-routing=true',
  ];
}

async function serverVersion(kubectl: ControlPlane['kubectl']): Promise<string> {
  const { stdout } = await kubectl(['version', '-o', 'json']);
  const parsed: unknown = JSON.parse(stdout);
  if (typeof parsed === 'object' && parsed !== null && 'serverVersion' in parsed) {
    const sv: unknown = parsed.serverVersion;
    if (typeof sv === 'object' && sv !== null && 'gitVersion' in sv && typeof sv.gitVersion === 'string') return sv.gitVersion;
  }
  return 'unknown version';
}

let shared: Promise<ControlPlane> | undefined;

/** One control plane per mocha process, with kube-controller-manager; stopped by the root hook in hooks.ts. */
export function sharedControlPlane(): Promise<ControlPlane> {
  // Not a leftover: stopSharedControlPlane stops it, and tests running after stopLeftoverControlPlanes use it.
  shared ??= startControlPlane({ controllerManager: true }).then((cp) => { running.delete(cp); return cp; });
  return shared;
}

export async function stopSharedControlPlane(): Promise<void> {
  if (shared === undefined) return;
  const cp = await shared.catch(() => undefined);
  shared = undefined;
  await cp?.stop();
}
