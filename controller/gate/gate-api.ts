// The rollout gate's requests to the API server: the lookups an admission (and the release loop) makes to tell
// a pod's workload and its images' warmth, and the one pod write, removing kwarm's gate. Thin: every decision is
// in gate-decision.ts.
import { API_VERSION, POLICY_LABEL } from '../../api/v1alpha1/index.ts';
import type { KubeClient } from '../../lib/kube-client.ts';
import { field, str } from '../../lib/raw.ts';
import { controllerEvent, metaTime } from '../write/api-objects.ts';
import { removeGatePatch } from './gate-decision.ts';
import { decodeGateImage, decodeGatePolicy, type GateImageView, type GatePodView, type GatePolicyView, type PodOwner } from './views.ts';

export const gatePaths = {
  policies: `/apis/${API_VERSION}/prepullpolicies`,
  prePullImages: `/apis/${API_VERSION}/prepullimages`,
  namespacedPrePullImages: (ns: string) => `/apis/${API_VERSION}/namespaces/${ns}/prepullimages`,
  nodeImageSets: `/apis/${API_VERSION}/nodeimagesets`,
  replicaSet: (ns: string, name: string) => `/apis/apps/v1/namespaces/${ns}/replicasets/${name}`,
  pods: '/api/v1/pods',
  pod: (ns: string, name: string) => `/api/v1/namespaces/${ns}/pods/${name}`,
  events: (ns: string) => `/api/v1/namespaces/${ns}/events`,
} as const;

/** Only pods no scheduler has placed yet can carry a scheduling gate. */
export const UNSCHEDULED_PODS = 'spec.nodeName=';

/** The controller owner of a ReplicaSet (its Deployment), undefined when it has none; 'not-found' when there is no such ReplicaSet. */
export async function replicaSetOwner(client: KubeClient, ns: string, name: string, signal: AbortSignal): Promise<PodOwner | undefined | 'not-found'> {
  const rs = await client.getOptional(gatePaths.replicaSet(ns, name), signal);
  if (rs === undefined) return 'not-found';
  const owners = field(rs, 'metadata', 'ownerReferences');
  const ctl = Array.isArray(owners) ? (owners as unknown[]).find((o) => field(o, 'controller') === true) : undefined;
  const kind = str(field(ctl, 'kind'));
  const owner = str(field(ctl, 'name'));
  return kind !== undefined && owner !== undefined ? { kind, name: owner } : undefined;
}

/** Every PrePullPolicy, as the gate sees it. */
export async function listGatePolicies(client: KubeClient, signal: AbortSignal): Promise<Map<string, GatePolicyView>> {
  const page = await client.list(gatePaths.policies, {}, signal);
  const out = new Map<string, GatePolicyView>();
  for (const raw of page.items) {
    const p = decodeGatePolicy(raw);
    if (p !== undefined) out.set(p.name, p);
  }
  return out;
}

/** The PrePullImages the named policies derived in a namespace. */
export async function listGateImages(client: KubeClient, ns: string, policies: readonly string[], signal: AbortSignal): Promise<GateImageView[]> {
  if (policies.length === 0) return [];
  const page = await client.list(gatePaths.namespacedPrePullImages(ns), { labelSelector: `${POLICY_LABEL} in (${policies.join(',')})` }, signal);
  return page.items.map(decodeGateImage).filter((i): i is GateImageView => i !== undefined);
}

/**
 * Removes kwarm's gate from `pod` (as last seen) and records `event` on it. A gate list changed meanwhile fails
 * the patch's test (422), and the caller decides again from the fresh pod. False when the pod has no gate.
 */
export async function releasePod(
  client: KubeClient,
  pod: GatePodView,
  event: { type: string; reason: string; message: string },
  instance: string,
  now: Date,
  signal: AbortSignal,
): Promise<boolean> {
  const patch = removeGatePatch(pod);
  if (patch === undefined) return false;
  await client.patch(gatePaths.pod(pod.namespace, pod.name), 'json', patch, signal);
  const involved = { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid };
  await client.create(gatePaths.events(pod.namespace), controllerEvent(pod.name, pod.namespace, involved, event, metaTime(now), instance), signal);
  return true;
}
