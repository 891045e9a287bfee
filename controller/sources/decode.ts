// Decoders for the informers: each turns a raw API object into the small projection the controller keeps
// (managedFields and everything the planner does not read are dropped), or undefined when it is not one.
// Projections are plain objects of the structural types the planners read (no client-node model classes).
// At 5,000 nodes the caches are most of the controller's memory, so decoders share repeated strings through
// SharedValues and, given the object they replace, return it unchanged when nothing they keep changed (then
// the reconciler need not run a pass for a kubelet or agent heartbeat).
import { decode } from '../../api/schema.ts';
import { defined, field, isRecord, list, sameProjection, str, stringMap, type RawObject } from '../../lib/raw.ts';
import { termOf, tolerationOf } from './scheduling-decode.ts';
import {
  IMAGES_WARM_CONDITION,
  NODE_PULL_PHASES,
  nodeImageSetSpecSchema,
  prePullImageSchema,
  prePullPolicySchema,
  REMOVAL_RESULTS,
  type NodePullPhase,
  type RemovalResult,
  type PrePullImage,
  type PrePullPolicy,
} from '../../api/v1alpha1/index.ts';
import type { ConfigMapView } from '../derive/configmap-image-lists.ts';
import type { ServiceAccountView, WorkloadView } from '../derive/desired-images.ts';
import {
  isExtendedResourceName,
  requestedExtendedResources,
  type ContainerResourcesSpec,
  type NodeView,
  type TaintSpec,
} from '../plan/node-eligibility.ts';
import type { RuntimeClassView } from '../plan/runtime-class.ts';
import { type NodeImageSetView, type NodeImageStatusView, type NodeRemovalStatusView } from '../plan/node-image-set-view.ts';
import { startCounts } from '../status/start-rollup.ts';
import type { SecretView } from '../derive/pull-secrets.ts';
import {
  containerImages,
  imagePullSecretNames,
  schedulingSpecFor,
  serviceAccountNameOf,
  type ContainerSpec,
  type PodSpecView,
  type BuiltinWorkloadKind,
} from '../derive/workload-images.ts';
import { entriesDigest, removalsDigest, specDigestOf } from '../plan/node-image-set-digest.ts';

type Obj = RawObject;

/**
 * A bounded table of shared values by key. When full it starts over, so values that left the cluster are
 * not kept forever (objects already sharing a value keep sharing it).
 */
export class InternPool<T> {
  private readonly items = new Map<string, T>();
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  share(key: string, make: () => T): T {
    const hit = this.items.get(key);
    if (hit !== undefined) return hit;
    if (this.items.size >= this.limit) this.items.clear();
    const value = make();
    this.items.set(key, value);
    return value;
  }

  get size(): number {
    return this.items.size;
  }
}

/**
 * What decoders share between cached objects. JSON.parse makes a new copy of every string, yet image
 * references, timestamps, label keys and values repeat across thousands of objects; nodes of one pool
 * have equal NodeImageSet specs, and many of their status entries are equal too.
 */
export class SharedValues {
  readonly strings = new InternPool<string>(100_000);
  readonly released = new InternPool<ReadonlyMap<string, number>>(10_000);
  readonly statuses = new InternPool<NodeImageStatusView>(100_000);

  string(s: string): string {
    return this.strings.share(s, () => s);
  }
}

type Intern = (s: string) => string;

function interner(shared: SharedValues | undefined): Intern {
  return shared === undefined ? (x) => x : (x) => shared.string(x);
}

function internedMap(v: unknown, intern: Intern): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[intern(k)] = intern(val);
  return out;
}

// ---- nodes ------------------------------------------------------------------------------------------

function taintOf(v: unknown): TaintSpec | undefined {
  const key = str(field(v, 'key'));
  const effect = str(field(v, 'effect'));
  if (key === undefined || effect === undefined) return undefined;
  return { key, effect, ...defined({ value: str(field(v, 'value')) }) };
}

