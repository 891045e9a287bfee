// The objects the controller writes, as request bodies, and the comparable form of what it reads back, so
// "changed?" is a digest comparison. Pure: no I/O; times come from the caller.
import {
  API_VERSION, nodeImageSetSpecSchema, PURGE_FINALIZER,
  type NodeImageSetSpec, type PrePullImage, type PrePullImageStatus, type PrePullPolicyStatus,
} from '../../api/v1alpha1/index.ts';
import { withoutDefaults } from '../../api/schema.ts';
import { canonicalDigest } from './canonical-json.ts';
import { type DesiredPrePullImage } from '../derive/desired-images.ts';
import type { PlannedNodeImageSet } from '../plan/node-plan.ts';
import { type SecretCopy } from '../derive/pull-secrets.ts';
import type { StatusEvent } from '../status/status-rollup.ts';
import { CONTROLLER_FIELD_MANAGER, MANAGED_ANNOTATIONS, MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL, SECRET_COPY_LABEL, SECRET_SOURCE_ANNOTATION } from '../../api/v1alpha1/labels.ts';

const KWARM = `/apis/${API_VERSION}`;

export const paths = {
  policies: `${KWARM}/prepullpolicies`,
  policyStatus: (name: string) => `${KWARM}/prepullpolicies/${name}/status`,
  prePullImages: `${KWARM}/prepullimages`,
  prePullImage: (ns: string, name: string) => `${KWARM}/namespaces/${ns}/prepullimages/${name}`,
  prePullImageStatus: (ns: string, name: string) => `${KWARM}/namespaces/${ns}/prepullimages/${name}/status`,
  nodeImageSets: `${KWARM}/nodeimagesets`,
  nodeImageSet: (name: string) => `${KWARM}/nodeimagesets/${name}`,
  nodes: '/api/v1/nodes',
  serviceAccounts: '/api/v1/serviceaccounts',
  secrets: '/api/v1/secrets',
  namespacedSecrets: (ns: string) => `/api/v1/namespaces/${ns}/secrets`,
  secret: (ns: string, name: string) => `/api/v1/namespaces/${ns}/secrets/${name}`,
  events: (ns: string) => `/api/v1/namespaces/${ns}/events`,
  configMaps: '/api/v1/configmaps',
  namespacedConfigMaps: (ns: string) => `/api/v1/namespaces/${ns}/configmaps`,
  workloads: {
    Deployment: '/apis/apps/v1/deployments',
    StatefulSet: '/apis/apps/v1/statefulsets',
    DaemonSet: '/apis/apps/v1/daemonsets',
    Job: '/apis/batch/v1/jobs',
    CronJob: '/apis/batch/v1/cronjobs',
  },
} as const;

// ---- PrePullImages the controller derives ---------------------------------------------------------------

/** The part of a derived PrePullImage the controller owns, in one comparable shape. */
interface ManagedShape {
  labels: Record<string, string | undefined>;
  annotations: Record<string, string | undefined>;
  owner: { apiVersion: string; kind: string; name: string; uid: string } | undefined;
  spec: unknown;
  /** Present (true) only when the policy purges on delete, so other shapes digest as they always did. */
  purgeFinalizer?: true;
}

function managedShape(d: DesiredPrePullImage): ManagedShape {
  return {
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [POLICY_LABEL]: d.policy },
    annotations: Object.fromEntries(MANAGED_ANNOTATIONS.map((k) => [k, d.annotations[k]])),
    owner: { apiVersion: d.owner.apiVersion, kind: d.owner.kind, name: d.owner.name, uid: d.owner.uid },
    spec: { ...d.spec, imagePullSecrets: d.spec.imagePullSecrets },
    ...(d.spec.purgeOnDelete === true ? { purgeFinalizer: true as const } : {}),
  };
}

export function desiredPrePullImageDigest(d: DesiredPrePullImage): string {
  return canonicalDigest(managedShape(d));
}

/** The same shape read from a cached PrePullImage; equal digests mean nothing to write. */
export function cachedPrePullImageDigest(ppi: PrePullImage): string {
  const labels = ppi.metadata.labels ?? {};
  const annotations = ppi.metadata.annotations ?? {};
  const owner = ppi.metadata.ownerReferences?.find((o) => o.controller === true);
  const s = ppi.spec;
  return canonicalDigest({
    labels: { [MANAGED_BY_LABEL]: labels[MANAGED_BY_LABEL], [POLICY_LABEL]: labels[POLICY_LABEL] },
    annotations: Object.fromEntries(MANAGED_ANNOTATIONS.map((k) => [k, annotations[k]])),
    owner: owner === undefined ? undefined : { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid },
    spec: {
      image: s.image, nodes: s.nodes, imagePullSecrets: s.imagePullSecrets ?? [], retry: s.retry, timeout: s.timeout, refreshInterval: s.refreshInterval,
      ...(s.purgeOnDelete ? { purgeOnDelete: true } : {}),
      ...(s.gateNewNodes ? { gateNewNodes: true } : {}),
    },
    ...(s.purgeOnDelete && hasPurgeFinalizer(ppi) ? { purgeFinalizer: true as const } : {}),
  } satisfies ManagedShape);
}

export function hasPurgeFinalizer(ppi: PrePullImage): boolean {
  return ppi.metadata.finalizers?.includes(PURGE_FINALIZER) === true;
}

