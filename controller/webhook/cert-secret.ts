// Self-managed webhook TLS: the CA and serving certificate live in one Secret in kwarm's namespace, and the CA
// goes into the MutatingWebhookConfiguration's caBundle. Every replica runs this (the webhook is served by all
// of them, not only the leader): each reads the Secret, issues certificates only when planCertificates says so,
// and writes with the resourceVersion it read, so when two replicas race one write wins and the other re-reads
// and serves the winner's certificate. Wakes on changes of the Secret or the configuration (a deleted Secret
// is re-issued at once, a reset caBundle rewritten) and at the renewal time.
import { generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import type { Logger } from 'winston';
import { backoffDelaySeconds } from '../../lib/backoff.ts';
import { errorText } from '../../lib/errors.ts';
import { isConflict, KubeApiError, type KubeClient } from '../../lib/kube-client.ts';
import { ListWatch } from '../../lib/list-watch.ts';
import { field, isRecord, str, stringMap } from '../../lib/raw.ts';
import { Wakeup } from '../../lib/wakeup.ts';
import { caBundlePatch } from './ca-bundle.ts';
import { issueCertificates, planCertificates, SECRET_KEYS, type CertSecretData, type IssueSources } from './cert-decision.ts';
import type { ServingMaterial } from './https-server.ts';

export const WEBHOOK_CONFIGURATIONS = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

/** Even with nothing due, the Secret and caBundle are checked this often (a missed watch event, clock jumps). */
const RECHECK_MS = 3600_000;

export interface SelfManagedOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly namespace: string;
  readonly secret: string;
  /**
   * The MutatingWebhookConfiguration whose caBundle gets the CA; undefined for a server whose clients learn the
   * CA another way (the pull credentials endpoint: publishCa).
   */
  readonly configuration?: string;
  /** Called with the CA after every read of the Secret; a throw is retried like any other failure. */
  readonly publishCa?: (caPem: string, signal: AbortSignal) => Promise<void>;
  readonly dnsNames: readonly string[];
  readonly now: () => number;
  /** Called with the Secret's serving certificate whenever it is (re)read; the server swaps it in. */
  readonly onMaterial: (m: ServingMaterial) => void;
  readonly sources?: IssueSources;
}

export const DEFAULT_SOURCES: IssueSources = {
  newKey: (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  randomBytes: (n: number): Buffer => randomBytes(n),
};

/** The Secret's data, base64-decoded. */
export function decodeSecretData(raw: unknown): CertSecretData {
  const data = stringMap(field(raw, 'data'));
  const out: Record<string, string> = {};
  for (const k of Object.values(SECRET_KEYS)) if (data[k] !== undefined) out[k] = Buffer.from(data[k], 'base64').toString('utf8');
  return out;
}

function encodeData(d: Required<CertSecretData>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(d)) out[k] = Buffer.from(v, 'utf8').toString('base64');
  return out;
}

export class SelfManagedCertificates {
  readonly #o: SelfManagedOptions;
  #lastError: string | undefined;
  #caBundleWritten = false;
  #configurationMissing = false;
  #served = false;

  constructor(o: SelfManagedOptions) {
    this.#o = o;
  }

