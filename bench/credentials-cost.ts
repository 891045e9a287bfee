// What a pull attempt that names a pull secret costs with the chart's default agent.pullSecretsFrom=controller
// (the agent asks kwarm-controller's endpoint, which checks its pod-bound token with a TokenReview, reads its
// node's NodeImageSet and the copy) against agent.pullSecretsFrom=api (the agent GETs the copy itself), side by
// side on one API server.
//
//   node_modules/.bin/node bench/credentials-cost.ts [--nodes=20] [--requests=400] [--in-flight=8] [--rounds=3]
//
// The endpoint runs in a process of its own as kwarm-controller runs it (bench/credentials-endpoint.ts:
// controller/credentials/server.ts with the chart's controller RBAC), on 127.0.0.1; each agent is the agent's own reader (agent/secret-reader.ts) with a
// token of the chart's agent ServiceAccount bound to a pod on its node, and the chart's agent RBAC (plus, for
// `api`, the Role the chart grants in that mode). Per round, the two modes alternate, --requests reads each,
// --in-flight at once, spread over the nodes. Figures per mode: reads/s, latency p50 and p99, API requests and
// API server CPU per read, the endpoint process's CPU per read, and this process's (the agents') CPU per read.
import { KubeClient } from '../lib/kube-client.ts';
import { eachLimited } from '../lib/each-limited.ts';
import { KubeSecretSource, ControllerSecretSource, type SecretSource } from '../agent/secret-reader.ts';
import { join } from 'node:path';
import { errorText } from '../lib/errors.ts';
import { ManagedProcess } from '../local-cluster/process.ts';
import { freePort } from '../local-cluster/ports.ts';
import { makeTempDir, removeDir } from '../local-cluster/tmp.ts';
import { waitFor } from '../local-cluster/wait.ts';
import { processFigures } from './proc-stats.ts';
import { apiServerSample } from './api-server-figures.ts';
import { API_VERSION } from '../api/v1alpha1/index.ts';
import { startControlPlane } from '../local-cluster/control-plane.ts';
import { metricValue } from '../local-cluster/controller-process.ts';
import { installCrds } from '../local-cluster/crds.ts';
import { createNode } from '../local-cluster/cluster-fixtures.ts';
import { AGENT_SA, agentKubeconfig, agentToken, controllerKubeconfig, installKwarmAccess, KWARM_NAMESPACE } from '../local-cluster/kwarm-access.ts';
import { positiveIntArg } from './cli-args.ts';
import { percentile, summarize } from './stats.ts';

const NODES = positiveIntArg('nodes', 20);
const REQUESTS = positiveIntArg('requests', 400);
const IN_FLIGHT = positiveIntArg('in-flight', 8);
const ROUNDS = positiveIntArg('rounds', 3);
const NS = KWARM_NAMESPACE;
const COPY = 'kwarm-pull.bench.regcred';
const SERVICE = 'kwarm-credentials';
const CA_CONFIGMAP = 'kwarm-credentials-ca';

type Mode = 'endpoint' | 'api';
interface Sample {
  readonly mode: Mode;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly apiRequests: number;
  readonly apiCpuMs: number;
  readonly endpointCpuMs: number;
  readonly ownCpuMs: number;
}

/**
 * bench/credentials-endpoint.ts as a ManagedProcess (stopped by its watchdog if this process dies), on a free
 * port; resolves once it serves.
 */
async function startEndpoint(kubeconfig: string, dir: string): Promise<{ port: number; process: ManagedProcess }> {
  const port = await freePort();
  const proc = ManagedProcess.start({
    name: 'credentials-endpoint', command: process.execPath, logFile: join(dir, 'credentials-endpoint.log'),
    args: [...process.execArgv, new URL('./credentials-endpoint.ts', import.meta.url).pathname, kubeconfig, NS, AGENT_SA, String(port)],
  });
  try {
    await waitFor(() => {
      if (!proc.running) throw new Error('the credentials endpoint exited');
      return proc.tail(5).includes(`serving on 127.0.0.1:${port}`);
    }, { what: 'the credentials endpoint to serve', timeoutMs: 90_000 });
  } catch (err) {
    await proc.stop();
    throw new Error(`${errorText(err)}\n${proc.tail(20)}`);
  }
  return { port, process: proc };
}

/** The API server's CPU seconds, and the requests a read can make (TokenReviews, NodeImageSet and Secret reads) so far. */
async function apiServerCounters(admin: KubeClient): Promise<{ cpu: number; requests: number }> {
  const text = String(await admin.get('/metrics', AbortSignal.timeout(30_000)));
  const requests = ['tokenreviews', 'nodeimagesets', 'secrets'].reduce((n, resource) => n + (metricValue(text, 'apiserver_request_total', { resource }) ?? 0), 0);
  return { cpu: apiServerSample(text).cpuSeconds, requests };
}

async function main(): Promise<void> {
  const cp = await startControlPlane();
  const admin = new KubeClient(cp.kubeConfig());
  const closers: (() => void)[] = [() => { admin.close(); }];
  const signal = AbortSignal.timeout(3_600_000);
  let stopServer: (() => Promise<void>) | undefined;
  try {
    await installCrds(cp);
    // The namespace, and the chart's ServiceAccounts, RBAC and admission policy.
    await installKwarmAccess(cp, NS);
    const config = JSON.stringify({ auths: { 'registry.bench.example': { username: 'bench', password: 'not-a-real-password', auth: Buffer.from('bench:not-a-real-password').toString('base64') } } });
    await admin.apply(`/api/v1/namespaces/${NS}/secrets/${COPY}`, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: COPY, namespace: NS },
      type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
    }, 'kwarm-bench', signal);
    // What the chart grants the agents with agent.pullSecretsFrom=api (charts/kwarm/templates/rbac-agent.yaml).
    await cp.apply(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: bench-agent-api-mode, namespace: ${NS}}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-agent-api-mode, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: bench-agent-api-mode}
