// Decoders for the informers: each turns a raw API object into the small projection the controller keeps
// (managedFields and everything the planner does not read are dropped), or undefined when it is not one.
import { loadYaml, type V1Node, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import { decode } from '../api/schema.ts';
import {
  nodeImageSetSchema,
  prePullImageSchema,
  prePullPolicySchema,
  type PrePullImage,
  type PrePullPolicy,
} from '../api/v1alpha1/index.ts';
import type { ServiceAccountView, WorkloadView } from './desired-images.ts';
import { nodeImageSetDigest, type NodeImageSetView, type NodeImageStatusView } from './node-plan.ts';
import type { SecretView } from './pull-secrets.ts';
import {
  containerImages,
  imagePullSecretNames,
  schedulingSpecFor,
  serviceAccountNameOf,
  type WorkloadKind,
} from './workload-images.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(v: unknown, ...path: string[]): unknown {
  let cur = v;
  for (const p of path) {
    if (!isObj(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

function pick(v: unknown, keys: readonly string[]): Obj | undefined {
  if (!isObj(v)) return undefined;
  const out: Obj = {};
  for (const k of keys) if (v[k] !== undefined) out[k] = v[k];
  return out;
}

// ---- nodes ------------------------------------------------------------------------------------------

/** Name, uid, labels, taints, unschedulable and the Ready condition: what eligibility reads. */
export function decodeNode(raw: unknown): V1Node | undefined {
  const name = str(field(raw, 'metadata', 'name'));
  if (name === undefined) return undefined;
  const conditions = field(raw, 'status', 'conditions');
  const ready = Array.isArray(conditions) ? (conditions as unknown[]).find((c) => field(c, 'type') === 'Ready') : undefined;
  const projected = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: str(field(raw, 'metadata', 'uid')), labels: stringMap(field(raw, 'metadata', 'labels')) },
    spec: pick(field(raw, 'spec'), ['unschedulable', 'taints']) ?? {},
    status: { conditions: ready === undefined ? [] : [pick(ready, ['type', 'status'])] },
  };
  // client-node's own deserializer (JSON is YAML), so eligibility sees the model classes it is tested with.
  return loadYaml<V1Node>(JSON.stringify(projected));
}

// ---- workloads ----------------------------------------------------------------------------------------

const CONTAINER_FIELDS = ['name', 'image'];
const POD_SPEC_FIELDS = ['imagePullSecrets', 'serviceAccountName', 'serviceAccount', 'nodeName', 'nodeSelector', 'tolerations', 'os', 'hostNetwork'];

function rawPodSpec(kind: WorkloadKind, raw: unknown): unknown {
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

/** A workload's identity, labels and the scheduling-relevant part of its pod template. */
export function workloadDecoder(kind: WorkloadKind): (raw: unknown) => WorkloadView | undefined {
  return (raw) => {
    const namespace = str(field(raw, 'metadata', 'namespace'));
    const name = str(field(raw, 'metadata', 'name'));
    const uid = str(field(raw, 'metadata', 'uid'));
    const spec = rawPodSpec(kind, raw);
    if (namespace === undefined || name === undefined || uid === undefined || !isObj(spec)) return undefined;
    const containers = (list: unknown): Obj[] => (Array.isArray(list) ? (list as unknown[]).flatMap((c): Obj[] => { const p = pick(c, CONTAINER_FIELDS); return p === undefined ? [] : [p]; }) : []);
    const required = field(spec, 'affinity', 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution');
    const projected: Obj = {
      ...pick(spec, POD_SPEC_FIELDS),
      containers: containers(spec.containers),
      initContainers: containers(spec.initContainers),
      ...(required !== undefined ? { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: required } } } : {}),
    };
    const podSpec: V1PodSpec | undefined = loadYaml<V1Pod>(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', spec: projected })).spec;
    if (podSpec === undefined) return undefined;
    return {
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

// ---- kwarm kinds --------------------------------------------------------------------------------------

export function decodePolicy(raw: unknown): PrePullPolicy | undefined {
  const r = decode(prePullPolicySchema, raw);
  return r.ok ? r.value : undefined;
}

export function decodePrePullImage(raw: unknown): PrePullImage | undefined {
  const r = decode(prePullImageSchema, raw);
  return r.ok ? r.value : undefined;
}

/** Only what diffing and budget counting need, so 5,000 NodeImageSets stay small in memory. */
export function decodeNodeImageSet(raw: unknown): NodeImageSetView | undefined {
  const r = decode(nodeImageSetSchema, raw);
  if (!r.ok) return undefined;
  const nis = r.value;
  const name = nis.metadata.name;
  if (name === undefined) return undefined;
  const ownerUid = nis.metadata.ownerReferences?.find((o) => o.kind === 'Node' && o.apiVersion === 'v1')?.uid;
  const status = new Map<string, NodeImageStatusView>();
  for (const s of nis.status?.images ?? []) {
    status.set(s.image, {
      phase: s.phase,
      round: s.round ?? 0,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      ...(s.message !== undefined && s.phase === 'Failed' ? { message: s.message } : {}),
      ...(s.startedAt !== undefined ? { startedAt: s.startedAt } : {}),
      ...(s.finishedAt !== undefined ? { finishedAt: s.finishedAt } : {}),
    });
  }
  return {
    name,
    generation: nis.metadata.generation ?? 0,
    ownerUid,
    specDigest: nodeImageSetDigest(ownerUid, nis.spec),
    released: new Map(nis.spec.images.map((e) => [e.image, e.round])),
    status,
  };
}
