// What the rollout gate reads of Pods, PrePullImages, PrePullPolicies and NodeImageSets, projected from the raw
// API objects once at the edge (admission requests, lists and watches). Pure: no I/O.
import { CONTAINER_ANNOTATION, POLICY_LABEL, ROLLOUT_GATE_NAME, WORKLOAD_ANNOTATION, durationMilliseconds, DEFAULT_ROLLOUT_GATE_TIMEOUT } from '../../api/v1alpha1/index.ts';
import { field, isRecord, list, sameProjection, str } from '../../lib/raw.ts';

export interface PodContainer {
  readonly name: string;
  readonly image: string;
}

export interface PodOwner {
  readonly kind: string;
  readonly name: string;
  /** The owner's uid, when the reference gives it. */
  readonly uid?: string;
}

/** The part of a Pod the gate reads. */
export interface GatePodView {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** metadata.creationTimestamp; absent on a pod being created (admission). */
  readonly createdAt: string | undefined;
  readonly nodeName: string | undefined;
  /** The controller owner (ownerReferences[controller=true]), if any. */
  readonly owner: PodOwner | undefined;
  /** containers and initContainers, in that order. */
  readonly containers: readonly PodContainer[];
  /** spec.schedulingGates as sent, for the release patch's test op; undefined when absent. */
  readonly gates: readonly unknown[] | undefined;
}

function container(v: unknown): PodContainer | undefined {
  const name = str(field(v, 'name'));
  const image = str(field(v, 'image'));
  return name !== undefined && image !== undefined ? { name, image } : undefined;
}

/** A Pod (API object, or admission request object with the request's namespace, which is authoritative). */
export function decodeGatePod(raw: unknown, namespace?: string): GatePodView | undefined {
  const ns = namespace ?? str(field(raw, 'metadata', 'namespace'));
  // A pod being created may have only generateName; the gate needs no name to decide.
  const name = str(field(raw, 'metadata', 'name')) ?? str(field(raw, 'metadata', 'generateName')) ?? '';
  if (ns === undefined || ns === '' || !isRecord(field(raw, 'spec'))) return undefined;
  const owners = field(raw, 'metadata', 'ownerReferences');
  const ctl = Array.isArray(owners) ? (owners as unknown[]).find((o) => field(o, 'controller') === true) : undefined;
  const ownerKind = str(field(ctl, 'kind'));
  const ownerName = str(field(ctl, 'name'));
  const ownerUid = str(field(ctl, 'uid'));
  const gates = field(raw, 'spec', 'schedulingGates');
  const nodeName = str(field(raw, 'spec', 'nodeName'));
  return {
    namespace: ns,
    name,
    uid: str(field(raw, 'metadata', 'uid')) ?? '',
    createdAt: str(field(raw, 'metadata', 'creationTimestamp')),
    nodeName: nodeName === '' ? undefined : nodeName,
    owner: ownerKind !== undefined && ownerName !== undefined ? { kind: ownerKind, name: ownerName, ...(ownerUid !== undefined ? { uid: ownerUid } : {}) } : undefined,
    containers: [...list(field(raw, 'spec', 'containers'), container), ...list(field(raw, 'spec', 'initContainers'), container)],
    gates: Array.isArray(gates) ? (gates as unknown[]) : undefined,
  };
}

/** Whether the pod carries kwarm's gate. */
export function hasRolloutGate(pod: GatePodView): boolean {
  return pod.gates?.some((g) => field(g, 'name') === ROLLOUT_GATE_NAME) ?? false;
}

export interface UnfinishedNode {
  readonly node: string;
  readonly phase: 'Pending' | 'Pulling' | 'Failed';
}

/** The part of a derived PrePullImage the gate reads. */
export interface GateImageView {
  readonly namespace: string;
  readonly name: string;
  /** kwarm.io/policy label. */
  readonly policy: string;
  /** kwarm.io/workload annotation, `<kind>/<name>`. */
  readonly workload: string;
  /** kwarm.io/container annotation. */
  readonly container: string;
  readonly image: string;
  readonly generation: number;
  readonly observedGeneration: number | undefined;
  readonly summary: { readonly total: number; readonly pending: number; readonly pulling: number; readonly completed: number; readonly failed: number } | undefined;
  /** status.nodes: the nodes not Completed that the status names (bounded; failed first). */
  readonly unfinished: readonly UnfinishedNode[];
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0;
}