/** Only extended resources (GPUs and the like): cpu and memory are not checked, and they change often. */
function extendedAllocatable(v: unknown, intern: Intern): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [name, q] of Object.entries(v)) if (typeof q === 'string' && isExtendedResourceName(name)) out[intern(name)] = intern(q);
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A RuntimeClass's name and `scheduling` (node.k8s.io/v1); handler and overhead are not kwarm's concern. */
export function decodeRuntimeClass(raw: unknown, previous?: RuntimeClassView): RuntimeClassView | undefined {
  const name = str(field(raw, 'metadata', 'name'));
  if (name === undefined) return undefined;
  const scheduling = field(raw, 'scheduling');
  const nodeSelector = field(scheduling, 'nodeSelector');
  const tolerations = list(field(scheduling, 'tolerations'), tolerationOf);
  const rc: RuntimeClassView = {
    name,
    ...(isRecord(nodeSelector) ? { nodeSelector: stringMap(nodeSelector) } : {}),
    ...(tolerations.length > 0 ? { tolerations } : {}),
  };
  return previous !== undefined && sameProjection(previous, rc) ? previous : rc;
}

function resourcesOf(v: unknown): ContainerResourcesSpec {
  const requests = field(v, 'resources', 'requests');
  const limits = field(v, 'resources', 'limits');
  return { resources: { ...(isRecord(requests) ? { requests: stringMap(requests) } : {}), ...(isRecord(limits) ? { limits: stringMap(limits) } : {}) } };
}

/**
 * Name, uid, labels, taints, unschedulable, extended resources and the Ready condition: what eligibility reads. `previous` (the
 * cached projection) is returned when none of that changed.
 */
export function decodeNode(raw: unknown, previous?: NodeView, shared?: SharedValues): NodeView | undefined {
  const intern = interner(shared);
  const rawName = str(field(raw, 'metadata', 'name'));
  if (rawName === undefined) return undefined;
  const name = intern(rawName);
  const conditions = field(raw, 'status', 'conditions');
  const ready = Array.isArray(conditions) ? (conditions as unknown[]).find((c) => field(c, 'type') === 'Ready') : undefined;
  const readyStatus = str(field(ready, 'status'));
  const warm = Array.isArray(conditions) ? (conditions as unknown[]).find((c) => field(c, 'type') === IMAGES_WARM_CONDITION) : undefined;
  const warmStatus = str(field(warm, 'status'));
  const taints = list(field(raw, 'spec', 'taints'), taintOf);
  const allocatable = extendedAllocatable(field(raw, 'status', 'allocatable'), intern);
  const node: NodeView = {
    metadata: {
      name, ...defined({ uid: str(field(raw, 'metadata', 'uid')), createdAt: str(field(raw, 'metadata', 'creationTimestamp')) }),
      labels: internedMap(field(raw, 'metadata', 'labels'), intern),
    },
    spec: {
      ...(field(raw, 'spec', 'unschedulable') === true ? { unschedulable: true } : {}),
      ...(taints.length > 0 ? { taints } : {}),
    },
    status: {
      conditions: [
        ...(readyStatus === undefined ? [] : [{ type: 'Ready', status: readyStatus }]),
        ...(warmStatus === undefined ? [] : [{ type: IMAGES_WARM_CONDITION, status: warmStatus }]),
      ],
      ...(allocatable !== undefined ? { allocatable } : {}),
    },
  };
  return previous !== undefined && sameProjection(previous, node) ? previous : node;
}

// ---- workloads ----------------------------------------------------------------------------------------

function rawPodSpec(kind: BuiltinWorkloadKind, raw: unknown): unknown {
  switch (kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'Job':
      return field(raw, 'spec', 'template', 'spec');
    case 'CronJob':
      return field(raw, 'spec', 'jobTemplate', 'spec', 'template', 'spec');
    default: {
      const unreachable: never = kind;
      return unreachable;
    }
  }
}

function containerOf(v: unknown, intern: Intern): ContainerSpec | undefined {
  const name = str(field(v, 'name'));
  const image = str(field(v, 'image'));
  return name === undefined ? undefined : { name, ...defined({ image: image === undefined ? undefined : intern(image) }) };
}

