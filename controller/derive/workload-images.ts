// From a workload object to what kwarm needs of it: who it is, its pod template, the images of its
// containers and initContainers, its pull secrets and service account, and the name of the PrePullImage
// kwarm derives for each container. Pure: no I/O, no clock.
import { createHash } from 'node:crypto';
import type { PodSchedulingSpec, TolerationSpec } from '../plan/node-eligibility.ts';

export interface ContainerSpec {
  readonly name: string;
  readonly image?: string;
}

/** What kwarm reads of a pod template's spec: the informers' projection (sources/decode.ts). */
export interface PodSpecView extends PodSchedulingSpec {
  readonly containers: readonly ContainerSpec[];
  readonly initContainers?: readonly ContainerSpec[];
  readonly imagePullSecrets?: readonly { readonly name?: string }[];
  readonly serviceAccountName?: string;
  readonly serviceAccount?: string;
  readonly hostNetwork?: boolean;
  /** Resolved against the RuntimeClasses where the controller's sources hand out workloads (sources/informers.ts). */
  readonly runtimeClassName?: string;
}

/** The workload kinds the controller watches itself (the Argo kinds come through sources/argo-source.ts). */
export const builtinWorkloadKinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'] as const;
export type BuiltinWorkloadKind = (typeof builtinWorkloadKinds)[number];

/** For owner references. */
export function workloadApiVersion(kind: BuiltinWorkloadKind): 'apps/v1' | 'batch/v1' {
  switch (kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
      return 'apps/v1';
    case 'Job':
    case 'CronJob':
      return 'batch/v1';
    default: {
      const unreachable: never = kind;
      return unreachable;
    }
  }
}

