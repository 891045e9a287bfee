// The agent's status writer against a real API server: changes inside the coalescing window wait for it,
// except an image newly Completed or Failed, which is written after the short terminal interval; a write the
// API server's Priority and Fairness refuses with 429 is retried until it lands.
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import type { NodeImageSetStatus } from '../../../api/v1alpha1/index.ts';
import { createAgentMetrics } from '../../../agent/agent-metrics.ts';
import { StatusReporter } from '../../../agent/status-reporter.ts';
import { KubeApiError, KubeClient } from '../../../lib/kube-client.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';

const NODE = 'status-reporter-node';
const IMAGE = 'registry.example/app:v1';

function status(phase: 'Pending' | 'Pulling' | 'Completed', attempts: number): NodeImageSetStatus {
  return { images: [{ image: IMAGE, phase, attempts, round: 0 }], desired: 1, ready: phase === 'Completed' ? 1 : 0, pulling: phase === 'Pulling' ? 1 : 0, failed: 0 };
}

describe('agent: StatusReporter on a real API server', function () {
  this.timeout(120_000);
  let client: KubeClient;
  let cp: ControlPlane;
  const path = `/apis/kwarm.io/v1alpha1/nodeimagesets/${NODE}`;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    client = new KubeClient(cp.kubeConfig());
    const signal = AbortSignal.timeout(30_000);
    await client.delete(path, signal);
    await client.create('/apis/kwarm.io/v1alpha1/nodeimagesets', {
      apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet', metadata: { name: NODE }, spec: { images: [{ image: IMAGE }] },
    }, signal);
  });

  after(async () => {
    await client.delete(path, AbortSignal.timeout(30_000));
    client.close();
  });

  async function phaseOnServer(): Promise<string | undefined> {
    const o = await client.get(path, AbortSignal.timeout(10_000)) as { status?: NodeImageSetStatus };
    return o.status?.images?.[0]?.phase;
  }

  async function waitForPhase(phase: string, deadline: number): Promise<number> {
    for (;;) {
      if (await phaseOnServer() === phase) return Date.now();
      if (Date.now() > deadline) throw new Error(`status never showed ${phase}`);
      await sleep(25);
    }
  }

  it('holds a progress change for the coalescing window, and an image finishing meanwhile cuts the wait short', async () => {
    const controller = new AbortController();
    const reporter = new StatusReporter({
      client, nodeName: NODE, log: winston.createLogger({ silent: true }), metrics: createAgentMetrics(), minIntervalMs: 4000, terminalIntervalMs: 50,
    });
    reporter.objectSeen('present');
    const running = reporter.run(controller.signal);
    try {
      reporter.update(status('Pending', 0));
      await waitForPhase('Pending', Date.now() + 10_000);
      // A progress change inside the window waits for it...
      reporter.update(status('Pulling', 1));
      await sleep(1000);
      expect(await phaseOnServer(), 'Pulling is held for the 4 s window').to.equal('Pending');
      // ...until the image finishes: that is written at once, the window notwithstanding.
      const completedAt = Date.now();
      reporter.update(status('Completed', 1));
      const shownCompleted = await waitForPhase('Completed', completedAt + 10_000);
      expect(shownCompleted - completedAt).to.be.lessThan(1500);
    } finally {
      controller.abort();
      await running;
    }
  });

  it('retries a status write the API server refuses with 429 (Priority and Fairness) until it lands', async () => {
    // A ServiceAccount whose status patches go to a priority level of no seats that rejects what it cannot run:
    // such a level runs one request at a time, and while another patch of the same account runs the API
    // server answers 429 at once, as a full queue of the chart's agent level would. Other patches of that
    // account, sent in a loop, keep it busy.
    const NS = 'status-reporter-429';
    const SA = 'throttled-agent';
    const LEVEL = 'kwarm-test-no-seats';
    await cp.apply(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ${SA}
rules:
- apiGroups: [kwarm.io]
  resources: [nodeimagesets/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ${SA}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${SA}}
subjects:
- {kind: ServiceAccount, name: ${SA}, namespace: ${NS}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata:
  name: ${LEVEL}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 0
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: {type: Reject}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata:
  name: ${LEVEL}
spec:
  priorityLevelConfiguration: {name: ${LEVEL}}
  matchingPrecedence: 500
  rules:
  - subjects:
    - kind: ServiceAccount
      serviceAccount: {name: ${SA}, namespace: ${NS}}
    resourceRules:
    - verbs: [patch]
      apiGroups: [kwarm.io]
      resources: [nodeimagesets/status]
      clusterScope: true
`);
    const agent = new KubeClient(cp.kubeConfig(await cp.serviceAccountKubeconfig(NS, SA)));
    const sink = new PassThrough();
    const logged: string[] = [];
    sink.on('data', (c: Buffer) => logged.push(c.toString('utf8')));
    const log = winston.createLogger({ level: 'warn', format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] });
    const metrics = createAgentMetrics({ defaultMetrics: false });
    const errors = async (): Promise<number> => (await metrics.statusWrites.get()).values.find((v) => v.labels.result === 'error')?.value ?? 0;
    const controller = new AbortController();
    const reporter = new StatusReporter({ client: agent, nodeName: NODE, log, metrics, minIntervalMs: 100, terminalIntervalMs: 50, retryMs: { initial: 200, max: 500 } });
    reporter.objectSeen('present');
    const busyPath = `/apis/kwarm.io/v1alpha1/nodeimagesets/${NODE}-busy`;
    await client.create('/apis/kwarm.io/v1alpha1/nodeimagesets', { apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet', metadata: { name: `${NODE}-busy` }, spec: {} }, AbortSignal.timeout(10_000));
    const busy = new AbortController();
    let refusedBusy = 0;
    const keepBusy = Array.from({ length: 8 }, async (_, i) => {
      for (let n = 0; !busy.signal.aborted; n++) {
        await agent.patch(`${busyPath}/status`, 'merge', { status: { desired: i * 1000 + (n % 1000) } }, busy.signal)
          .catch((err: unknown) => { if (err instanceof KubeApiError && err.status === 429) refusedBusy++; });
      }
    });
    let running: Promise<void> | undefined;
    try {
      // The API server follows FlowSchemas through its own watch: wait until it refuses this account's patches.
      await waitFor(() => refusedBusy > 0 || undefined, { what: 'the API server to refuse the throttled account\'s status patches with 429', timeoutMs: 30_000, intervalMs: 100 });
      running = reporter.run(controller.signal);
      // Each update is one write; the one that finds the level busy is refused. Its status is then not updated
      // again, so it can only reach the server by the reporter's retry.
      const attemptsOnServer = async (): Promise<number | undefined> =>
        ((await client.get(path, AbortSignal.timeout(10_000))) as { status?: NodeImageSetStatus }).status?.images?.[0]?.attempts;
      let attempts = 1;
      const deadline = Date.now() + 30_000;
      for (let refused = false; !refused;) {
        attempts++;
        const before = await errors();
        reporter.update(status('Pulling', attempts));
        for (;;) {
          if (await errors() > before) {
            refused = true;
            break;
          }
          if (await attemptsOnServer() === attempts) break;
          if (Date.now() > deadline) throw new Error(`no status write was refused in 30 s (${refusedBusy} other patches were)`);
          await sleep(20);
        }
      }
      expect(logged.some((line) => line.includes('status write failed; retrying') && line.includes('429')), logged.join('')).to.equal(true);
      // The account is no longer throttled: the refused status lands, retried with no new update to prompt it.
      busy.abort();
      await Promise.all(keepBusy);
      await cp.kubectl(['delete', 'flowschema', LEVEL]);
      await waitFor(async () => (await attemptsOnServer()) === attempts || undefined, { what: `the refused status (attempts ${attempts}) written by a retry`, timeoutMs: 30_000, intervalMs: 100 });
    } finally {
      busy.abort();
      await Promise.all(keepBusy);
      controller.abort();
      await running;
      await client.delete(busyPath, AbortSignal.timeout(10_000));
      agent.close();
      await cp.kubectl(['delete', '--ignore-not-found', 'flowschema,prioritylevelconfiguration', LEVEL]);
      await cp.kubectl(['delete', '--ignore-not-found', 'clusterrolebinding,clusterrole', SA]);
    }
  });
});
