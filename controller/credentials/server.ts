// The pull credentials endpoint: POST /pull-credentials {"names": [...]} over HTTPS, served by every controller
// replica (leader or not). The caller's bearer token is checked with a TokenReview; only the agent
// ServiceAccount's token bound to a pod on node N gets the pull-secret copies N's NodeImageSet names, read by GET.
// The serving certificate is self-managed (a Secret in kwarm's namespace) and its CA is published in a ConfigMap
// the agents read. Credentials are never logged: names only.
import type { Logger } from 'winston';
import { X509Certificate } from 'node:crypto';
import type { Check } from '../../lib/endpoints.ts';
import { errorText } from '../../lib/errors.ts';
import type { KubeClient } from '../../lib/kube-client.ts';
import { isNotFound } from '../../lib/kube-client.ts';
import { field, str } from '../../lib/raw.ts';
import { serviceDnsNames } from '../webhook/cert-decision.ts';
import { SelfManagedCertificates } from '../webhook/cert-secret.ts';
import { HttpError, HttpsJsonServer, type RequestInfo, type ServingMaterial } from '../webhook/https-server.ts';
import {
  bearerToken, callerNode, isRefusal, referencedSecrets, refuseUnreferenced, requestedNames, servedSecret,
  type CredentialsAnswer, type Refusal,
} from './access-decision.ts';

export const PULL_CREDENTIALS_PATH = '/pull-credentials';
/** The key of the CA certificate in the published ConfigMap (as in kube-root-ca.crt). */
export const CA_CONFIGMAP_KEY = 'ca.crt';
const TOKEN_REVIEWS = '/apis/authentication.k8s.io/v1/tokenreviews';
const NODE_IMAGE_SETS = '/apis/kwarm.io/v1alpha1/nodeimagesets';

export interface CredentialsConfig {
  readonly port: number;
  /** Listen address; undefined: all addresses (a pod's, for the Service). */
  readonly host?: string;
  readonly namespace: string;
  /** The Service agents call; the serving certificate names <service>.<namespace>.svc. */
  readonly service: string;
  /** The Secret holding the CA and serving certificate. */
  readonly secret: string;
  /** The ConfigMap the CA certificate is published in, for the agents. */
  readonly caConfigMap: string;
  /** The agents' ServiceAccount in `namespace`: the only one served. */
  readonly agentServiceAccount: string;
}

export interface CredentialsDeps {
  /** Not lease-fenced: every replica serves and keeps its certificate. */
  readonly client: KubeClient;
  readonly log: Logger;
  readonly now?: () => number;
}

function refuse(r: Refusal): never {
  throw new HttpError(r.status, r.reason);
}

/** The route's handler: TokenReview, the node's NodeImageSet, then the Secrets, each by GET. */
export function pullCredentialsHandler(config: Pick<CredentialsConfig, 'namespace' | 'agentServiceAccount'>, deps: Pick<CredentialsDeps, 'client' | 'log'>) {
  const { client, log } = deps;
  return async (body: unknown, signal: AbortSignal, request: RequestInfo): Promise<CredentialsAnswer> => {
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) refuse({ status: 401, reason: 'no bearer token: send the agent pod\'s ServiceAccount token in Authorization' });
    const names = requestedNames(body);
    if (isRefusal(names)) refuse(names);
    const review = await client.create(TOKEN_REVIEWS, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }, signal);
    const caller = callerNode(field(review, 'status'), config.namespace, config.agentServiceAccount);
    if (isRefusal(caller)) {
      log.warn('pull credentials refused', { reason: caller.reason, names });
      refuse(caller);
    }
    const nis = await client.getOptional(`${NODE_IMAGE_SETS}/${encodeURIComponent(caller.node)}`, signal);
    const unreferenced = refuseUnreferenced(caller.node, names, referencedSecrets(nis));
    if (unreferenced !== undefined) {
      log.warn('pull credentials refused', { node: caller.node, reason: unreferenced.reason });
      refuse(unreferenced);
    }
    const secrets: CredentialsAnswer['secrets'][number][] = [];
    const missing: string[] = [];
    for (const name of names) {
      let raw: unknown;
      try {
        raw = await client.get(`/api/v1/namespaces/${encodeURIComponent(config.namespace)}/secrets/${encodeURIComponent(name)}`, signal);
      } catch (err) {
        if (isNotFound(err)) {
          missing.push(name);
          continue;
        }
        throw err;
      }
      const served = servedSecret(name, raw);
      if (isRefusal(served)) {
        log.warn('pull credentials refused', { node: caller.node, reason: served.reason });
        refuse(served);
      }
      secrets.push(served);
    }
    log.info('pull credentials served', { node: caller.node, names: secrets.map((s) => s.name), missing });
    return { secrets, missing };
  };
}

/** Writes the CA certificate into the ConfigMap when it holds another (every replica; same content, no race). */
async function publishCa(client: KubeClient, log: Logger, namespace: string, name: string, caPem: string, signal: AbortSignal): Promise<void> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`;
  const current = await client.getOptional(path, signal);
  if (str(field(current, 'data', CA_CONFIGMAP_KEY)) === caPem) return;
  await client.apply(path, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name, namespace,
      labels: { 'app.kubernetes.io/name': 'kwarm', 'app.kubernetes.io/component': 'pull-credentials-ca', 'app.kubernetes.io/managed-by': 'kwarm-controller' },
    },
    data: { [CA_CONFIGMAP_KEY]: caPem },
  }, 'kwarm-controller', signal);
  log.info('pull credentials: CA published', { configMap: name, ca: new X509Certificate(caPem).fingerprint256 });
}

export interface CredentialsServer {
  readonly port: number;
  /** Ready once a certificate is served and its CA published. */
  readonly check: Check;
  close(): Promise<void>;
}

export async function startCredentialsServer(config: CredentialsConfig, deps: CredentialsDeps): Promise<CredentialsServer> {
  const log = deps.log.child({ component: 'pull-credentials' });
  const server = new HttpsJsonServer({ [PULL_CREDENTIALS_PATH]: pullCredentialsHandler(config, { client: deps.client, log }) }, log);
  const onMaterial = (m: ServingMaterial): void => {
    try {
      server.setMaterial(m);
    } catch (err) {
      throw new Error(`the pull credentials certificate cannot be loaded: ${errorText(err)}`);
    }
  };
  const source = new SelfManagedCertificates({
    client: deps.client, log, namespace: config.namespace, secret: config.secret,
    dnsNames: serviceDnsNames(config.service, config.namespace), now: deps.now ?? Date.now, onMaterial,
    publishCa: (caPem, signal) => publishCa(deps.client, log, config.namespace, config.caConfigMap, caPem, signal),
  });
  const port = await server.listen(config.port, config.host);
  const stop = new AbortController();
  const running = source.run(stop.signal).catch((err: unknown) => { log.error('pull credentials certificate source stopped', { error: errorText(err) }); });
  log.info('pull credentials server listening', { port, path: PULL_CREDENTIALS_PATH, service: config.service });
  return {
    port,
    check: () => {
      const p = source.problem;
      if (server.material === undefined) return { ok: false, reason: `pull credentials: no serving certificate yet${p === undefined ? '' : ` (${p})`}` };
      return p === undefined ? { ok: true } : { ok: false, reason: `pull credentials: ${p}` };
    },
    async close() {
      stop.abort();
      await running;
      await server.close();
    },
  };
}
