// What an admission looks up to decide a pod: the PrePullPolicies, the Deployment behind the pod's ReplicaSet, and
// the PrePullImages of the gate-enabled policies in the pod's namespace. Every replica, leader or not, keeps
// list-watch caches of the policies and of the derived PrePullImages (projected to what the gate reads), so an
// admission makes no API request once they are in sync: a burst of new pods (a rollout of 500 replicas) costs the
// API server nothing and each answer stays far inside the webhook's timeout. While a cache is not in sync (start,
// a broken watch), the same lookup goes to the API server, inside the admission's budget.
import type { Logger } from 'winston';
import { POLICY_LABEL } from '../../api/v1alpha1/index.ts';
import type { KubeClient } from '../../lib/kube-client.ts';
import type { ListWatch } from '../../lib/list-watch.ts';
import { projectedWatch } from '../sources/projected-watch.ts';
import { gatePaths, listGateImages, listGatePolicies } from './gate-api.ts';
import { ReplicaSetOwners } from './replicaset-owners.ts';
import { decodeGateImage, decodeGatePolicy, imagesByNamespace, keepUnchanged, type GateImageView, type GatePolicyView, type PodOwner } from './views.ts';

export interface AdmissionLookups {
  /** Every PrePullPolicy by name. */
  policies(signal: AbortSignal): Promise<ReadonlyMap<string, GatePolicyView>>;
  /** The controller owner of the pod's ReplicaSet `rs` (uid from the pod's owner reference). */
  replicaSetOwner(namespace: string, rs: PodOwner, signal: AbortSignal): Promise<PodOwner | undefined>;
  /** The PrePullImages the named policies derived in `namespace`. */
  images(namespace: string, policies: readonly string[], signal: AbortSignal): Promise<readonly GateImageView[]>;
}

/** The lookups as API requests, every time (ReplicaSet owners kept: they do not change). */
export function apiLookups(client: KubeClient): AdmissionLookups {
  const owners = new ReplicaSetOwners(client);
  return {
    policies: (signal) => listGatePolicies(client, signal),
    replicaSetOwner: (namespace, rs, signal) => owners.get(namespace, rs, signal),
    images: (namespace, policies, signal) => listGateImages(client, namespace, policies, signal),
  };
}

/** The policies' and PrePullImages' caches, read while in sync; API lookups otherwise. run() keeps them. */
export class CachedAdmissionLookups implements AdmissionLookups {
  readonly #api: AdmissionLookups;
  readonly #policies: ListWatch<GatePolicyView>;
  readonly #images: ListWatch<GateImageView>;
  /** Rebuilt on the first read after a change: the caches change far less often than pods are admitted. */
  #policyMap: Map<string, GatePolicyView> | undefined;
  #byNamespace: Map<string, GateImageView[]> | undefined;

  constructor(o: { readonly client: KubeClient; readonly log: Logger }) {
    const { client, log } = o;
    this.#api = apiLookups(client);
    this.#policies = projectedWatch({
      client, log, path: gatePaths.policies, decode: keepUnchanged(decodeGatePolicy), onChange: () => { this.#policyMap = undefined; },
    });
    this.#images = projectedWatch({
      client, log, path: gatePaths.prePullImages, labelSelector: POLICY_LABEL, decode: keepUnchanged(decodeGateImage), onChange: () => { this.#byNamespace = undefined; },
    });
  }

  /** Both caches listed and watching. */
  get synced(): boolean {
    return this.#policies.healthy && this.#images.healthy;
  }

  /** Lists and watches until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#policies.run(signal), this.#images.run(signal)]);
  }

  async policies(signal: AbortSignal): Promise<ReadonlyMap<string, GatePolicyView>> {
    if (!this.#policies.healthy) {
      return this.#api.policies(signal);
    }
    this.#policyMap ??= new Map([...this.#policies.values()].map((p) => [p.name, p]));
    return this.#policyMap;
  }

  replicaSetOwner(namespace: string, rs: PodOwner, signal: AbortSignal): Promise<PodOwner | undefined> {
    return this.#api.replicaSetOwner(namespace, rs, signal);
  }

  async images(namespace: string, policies: readonly string[], signal: AbortSignal): Promise<readonly GateImageView[]> {
    if (!this.#images.healthy) {
      return this.#api.images(namespace, policies, signal);
    }
    this.#byNamespace ??= imagesByNamespace(this.#images.values());
    const wanted = new Set(policies);
    return (this.#byNamespace.get(namespace) ?? []).filter((i) => wanted.has(i.policy));
  }
}
