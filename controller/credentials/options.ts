// The pull credentials endpoint's flags, and the configuration they make (main.ts adds the options to its
// parser and passes the result to startCredentialsServer).
import type { Options } from 'yargs';
import type { CredentialsConfig } from './server.ts';

export const credentialsOptions = {
  'pull-credentials': { type: 'boolean', default: false, describe: 'Serve pull-secret copies to agents (POST /pull-credentials over HTTPS, every replica): an agent gets only the copies its own node\'s NodeImageSet names, proven by its pod-bound token (TokenReview)' },
  'pull-credentials-port': { type: 'number', default: 9444, describe: 'HTTPS port of the pull credentials endpoint (all addresses)' },
  'pull-credentials-service': { type: 'string', default: 'kwarm-credentials', describe: 'The Service in --namespace agents call; the serving certificate names <service>.<namespace>.svc' },
  'pull-credentials-secret': { type: 'string', default: 'kwarm-credentials-cert', describe: 'The Secret in --namespace where the endpoint\'s CA and serving certificate are kept' },
  'pull-credentials-ca-configmap': { type: 'string', default: 'kwarm-credentials-ca', describe: 'The ConfigMap in --namespace the CA certificate is published in (ca.crt), for the agents' },
  'agent-service-account': { type: 'string', default: 'kwarm-agent', describe: 'The agents\' ServiceAccount in --namespace: the only one the endpoint serves' },
} as const satisfies Record<string, Options>;

export interface CredentialsFlags {
  'pull-credentials-port': number;
  'pull-credentials-service': string;
  'pull-credentials-secret': string;
  'pull-credentials-ca-configmap': string;
  'agent-service-account': string;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The configuration of the flags, or an error naming the flag that is wrong. */
export function credentialsConfig(flags: CredentialsFlags, namespace: string): CredentialsConfig {
  const port = flags['pull-credentials-port'];
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--pull-credentials-port ${port} is not a port (0-65535; 0 picks a free one)`);
  if (!LABEL.test(flags['pull-credentials-service'])) throw new Error(`--pull-credentials-service "${flags['pull-credentials-service']}" is not a Service name`);
  for (const f of ['pull-credentials-secret', 'pull-credentials-ca-configmap', 'agent-service-account'] as const) {
    if (!SUBDOMAIN.test(flags[f]) || flags[f].length > 253) throw new Error(`--${f} "${flags[f]}" is not an object name`);
  }
  return {
    port, namespace,
    service: flags['pull-credentials-service'],
    secret: flags['pull-credentials-secret'],
    caConfigMap: flags['pull-credentials-ca-configmap'],
    agentServiceAccount: flags['agent-service-account'],
  };
}
