// kwarm-agent as a real child process for tests: Node 22 (process.execPath) running agent/main.ts
// against a kubeconfig, a CRI socket and a node name, with its metrics and health servers on free
// loopback ports. Also: the least-privilege RBAC the agent runs with, and readers for its
// Prometheus metrics and JSON log.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICE_ACCOUNT_DIR } from '../lib/cluster-access.ts';
import type { ControlPlane } from './control-plane.ts';
import { agentKubeconfig as bareAgentKubeconfig, agentToken } from './kwarm-access.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { makeTempDir, removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';

const REPO_ROOT = join(import.meta.dirname, '..');
export const AGENT_MAIN = join(REPO_ROOT, 'agent', 'main.ts');

/** What a pod gets from the kubelet: the ServiceAccount token and CA files, and the service address. */
export interface InClusterCredentials {
  token: string;
  /** PEM of the CA that signed the API server's certificate. */
  caPem: string;
  /** https://host:port */
  server: string;
}

export interface AgentProcessOptions {
  nodeName: string;
  /** Either a kubeconfig, or `inCluster`. */
  kubeconfig?: string;
  /**
   * Run as in a pod, without --kubeconfig: the token and CA are mounted at the in-cluster path in a
   * private mount namespace of the agent (unshare, needs root), KUBERNETES_SERVICE_* set.
   */
  inCluster?: InClusterCredentials;
  /** Omitted: the agent auto-detects (which only finds the host's usual paths). */
  criSocket?: string;
  namespace?: string;
  maxPullsPerNode?: number;
  /** Go duration, e.g. "2s". */
  verifyInterval?: string;
  diskThresholdPercent?: number;
  diskCheckInterval?: string;
  shutdownGracePeriod?: string;
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Further flags, appended as given. */
  args?: readonly string[];
  /** Replaces the environment (default: this process's, without NODE_NAME). */
  env?: NodeJS.ProcessEnv;
  /** Appended to, so an agent started again on the same node can share one log. Default: a temp file. */
  logFile?: string;
  /** The script Node runs; default agent/main.ts (e.g. dist/agent/main.js for the compiled build). */
  entry?: string;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface AgentProcess {
  readonly nodeName: string;
  readonly process: ManagedProcess;
  readonly metricsPort: number;
  readonly healthPort: number;
  readonly logFile: string;
  /** The /metrics text. */
  metricsText(): Promise<string>;
  /** Sum of the samples of `name` whose labels include `labels`; undefined when there is none. */
  metric(name: string, labels?: Readonly<Record<string, string>>): Promise<number | undefined>;
  readyz(): Promise<HttpAnswer>;
  healthz(): Promise<HttpAnswer>;
  waitReady(timeoutMs?: number): Promise<void>;
  /** Everything the process wrote so far (JSON lines with the default log format). */
  logText(): string;
  /** The JSON log lines parsed (lines that are not JSON are skipped). */
  logEntries(): Record<string, unknown>[];
  /** SIGTERM; resolves with the exit code once it has exited (SIGKILL after `killAfterMs`). */
  stop(killAfterMs?: number): Promise<number | null>;
  /** SIGKILL, as in a crash or an OOM kill. */
  kill(): Promise<void>;
  /** Stops it (if running) and removes its temp dir (not a log file given in the options). */
  dispose(): Promise<void>;
}

async function httpGet(url: string): Promise<HttpAnswer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

/** Parses one Prometheus text sample line into name, labels and value. */
export function parseSample(line: string): { name: string; labels: Record<string, string>; value: number } | undefined {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
  if (m === null) return undefined;
  const labels: Record<string, string> = {};
  for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
  return { name: m[1]!, labels, value: Number(m[3]) };
}

export function sumSamples(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const s = parseSample(line);
    if (s?.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum = (sum ?? 0) + s.value;
  }
  return sum;
}

export async function startAgentProcess(opts: AgentProcessOptions): Promise<AgentProcess> {
  const dir = makeTempDir(`agent-${opts.nodeName}`);
  const logFile = opts.logFile ?? join(dir, 'agent.log');
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const args = [
    opts.entry ?? AGENT_MAIN,
    `--node-name=${opts.nodeName}`,
    `--metrics-bind-address=127.0.0.1:${metricsPort}`,
    `--health-probe-bind-address=127.0.0.1:${healthPort}`,
    `--log-level=${opts.logLevel ?? 'debug'}`,
    '--log-format=json',
  ];
  if (opts.kubeconfig !== undefined) args.push(`--kubeconfig=${opts.kubeconfig}`);
  else if (opts.inCluster === undefined) throw new Error('startAgentProcess: give kubeconfig or inCluster');
  if (opts.criSocket !== undefined) args.push(`--cri-socket=${opts.criSocket}`);
  if (opts.namespace !== undefined) args.push(`--namespace=${opts.namespace}`);
  if (opts.maxPullsPerNode !== undefined) args.push(`--max-pulls-per-node=${opts.maxPullsPerNode}`);
  if (opts.verifyInterval !== undefined) args.push(`--verify-interval=${opts.verifyInterval}`);
  if (opts.diskThresholdPercent !== undefined) args.push(`--disk-threshold-percent=${opts.diskThresholdPercent}`);
  if (opts.diskCheckInterval !== undefined) args.push(`--disk-check-interval=${opts.diskCheckInterval}`);
  if (opts.shutdownGracePeriod !== undefined) args.push(`--shutdown-grace-period=${opts.shutdownGracePeriod}`);
  args.push(...(opts.args ?? []));
  const env = opts.env ?? Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_NAME' && !k.startsWith('KUBERNETES_')));
  let command = process.execPath;
  if (opts.inCluster !== undefined) {
    const sa = join(dir, 'serviceaccount');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), opts.inCluster.token, { mode: 0o600 });
    writeFileSync(join(sa, 'ca.crt'), opts.inCluster.caPem);
    const server = new URL(opts.inCluster.server);
    env.KUBERNETES_SERVICE_HOST = server.hostname;
    env.KUBERNETES_SERVICE_PORT = server.port;
    // A private mount namespace: the tmpfs over /run is seen by the agent only. `exec` keeps the
    // pid, so signals and the watchdog reach Node itself.
    const script = `set -e; mount -t tmpfs kwarm-agent-run /run; mkdir -p ${SERVICE_ACCOUNT_DIR}; cp "$0/token" "$0/ca.crt" ${SERVICE_ACCOUNT_DIR}/; exec "$@"`;
    args.unshift('--mount', '--propagation', 'private', 'sh', '-c', script, sa, process.execPath);
    command = 'unshare';
  }
  const proc = ManagedProcess.start({ name: `kwarm-agent-${opts.nodeName}`, command, args, logFile, env, cwd: REPO_ROOT });
  const base = 'http://127.0.0.1';
  let stopped: Promise<number | null> | undefined;

  const agent: AgentProcess = {
    nodeName: opts.nodeName,
    process: proc,
    metricsPort,
    healthPort,
    logFile,
    async metricsText() {
      const r = await httpGet(`${base}:${metricsPort}/metrics`);
      if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
      return r.body;
    },
    async metric(name, labels = {}) {
      return sumSamples(await agent.metricsText(), name, labels);
    },
    readyz: () => httpGet(`${base}:${healthPort}/readyz`),
    healthz: () => httpGet(`${base}:${healthPort}/healthz`),
    async waitReady(timeoutMs = 30_000) {
      try {
        await waitFor(async () => {
          if (!proc.running) throw new Error(`exited with code ${String(await proc.wait())}`);
          return (await agent.readyz()).status === 200;
        }, { what: `kwarm-agent ${opts.nodeName} /readyz`, timeoutMs, intervalMs: 100 });
      } catch (err) {
        const last = await agent.readyz().catch(() => undefined);
        throw new Error(`${(err as Error).message}\n/readyz: ${last?.body ?? '(no answer)'}\n--- ${logFile} ---\n${proc.tail(40)}`);
      }
    },
    logText() {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    logEntries() {
      return agent.logText().split('\n').flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          const v: unknown = JSON.parse(line);
          return typeof v === 'object' && v !== null && !Array.isArray(v) ? [Object.fromEntries(Object.entries(v))] : [];
        } catch {
          return [];
        }
      });
    },
    stop(killAfterMs = 60_000) {
      stopped ??= proc.stop(killAfterMs).then(() => proc.wait());
      return stopped;
    },
    async kill() {
      proc.signal('SIGKILL');
      await proc.wait();
      await proc.stop();
    },
    async dispose() {
      await agent.stop(5000);
      removeDir(dir);
    },
  };
  return agent;
}

export interface AgentAccessOptions {
  /** kwarm's namespace: the chart's agent ServiceAccount lives here and may GET secrets here. */
  namespace: string;
  /** The node the agent runs on: its token is bound to a pod on this node, as in a DaemonSet. */
  nodeName: string;
}

/** What the kubelet would mount into the agent's pod: a pod-bound token of the chart's agent ServiceAccount. */
export async function agentInClusterCredentials(cp: ControlPlane, opts: AgentAccessOptions): Promise<InClusterCredentials> {
  const token = await agentToken(cp, opts.nodeName, opts.namespace);
  const caData = cp.kubeConfig().getCurrentCluster()?.caData;
  if (caData === undefined) throw new Error('the admin kubeconfig has no certificate-authority-data');
  return { token, caPem: Buffer.from(caData, 'base64').toString('utf8'), server: cp.server };
}

/**
 * A kubeconfig for the agent on `nodeName` with the chart's RBAC and admission policy (installed on `cp` once
 * per namespace): read NodeImageSets, patch only its own node's status, GET secrets in kwarm's namespace.
 */
export async function agentKubeconfig(cp: ControlPlane, opts: AgentAccessOptions): Promise<string> {
  return bareAgentKubeconfig(cp, opts.nodeName, opts.namespace);
}
