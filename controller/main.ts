// kwarm-controller: parses flags and wires the pieces together. Everything below this file takes its
// configuration as parameters.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { Logger } from 'winston';
import { DEFAULT_WARMUP_TAINT_KEY, DEFAULT_WARMUP_TIMEOUT, durationMilliseconds } from '../api/v1alpha1/index.ts';
import { defaultAccessSource, isFile, loadClusterAccess } from '../lib/cluster-access.ts';
import { closeServer, serveHealth, serveMetrics, type Check } from '../lib/endpoints.ts';
import { KubeClient } from '../lib/kube-client.ts';
import { LeaderElector } from '../lib/leader-election.ts';
import { createLogger, LOG_FORMATS, LOG_LEVELS } from '../lib/logger.ts';
import { TokenBucket } from '../lib/token-bucket.ts';
import { ControllerMetrics } from './metrics.ts';
import { Controller, DEFAULT_WRITE_CONCURRENCY } from './reconciler.ts';
import { errorText } from '../lib/errors.ts';
import { warmupOptions } from './warmup/barrier-decision.ts';
import { BarrierLoop } from './warmup/barrier.ts';
import { MUTATE_PODS_PATH, mutatePodsHandler } from './gate/admission.ts';
import { CachedAdmissionLookups } from './gate/admission-lookups.ts';
import { ReleaseLoop, releaseAllGates } from './gate/release-loop.ts';
import { credentialsConfig, credentialsOptions } from './credentials/options.ts';
import { startCredentialsServer, type CredentialsServer } from './credentials/server.ts';
import { startWebhookServer, webhookConfig, webhookOptions, type WebhookServer } from './webhook/webhook-server.ts';

function duration(name: string, text: string): number {
  const ms = durationMilliseconds(text);
  if (ms === undefined) throw new Error(`--${name}: "${text}" is not a duration such as 15s or 5m`);
  return ms;
}

function positiveInteger(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`--${name} must be an integer from 1 to 1024`);
  return n;
}

