// kwarm-agent: parses flags, builds the clients and servers, runs the node's Agent until SIGTERM.
import { boundPort, closeServer, serveHealth, serveMetrics } from '../lib/endpoints.ts';
import { loadClusterAccess, type ClusterAccess } from '../lib/cluster-access.ts';
import { KubeClient } from '../lib/kube-client.ts';
import { createLogger } from '../lib/logger.ts';
import { Agent } from './agent.ts';
import { agentAccessSource } from './api-access.ts';
import { createAgentMetrics } from './agent-metrics.ts';
import { FlagError, parseAgentFlags } from './flags.ts';
import { errorText } from '../lib/errors.ts';
import type { RequestOptions } from 'node:https';
import { ControllerSecretSource } from './secret-reader.ts';

function isHeaderList(h: RequestOptions['headers']): h is readonly string[] {
  return Array.isArray(h);
}

/** The Authorization header the agent sends the API server (its pod-bound token), for kwarm-controller too. */
function authorizationOf(access: ClusterAccess): () => Promise<string> {
  return async () => {
    const o: RequestOptions = {};
    await access.applyToHTTPSOptions(o);
    const headers = o.headers;
    const h = headers !== undefined && !isHeaderList(headers) ? headers.authorization : undefined;
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) {
      throw new Error('the agent has no ServiceAccount token to prove its node to kwarm-controller (--pull-secrets-from=controller needs the pod\'s projected token)');
    }
    return h;
  };
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = await parseAgentFlags(process.argv.slice(2), { NODE_NAME: process.env.NODE_NAME });
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`kwarm-agent: ${err.message}\n(see kwarm-agent --help)\n`);
    return 2;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(`${parsed.text}\n`);
    return 0;
  }
  const flags = parsed.flags;
  const log = createLogger({ level: flags.logLevel, format: flags.logFormat, component: 'kwarm-agent' });

  let access: ClusterAccess;
  try {
    access = await loadClusterAccess(agentAccessSource(flags.kubeconfig, {
      KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST,
      KUBERNETES_SERVICE_PORT: process.env.KUBERNETES_SERVICE_PORT,
    }));
  } catch (err) {
    log.error('no usable API server configuration', { error: errorText(err) });
    return 2;
  }
  const client = new KubeClient(access, { userAgent: `kwarm-agent/${flags.nodeName}`, timeoutMs: 30_000 });
  const metrics = createAgentMetrics();
  const secrets = flags.pullSecretsFrom === 'controller'
    ? new ControllerSecretSource({
      service: flags.pullCredentialsService,
      ...(flags.pullCredentialsUrl !== undefined ? { url: flags.pullCredentialsUrl } : {}),
      namespace: flags.namespace,
      caConfigMap: flags.pullCredentialsCaConfigMap,
      client,
      authorization: authorizationOf(access),
    })
    : undefined;
  const agent = new Agent({
    nodeName: flags.nodeName,
    namespace: flags.namespace,
    criSocket: flags.criSocket,
    maxPullsPerNode: flags.maxPullsPerNode,
    verifyIntervalMs: flags.verifyIntervalMs,
    containerStartsIntervalMs: flags.containerStartsIntervalMs,
    diskThresholdPercent: flags.diskThresholdPercent,
    diskCheckIntervalMs: flags.diskCheckIntervalMs,
    shutdownGraceMs: flags.shutdownGraceMs,
    runtimeUnreachableLimitMs: flags.runtimeUnreachableTimeoutMs,
    repullAfterGc: flags.repullAfterGc,
  }, { client, log, metrics, ...(secrets !== undefined ? { secrets } : {}) });

  const metricsServer = await serveMetrics(metrics.registry, flags.metricsBindAddress);
  const healthServer = await serveHealth({ live: agent.liveness(), ready: agent.readiness() }, flags.healthProbeBindAddress);
  log.info('kwarm-agent starting', {
    node: flags.nodeName,
    namespace: flags.namespace,
    criSocket: flags.criSocket ?? 'auto-detect',
    pullSecretsFrom: flags.pullSecretsFrom,
    metricsPort: boundPort(metricsServer),
    healthPort: boundPort(healthServer),
  });

  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      log.warn('second signal; exiting at once', { signal: sig });
      process.exit(1);
    }
    log.info('signal received', { signal: sig });
    stop.abort(new Error(sig));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const summary = await agent.run(stop.signal);
  await closeServer(metricsServer);
  await closeServer(healthServer);
  client.close();
  log.info('kwarm-agent stopped', { ...summary });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Anything still holding the event loop (a socket being torn down) must not keep the pod alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`kwarm-agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
