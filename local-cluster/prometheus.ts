// A real Prometheus for the real-node cluster, scraping as one deployed in the cluster would.
//
//   const prom = await startPrometheus(cluster, { scrapeConfigs: readFileSync('charts/kwarm/files/prometheus-scrape.yaml', 'utf8') });
//   await prom.targets()             the active scrape targets with their labels and health
//   await prom.query('up')           an instant query: the series with their values
//   await prom.labelValues('node', 'kwarm_active_pulls')
//   await prom.stop()                the process, its files and its RBAC objects gone
//
// It runs inside the cluster's "cluster" network namespace, so it reaches pod IPs the way the API server does,
// and listens on that namespace's loopback only; the test reaches its HTTP API through a unix socket in the
// cluster's directory (a forwarder inside the namespace), never through an address of the machine's own network.
// It is given what a Prometheus pod would have: a ServiceAccount token (RBAC: get/list/watch on what Kubernetes
// service discovery reads) and the cluster CA at /var/run/secrets/kubernetes.io/serviceaccount, and
// KUBERNETES_SERVICE_HOST/PORT, so a scrape config with `kubernetes_sd_configs: [{role: pod}]` and no
// api_server works unchanged, as for users. Those files appear only in the process's own mount namespace
// (a tmpfs over /run), so nothing on the machine changes. Storage and config live in the cluster's directory,
// removed with it; the process has a watchdog (process.ts).
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { cachedBinary } from './binaries.ts';
import { REPO_ROOT } from './kwarm-images.ts';
import type { ManagedProcess } from './process.ts';
import type { RealCluster } from './real-cluster.ts';
import { removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';

/** Where the test's Prometheus lives and what it may read. */
export const PROMETHEUS_NAMESPACE = 'kwarm-test-monitoring';
const SERVICE_ACCOUNT = 'prometheus';
const CLUSTER_ROLE = 'kwarm-test-prometheus';
/** Inside the cluster's network namespace, on its loopback. */
const LISTEN = '127.0.0.1:9090';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface PrometheusOptions {
  /** A YAML document with `scrape_configs:`, used as is (the global block is written before it). */
  scrapeConfigs: string;
  /** global.scrape_interval (default 2s, so a test sees samples soon). */
  scrapeInterval?: string;
  /** The prometheus binary (default: prometheusBinary()). */
  binary?: string;
}

export interface PromSeries {
  metric: Record<string, string>;
  /** The sample's value as Prometheus writes it ("1", "0.5", "NaN", "+Inf"). */
  value: string;
}

export interface PromTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: string;
  lastError: string;
}

export interface TestPrometheus {
  readonly dir: string;
  readonly logFile: string;
  /** GET on Prometheus' HTTP API (path with query string); the decoded `data` of a successful answer. */
  api(path: string, signal?: AbortSignal): Promise<unknown>;
  /** An instant query (/api/v1/query) whose result is a vector or scalar. */
  query(expr: string, signal?: AbortSignal): Promise<PromSeries[]>;
  /** Active targets (/api/v1/targets). */
  targets(signal?: AbortSignal): Promise<PromTarget[]>;
  /** /api/v1/label/<label>/values restricted to the series of `match`. */
  labelValues(label: string, match: string, signal?: AbortSignal): Promise<string[]>;
  tail(lines?: number): string;
  stop(): Promise<void>;
}

/** Prometheus with Kubernetes service discovery: built from its Go module by build-binaries.sh (Debian's has none). */
export function prometheusBinary(): string {
  return cachedBinary('prometheus');
}

/** The ClusterRole a Prometheus needs for Kubernetes service discovery of pods, endpoints and services. */
export function prometheusRbac(namespace: string, serviceAccount: string, clusterRole: string): string {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount, namespace } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: clusterRole },
      rules: [
        { apiGroups: [''], resources: ['pods', 'services', 'endpoints', 'nodes'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: clusterRole },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
    },
  ].map((o) => JSON.stringify(o)).join('\n---\n');
}

let started = 0;