/** The flags, parsed and typed (yargs checks types and unknown flags; the checks of values follow in main). */
function parseFlags(args: string[]) {
  return yargs(args)
    .scriptName('kwarm-controller')
    .usage('$0 [flags]\n\nPlans which images each node pre-pulls (NodeImageSets) from PrePullPolicies, workloads and PrePullImages.')
    .option('max-concurrent-pulls', { type: 'number', default: 10, describe: 'Cluster-wide (node, image) pulls released and not finished; 0 = unlimited' })
    .option('max-pulls-per-node', { type: 'number', default: 2, describe: 'Concurrent pulls per node, written into each NodeImageSet (1-64)' })
    .option('metrics-bind-address', { type: 'string', default: ':8080', describe: 'Address of /metrics; 0 disables it' })
    .option('health-probe-bind-address', { type: 'string', default: ':8081', describe: 'Address of /healthz and /readyz; 0 disables it' })
    .option('kubeconfig', { type: 'string', describe: 'Path to a kubeconfig; default: $KUBECONFIG, ~/.kube/config or in-cluster' })
    .option('namespace', { type: 'string', default: 'kwarm-system', describe: 'kwarm\'s namespace: the leader Lease and pull secret copies live here' })
    .option('leader-elect', { type: 'boolean', default: true, describe: 'Take a Lease before reconciling, so only one replica writes' })
    .option('leader-election-id', { type: 'string', default: 'kwarm-controller', describe: 'Name of the Lease' })
    .option('leader-elect-lease-duration', { type: 'string', default: '15s', describe: 'How long a Lease lasts without renewal' })
    .option('leader-elect-renew-deadline', { type: 'string', default: '10s', describe: 'The leader gives up when it cannot renew for this long' })
    .option('leader-elect-retry-period', { type: 'string', default: '2s', describe: 'Interval between Lease attempts' })
    .option('resync-period', { type: 'string', default: '5m', describe: 'Full pass without events; writes nothing when nothing changed' })
    .option('argo-discovery-interval', { type: 'string', default: '60s', describe: 'While a policy names an Argo Workflows kind: how often to check which Argo kinds the cluster serves' })
    .option('write-qps', { type: 'number', default: 50, describe: 'Client-side limit of API writes per second' })
    .option('write-burst', { type: 'number', default: 100, describe: 'API writes allowed at once above --write-qps' })
    .option('write-concurrency', { type: 'number', default: DEFAULT_WRITE_CONCURRENCY, describe: 'API writes the controller keeps in flight at once (--write-qps still applies)' })
    .option('warmup-taint', { type: 'string', default: DEFAULT_WARMUP_TAINT_KEY, describe: 'Startup taint kwarm removes from a node once its gating images (gateNewNodes) are present' })
    .option('warmup-timeout', { type: 'string', default: DEFAULT_WARMUP_TIMEOUT, describe: 'From a node\'s creation to the removal of the warm-up taint whatever the images (fail open)' })
    .option('warmup-condition-on-new-nodes', { type: 'boolean', default: false, describe: 'Also write the ImagesWarm condition on new nodes without the warm-up taint, for readiness gates on the condition' })
    .option('max-images-per-namespace', { type: 'number', default: 0, describe: 'Distinct images the PrePullImages of one namespace (hand-written or derived) may want; those past it are not planned and say so in their status. kwarm\'s own namespace is not capped. 0 = no cap' })
    .option('namespace-pull-share', { type: 'number', default: 100, describe: 'Percent of --max-concurrent-pulls one namespace may hold even when no other waits (rounded up, at least 1); while several wait each gets an equal share anyway. 100 = the whole budget' })
    .option('namespace-node-images-per-node', { type: 'number', default: 0, describe: '(node, image) pairs one namespace may want, as a multiple of the Ready nodes (32: 32 images on every node, or 128 on a quarter of them); the latest created images past it are not planned and say so in their status. kwarm\'s own namespace is not capped. 0 = no cap' })
    .option('agent-stale-after', { type: 'string', default: '15m', describe: 'A node whose kwarm-agent wrote no heartbeat for this long (or none since its NodeImageSet was created) holds no pull budget and gets no new pulls' })
    .option('rollout-gate', { type: 'boolean', default: false, describe: 'Rollout gate: serve the admission webhook that gates new pods of policies with rolloutGate.enabled (/mutate-pods, see the --webhook-* flags), and release them (leader)' })
    .option('release-rollout-gates', { type: 'boolean', default: false, describe: 'Remove kwarm\'s scheduling gate from every pod and exit (the chart\'s pre-delete hook)' })
    .options(webhookOptions)
    .options(credentialsOptions)
    .option('log-level', { choices: LOG_LEVELS, default: 'info' as const })
    .option('log-format', { choices: LOG_FORMATS, default: 'json' as const })
    .strict()
    // A flag given twice takes its last value, as in the Kubernetes components (the chart's extraArgs come last).
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .help()
    .parseAsync();
}

/** The budget and cap flags, checked. */
function budgetFlags(argv: Awaited<ReturnType<typeof parseFlags>>): {
  clusterPullBudget: number; maxPullsPerNode: number; maxImagesPerNamespace: number; pullSharePercent: number; nodeImagesPerNode: number;
} {
  // The flag keeps the seed's name; inside, the cluster-wide budget is told apart from the per-node limit.
  const clusterPullBudget = argv['max-concurrent-pulls'];
  const maxPullsPerNode = argv['max-pulls-per-node'];
  if (!Number.isInteger(clusterPullBudget) || clusterPullBudget < 0) throw new Error('--max-concurrent-pulls must be an integer >= 0');
  if (!Number.isInteger(maxPullsPerNode) || maxPullsPerNode < 1 || maxPullsPerNode > 64) throw new Error('--max-pulls-per-node must be an integer from 1 to 64');
  const maxImagesPerNamespace = argv['max-images-per-namespace'];
  if (!Number.isInteger(maxImagesPerNamespace) || maxImagesPerNamespace < 0) throw new Error('--max-images-per-namespace must be an integer >= 0');
  const pullSharePercent = argv['namespace-pull-share'];
  if (!Number.isInteger(pullSharePercent) || pullSharePercent < 1 || pullSharePercent > 100) throw new Error('--namespace-pull-share must be an integer from 1 to 100 (percent)');
  const nodeImagesPerNode = argv['namespace-node-images-per-node'];
  if (!Number.isInteger(nodeImagesPerNode) || nodeImagesPerNode < 0) throw new Error('--namespace-node-images-per-node must be an integer >= 0');
  return { clusterPullBudget, maxPullsPerNode, maxImagesPerNamespace, pullSharePercent, nodeImagesPerNode };
}

