import { expect } from 'chai';
import { FlagError, parseAgentFlags, type AgentFlags } from '../../../agent/flags.ts';

async function flags(argv: string[], env: { NODE_NAME?: string } = { NODE_NAME: 'node-1' }): Promise<AgentFlags> {
  const p = await parseAgentFlags(argv, env);
  if (p.kind !== 'run') throw new Error('expected flags, got help');
  return p.flags;
}

async function failure(argv: string[], env: { NODE_NAME?: string } = { NODE_NAME: 'node-1' }): Promise<string> {
  try {
    await parseAgentFlags(argv, env);
  } catch (err) {
    expect(err).to.be.instanceOf(FlagError);
    return (err as Error).message;
  }
  throw new Error('expected a FlagError');
}

describe('agent/flags', () => {
  it('has the documented defaults, the node name from NODE_NAME', async () => {
    expect(await flags([])).to.deep.equal({
      nodeName: 'node-1',
      kubeconfig: undefined,
      namespace: 'kwarm-system',
      criSocket: undefined,
      maxPullsPerNode: 2,
      verifyIntervalMs: 300_000,
      containerStartsIntervalMs: 30_000,
      diskThresholdPercent: 80,
      diskCheckIntervalMs: 30_000,
      metricsBindAddress: ':8080',
      healthProbeBindAddress: ':8081',
      logLevel: 'info',
      logFormat: 'json',
      shutdownGraceMs: 25_000,
      runtimeUnreachableTimeoutMs: 120_000,
      repullAfterGc: 'wait',
      pullSecretsFrom: 'api',
      pullCredentialsService: 'kwarm-credentials',
      pullCredentialsCaConfigMap: 'kwarm-credentials-ca',
      pullCredentialsUrl: undefined,
    });
  });

  it('reads every flag, --node-name winning over NODE_NAME', async () => {
    const f = await flags([
      '--node-name=n2', '--kubeconfig', '/k', '--namespace=kw', '--cri-socket=unix:///run/x.sock', '--max-pulls-per-node=5',
      '--verify-interval=90s', '--disk-threshold-percent=85', '--disk-check-interval=1s', '--metrics-bind-address=127.0.0.1:9000',
      '--health-probe-bind-address=0', '--log-level=debug', '--log-format=text', '--shutdown-grace-period=1m30s',
      '--runtime-unreachable-timeout=0s', '--repull-after-gc=now', '--container-starts-interval=0s',
      '--pull-secrets-from=controller', '--pull-credentials-service=creds', '--pull-credentials-ca-configmap=creds-ca',
      '--pull-credentials-url=https://127.0.0.1:9444',
    ]);
    expect(f).to.deep.equal({
      nodeName: 'n2', kubeconfig: '/k', namespace: 'kw', criSocket: 'unix:///run/x.sock', maxPullsPerNode: 5, verifyIntervalMs: 90_000, containerStartsIntervalMs: 0,
      diskThresholdPercent: 85, diskCheckIntervalMs: 1000, metricsBindAddress: '127.0.0.1:9000', healthProbeBindAddress: '0',
      logLevel: 'debug', logFormat: 'text', shutdownGraceMs: 90_000, runtimeUnreachableTimeoutMs: 0, repullAfterGc: 'now',
      pullSecretsFrom: 'controller', pullCredentialsService: 'creds', pullCredentialsCaConfigMap: 'creds-ca', pullCredentialsUrl: 'https://127.0.0.1:9444',
    });
  });

  it('takes the last value of a flag given twice (the chart\'s agent.extraArgs come after its own flags)', async () => {
    const f = await flags(['--verify-interval=5m', '--max-pulls-per-node=2', '--verify-interval=90s', '--max-pulls-per-node=4']);
    expect(f).to.include({ verifyIntervalMs: 90_000, maxPullsPerNode: 4 });
  });

  it('rejects what it cannot use, naming the flag', async () => {
    expect(await failure([], {})).to.match(/--node-name or the NODE_NAME/);
    expect(await failure(['--max-pulls-per-node=0'])).to.match(/--max-pulls-per-node/);
    expect(await failure(['--pull-secrets-from=secrets'])).to.match(/pull-secrets-from/);
    expect(await failure(['--pull-credentials-url=http://127.0.0.1:9444'])).to.match(/--pull-credentials-url.*not https/);
    expect(await failure(['--max-pulls-per-node=1.5'])).to.match(/--max-pulls-per-node/);
    expect(await failure(['--verify-interval=5'])).to.match(/--verify-interval.*not a duration/);
    expect(await failure(['--verify-interval=10ms'])).to.match(/--verify-interval.*at least/);
    expect(await failure(['--disk-threshold-percent=101'])).to.match(/--disk-threshold-percent/);
    expect(await failure(['--metrics-bind-address=:http'])).to.match(/--metrics-bind-address/);
    expect(await failure(['--log-format=xml'])).to.match(/log-format/);
    expect(await failure(['--bogus-flag'])).to.match(/bogus-flag/);
  });

  it('answers --help with the usage text listing the flags', async () => {
    const p = await parseAgentFlags(['--help'], {});
    expect(p.kind).to.equal('help');
    if (p.kind === 'help') expect(p.text).to.include('--max-pulls-per-node').and.include('--cri-socket').and.include('--shutdown-grace-period');
  });
});