export async function startPrometheus(cluster: RealCluster, opts: PrometheusOptions): Promise<TestPrometheus> {
  const binary = opts.binary ?? prometheusBinary();
  const dir = join(cluster.dir, `prometheus-${started++}`);
  const saFiles = join(dir, 'serviceaccount');
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(saFiles, { recursive: true });
  const socket = join(dir, 'api.sock');
  const logFile = join(dir, 'prometheus.log');
  const procs: ManagedProcess[] = [];

  const stop = async (): Promise<void> => {
    for (const p of procs.splice(0).reverse()) await p.stop();
    await cluster.kubectl(['delete', 'clusterrolebinding,clusterrole', CLUSTER_ROLE, '--ignore-not-found'], { allowFailure: true });
    await cluster.kubectl(['delete', 'namespace', PROMETHEUS_NAMESPACE, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    removeDir(dir);
  };

  try {
    await cluster.controlPlane.apply(prometheusRbac(PROMETHEUS_NAMESPACE, SERVICE_ACCOUNT, CLUSTER_ROLE));
    await waitFor(async () => (await cluster.kubectl(['get', 'serviceaccount', SERVICE_ACCOUNT, '-n', PROMETHEUS_NAMESPACE], { allowFailure: true })).code === 0,
      { what: `ServiceAccount ${PROMETHEUS_NAMESPACE}/${SERVICE_ACCOUNT}`, timeoutMs: 30_000, intervalMs: 250 });
    const { stdout: token } = await cluster.kubectl(['create', 'token', SERVICE_ACCOUNT, '-n', PROMETHEUS_NAMESPACE, '--duration=2h']);
    writeFileSync(join(saFiles, 'token'), token.trim(), { mode: 0o600 });
    writeFileSync(join(saFiles, 'ca.crt'), readFileSync(cluster.controlPlane.caFile));
    writeFileSync(join(saFiles, 'namespace'), PROMETHEUS_NAMESPACE);

    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, `global:\n  scrape_interval: ${opts.scrapeInterval ?? '2s'}\n  evaluation_interval: ${opts.scrapeInterval ?? '2s'}\n\n${opts.scrapeConfigs}`);

    const api = new URL(cluster.controlPlane.clusterServer);
    // A private mount namespace of its own: a tmpfs over /run (/var/run links there) carries the
    // ServiceAccount files where client-go's in-cluster config reads them.
    const script = [
      'set -e',
      'mount -t tmpfs -o mode=0755 kwarm-prometheus /run',
      `mkdir -p ${SA_DIR}`,
      `cp ${shellQuote(saFiles)}/token ${shellQuote(saFiles)}/ca.crt ${shellQuote(saFiles)}/namespace ${SA_DIR}/`,
      `exec ${shellQuote(binary)} --config.file=${shellQuote(config)} --storage.tsdb.path=${shellQuote(join(dir, 'data'))}`
        + ` --web.listen-address=${LISTEN} --storage.tsdb.retention.time=2h --log.level=info`,
    ].join('\n');
    const prom = cluster.clusterNamespaces.start({
      name: 'prometheus',
      command: 'unshare',
      args: ['--mount', '--propagation', 'private', '--', 'sh', '-c', script],
      logFile,
      env: { ...process.env, KUBERNETES_SERVICE_HOST: api.hostname, KUBERNETES_SERVICE_PORT: api.port === '' ? '443' : api.port },
    });
    procs.push(prom);
    const forwarder = cluster.clusterNamespaces.start({
      name: 'prometheus-forwarder',
      command: process.execPath,
      args: [join(REPO_ROOT, 'local-cluster', 'forwarder.ts'), `unix:${socket}`, `tcp:${LISTEN}`],
      logFile: join(dir, 'forwarder.log'),
    });
    procs.push(forwarder);

    const get = (path: string, signal?: AbortSignal): Promise<{ status: number; body: string }> => httpOverSocket(socket, path, signal);
    await waitFor(async () => {
      if (!prom.running) throw new Error(`prometheus exited:\n${prom.tail()}`);
      if (!forwarder.running) throw new Error(`the forwarder exited:\n${forwarder.tail()}`);
      try {
        return (await get('/-/ready', AbortSignal.timeout(2000))).status === 200;
      } catch {
        return false;
      }
    }, { what: 'Prometheus /-/ready', timeoutMs: 60_000, intervalMs: 250 });

    const apiData = async (path: string, signal?: AbortSignal): Promise<unknown> => {
      const { status, body } = await get(path, signal ?? AbortSignal.timeout(15_000));
      let parsed: { status?: string; data?: unknown; error?: string };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        throw new Error(`Prometheus ${path}: HTTP ${status}, not JSON: ${body.slice(0, 300)}`);
      }
      if (parsed.status !== 'success') throw new Error(`Prometheus ${path}: HTTP ${status}: ${parsed.error ?? body.slice(0, 300)}`);
      return parsed.data;
    };
    return {
      dir,
      logFile,
      api: apiData,
      async query(expr, signal) {
        return decodeQueryResult(await apiData(`/api/v1/query?query=${encodeURIComponent(expr)}`, signal), expr);
      },
      async targets(signal) {
        const data = await apiData('/api/v1/targets?state=active', signal) as { activeTargets?: PromTarget[] };
        return data.activeTargets ?? [];
      },
      async labelValues(label, match, signal) {
        return await apiData(`/api/v1/label/${encodeURIComponent(label)}/values?match[]=${encodeURIComponent(match)}`, signal) as string[];
      },
      tail: (lines) => prom.tail(lines),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** An instant query's `data` as series; a scalar becomes one series without labels. */
export function decodeQueryResult(data: unknown, expr: string): PromSeries[] {
  const d = data as { resultType?: string; result?: unknown };
  if (d.resultType === 'vector') {
    return (d.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({ metric: r.metric, value: r.value[1] }));
  }
  if (d.resultType === 'scalar') return [{ metric: {}, value: (d.result as [number, string])[1] }];
  throw new Error(`${expr}: a ${String(d.resultType)} result, not an instant vector or scalar`);
}

function httpOverSocket(socketPath: string, path: string, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', ...(signal === undefined ? {} : { signal }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
