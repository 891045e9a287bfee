// Pull secrets, read one by one with GET from kwarm's namespace (the agent may not list or watch
// secrets). Their content goes only to credentials.ts and to CRI; nothing here logs or keeps it.
import type { KubeClient } from '../lib/kube-client.ts';
import { isNotFound } from '../lib/kube-client.ts';
import type { PullSecret } from './credentials.ts';
import { errorText } from '../lib/errors.ts';
import { isRecord } from '../lib/raw.ts';

export interface ReadSecrets {
  secrets: PullSecret[];
  /** Names that do not exist (the kubelet also carries on without a missing pull secret). */
  missing: string[];
}

export interface SecretSource {
  read(names: readonly string[], signal: AbortSignal): Promise<ReadSecrets>;
}


/** The decoded form of a Secret object; undefined when it is not shaped like one. */
export function pullSecretFromObject(namespace: string, name: string, raw: unknown): PullSecret | undefined {
  if (!isRecord(raw)) return undefined;
  const type = typeof raw.type === 'string' ? raw.type : '';
  const data: Record<string, string> = {};
  if (raw.data !== undefined && raw.data !== null) {
    if (!isRecord(raw.data)) return undefined;
    for (const [k, v] of Object.entries(raw.data)) {
      if (typeof v === 'string') data[k] = Buffer.from(v, 'base64').toString('utf8');
    }
  }
  const meta = isRecord(raw.metadata) ? raw.metadata : {};
  const resourceVersion = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : undefined;
  return { namespace, name, type, data, ...(resourceVersion !== undefined ? { resourceVersion } : {}) };
}

export class KubeSecretSource implements SecretSource {
  readonly #client: KubeClient;
  readonly #namespace: string;

  constructor(client: KubeClient, namespace: string) {
    this.#client = client;
    this.#namespace = namespace;
  }

  async read(names: readonly string[], signal: AbortSignal): Promise<ReadSecrets> {
    const secrets: PullSecret[] = [];
    const missing: string[] = [];
    for (const name of names) {
      const path = `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/secrets/${encodeURIComponent(name)}`;
      let raw: unknown;
      try {
        raw = await this.#client.get(path, signal);
      } catch (err) {
        if (isNotFound(err)) {
          missing.push(name);
          continue;
        }
        // KubeApiError messages carry the API's Status message, never the secret's data.
        throw new Error(`reading pull secret ${this.#namespace}/${name}: ${errorText(err)}`, { cause: err });
      }
      const secret = pullSecretFromObject(this.#namespace, name, raw);
      if (secret === undefined) missing.push(name);
      else secrets.push(secret);
    }
    return { secrets, missing };
  }
}