/** The template's pod spec, keeping only what placement, images and pull secrets read. */
function podSpecOf(spec: Obj, intern: Intern): PodSpecView {
  const container = (v: unknown): ContainerSpec | undefined => containerOf(v, intern);
  const initContainers = list(spec.initContainers, container);
  const imagePullSecrets = list(spec.imagePullSecrets, (r) => (isRecord(r) ? defined({ name: str(r.name) }) : undefined));
  const tolerations = list(spec.tolerations, tolerationOf);
  const required = field(spec, 'affinity', 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution');
  const osName = str(field(spec, 'os', 'name'));
  const extendedResources = requestedExtendedResources([...list(spec.containers, resourcesOf), ...list(spec.initContainers, resourcesOf)]);
  return {
    containers: list(spec.containers, container),
    ...(initContainers.length > 0 ? { initContainers } : {}),
    ...(imagePullSecrets.length > 0 ? { imagePullSecrets } : {}),
    ...(tolerations.length > 0 ? { tolerations } : {}),
    ...(isRecord(spec.nodeSelector) ? { nodeSelector: stringMap(spec.nodeSelector) } : {}),
    ...(isRecord(required) ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: list(required.nodeSelectorTerms, termOf) } } } } : {}),
    ...(osName !== undefined ? { os: { name: osName } } : {}),
    ...(extendedResources.length > 0 ? { extendedResources: extendedResources.map(intern) } : {}),
    ...(typeof spec.hostNetwork === 'boolean' ? { hostNetwork: spec.hostNetwork } : {}),
    ...defined({
      serviceAccountName: str(spec.serviceAccountName),
      serviceAccount: str(spec.serviceAccount),
      nodeName: str(spec.nodeName),
      runtimeClassName: str(spec.runtimeClassName),
    }),
  };
}

/** The name of the CronJob that controls a Job, if one does. */
function controllingCronJob(owners: unknown): string | undefined {
  if (!Array.isArray(owners)) return undefined;
  const owner = (owners as unknown[]).find((o) => field(o, 'kind') === 'CronJob' && field(o, 'controller') === true && str(field(o, 'apiVersion'))?.startsWith('batch/') === true);
  return str(field(owner, 'name'));
}

/**
 * A workload's identity, labels and the scheduling-relevant part of its pod template; `previous` is returned
 * when none of that changed (a status update, a scale).
 */
export function workloadDecoder(kind: BuiltinWorkloadKind, shared?: SharedValues): (raw: unknown, previous?: WorkloadView) => WorkloadView | undefined {
  const intern = interner(shared);
  return (raw, previous) => {
    const namespace = str(field(raw, 'metadata', 'namespace'));
    const name = str(field(raw, 'metadata', 'name'));
    const uid = str(field(raw, 'metadata', 'uid'));
    const spec = rawPodSpec(kind, raw);
    if (namespace === undefined || name === undefined || uid === undefined || !isRecord(spec)) return undefined;
    const podSpec = podSpecOf(spec, intern);
    const cronJob = kind === 'Job' ? controllingCronJob(field(raw, 'metadata', 'ownerReferences')) : undefined;
    const workload: WorkloadView = {
      ...(cronJob !== undefined ? { ownerCronJob: cronJob } : {}),
      labels: stringMap(field(raw, 'metadata', 'labels')),
      template: {
        identity: { kind, namespace, name, uid },
        podSpec,
        schedulingSpec: schedulingSpecFor(kind, podSpec),
        images: containerImages(podSpec),
        imagePullSecrets: imagePullSecretNames(podSpec),
        serviceAccountName: serviceAccountNameOf(podSpec),
      },
    };
    return previous !== undefined && sameProjection(previous, workload) ? previous : workload;
  };
}

// ---- service accounts and secrets ------------------------------------------------------------------------

export function decodeServiceAccount(raw: unknown): ServiceAccountView | undefined {
  const namespace = str(field(raw, 'metadata', 'namespace'));
  const name = str(field(raw, 'metadata', 'name'));
  if (namespace === undefined || name === undefined) return undefined;
  const refs = field(raw, 'imagePullSecrets');
  const imagePullSecrets = Array.isArray(refs) ? (refs as unknown[]).flatMap((r) => str(field(r, 'name')) ?? []).filter((n) => n !== '') : [];
  return { namespace, name, imagePullSecrets };
}

export function decodeSecret(raw: unknown): SecretView | undefined {
  const namespace = str(field(raw, 'metadata', 'namespace'));
  const name = str(field(raw, 'metadata', 'name'));
  if (namespace === undefined || name === undefined) return undefined;
  return {
    namespace,
    name,
    type: str(field(raw, 'type')) ?? 'Opaque',
    data: stringMap(field(raw, 'data')),
    labels: stringMap(field(raw, 'metadata', 'labels')),
    annotations: stringMap(field(raw, 'metadata', 'annotations')),
  };
}

