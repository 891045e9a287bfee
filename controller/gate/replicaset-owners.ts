// The Deployment behind a pod's ReplicaSet, looked up once per ReplicaSet: the controller owner of a ReplicaSet
// does not change in practice (kube-controller-manager sets it at creation), so the answer is kept. The pod's
// owner reference names the ReplicaSet by uid as well, so a ReplicaSet deleted and created again under the same
// name is a new entry. Bounded: the oldest entries go first, a later lookup reads the ReplicaSet again.
import type { KubeClient } from '../../lib/kube-client.ts';
import { replicaSetOwner } from './gate-api.ts';
import type { PodOwner } from './views.ts';

/** Enough for every ReplicaSet with pods being created at once in a large cluster; an entry is ~200 bytes. */
export const DEFAULT_MAX_REPLICASET_OWNERS = 10_000;

export class ReplicaSetOwners {
  readonly #client: KubeClient;
  readonly #max: number;
  /** `namespace/name/uid` → the ReplicaSet's controller owner (null: it has none). */
  readonly #owners = new Map<string, PodOwner | null>();

  constructor(client: KubeClient, max = DEFAULT_MAX_REPLICASET_OWNERS) {
    this.#client = client;
    this.#max = Math.max(1, max);
  }

  /** The controller owner of ReplicaSet namespace/name; undefined when it has none, or is not found (not kept). */
  async get(namespace: string, rs: PodOwner, signal: AbortSignal): Promise<PodOwner | undefined> {
    const key = `${namespace}/${rs.name}/${rs.uid ?? ''}`;
    const known = this.#owners.get(key);
    if (known !== undefined) return known ?? undefined;
    const found = await replicaSetOwner(this.#client, namespace, rs.name, signal);
    // A ReplicaSet not found yet (or gone) is not remembered: it may be created (again) under this name.
    if (found === 'not-found') return undefined;
    if (this.#owners.size >= this.#max) {
      const oldest = this.#owners.keys().next();
      if (oldest.done !== true) this.#owners.delete(oldest.value);
    }
    this.#owners.set(key, found ?? null);
    return found;
  }

  get size(): number {
    return this.#owners.size;
  }
}
