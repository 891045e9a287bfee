// The pull credentials endpoint's flags, and the configuration they make (main.ts adds the options to its
// parser and passes the result to startCredentialsServer).
import type { Options } from 'yargs';
import { objectNameFlag, portFlag, serviceFlag } from '../flag-values.ts';
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

/** The configuration of the flags, or an error naming the flag that is wrong. */
export function credentialsConfig(flags: CredentialsFlags, namespace: string): CredentialsConfig {
  const name = (f: 'pull-credentials-secret' | 'pull-credentials-ca-configmap' | 'agent-service-account'): string => objectNameFlag(f, flags[f]);
  return {
    port: portFlag('pull-credentials-port', flags['pull-credentials-port']), namespace,
    service: serviceFlag('pull-credentials-service', flags['pull-credentials-service']),
    secret: name('pull-credentials-secret'),
    caConfigMap: name('pull-credentials-ca-configmap'),
    agentServiceAccount: name('agent-service-account'),
  };
}