/** A derived PrePullImage; undefined for one without policy label, workload or container annotation. */
export function decodeGateImage(raw: unknown): GateImageView | undefined {
  const namespace = str(field(raw, 'metadata', 'namespace'));
  const name = str(field(raw, 'metadata', 'name'));
  const policy = str(field(raw, 'metadata', 'labels', POLICY_LABEL));
  const workload = str(field(raw, 'metadata', 'annotations', WORKLOAD_ANNOTATION));
  const containerName = str(field(raw, 'metadata', 'annotations', CONTAINER_ANNOTATION));
  const image = str(field(raw, 'spec', 'image'));
  if (namespace === undefined || name === undefined || policy === undefined || workload === undefined || containerName === undefined || image === undefined) {
    return undefined;
  }
  const s = field(raw, 'status', 'summary');
  const observed = field(raw, 'status', 'observedGeneration');
  return {
    namespace, name, policy, workload, container: containerName, image,
    generation: count(field(raw, 'metadata', 'generation')),
    observedGeneration: typeof observed === 'number' ? observed : undefined,
    summary: isRecord(s)
      ? { total: count(s.total), pending: count(s.pending), pulling: count(s.pulling), completed: count(s.completed), failed: count(s.failed) }
      : undefined,
    unfinished: list(field(raw, 'status', 'nodes'), (n): UnfinishedNode | undefined => {
      const node = str(field(n, 'node'));
      const phase = field(n, 'phase');
      return node !== undefined && (phase === 'Pending' || phase === 'Pulling' || phase === 'Failed') ? { node, phase } : undefined;
    }),
  };
}

/** The part of a PrePullPolicy the gate reads. */
export interface GatePolicyView {
  readonly name: string;
  readonly enabled: boolean;
  readonly timeoutMs: number;
}

export function decodeGatePolicy(raw: unknown): GatePolicyView | undefined {
  const name = str(field(raw, 'metadata', 'name'));
  if (name === undefined) return undefined;
  const timeout = str(field(raw, 'spec', 'rolloutGate', 'timeout')) ?? DEFAULT_ROLLOUT_GATE_TIMEOUT;
  return {
    name,
    enabled: field(raw, 'spec', 'rolloutGate', 'enabled') === true,
    // The CRD validates the duration; the default covers an object written before the field existed.
    timeoutMs: durationMilliseconds(timeout) ?? durationMilliseconds(DEFAULT_ROLLOUT_GATE_TIMEOUT) ?? 300_000,
  };
}

/** A NodeImageSet as the gate sees it: whether its agent has ever reported, and when it last did. */
export interface GateAgentView {
  readonly node: string;
  readonly heartbeatTime: string | undefined;
}

export function decodeGateAgent(raw: unknown): GateAgentView | undefined {
  const node = str(field(raw, 'metadata', 'name'));
  return node === undefined ? undefined : { node, heartbeatTime: str(field(raw, 'status', 'heartbeatTime')) };
}

/**
 * A list-watch decoder (controller/sources/projected-watch.ts) that returns the cached object itself when the
 * new projection equals it: then nothing the gate reads changed, and nobody is woken.
 */
export function keepUnchanged<T>(decode: (raw: unknown) => T | undefined): (raw: unknown, previous: T | undefined) => T | undefined {
  return (raw, previous) => {
    const next = decode(raw);
    return next !== undefined && previous !== undefined && sameProjection(next, previous) ? previous : next;
  };
}

/** PrePullImages grouped by namespace: a pod's admission or release reads only those of its own namespace. */
export function imagesByNamespace(images: Iterable<GateImageView>): Map<string, GateImageView[]> {
  const out = new Map<string, GateImageView[]>();
  for (const i of images) {
    const list = out.get(i.namespace);
    if (list === undefined) out.set(i.namespace, [i]);
    else list.push(i);
  }
  return out;
}
