// kwarm-agent's command line, parsed and checked into typed values. The environment is passed in
// (main.ts reads NODE_NAME), so parsing is pure apart from yargs itself.
import yargs from 'yargs';
import { durationMilliseconds } from '../api/v1alpha1/duration.ts';
import { parseBindAddress } from '../lib/endpoints.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../lib/logger.ts';
import { errorText } from '../lib/errors.ts';
import type { RepullAfterGc } from './pull-engine.ts';

export const DEFAULT_NAMESPACE = 'kwarm-system';

export interface AgentFlags {
  nodeName: string;
  /** Undefined: in-cluster configuration. */
  kubeconfig: string | undefined;
  namespace: string;
  /** Undefined: auto-detect. */
  criSocket: string | undefined;
  maxPullsPerNode: number;
  verifyIntervalMs: number;
  /** How often container starts are counted (CRI ListContainers); 0 = never. */
  containerStartsIntervalMs: number;
  diskThresholdPercent: number;
  diskCheckIntervalMs: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  shutdownGraceMs: number;
  /** 0 = liveness never fails for the runtime. */
  runtimeUnreachableTimeoutMs: number;
  repullAfterGc: RepullAfterGc;
  /** Where pull secrets come from: kwarm-controller's endpoint, or GETs of Secrets (needs the RBAC to read them). */
  pullSecretsFrom: PullSecretsFrom;
  /** With `controller`: the Service of the endpoint in `namespace`, and the ConfigMap with its CA. */
  pullCredentialsService: string;
  pullCredentialsCaConfigMap: string;
  /** Overrides the address read from the Service (an agent run outside a pod). */
  pullCredentialsUrl: string | undefined;
}

export const PULL_SECRETS_FROM = ['controller', 'api'] as const;
export type PullSecretsFrom = (typeof PULL_SECRETS_FROM)[number];

export const DEFAULT_DISK_THRESHOLD_PERCENT = 80;
const REPULL_MODES: readonly RepullAfterGc[] = ['now', 'wait'];

export type ParsedFlags = { kind: 'run'; flags: AgentFlags } | { kind: 'help'; text: string };

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

function duration(flag: string, value: string, minMs: number): number {
  const ms = durationMilliseconds(value);
  if (ms === undefined) throw new FlagError(`--${flag}: ${JSON.stringify(value)} is not a duration such as 30s, 5m or 1h`);
  if (ms < minMs) throw new FlagError(`--${flag}: must be at least ${minMs} ms, got ${value}`);
  return ms;
}

function isOneOf<T extends string>(values: readonly T[], v: string): v is T {
  return (values as readonly string[]).includes(v);
}

function parser(argv: readonly string[]) {
  return yargs([...argv])
    .scriptName('kwarm-agent')
    .usage('$0 [flags]\n\nPulls the images listed in this node\'s NodeImageSet through the CRI socket.')
    .options({
      'node-name': { type: 'string', describe: 'This node\'s name (default: the NODE_NAME environment variable)' },
      kubeconfig: { type: 'string', describe: 'Path to a kubeconfig (default: in-cluster configuration)' },
      namespace: { type: 'string', default: DEFAULT_NAMESPACE, describe: 'kwarm\'s namespace, where copied pull secrets live' },
      'cri-socket': { type: 'string', describe: 'CRI endpoint (path or unix:// URL); default: auto-detect containerd, CRI-O, k3s' },
      'max-pulls-per-node': { type: 'number', default: 2, describe: 'Most pulls at once on this node (caps the NodeImageSet\'s maxConcurrentPulls)' },
      'verify-interval': { type: 'string', default: '5m', describe: 'How often images are checked and re-pulled if the runtime lost them' },
      'container-starts-interval': { type: 'string', default: '30s', describe: 'How often container starts of managed images are counted warm or cold (CRI ListContainers; "0s" = off)' },
      'disk-threshold-percent': { type: 'number', default: DEFAULT_DISK_THRESHOLD_PERCENT, describe: 'No new pulls while the image filesystem is this full (0 = off); the default stays below the kubelet\'s image GC threshold (85)' },
      'disk-check-interval': { type: 'string', default: '30s', describe: 'How often the image filesystem is measured' },
      'metrics-bind-address': { type: 'string', default: ':8080', describe: 'Address of /metrics ("0" = off)' },
      'health-probe-bind-address': { type: 'string', default: ':8081', describe: 'Address of /healthz and /readyz ("0" = off)' },
      'log-level': { type: 'string', default: 'info', choices: LOG_LEVELS },
      'log-format': { type: 'string', default: 'json', choices: LOG_FORMATS },
      'shutdown-grace-period': { type: 'string', default: '25s', describe: 'On SIGTERM, how long running pulls may take to finish' },
      'repull-after-gc': { type: 'string', default: 'wait', choices: REPULL_MODES, describe: 'An image the runtime lost (kubelet image GC): "now" pulls it again at once; "wait" reports it Pending (RemovedFromRuntime) until kwarm-controller releases the re-pull within its budget' },
      'pull-secrets-from': { type: 'string', default: 'api', choices: PULL_SECRETS_FROM, describe: 'Where pull secrets come from: "controller" asks kwarm-controller, which serves only the copies this node\'s NodeImageSet names (the chart\'s default); "api" GETs the Secrets in --namespace (needs RBAC to read them)' },
      'pull-credentials-service': { type: 'string', default: 'kwarm-credentials', describe: 'With --pull-secrets-from=controller: the Service in --namespace of the controller\'s endpoint; its certificate must name <service>.<namespace>.svc' },
      'pull-credentials-ca-configmap': { type: 'string', default: 'kwarm-credentials-ca', describe: 'With --pull-secrets-from=controller: the ConfigMap in --namespace holding the endpoint\'s CA (ca.crt)' },
      'pull-credentials-url': { type: 'string', describe: 'With --pull-secrets-from=controller: https://host:port of the endpoint instead of the Service\'s cluster IP (an agent outside a pod)' },
      'runtime-unreachable-timeout': { type: 'string', default: '2m', describe: '/healthz fails once the CRI runtime has not answered for this long, so the kubelet restarts the agent ("0s" = never)' },
    })
    .strict()
    // A flag given twice takes its last value, as in the Kubernetes components (the chart's extraArgs come last).
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .wrap(120)
    .help(false)
    .version(false)
    .exitProcess(false)
    .fail((msg: string | undefined, err: Error | undefined) => {
      throw new FlagError(msg ?? err?.message ?? 'invalid flags');
    });
}