/** /readyz: what makes a replica ready to take traffic (the webhook, the credentials endpoint) or to lead. */
function readinessChecks(o: {
  readonly standby: () => boolean;
  readonly controller: Controller;
  readonly webhook: () => WebhookServer | undefined;
  readonly credentials: () => CredentialsServer | undefined;
}): Record<string, Check> {
  return {
    // A standby replica is ready (it serves probes and waits for the Lease); a leader once its caches synced.
    caches: () => o.standby() || o.controller.synced ? { ok: true } : { ok: false, reason: 'caches not synced yet' },
    // A leader whose watches are down plans from stale caches; the failing watches' errors say why.
    watches: () => {
      const down = o.standby() ? [] : o.controller.unhealthyInformers();
      return down.length === 0 ? { ok: true } : { ok: false, reason: `${down.length} API watch(es) down: ${down.slice(0, 3).join('; ')}` };
    },
    // Not ready without a trusted certificate: the webhook Service then sends the API server to other replicas.
    webhook: () => o.webhook()?.check() ?? { ok: true },
    pullCredentials: () => o.credentials()?.check() ?? { ok: true },
  };
}

/** The Lease election the --leader-elect-* flags describe. */
function leaderElector(argv: Awaited<ReturnType<typeof parseFlags>>, client: KubeClient, log: Logger, identity: string): LeaderElector {
  return new LeaderElector({
    client, log, identity,
    namespace: argv.namespace,
    name: argv['leader-election-id'],
    leaseDurationSeconds: Math.ceil(duration('leader-elect-lease-duration', argv['leader-elect-lease-duration']) / 1000),
    renewDeadlineMs: duration('leader-elect-renew-deadline', argv['leader-elect-renew-deadline']),
    retryPeriodMs: duration('leader-elect-retry-period', argv['leader-elect-retry-period']),
  });
}

