// From policies and workloads to the PrePullImages kwarm should write: one per (workload, container) of
// every workload a PrePullPolicy selects, with the policy's settings. Pure: no I/O, no clock.
import type { LabelSelector, NodeSelectorTerms, PrePullPolicy, Retry, Toleration } from '../../api/v1alpha1/index.ts';
import { compileLabelSelector, compiledSelectorMatches, type CompiledLabelSelector, type LabelSet } from '../plan/label-selector.ts';
import { compilePodPlacement, type PodPlacement } from '../plan/node-eligibility.ts';
import { prePullImageName, workloadApiVersion, type BuiltinWorkloadKind, type WorkloadIdentity, type WorkloadPodTemplate } from './workload-images.ts';
import { ARGO_GROUP_VERSION, argoImageGroups, describeUsers, isArgoKind, type ArgoIdentity, type ArgoKind, type ArgoWorkflowView } from './argo-workflow-images.ts';
import { CONTAINER_ANNOTATION, WORKLOAD_ANNOTATION } from '../../api/v1alpha1/labels.ts';
import { boundPullSecrets, derivedSpecProblem } from './derived-validation.ts';

/** What the controller keeps of a workload: its labels and its pod template. */
export interface WorkloadView {
  readonly labels: LabelSet;
  readonly template: WorkloadPodTemplate;
  /** For a Job a CronJob created: that CronJob's name (its template already yields the Job's images). */
  readonly ownerCronJob?: string;
}

export interface ServiceAccountView {
  readonly namespace: string;
  readonly name: string;
  readonly imagePullSecrets: readonly string[];
}

export function serviceAccountKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** spec.nodes of a derived PrePullImage: the policy's node targeting, copied. */
export interface ManagedNodes {
  readonly selector?: LabelSelector;
  readonly affinity?: { readonly nodeAffinity: { readonly requiredDuringSchedulingIgnoredDuringExecution: NodeSelectorTerms } };
  readonly tolerations?: readonly Toleration[];
}

/** The spec fields the controller owns on a PrePullImage it derives (the rest is left to defaults). */
export interface ManagedPrePullImageSpec {
  readonly image: string;
  readonly nodes: ManagedNodes;
  readonly imagePullSecrets: readonly { readonly name: string }[];
  readonly retry: Retry;
  readonly timeout: string;
  /** From the policy's spec.purgeOnDelete; set only when true. */
  readonly purgeOnDelete?: true;
  /** The policy's spec.refreshInterval, when set. */
  readonly refreshInterval?: string;
  /** From the policy's spec.gateNewNodes; set only when true. */
  readonly gateNewNodes?: true;
}

/** A workload or Argo object a policy selects by kind: what policies count in watchedByKind. */
export type SelectedIdentity = WorkloadIdentity | ArgoIdentity;
export type SelectedKind = SelectedIdentity['kind'];

export function selectedApiVersion(kind: SelectedKind): string {
  return isArgoKind(kind) ? ARGO_GROUP_VERSION : workloadApiVersion(kind);
}

/**
 * The controlling owner of a derived PrePullImage, as its owner reference: a workload, an Argo object, the
 * policy (static list) or a ConfigMap. One shape for every source.
 */