/** Server-side apply body that owns just the purge finalizer (PURGE_FIELD_MANAGER). */
export function finalizerApplyBody(namespace: string, name: string): unknown {
  return { apiVersion: API_VERSION, kind: 'PrePullImage', metadata: { name, namespace, finalizers: [PURGE_FINALIZER] } };
}

/**
 * JSON patch removing the purge finalizer where the cached object has it; the test makes it fail (and the
 * pass retry) rather than remove someone else's finalizer when the list changed meanwhile.
 */
export function finalizerRemovalPatch(ppi: PrePullImage): unknown[] {
  const i = ppi.metadata.finalizers?.indexOf(PURGE_FINALIZER) ?? -1;
  if (i < 0) return [];
  return [
    { op: 'test', path: `/metadata/finalizers/${i}`, value: PURGE_FINALIZER },
    { op: 'remove', path: `/metadata/finalizers/${i}` },
  ];
}

export function isManaged(ppi: PrePullImage): boolean {
  return ppi.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

export function prePullImageApplyBody(d: DesiredPrePullImage): unknown {
  const shape = managedShape(d);
  const spec: Record<string, unknown> = { image: d.spec.image, nodes: d.spec.nodes, retry: d.spec.retry, timeout: d.spec.timeout };
  if (d.spec.imagePullSecrets.length > 0) spec.imagePullSecrets = d.spec.imagePullSecrets;
  if (d.spec.purgeOnDelete === true) spec.purgeOnDelete = true;
  if (d.spec.refreshInterval !== undefined) spec.refreshInterval = d.spec.refreshInterval;
  if (d.spec.gateNewNodes === true) spec.gateNewNodes = true;
  return {
    apiVersion: API_VERSION,
    kind: 'PrePullImage',
    metadata: {
      name: d.name,
      namespace: d.namespace,
      labels: shape.labels,
      annotations: d.annotations,
      // Its source owns it (the workload, the Argo object, the ConfigMap, or the policy for a static list):
      // deleting the source lets the garbage collector delete it.
      ownerReferences: [{ ...shape.owner, controller: true, blockOwnerDeletion: false }],
      // Applied with the object: a policy that stops purging on delete drops it again.
      ...(d.spec.purgeOnDelete === true ? { finalizers: [PURGE_FINALIZER] } : {}),
    },
    spec,
  };
}

export function prePullImageStatusBody(namespace: string, name: string, status: PrePullImageStatus): unknown {
  return { apiVersion: API_VERSION, kind: 'PrePullImage', metadata: { name, namespace }, status };
}

export function prePullPolicyStatusBody(name: string, status: PrePullPolicyStatus): unknown {
  return { apiVersion: API_VERSION, kind: 'PrePullPolicy', metadata: { name }, status };
}

// ---- NodeImageSets --------------------------------------------------------------------------------------

export function nodeImageSetApplyBody(p: PlannedNodeImageSet): unknown {
  return {
    apiVersion: API_VERSION,
    kind: 'NodeImageSet',
    metadata: {
      name: p.node,
      // The Node owns it: when the Node is deleted, the garbage collector deletes its NodeImageSet.
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: p.node, uid: p.nodeUid, controller: true, blockOwnerDeletion: false }],
    },
    spec: leanSpec(p.spec),
  };
}

/**
 * The spec as applied: its entries without the fields whose value is the CRD's default (withoutDefaults). The API
 * server fills them in (the decoder reads back the same spec, so the digest is unchanged), and what the controller
 * does not send it does not own, so managedFields do not list them once per entry. Every write of the object, the
 * agent's status patches included, costs the API server less (bench/nis-write-cost.ts).
 * The top-level fields stay, empty lists included: server-side apply drops a spec that holds no value the applier
 * owns (an empty list owns none), and the API server then refuses the object (spec: Required value).
 */
export function leanSpec(spec: NodeImageSetSpec): Record<string, unknown> {
  const lean = withoutDefaults(nodeImageSetSpecSchema, spec) as { images?: unknown };
  return { ...spec, images: lean.images ?? [] };
}

// ---- Secrets and Events ---------------------------------------------------------------------------------

export function secretCopyBody(namespace: string, c: SecretCopy): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: c.name,
      namespace,
      labels: { [SECRET_COPY_LABEL]: 'true', [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { [SECRET_SOURCE_ANNOTATION]: c.source },
    },
    type: c.type,
    data: c.data,
  };
}

export interface EventSubject {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** A core/v1 Event on a PrePullImage (or, given its kind, another namespaced object), as `kubectl describe` shows them. */
export function eventBody(
  subject: EventSubject,
  ev: StatusEvent,
  now: string,
  instance: string,
  kind: { apiVersion: string; kind: string } = { apiVersion: API_VERSION, kind: 'PrePullImage' },
): unknown {
  return controllerEvent(subject.name, subject.namespace, { ...kind, namespace: subject.namespace, name: subject.name, uid: subject.uid }, ev, now, instance);
}

/** A core/v1 Event written by kwarm-controller about `involvedObject`, in `namespace`. */
export function controllerEvent(
  name: string,
  namespace: string,
  involvedObject: Record<string, string>,
  ev: { type: string; reason: string; message: string },
  now: string,
  instance: string,
): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${name}.`, namespace },
    involvedObject,
    type: ev.type,
    reason: ev.reason,
    message: ev.message,
    source: { component: CONTROLLER_FIELD_MANAGER },
    reportingComponent: CONTROLLER_FIELD_MANAGER,
    reportingInstance: instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** metav1.Time: RFC 3339 in whole seconds. */
export function metaTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
