// The admission webhook server's flags, and the typed configuration they make. main.ts adds the options to its
// parser and passes the result of webhookConfig to startWebhookServer.
import type { Options } from 'yargs';
import { objectNameFlag, portFlag, serviceFlag } from '../flag-values.ts';

export const WEBHOOK_TLS_MODES = ['self-managed', 'files'] as const;
export type WebhookTlsMode = (typeof WEBHOOK_TLS_MODES)[number];

export const webhookOptions = {
  'webhook-port': { type: 'number', default: 9443, describe: 'HTTPS port of the admission webhook server (all addresses)' },
  'webhook-tls': {
    choices: WEBHOOK_TLS_MODES, default: 'self-managed' as WebhookTlsMode,
    describe: 'self-managed: kwarm keeps a CA and serving certificate in --webhook-secret and writes the CA into --webhook-configuration; files: tls.crt and tls.key from --webhook-cert-dir (cert-manager), reloaded when they change',
  },
  'webhook-cert-dir': { type: 'string', default: '/etc/kwarm/webhook-certs', describe: 'With --webhook-tls=files: the directory holding tls.crt and tls.key' },
  'webhook-secret': { type: 'string', default: 'kwarm-webhook-cert', describe: 'With --webhook-tls=self-managed: the Secret in --namespace that holds the CA and serving certificate' },
  'webhook-configuration': { type: 'string', default: 'kwarm-rollout-gate', describe: 'With --webhook-tls=self-managed: the MutatingWebhookConfiguration whose webhooks[].clientConfig.caBundle kwarm writes' },
  'webhook-service': { type: 'string', default: 'kwarm-webhook', describe: 'The Service in --namespace the API server calls the webhook through; the serving certificate names <service>.<namespace>.svc' },
} as const satisfies Record<string, Options>;

export type WebhookTls =
  | { readonly kind: 'self-managed'; readonly secret: string; readonly configuration: string }
  | { readonly kind: 'files'; readonly certDir: string };

export interface WebhookConfig {
  readonly port: number;
  /** Listen address; undefined: all addresses (a pod's, for the Service). */
  readonly host?: string;
  readonly namespace: string;
  readonly service: string;
  readonly tls: WebhookTls;
}

export interface WebhookFlags {
  'webhook-port': number;
  'webhook-tls': WebhookTlsMode;
  'webhook-cert-dir': string;
  'webhook-secret': string;
  'webhook-configuration': string;
  'webhook-service': string;
}

/** The configuration of the flags, or an error naming the flag that is wrong. */
export function webhookConfig(flags: WebhookFlags, namespace: string): WebhookConfig {
  const port = portFlag('webhook-port', flags['webhook-port']);
  const service = serviceFlag('webhook-service', flags['webhook-service']);
  let tls: WebhookTls;
  switch (flags['webhook-tls']) {
    case 'self-managed': {
      const secret = objectNameFlag('webhook-secret', flags['webhook-secret'], 'a Secret name');
      const configuration = objectNameFlag('webhook-configuration', flags['webhook-configuration']);
      tls = { kind: 'self-managed', secret, configuration };
      break;
    }
    case 'files':
      if (flags['webhook-cert-dir'] === '') throw new Error('--webhook-cert-dir must name a directory with --webhook-tls=files');
      tls = { kind: 'files', certDir: flags['webhook-cert-dir'] };
      break;
    default: {
      const unreachable: never = flags['webhook-tls'];
      throw new Error(`--webhook-tls "${String(unreachable)}" is not one of ${WEBHOOK_TLS_MODES.join(', ')}`);
    }
  }
  return { port, namespace, service, tls };
}