export interface DerivedOwner {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

export function selectedOwner(identity: SelectedIdentity): DerivedOwner {
  return { apiVersion: selectedApiVersion(identity.kind), kind: identity.kind, name: identity.name, uid: identity.uid };
}

export interface DesiredPrePullImage {
  readonly namespace: string;
  readonly name: string;
  readonly policy: string;
  readonly owner: DerivedOwner;
  /** The MANAGED_ANNOTATIONS that apply to this image's source. */
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: ManagedPrePullImageSpec;
  /** Where the workload's (or Argo template's) pods can run, shared by its images; undefined for listed images. */
  readonly placement: PodPlacement | undefined;
}

export interface PolicyEvaluation {
  readonly name: string;
  /** undefined when the selector compiled; otherwise why the policy selects nothing. */
  readonly selectorError: string | undefined;
  readonly watchedWorkloads: number;
  readonly watchedByKind: Readonly<Record<SelectedKind, number>>;
  /** Workloads this policy selects that an earlier policy (by name) already took. */
  readonly shadowed: number;
  /** Keys (namespace/name) of the PrePullImages derived through this policy. */
  readonly images: readonly string[];
  /** Images and pull secrets of selected workloads left out because the PrePullImage API cannot hold them, one line each. */
  readonly inputProblems?: readonly string[];
}

export interface DesiredImages {
  /** By `namespace/name`. */
  readonly images: ReadonlyMap<string, DesiredPrePullImage>;
  readonly policies: ReadonlyMap<string, PolicyEvaluation>;
}

export function prePullImageKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

interface CompiledPolicy {
  readonly policy: PrePullPolicy;
  readonly name: string;
  readonly selector: CompiledLabelSelector | undefined;
  readonly selectorError: string | undefined;
  readonly namespaces: ReadonlySet<string> | undefined;
  readonly kinds: ReadonlySet<string>;
}

function compilePolicy(policy: PrePullPolicy): CompiledPolicy {
  const compiled = compileLabelSelector({ matchLabels: policy.spec.selector.matchLabels });
  const namespaces = policy.spec.selector.namespaces;
  return {
    policy,
    name: policy.metadata.name ?? '',
    // An empty matchLabels would select every workload; the CRD forbids it, and so do we.
    selector: compiled.ok && compiled.value.requirements.length > 0 ? compiled.value : undefined,
    selectorError: !compiled.ok ? compiled.error : compiled.value.requirements.length === 0 ? 'selector.matchLabels is empty' : undefined,
    namespaces: namespaces === undefined ? undefined : new Set(namespaces),
    kinds: new Set(policy.spec.workloadKinds),
  };
}

/** What pull secrets are inherited from: the workload's template, or an Argo object's workflow spec. */
export interface PullSecretSource {
  readonly identity: { readonly namespace: string };
  readonly imagePullSecrets: readonly string[];
  readonly serviceAccountName: string;
}

function selects(p: CompiledPolicy, w: WorkloadView): boolean {
  const id = w.template.identity;
  return p.selector !== undefined && p.kinds.has(id.kind) && (p.namespaces === undefined || p.namespaces.has(id.namespace)) &&
    compiledSelectorMatches(p.selector, w.labels);
}

/** The pull secrets a derived PrePullImage names: `additional`, plus the template's and the ServiceAccount's when inheriting. */
export function pullSecretsFor(
  policy: PrePullPolicy,
  template: PullSecretSource,
  serviceAccounts: ReadonlyMap<string, ServiceAccountView>,
): string[] {
  const names: string[] = [];
  if (policy.spec.imagePullSecrets.inherit) {
    names.push(...template.imagePullSecrets);
    const sa = serviceAccounts.get(serviceAccountKey(template.identity.namespace, template.serviceAccountName));
    names.push(...(sa?.imagePullSecrets ?? []));
  }
  names.push(...policy.spec.imagePullSecrets.additional.map((r) => r.name));
  return [...new Set(names.filter((n) => n !== ''))];
}

/**
 * The policy's node targeting as a derived PrePullImage's spec.nodes: selector = matchLabels +
 * matchExpressions, affinity and tolerations copied. Fields the policy leaves unset stay unset, so
 * PrePullImages of policies without them are unchanged.
 */
export function policyNodes(policy: PrePullPolicy): ManagedNodes {
  const { nodeSelector, affinity, tolerations } = policy.spec;
  const { matchLabels, matchExpressions } = nodeSelector;
  const hasLabels = Object.keys(matchLabels).length > 0;
  const hasExpressions = matchExpressions !== undefined && matchExpressions.length > 0;
  return {
    ...(hasLabels || hasExpressions
      ? { selector: { ...(hasLabels ? { matchLabels } : {}), ...(hasExpressions ? { matchExpressions } : {}) } }
      : {}),
    ...(affinity !== undefined ? { affinity } : {}),
    ...(tolerations !== undefined ? { tolerations } : {}),
  };
}

/**
 * A derived PrePullImage's spec from its policy, the same for every source: retry, timeout, and
 * purgeOnDelete / refreshInterval / gateNewNodes only when the policy sets them (so older shapes digest unchanged).
 */
export function managedSpec(
  policy: PrePullPolicy,
  image: string,
  nodes: ManagedNodes,
  imagePullSecrets: readonly { readonly name: string }[],
): ManagedPrePullImageSpec {
  const { retry, timeout, purgeOnDelete, refreshInterval, gateNewNodes } = policy.spec;
  return {
    image, nodes, imagePullSecrets, retry, timeout,
    ...(purgeOnDelete ? { purgeOnDelete: true as const } : {}),
    ...(refreshInterval !== undefined ? { refreshInterval } : {}),
    ...(gateNewNodes ? { gateNewNodes: true as const } : {}),
  };
}

function deriveImages(
  owner: CompiledPolicy,
  w: WorkloadView,
  serviceAccounts: ReadonlyMap<string, ServiceAccountView>,
  serviceAccount: ServiceAccountView | undefined,
): DerivedImages {
  const { identity } = w.template;
  const placement = compilePodPlacement(w.template.schedulingSpec);
  const source = `${identity.kind} ${identity.namespace}/${identity.name}`;
  const secrets = boundPullSecrets(pullSecretsFor(owner.policy, w.template, serviceAccounts));
  const problems = secrets.problem === undefined ? [] : [`${source}: ${secrets.problem}`];
  const imagePullSecrets = secrets.names.map((name) => ({ name }));
  const nodes = policyNodes(owner.policy);
  const ownerRef = selectedOwner(identity);
  const images: DesiredPrePullImage[] = [];
  for (const c of w.template.images) {
    const spec = managedSpec(owner.policy, c.image, nodes, imagePullSecrets);
    const problem = derivedSpecProblem(spec);
    if (problem !== undefined) {
      problems.push(`${source} container ${c.containerName}: ${problem}`);
      continue;
    }
    images.push({
      namespace: identity.namespace,
      name: prePullImageName(identity.kind, identity.name, c.containerName),
      policy: owner.name,
      owner: ownerRef,
      annotations: { [WORKLOAD_ANNOTATION]: `${identity.kind}/${identity.name}`, [CONTAINER_ANNOTATION]: c.containerName },
      spec,
      placement,
    });
  }
  return { policy: derivationKey(owner.policy), serviceAccount, images, problems };
}

function emptyKindCounts(): Record<SelectedKind, number> {
  return { Deployment: 0, StatefulSet: 0, DaemonSet: 0, Job: 0, CronJob: 0, WorkflowTemplate: 0, ClusterWorkflowTemplate: 0, CronWorkflow: 0 };
}

const derivationKeys = new WeakMap<PrePullPolicy, string>();

/**
 * What of a policy its derived PrePullImages depend on (name, uid, spec), as a key, once per policy object. The
 * informer replaces a policy at every status write; its images are derived again only when this changes.
 */
export function derivationKey(policy: PrePullPolicy): string {
  let key = derivationKeys.get(policy);
  if (key === undefined) {
    key = JSON.stringify([policy.metadata.name, policy.metadata.uid, policy.spec]);
    derivationKeys.set(policy, key);
  }
  return key;
}

/** A workload's derived images from an earlier pass, valid while what they came from is the same. */
interface DerivedImages {
  /** derivationKey of the policy. */
  readonly policy: string;
  readonly serviceAccount: ServiceAccountView | undefined;
  readonly images: readonly DesiredPrePullImage[];
  /** What was left out of `images`, one line each (see derived-validation.ts). */
  readonly problems: readonly string[];
}

/**
 * Remembers each workload's derived images between passes, keyed by the cached workload object (which the
 * informer replaces when it changes): unchanged workloads yield the very same objects, so callers can
 * remember what they computed from them. Only a cache: the result is the same without it.
 */
export class DesiredImagesMemo {
  readonly derived = new WeakMap<WorkloadView, DerivedImages>();
  readonly argoDerived = new WeakMap<ArgoWorkflowView, DerivedImages>();
}

// ---- Argo Workflows objects ------------------------------------------------------------------------------

export interface ArgoObjects {
  /** Objects of the Argo kinds being watched. */
  readonly objects: Iterable<ArgoWorkflowView>;
  /** kwarm's namespace: PrePullImages of ClusterWorkflowTemplates live here. */
  readonly clusterNamespace: string;
}

/** A cluster-scoped ClusterWorkflowTemplate is selected only by policies that do not restrict namespaces. */
function selectsArgo(p: CompiledPolicy, a: ArgoWorkflowView): boolean {
  const id = a.identity;
  const inNamespaces = p.namespaces === undefined || (id.namespace !== '' && p.namespaces.has(id.namespace));
  return p.selector !== undefined && p.kinds.has(id.kind) && inNamespaces && compiledSelectorMatches(p.selector, a.labels);
}

/** One PrePullImage per distinct (image, placement) of the object's templates. */
function deriveArgoImages(
  owner: CompiledPolicy,
  a: ArgoWorkflowView,
  serviceAccounts: ReadonlyMap<string, ServiceAccountView>,
  serviceAccount: ServiceAccountView | undefined,
  clusterNamespace: string,
): DerivedImages {
  const namespace = a.identity.namespace === '' ? clusterNamespace : a.identity.namespace;
  // Secrets are looked up in the PrePullImage's namespace (kwarm's for a ClusterWorkflowTemplate).
  // A ClusterWorkflowTemplate runs in any namespace: there is no ServiceAccount to inherit from.
  const source: PullSecretSource = { identity: { namespace }, imagePullSecrets: a.imagePullSecrets, serviceAccountName: a.identity.namespace === '' ? '' : a.serviceAccountName };
  const described = `${a.identity.kind} ${a.identity.namespace === '' ? '' : `${a.identity.namespace}/`}${a.identity.name}`;
  const secrets = boundPullSecrets(pullSecretsFor(owner.policy, source, serviceAccounts));
  const problems = secrets.problem === undefined ? [] : [`${described}: ${secrets.problem}`];
  const imagePullSecrets = secrets.names.map((name) => ({ name }));
  const nodes = policyNodes(owner.policy);
  const ownerRef = selectedOwner(a.identity);
  const annotations = { [WORKLOAD_ANNOTATION]: `${a.identity.kind}/${a.identity.name}` };
  const images: DesiredPrePullImage[] = [];
  for (const g of argoImageGroups(a)) {
    const spec = managedSpec(owner.policy, g.image, nodes, imagePullSecrets);
    const problem = derivedSpecProblem(spec);
    if (problem !== undefined) {
      problems.push(`${described} (${describeUsers(g.users)}): ${problem}`);
      continue;
    }
    images.push({
      namespace,
      name: g.name,
      policy: owner.name,
      owner: ownerRef,
      annotations: { ...annotations, [CONTAINER_ANNOTATION]: describeUsers(g.users) },
      spec,
      placement: g.placement,
    });
  }
  return { policy: derivationKey(owner.policy), serviceAccount, images, problems };
}

/** Built-in workload kinds some live policy names: the only ones the controller list-watches. */
export function builtinKindsNamed(policies: Iterable<PrePullPolicy>): Set<BuiltinWorkloadKind> {
  const kinds = new Set<BuiltinWorkloadKind>();
  for (const p of policies) {
    if (p.metadata.deletionTimestamp !== undefined) continue;
    for (const k of p.spec.workloadKinds) if (!isArgoKind(k)) kinds.add(k);
  }
  return kinds;
}

/** Argo kinds some live policy names: the ones worth discovering and watching. */
export function argoKindsNamed(policies: Iterable<PrePullPolicy>): Set<ArgoKind> {
  const kinds = new Set<ArgoKind>();
  for (const p of policies) {
    if (p.metadata.deletionTimestamp !== undefined) continue;
    for (const k of p.spec.workloadKinds) if (isArgoKind(k)) kinds.add(k);
  }
  return kinds;
}

/**
 * Each workload goes to the first policy (by name) that selects it, so two overlapping policies never
 * fight over the same PrePullImage; the others count it as shadowed.
 */
export function desiredPrePullImages(
  policies: Iterable<PrePullPolicy>,
  workloads: Iterable<WorkloadView>,
  serviceAccounts: ReadonlyMap<string, ServiceAccountView>,
  memo?: DesiredImagesMemo,
  argo?: ArgoObjects,
): DesiredImages {
  const compiled = [...policies]
    .filter((p) => p.metadata.deletionTimestamp === undefined)
    .map(compilePolicy)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const stats = new Map(compiled.map((p) => [p.name, { byKind: emptyKindCounts(), shadowed: 0, images: [] as string[], problems: [] as string[] }]));
  const images = new Map<string, DesiredPrePullImage>();
  const all = [...workloads];
  // A Job created by a CronJob some policy selects is that CronJob's run: its images are the CronJob's,
  // already derived, so it would only add a second PrePullImage for the same image.
  const selectedCronJobs = new Set(all
    .filter((w) => w.template.identity.kind === 'CronJob' && compiled.some((p) => selects(p, w)))
    .map((w) => `${w.template.identity.namespace}/${w.template.identity.name}`));

  for (const w of all) {
    if (w.ownerCronJob !== undefined && selectedCronJobs.has(`${w.template.identity.namespace}/${w.ownerCronJob}`)) continue;
    let owner: CompiledPolicy | undefined;
    for (const p of compiled) {
      if (!selects(p, w)) continue;
      const s = stats.get(p.name);
      if (s === undefined) continue;
      if (owner === undefined) {
        owner = p;
        s.byKind[w.template.identity.kind]++;
      } else {
        s.shadowed++;
      }
    }
    if (owner === undefined) continue;
    const { identity } = w.template;
    const sa = owner.policy.spec.imagePullSecrets.inherit
      ? serviceAccounts.get(serviceAccountKey(identity.namespace, w.template.serviceAccountName))
      : undefined;
    const known = memo?.derived.get(w);
    const derived = known?.policy === derivationKey(owner.policy) && known.serviceAccount === sa ? known : deriveImages(owner, w, serviceAccounts, sa);
    memo?.derived.set(w, derived);
    for (const d of derived.images) {
      const key = prePullImageKey(d.namespace, d.name);
      images.set(key, d);
      stats.get(owner.name)?.images.push(key);
    }
    stats.get(owner.name)?.problems.push(...derived.problems);
  }

  // Argo objects the same way: the first policy by name takes each.
  for (const a of argo?.objects ?? []) {
    let owner: CompiledPolicy | undefined;
    for (const p of compiled) {
      if (!selectsArgo(p, a)) continue;
      const s = stats.get(p.name);
      if (s === undefined) continue;
      if (owner === undefined) {
        owner = p;
        s.byKind[a.identity.kind]++;
      } else {
        s.shadowed++;
      }
    }
    if (owner === undefined || argo === undefined) continue;
    const sa = owner.policy.spec.imagePullSecrets.inherit && a.identity.namespace !== ''
      ? serviceAccounts.get(serviceAccountKey(a.identity.namespace, a.serviceAccountName))
      : undefined;
    const known = memo?.argoDerived.get(a);
    const derived = known?.policy === derivationKey(owner.policy) && known.serviceAccount === sa
      ? known
      : deriveArgoImages(owner, a, serviceAccounts, sa, argo.clusterNamespace);
    memo?.argoDerived.set(a, derived);
    for (const d of derived.images) {
      const key = prePullImageKey(d.namespace, d.name);
      images.set(key, d);
      stats.get(owner.name)?.images.push(key);
    }
    stats.get(owner.name)?.problems.push(...derived.problems);
  }

  const evaluations = new Map<string, PolicyEvaluation>();
  for (const p of compiled) {
    const s = stats.get(p.name);
    if (s === undefined) continue;
    const watched = Object.values(s.byKind).reduce((a, b) => a + b, 0);
    evaluations.set(p.name, {
      name: p.name,
      selectorError: p.selectorError,
      watchedWorkloads: watched,
      watchedByKind: s.byKind,
      shadowed: s.shadowed,
      images: s.images,
      ...(s.problems.length > 0 ? { inputProblems: s.problems } : {}),
    });
  }
  return { images, policies: evaluations };
}