async function main(): Promise<number> {
  const argv = await parseFlags(hideBin(process.argv));

  const { clusterPullBudget, maxPullsPerNode, maxImagesPerNamespace, pullSharePercent, nodeImagesPerNode } = budgetFlags(argv);
  const agentStaleMs = duration('agent-stale-after', argv['agent-stale-after']);
  const warmup = warmupOptions(argv['warmup-taint'], argv['warmup-timeout'], argv['warmup-condition-on-new-nodes'], agentStaleMs);
  const webhook = argv['rollout-gate'] ? webhookConfig(argv, argv.namespace) : undefined;
  const credentials = argv['pull-credentials'] ? credentialsConfig(argv, argv.namespace) : undefined;

  const log = createLogger({ level: argv['log-level'], format: argv['log-format'], component: 'kwarm-controller' });
  const access = await loadClusterAccess(defaultAccessSource(argv.kubeconfig, {
    KUBECONFIG: process.env.KUBECONFIG,
    HOME: process.env.HOME,
    KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST,
    KUBERNETES_SERVICE_PORT: process.env.KUBERNETES_SERVICE_PORT,
  }, isFile));

  const metrics = new ControllerMetrics();
  const bucket = new TokenBucket(argv['write-qps'], argv['write-burst']);
  const client = new KubeClient(access, {
    userAgent: 'kwarm-controller',
    timeoutMs: 30_000,
    // Checked after the wait for a token: a replica that stalled past its lease must not write on waking.
    beforeWrite: async (signal) => { await bucket.take(signal); elector?.assertLeading(); },
    observe: (method, path, status) => { metrics.observeRequest(method, path, status); },
  });
  const identity = `${hostname()}_${randomUUID().slice(0, 8)}`;
  if (argv['release-rollout-gates']) {
    // One-shot, no lease (removing kwarm's own gate is safe from any number of processes at once), so its own
    // client: the main one's writes wait for the lease.
    client.close();
    const oneShot = new KubeClient(access, { userAgent: 'kwarm-controller/release-rollout-gates', timeoutMs: 30_000 });
    try {
      const released = await releaseAllGates(oneShot, log, identity, Date.now, AbortSignal.timeout(5 * 60_000));
      log.info('released every rollout gate', { pods: released });
      return 0;
    } finally {
      oneShot.close();
    }
  }
  const controller = new Controller({
    client, log, metrics, identity,
    namespace: argv.namespace,
    clusterPullBudget,
    maxPullsPerNode,
    maxImagesPerNamespace,
    namespaceLimits: { pullSharePercent, nodeImagesPerNode },
    resyncPeriodMs: duration('resync-period', argv['resync-period']),
    argoDiscoveryIntervalMs: duration('argo-discovery-interval', argv['argo-discovery-interval']),
    warmupTaintKey: warmup.taintKey,
    ...(warmup.conditionOnNewNodes ? { warmupNewNodesMs: warmup.timeoutMs } : {}),
    agentStaleMs,
    writeConcurrency: positiveInteger('write-concurrency', argv['write-concurrency']),
  });
  // The planner and the warm-up barrier run side by side under the same lease; the barrier reads only what
  // the planner and the agents wrote, so either may start first. One failing stops the other, and both have
  // stopped before this returns, so nothing writes after the lease is given up.
  const reconcile = async (signal: AbortSignal): Promise<void> => {
    const failed = new AbortController();
    const both = AbortSignal.any([signal, failed.signal]);
    const results = await Promise.allSettled([
      controller.run(both),
      new BarrierLoop({ client, log, instance: identity, warmup, now: Date.now }).run(both),
      ...(webhook !== undefined ? [new ReleaseLoop({
        client, log, instance: identity, now: Date.now, agentStaleMs,
        onRelease: (_pod, decision) => { metrics.released(decision.reason); },
        onGatedPods: (count) => { metrics.gatedPods.set(count); },
      }).run(both)] : []),
    ].map((p) => p.catch((err: unknown) => { failed.abort(err); throw err; })));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  };

  const stop = new AbortController();
  let elector: LeaderElector | undefined;
  // Every replica serves the webhook and keeps its certificate, leader or not: its own client, not lease-fenced.
  const webhookClient = new KubeClient(access, { userAgent: 'kwarm-controller/webhook', timeoutMs: 30_000 });
  let webhookServer: WebhookServer | undefined;
  // The admission's caches of policies and PrePullImages live as long as the webhook server.
  const stopLookups = new AbortController();
  let lookupsRunning: Promise<void> | undefined;
  if (webhook !== undefined) {
    const lookups = new CachedAdmissionLookups({ client: webhookClient, log });
    lookupsRunning = lookups.run(stopLookups.signal);
    try {
      webhookServer = await startWebhookServer(webhook, { [MUTATE_PODS_PATH]: mutatePodsHandler({ lookups, log, namespace: argv.namespace, onDecision: (outcome) => { metrics.admitted(outcome); } }) }, { client: webhookClient, log });
    } catch (err) {
      stopLookups.abort();
      await lookupsRunning;
      webhookClient.close();
      throw err;
    }
  }
  // Served by every replica too, with the same client: its TokenReviews and reads are not the leader's work.
  let credentialsServer: CredentialsServer | undefined;
  if (credentials !== undefined) credentialsServer = await startCredentialsServer(credentials, { client: webhookClient, log });
  const metricsServer = await serveMetrics(metrics.registry, argv['metrics-bind-address']);
  const healthServer = await serveHealth({
    live: {},
    ready: readinessChecks({ standby: () => elector !== undefined && !elector.isLeader, controller, webhook: () => webhookServer, credentials: () => credentialsServer }),
  }, argv['health-probe-bind-address']);

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      log.info('stopping', { signal: sig });
      stop.abort(new Error(sig));
    });
  }

  log.info('starting', {
    identity, namespace: argv.namespace, maxConcurrentPulls: clusterPullBudget, maxPullsPerNode, leaderElect: argv['leader-elect'],
    writeQps: argv['write-qps'], writeBurst: argv['write-burst'], writeConcurrency: argv['write-concurrency'], warmupTaint: warmup.taintKey, warmupTimeoutMs: warmup.timeoutMs,
    warmupConditionOnNewNodes: warmup.conditionOnNewNodes,
  });
  let code = 0;
  try {
    if (argv['leader-elect']) {
      elector = leaderElector(argv, client, log, identity);
      const outcome = await elector.run(stop.signal, async (leaderSignal) => {
        metrics.leader.set(1);
        try {
          await reconcile(leaderSignal);
        } finally {
          metrics.leader.set(0);
        }
      });
      // Losing the lease leaves caches and overlays of a past term: exit and let the Deployment restart us.
      if (outcome === 'lost') code = 1;
    } else {
      metrics.leader.set(1);
      await reconcile(stop.signal);
    }
  } finally {
    await closeServer(metricsServer);
    await closeServer(healthServer);
    await webhookServer?.close();
    await credentialsServer?.close();
    stopLookups.abort();
    await lookupsRunning;
    webhookClient.close();
    client.close();
  }
  log.info('stopped', { code });
  return code;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`kwarm-controller: ${errorText(err)}\n`);
  process.exitCode = 2;
});