/**
 * A ConfigMap's identity and string data (binaryData never lists images); labels are not kept, the
 * list-watch's server-side selector already decided. `previous` is returned when the data is the same.
 */
export function decodeConfigMap(raw: unknown, previous?: ConfigMapView): ConfigMapView | undefined {
  const namespace = str(field(raw, 'metadata', 'namespace'));
  const name = str(field(raw, 'metadata', 'name'));
  const uid = str(field(raw, 'metadata', 'uid'));
  if (namespace === undefined || name === undefined || uid === undefined) return undefined;
  const cm: ConfigMapView = { namespace, name, uid, resourceVersion: str(field(raw, 'metadata', 'resourceVersion')) ?? '', data: stringMap(field(raw, 'data')) };
  // A new resourceVersion with the same data changes nothing kwarm derives; keep the old one (problems name it).
  return previous !== undefined && previous.uid === uid && sameProjection(previous.data, cm.data) ? previous : cm;
}

// ---- kwarm kinds --------------------------------------------------------------------------------------

export function decodePolicy(raw: unknown): PrePullPolicy | undefined {
  const r = decode(prePullPolicySchema, raw);
  return r.ok ? r.value : undefined;
}

export function decodePrePullImage(raw: unknown): PrePullImage | undefined {
  const r = decode(prePullImageSchema, raw);
  return r.ok ? r.value : undefined;
}