export interface WorkloadIdentity {
  readonly kind: BuiltinWorkloadKind;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface ContainerImage {
  readonly containerName: string;
  readonly image: string;
  readonly isInit: boolean;
}

export interface WorkloadPodTemplate {
  readonly identity: WorkloadIdentity;
  /** The template's pod spec as written (not copied; treat as read-only). */
  readonly podSpec: PodSpecView;
  /** What the scheduler will see of the workload's pods; differs from podSpec only for DaemonSets. */
  readonly schedulingSpec: PodSchedulingSpec;
  /** initContainers first (in order), then containers; containers without an image are left out. */
  readonly images: readonly ContainerImage[];
  /** Names of the template's imagePullSecrets, de-duplicated, in order. */
  readonly imagePullSecrets: readonly string[];
  /** The service account the pods run as ("default" when the template names none). */
  readonly serviceAccountName: string;
}

export function containerImages(spec: PodSpecView): ContainerImage[] {
  const out: ContainerImage[] = [];
  for (const [list, isInit] of [[spec.initContainers ?? [], true], [spec.containers, false]] as const) {
    for (const c of list) {
      // The API lets workload templates omit the image (for tools that fill it in later); nothing to pull then.
      const image = c.image ?? '';
      if (image !== '') out.push({ containerName: c.name, image, isInit });
    }
  }
  return out;
}

export function imagePullSecretNames(spec: PodSpecView): string[] {
  const names = (spec.imagePullSecrets ?? []).map((r) => r.name ?? '').filter((n) => n !== '');
  return [...new Set(names)];
}

export function serviceAccountNameOf(spec: PodSpecView): string {
  // serviceAccount is the deprecated alias; the ServiceAccount admission plugin defaults to "default".
  if (spec.serviceAccountName !== undefined && spec.serviceAccountName !== '') return spec.serviceAccountName;
  if (spec.serviceAccount !== undefined && spec.serviceAccount !== '') return spec.serviceAccount;
  return 'default';
}

/** Tolerations the DaemonSet controller adds to every pod it creates (pkg/controller/daemon/util). */
function daemonSetTolerations(spec: PodSpecView): TolerationSpec[] {
  const tol = (key: string, effect: 'NoSchedule' | 'NoExecute'): TolerationSpec => ({ key, operator: 'Exists', effect });
  const added = [
    tol('node.kubernetes.io/not-ready', 'NoExecute'),
    tol('node.kubernetes.io/unreachable', 'NoExecute'),
    tol('node.kubernetes.io/disk-pressure', 'NoSchedule'),
    tol('node.kubernetes.io/memory-pressure', 'NoSchedule'),
    tol('node.kubernetes.io/pid-pressure', 'NoSchedule'),
    tol('node.kubernetes.io/unschedulable', 'NoSchedule'),
  ];
  if (spec.hostNetwork === true) added.push(tol('node.kubernetes.io/network-unavailable', 'NoSchedule'));
  return added;
}

function sameToleration(a: TolerationSpec, b: TolerationSpec): boolean {
  return (
    (a.key ?? '') === (b.key ?? '') &&
    (a.operator ?? '') === (b.operator ?? '') &&
    (a.value ?? '') === (b.value ?? '') &&
    (a.effect ?? '') === (b.effect ?? '')
  );
}

/**
 * The pod spec the scheduler sees for pods of this workload. DaemonSet pods get extra tolerations from
 * their controller (replacing a template toleration with the same key/operator/value/effect); every other
 * kind's pods are scheduled with the template as written. Returns a new object only when it differs.
 */
export function schedulingSpecFor(kind: BuiltinWorkloadKind, spec: PodSpecView): PodSchedulingSpec {
  if (kind !== 'DaemonSet') return spec;
  const tolerations: TolerationSpec[] = [...(spec.tolerations ?? [])];
  for (const t of daemonSetTolerations(spec)) {
    const i = tolerations.findIndex((existing) => sameToleration(existing, t));
    if (i >= 0) tolerations[i] = t;
    else tolerations.push(t);
  }
  const scheduling: PodSchedulingSpec = { tolerations };
  // Copy only the fields that are set: exactOptionalPropertyTypes forbids explicit undefined.
  return {
    ...scheduling,
    ...(spec.nodeName !== undefined ? { nodeName: spec.nodeName } : {}),
    ...(spec.nodeSelector !== undefined ? { nodeSelector: spec.nodeSelector } : {}),
    ...(spec.affinity !== undefined ? { affinity: spec.affinity } : {}),
    ...(spec.os !== undefined ? { os: spec.os } : {}),
    ...(spec.extendedResources !== undefined ? { extendedResources: spec.extendedResources } : {}),
  };
}

// ---- PrePullImage names -----------------------------------------------------------------------------

/** Short enough for a label value and for `kubectl get` columns; well under the 253 a name allows. */
export const PRE_PULL_IMAGE_NAME_MAX = 63;
const HASH_LENGTH = 10;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * `<kind>.<workload>.<container>`, e.g. `deployment.my-app.app`. Kind and container names cannot contain
 * dots, so the name is unambiguous even though workload names can. When that is too long (or the inputs
 * are not valid Kubernetes names) it is cleaned, cut, and suffixed with a hash of the full triple, so
 * distinct triples keep distinct names.
 */
export function prePullImageName(kind: BuiltinWorkloadKind, workloadName: string, containerName: string): string {
  const full = `${kind.toLowerCase()}.${workloadName}.${containerName}`;
  if (full.length <= PRE_PULL_IMAGE_NAME_MAX && DNS1123_SUBDOMAIN.test(full)) return full;
  const hash = createHash('sha256').update(`${kind}/${workloadName}/${containerName}`).digest('hex').slice(0, HASH_LENGTH);
  return withHash(full, hash);
}

/**
 * `text` made a DNS-1123 subdomain (lower case, only [a-z0-9.-], no empty segment, no segment starting or
 * ending with '-'), cut to leave room for `-<hash>`, then `-<hash>` appended: the hash keeps names distinct
 * whatever the cleaning merged or the cut dropped.
 */
export function withHash(text: string, hash: string): string {
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .split('.')
    .map((segment) => segment.replace(/^-+|-+$/g, ''))
    .filter((segment) => segment !== '')
    .join('.');
  const prefix = cleaned.slice(0, PRE_PULL_IMAGE_NAME_MAX - hash.length - 1).replace(/[-.]+$/, '');
  return `${prefix}-${hash}`;
}