  /** Why the webhook cannot be trusted by the API server yet, or undefined once the caBundle holds our CA. */
  get problem(): string | undefined {
    if (this.#lastError !== undefined) return this.#lastError;
    if (this.#o.configuration === undefined) return this.#served ? undefined : 'certificate not read yet';
    if (this.#configurationMissing) return `MutatingWebhookConfiguration ${this.#o.configuration} not found`;
    return this.#caBundleWritten ? undefined : 'caBundle not written yet';
  }

  get #secretPath(): string {
    return `/api/v1/namespaces/${this.#o.namespace}/secrets/${this.#o.secret}`;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { client, log, namespace, secret, configuration } = this.#o;
    const wake = new Wakeup();
    // An object, not a local: TypeScript would take a local set to false before the await as false after it.
    const pending = { change: true };
    const changed = (): void => { pending.change = true; wake.wake(); };
    const version = (raw: unknown): string => str(field(raw, 'metadata', 'resourceVersion')) ?? '';
    const watches = [
      new ListWatch({ client, log, path: `/api/v1/namespaces/${namespace}/secrets`, fieldSelector: `metadata.name=${secret}`, decode: version, onChange: changed }),
      ...(configuration === undefined ? [] : [new ListWatch({ client, log, path: WEBHOOK_CONFIGURATIONS, fieldSelector: `metadata.name=${configuration}`, decode: version, onChange: changed })]),
    ].map((w) => w.run(signal));
    let failures = 0;
    let previous: number | undefined;
    const stopping = (): boolean => signal.aborted;
    while (!stopping()) {
      pending.change = false;
      let waitMs: number;
      try {
        waitMs = await this.#pass(signal);
        failures = 0;
        previous = undefined;
        this.#lastError = undefined;
      } catch (err) {
        if (stopping()) break;
        failures++;
        this.#lastError = errorText(err);
        previous = backoffDelaySeconds({ baseSeconds: 1, capSeconds: 60, jitter: 'decorrelated' }, failures, Math.random, previous);
        waitMs = previous * 1000;
        log.warn('webhook certificate: retrying', { secret, configuration, error: this.#lastError, retryInMs: Math.round(waitMs) });
      }
      if (!(pending.change as boolean) && waitMs > 0) await wake.wait(waitMs, signal);
    }
    await Promise.allSettled(watches);
  }

  /** One look at the Secret and the configuration; returns how long to wait before the next (0: at once). */
  async #pass(signal: AbortSignal): Promise<number> {
    const { client, log, now } = this.#o;
    const raw = await client.getOptional(this.#secretPath, signal);
    const current = decodeSecretData(raw);
    const nowMs = now();
    const plan = planCertificates(current, this.#o.dnsNames, nowMs);
    let data: Required<CertSecretData>;
    if (plan.kind === 'keep') {
      data = current as Required<CertSecretData>;
    } else {
      log.info('webhook certificate: issuing', { secret: this.#o.secret, newCa: plan.kind === 'issue-all', reason: plan.reason });
      data = issueCertificates({ plan, current, dnsNames: this.#o.dnsNames, caCommonName: `kwarm-webhook-ca@${this.#o.namespace}`, nowMs }, this.#o.sources ?? DEFAULT_SOURCES);
      try {
        if (raw === undefined) await client.create(`/api/v1/namespaces/${this.#o.namespace}/secrets`, await this.#newSecret(data, signal), signal);
        else await client.request({ method: 'PUT', path: this.#secretPath, body: { ...(raw as object), data: encodeData(data) }, signal });
      } catch (err) {
        // Another replica wrote first (409 AlreadyExists or Conflict): read and serve its certificate instead.
        if (isConflict(err)) {
          log.info('webhook certificate: another replica wrote the Secret first; re-reading', { secret: this.#o.secret });
          return 0;
        }
        throw err;
      }
    }
    this.#o.onMaterial({ cert: data[SECRET_KEYS.cert], key: data[SECRET_KEYS.key], ca: data[SECRET_KEYS.caCert] });
    this.#served = true;
    await this.#o.publishCa?.(data[SECRET_KEYS.caCert], signal);
    if (!await this.#ensureCaBundle(data[SECRET_KEYS.caCert], signal)) return 0;
    if (plan.kind !== 'keep') return 0;
    return Math.max(1000, Math.min(plan.renewAtMs - nowMs, RECHECK_MS));
  }

  /** The Secret, owned by the webhook configuration when it exists, so that uninstalling kwarm removes both. */
  async #newSecret(data: Required<CertSecretData>, signal: AbortSignal): Promise<unknown> {
    const configuration = this.#o.configuration;
    const config = configuration === undefined ? undefined : await this.#o.client.getOptional(`${WEBHOOK_CONFIGURATIONS}/${configuration}`, signal);
    const uid = str(field(config, 'metadata', 'uid'));
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: this.#o.secret,
        namespace: this.#o.namespace,
        labels: { 'app.kubernetes.io/name': 'kwarm', 'app.kubernetes.io/component': 'webhook-certificate', 'app.kubernetes.io/managed-by': 'kwarm-controller' },
        ...(uid === undefined ? {} : {
          ownerReferences: [{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: configuration, uid }],
        }),
      },
      type: 'kubernetes.io/tls',
      data: encodeData(data),
    };
  }

  /** Writes the CA into every webhook's caBundle; false when the write lost a race and should be redone. */
  async #ensureCaBundle(caPem: string, signal: AbortSignal): Promise<boolean> {
    const { client, log, configuration } = this.#o;
    if (configuration === undefined) return true;
    const path = `${WEBHOOK_CONFIGURATIONS}/${configuration}`;
    const raw = await client.getOptional(path, signal);
    if (raw === undefined) {
      if (!this.#configurationMissing) log.warn('webhook certificate: MutatingWebhookConfiguration not found; the caBundle is written once it exists', { configuration });
      this.#configurationMissing = true;
      this.#caBundleWritten = false;
      return true;
    }
    this.#configurationMissing = false;
    const ops = caBundlePatch(raw, caPem);
    if (ops.length > 0) {
      try {
        await client.patch(path, 'json', ops, signal);
      } catch (err) {
        // 422: a `test` op failed (the object changed since it was read); 409 likewise.
        if (err instanceof KubeApiError && (err.status === 422 || err.status === 409)) return false;
        throw err;
      }
      log.info('webhook certificate: caBundle written', { configuration, webhooks: isRecord(raw) && Array.isArray(raw.webhooks) ? raw.webhooks.length : 0, ca: new X509Certificate(caPem).fingerprint256 });
    }
    this.#caBundleWritten = true;
    return true;
  }
}