function nonNegativeInteger(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function isNodePullPhase(v: unknown): v is NodePullPhase {
  return (NODE_PULL_PHASES as readonly unknown[]).includes(v);
}

function statusEntry(v: unknown, intern: Intern, shared: SharedValues | undefined): [string, NodeImageStatusView] | undefined {
  if (!isRecord(v)) return undefined;
  const image = str(v.image);
  const phase = v.phase;
  if (image === undefined || !isNodePullPhase(phase)) return undefined;
  const reason = str(v.reason);
  // Only a failure's message is shown upward; a message of any other phase is not kept.
  const message = phase === 'Failed' ? str(v.message) : undefined;
  const startedAt = str(v.startedAt);
  const finishedAt = str(v.finishedAt);
  const round = nonNegativeInteger(v.round) ?? 0;
  const starts = startCounts(v);
  const make = (): NodeImageStatusView => ({
    phase,
    round,
    ...(reason !== undefined ? { reason: intern(reason) } : {}),
    ...(message !== undefined ? { message } : {}),
    ...(startedAt !== undefined ? { startedAt: intern(startedAt) } : {}),
    ...(finishedAt !== undefined ? { finishedAt: intern(finishedAt) } : {}),
    ...starts,
  });
  const status = shared === undefined ? make() : shared.statuses.share(JSON.stringify([phase, round, reason, message, startedAt, finishedAt, starts]), make);
  return [intern(image), status];
}

function isRemovalResult(v: unknown): v is RemovalResult {
  return (REMOVAL_RESULTS as readonly unknown[]).includes(v);
}

/** An agent's answer to a removal; fields in a fixed order (sameProjection compares them as JSON). */
function removalEntry(v: unknown, intern: Intern): [string, NodeRemovalStatusView] | undefined {
  if (!isRecord(v)) return undefined;
  const image = str(v.image);
  const result = v.result;
  if (image === undefined || !isRemovalResult(result)) return undefined;
  return [intern(image), { result, ...defined({ reason: str(v.reason), message: str(v.message) }) }];
}

function sameStatus(a: NodeImageStatusView | undefined, b: NodeImageStatusView): boolean {
  return a !== undefined && a.phase === b.phase && a.round === b.round && a.reason === b.reason && a.message === b.message &&
    a.startedAt === b.startedAt && a.finishedAt === b.finishedAt &&
    a.warmStarts === b.warmStarts && a.coldStarts === b.coldStarts && a.pullMillisecondsSaved === b.pullMillisecondsSaved;
}

function sameStatusMap(a: ReadonlyMap<string, NodeImageStatusView>, b: ReadonlyMap<string, NodeImageStatusView>): boolean {
  if (a.size !== b.size) return false;
  for (const [image, s] of b) if (!sameStatus(a.get(image), s)) return false;
  return true;
}

/**
 * Only what diffing and budget counting need, so 5,000 NodeImageSets stay small in memory. The spec is
 * decoded (with the API's defaults) only when its generation moved since `previous`; status entries keep
 * what the status rollup reads. Returns `previous` itself when nothing kept changed (an agent heartbeat).
 */
export function decodeNodeImageSet(raw: unknown, previous?: NodeImageSetView, shared?: SharedValues): NodeImageSetView | undefined {
  const intern = interner(shared);
  const rawName = str(field(raw, 'metadata', 'name'));
  if (rawName === undefined) return undefined;
  const uid = str(field(raw, 'metadata', 'uid'));
  const generation = nonNegativeInteger(field(raw, 'metadata', 'generation')) ?? 0;
  const owners = field(raw, 'metadata', 'ownerReferences');
  const owner = Array.isArray(owners) ? (owners as unknown[]).find((o) => field(o, 'kind') === 'Node' && field(o, 'apiVersion') === 'v1') : undefined;
  const ownerUid = str(field(owner, 'uid'));

  // The API server raises generation on every spec change of a kind with a status subresource.
  const sameSpec = previous !== undefined && previous.name === rawName && previous.uid === uid && uid !== undefined &&
    previous.generation === generation && generation > 0 && previous.ownerUid === ownerUid;
  let specDigest: string;
  let released: ReadonlyMap<string, number>;
  if (sameSpec) {
    ({ specDigest, released } = previous);
  } else {
    const spec = decode(nodeImageSetSpecSchema, field(raw, 'spec'));
    if (!spec.ok) return undefined;
    const { images, maxConcurrentPulls, removals, gatingImages } = spec.value;
    const entries = entriesDigest(images);
    specDigest = specDigestOf(ownerUid, maxConcurrentPulls, entries, removalsDigest(removals), gatingImages ?? 0);
    const make = (): ReadonlyMap<string, number> => new Map(images.map((e) => [intern(e.image), e.round]));
    // Equal entries (rounds included) release equal maps: nodes of one pool share one.
    released = shared === undefined ? make() : shared.released.share(entries, make);
  }

  const decodedStatus = new Map(list(field(raw, 'status', 'images'), (e) => statusEntry(e, intern, shared)));
  const status = previous !== undefined && sameStatusMap(previous.status, decodedStatus) ? previous.status : decodedStatus;
  const decodedRemovals = new Map(list(field(raw, 'status', 'removals'), (e) => removalEntry(e, intern)));
  const removals = decodedRemovals.size === 0 ? undefined
    : previous?.removals !== undefined && sameProjection([...previous.removals], [...decodedRemovals]) ? previous.removals : decodedRemovals;
  const createdMs = timeMs(field(raw, 'metadata', 'creationTimestamp'));
  const pullsPaused = field(raw, 'status', 'imageFs', 'pullsPaused') === true ? true : undefined;
  // The heartbeat goes into the shared cell without asking for a pass; only the first one does (an agent
  // appeared: pairs may be released to it).
  const heartbeatMs = timeMs(field(raw, 'status', 'heartbeatTime'));
  const agent = sameSpec && previous.agent !== undefined ? previous.agent : { heartbeatMs: previous?.agent?.heartbeatMs };
  const firstBeat = agent.heartbeatMs === undefined && heartbeatMs !== undefined;
  if (heartbeatMs !== undefined && (agent.heartbeatMs === undefined || heartbeatMs > agent.heartbeatMs)) agent.heartbeatMs = heartbeatMs;
  if (sameSpec && status === previous.status && removals === previous.removals && previous.createdMs === createdMs &&
    previous.pullsPaused === pullsPaused && previous.agent === agent && !firstBeat) return previous;
  return {
    name: previous?.name === rawName ? previous.name : intern(rawName),
    ...(uid !== undefined ? { uid } : {}),
    generation, ownerUid, specDigest, released, status, agent,
    ...(removals !== undefined ? { removals } : {}),
    ...(createdMs !== undefined ? { createdMs } : {}),
    ...(pullsPaused !== undefined ? { pullsPaused } : {}),
  };
}

function timeMs(v: unknown): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}
