// The admission webhook server as the controller runs it: an HTTPS server with the given routes, and the
// source of its serving certificate (the self-managed Secret, or files written by cert-manager), both stopped
// by close().
import type { Logger } from 'winston';
import type { Check } from '../../lib/endpoints.ts';
import type { KubeClient } from '../../lib/kube-client.ts';
import { serviceDnsNames } from './cert-decision.ts';
import { CertFiles } from './cert-files.ts';
import { SelfManagedCertificates } from './cert-secret.ts';
import { HttpsJsonServer, type ServingMaterial, type WebhookRoutes } from './https-server.ts';
import type { WebhookConfig } from './options.ts';
import { errorText } from '../../lib/errors.ts';

export type { WebhookHandler, WebhookRoutes } from './https-server.ts';
export { webhookConfig, webhookOptions, type WebhookConfig } from './options.ts';

export interface WebhookDeps {
  /**
   * For the Secret and the caBundle (self-managed TLS). Every replica serves the webhook, so its writes must not
   * be tied to the leader lease: not the client whose beforeWrite asserts leadership.
   */
  readonly client: KubeClient;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface WebhookServer {
  readonly port: number;
  /** Ready once a certificate is served and, when self-managed, its CA is in the caBundle. */
  readonly check: Check;
  close(): Promise<void>;
}

export async function startWebhookServer(config: WebhookConfig, routes: WebhookRoutes, deps: WebhookDeps): Promise<WebhookServer> {
  const log = deps.log.child({ component: 'webhook' });
  const server = new HttpsJsonServer(routes, log);
  const onMaterial = (m: ServingMaterial): void => {
    try {
      server.setMaterial(m);
    } catch (err) {
      throw new Error(`the webhook certificate cannot be loaded: ${errorText(err)}`);
    }
  };
  const source = config.tls.kind === 'self-managed'
    ? new SelfManagedCertificates({
      client: deps.client, log, namespace: config.namespace, secret: config.tls.secret, configuration: config.tls.configuration,
      dnsNames: serviceDnsNames(config.service, config.namespace), now: deps.now ?? Date.now, onMaterial,
    })
    : new CertFiles({ dir: config.tls.certDir, log, onMaterial });
  const port = await server.listen(config.port, config.host);
  const stop = new AbortController();
  const running = source.run(stop.signal).catch((err: unknown) => { log.error('webhook certificate source stopped', { error: errorText(err) }); });
  log.info('webhook server listening', { port, tls: config.tls.kind, paths: Object.keys(routes) });
  return {
    port,
    check: () => {
      if (server.material === undefined) return { ok: false, reason: `webhook: no serving certificate yet${source.problem === undefined ? '' : ` (${source.problem})`}` };
      const p = source.problem;
      return p === undefined ? { ok: true } : { ok: false, reason: `webhook: ${p}` };
    },
    async close() {
      stop.abort();
      await running;
      await server.close();
    },
  };
}