/** Parses and checks the flags; `--help` returns the usage text. Throws FlagError on bad input. */
export async function parseAgentFlags(argv: readonly string[], env: { NODE_NAME?: string | undefined }): Promise<ParsedFlags> {
  const p = parser(argv);
  if (argv.includes('--help') || argv.includes('-h')) {
    return { kind: 'help', text: await p.options({ help: { type: 'boolean', describe: 'Show this help' } }).getHelp() };
  }
  const a = p.parseSync();
  const nodeName = (a['node-name'] ?? env.NODE_NAME ?? '').trim();
  if (nodeName === '') throw new FlagError('--node-name or the NODE_NAME environment variable is required');
  const maxPulls = a['max-pulls-per-node'];
  if (!Number.isInteger(maxPulls) || maxPulls < 1 || maxPulls > 64) throw new FlagError(`--max-pulls-per-node: must be an integer from 1 to 64, got ${maxPulls}`);
  const threshold = a['disk-threshold-percent'];
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 100) throw new FlagError(`--disk-threshold-percent: must be from 0 to 100, got ${threshold}`);
  for (const flag of ['metrics-bind-address', 'health-probe-bind-address'] as const) {
    try {
      parseBindAddress(a[flag]);
    } catch (err) {
      throw new FlagError(`--${flag}: ${errorText(err)}`);
    }
  }
  const level = a['log-level'];
  const format = a['log-format'];
  if (!isOneOf(LOG_LEVELS, level)) throw new FlagError(`--log-level: ${level}`);
  if (!isOneOf(LOG_FORMATS, format)) throw new FlagError(`--log-format: ${format}`);
  const repull = a['repull-after-gc'];
  if (!isOneOf(REPULL_MODES, repull)) throw new FlagError(`--repull-after-gc: ${repull}`);
  const criSocket = a['cri-socket']?.trim();
  const from = a['pull-secrets-from'];
  if (!isOneOf(PULL_SECRETS_FROM, from)) throw new FlagError(`--pull-secrets-from: ${from}`);
  const credentialsUrl = a['pull-credentials-url']?.trim();
  if (credentialsUrl !== undefined && credentialsUrl !== '' && !/^https:\/\/[^/]+\/?$/.test(credentialsUrl)) {
    throw new FlagError(`--pull-credentials-url: ${JSON.stringify(credentialsUrl)} is not https://host:port`);
  }
  return {
    kind: 'run',
    flags: {
      nodeName,
      kubeconfig: a.kubeconfig,
      namespace: a.namespace,
      criSocket: criSocket === '' ? undefined : criSocket,
      maxPullsPerNode: maxPulls,
      verifyIntervalMs: duration('verify-interval', a['verify-interval'], 1000),
      containerStartsIntervalMs: duration('container-starts-interval', a['container-starts-interval'], 0),
      diskThresholdPercent: threshold,
      diskCheckIntervalMs: duration('disk-check-interval', a['disk-check-interval'], 100),
      metricsBindAddress: a['metrics-bind-address'],
      healthProbeBindAddress: a['health-probe-bind-address'],
      logLevel: level,
      logFormat: format,
      shutdownGraceMs: duration('shutdown-grace-period', a['shutdown-grace-period'], 0),
      runtimeUnreachableTimeoutMs: duration('runtime-unreachable-timeout', a['runtime-unreachable-timeout'], 0),
      repullAfterGc: repull,
      pullSecretsFrom: from,
      pullCredentialsService: a['pull-credentials-service'],
      pullCredentialsCaConfigMap: a['pull-credentials-ca-configmap'],
      pullCredentialsUrl: credentialsUrl === '' ? undefined : credentialsUrl,
    },
  };
}