subjects: [{kind: ServiceAccount, name: ${AGENT_SA}, namespace: ${NS}}]
`);
    const nodes = Array.from({ length: NODES }, (_, i) => `cred-bench-${i}`);
    const readers = new Map<Mode, SecretSource[]>([['endpoint', []], ['api', []]]);
    const dir = makeTempDir('credentials-bench');
    const server = await startEndpoint(await controllerKubeconfig(cp, NS), dir);
    stopServer = async () => {
      await server.process.stop();
      removeDir(dir);
    };
    for (const node of nodes) {
      await createNode(admin, { name: node }, signal);
      await admin.apply(`/apis/${API_VERSION}/nodeimagesets/${node}`, {
        apiVersion: API_VERSION, kind: 'NodeImageSet', metadata: { name: node },
        spec: { images: [{ image: `registry.bench.example/app:${node}`, pullSecrets: [COPY] }] },
      }, 'kwarm-bench', signal);
      const client = new KubeClient(cp.kubeConfig(await agentKubeconfig(cp, node, NS)));
      closers.push(() => { client.close(); });
      const token = await agentToken(cp, node, NS);
      readers.get('endpoint')!.push(new ControllerSecretSource({
        service: SERVICE, url: `https://127.0.0.1:${server.port}`, namespace: NS, caConfigMap: CA_CONFIGMAP, client, authorization: () => Promise.resolve(`Bearer ${token}`),
      }));
      readers.get('api')!.push(new KubeSecretSource(client, NS));
    }
    // Each reader once, so the endpoint's CA is fetched and connections are up before anything is timed.
    for (const list of readers.values()) {
      for (const r of list) {
        const read = await r.read([COPY], signal);
        if (read.secrets.length !== 1) throw new Error(`a warm-up read returned ${read.secrets.length} secrets (missing: ${read.missing.join(', ')})`);
      }
    }

    const samples: Sample[] = [];
    const measure = async (mode: Mode): Promise<Sample> => {
      const list = readers.get(mode)!;
      const latencies: number[] = [];
      const before = await apiServerCounters(admin);
      const cpuBefore = process.cpuUsage();
      const endpointBefore = processFigures(server.process.pid ?? 0).cpuSeconds;
      const start = performance.now();
      await eachLimited(Array.from({ length: REQUESTS }, (_, i) => i), IN_FLIGHT, async (i) => {
        const t = performance.now();
        const read = await list[i % list.length]!.read([COPY], signal);
        if (read.secrets.length !== 1) throw new Error(`${mode}: a read returned no secret`);
        latencies.push(performance.now() - t);
      });
      const seconds = (performance.now() - start) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const endpointCpu = processFigures(server.process.pid ?? 0).cpuSeconds - endpointBefore;
      const after = await apiServerCounters(admin);
      return {
        mode, perSecond: REQUESTS / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99),
        apiRequests: (after.requests - before.requests) / REQUESTS,
        apiCpuMs: (after.cpu - before.cpu) * 1000 / REQUESTS,
        endpointCpuMs: endpointCpu * 1000 / REQUESTS,
        ownCpuMs: (cpu.user + cpu.system) / 1000 / REQUESTS,
      };
    };
    for (let round = 1; round <= ROUNDS; round++) {
      const order: Mode[] = round % 2 === 1 ? ['endpoint', 'api'] : ['api', 'endpoint'];
      for (const mode of order) {
        const s = await measure(mode);
        samples.push(s);
        console.log(`round ${round}, ${mode}: ${s.perSecond.toFixed(0)} reads/s, p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms; ` +
          `per read: ${s.apiRequests.toFixed(2)} API requests (TokenReviews, NodeImageSet and Secret reads), API server CPU ${s.apiCpuMs.toFixed(2)} ms, endpoint CPU ${s.endpointCpuMs.toFixed(2)} ms, agents' CPU ${s.ownCpuMs.toFixed(2)} ms`);
      }
    }
    console.log(`\n${NODES} nodes, ${REQUESTS} reads per mode and round, ${IN_FLIGHT} in flight, ${ROUNDS} rounds (median, min-max over rounds):`);
    for (const mode of ['endpoint', 'api'] as const) {
      const of = samples.filter((s) => s.mode === mode);
      const fig = (pick: (s: Sample) => number, digits: number): string => {
        const s = summarize(of.map(pick));
        return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
      };
      const name = mode === 'endpoint' ? 'pullSecretsFrom=controller (the endpoint)' : 'pullSecretsFrom=api (direct GET)';
      console.log(`  ${name}: ${fig((s) => s.perSecond, 0)} reads/s; p50 ${fig((s) => s.p50, 1)} ms, p99 ${fig((s) => s.p99, 1)} ms; ` +
        `per read ${fig((s) => s.apiRequests, 2)} API requests, API server CPU ${fig((s) => s.apiCpuMs, 2)} ms, endpoint CPU ${fig((s) => s.endpointCpuMs, 2)} ms, agents' CPU ${fig((s) => s.ownCpuMs, 2)} ms`);
    }
  } finally {
    await stopServer?.();
    for (const close of closers) close();
    await cp.stop();
  }
}

await main();
