// Could a pod with this spec run on this node? The scheduler's filters that depend only on the pod spec
// and the Node object (node name, nodeSelector, required node affinity, taints vs tolerations), plus
// kwarm's own rule that images go only to Ready, uncordoned nodes. Pure: no I/O, no clock.
//
// Decisions that are not the scheduler's:
// - NotReady and cordoned nodes are never eligible, even for pods that tolerate the matching taints
//   (DaemonSet pods do): a node being drained or broken is a poor place to spend pulls.
// - `kubernetes.io/os` / `kubernetes.io/arch` are ordinary labels, evaluated exactly as the scheduler
//   does: a node WITHOUT the label fails `In` / `Exists` / a nodeSelector entry for it, and passes
//   `NotIn` / `DoesNotExist`. Kubelets always set both labels, so only hand-made Node objects lack them.
//   Such failures are reported as OSMismatch / ArchMismatch rather than as selector mismatches.
// - `spec.os.name` is not a scheduler constraint, but the kubelet rejects a pod whose OS differs from its
//   own; we use the node's `kubernetes.io/os` label for that when the label is present, and treat a node
//   without the label as compatible (we cannot know better, and the scheduler would place the pod).
// - `tolerationSeconds` is ignored, as the scheduler does: a pod tolerating a NoExecute taint for a while
//   is still scheduled there and still needs its image to start.
import {
  labelValue,
  nodeSelectorOperators,
  parseRequirement,
  requirementMatches,
  type LabelRequirement,
  type LabelSet,
} from './label-selector.ts';

export const OS_LABEL = 'kubernetes.io/os';
export const ARCH_LABEL = 'kubernetes.io/arch';

/** In the order they are checked; the first that applies is reported. A bounded set for metrics labels. */
export const ineligibilityReasons = [
  'NotReady',
  'Unschedulable',
  'RuntimeClassRejected',
  'NodeNameMismatch',
  'OSMismatch',
  'ArchMismatch',
  'NodeSelectorMismatch',
  'AffinityMismatch',
  'UntoleratedTaint',
  'MissingExtendedResource',
] as const;
export type IneligibilityReason = (typeof ineligibilityReasons)[number];

// ---- the shapes read here ---------------------------------------------------------------------------
// Structural, so the informers' plain projections and client-node's V1 model classes (used by the tests)
// both fit, and nothing here needs client-node at run time.

export interface TaintSpec {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
}

/** What eligibility reads of a Node; any V1Node is one. */
export interface NodeView {
  readonly metadata?: {
    readonly name?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    /** metadata.creationTimestamp, for the warm-up barrier's new nodes (--warmup-condition-on-new-nodes). */
    readonly createdAt?: string;
  };
  readonly spec?: {
    readonly unschedulable?: boolean;
    readonly taints?: readonly TaintSpec[];
  };
  readonly status?: {
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
    /** Quantities by resource name; only extended resources are read (see nodeHasExtendedResource). */
    readonly allocatable?: Readonly<Record<string, string>>;
  };
}

/** A toleration as plain data; any V1Toleration is one. */
export interface TolerationSpec {
  readonly key?: string;
  readonly operator?: string;
  readonly value?: string;
  readonly effect?: string;
  readonly tolerationSeconds?: number;
}

export interface NodeSelectorRequirementSpec {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

export interface NodeSelectorTermSpec {
  readonly matchExpressions?: readonly NodeSelectorRequirementSpec[];
  readonly matchFields?: readonly NodeSelectorRequirementSpec[];
}

/** Only required node affinity decides where a pod may run; the rest of V1Affinity is scoring. */
export interface AffinitySpec {
  readonly nodeAffinity?: {
    readonly requiredDuringSchedulingIgnoredDuringExecution?: { readonly nodeSelectorTerms: readonly NodeSelectorTermSpec[] };
  };
}

export type Eligibility =
  | { readonly eligible: true }
  | { readonly eligible: false; readonly reason: IneligibilityReason; readonly message: string };

const ELIGIBLE: Eligibility = { eligible: true };

function ineligible(reason: IneligibilityReason, message: string): Eligibility {
  return { eligible: false, reason, message };
}

export function isNodeReady(node: NodeView): boolean {
  // The first Ready condition counts, as in the Kubernetes helpers.
  return node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

export function isSchedulable(node: NodeView): boolean {
  return node.spec?.unschedulable !== true;
}

/** Ready and not cordoned: the precondition for any image, workload-derived or hand-written. */
export function nodeAcceptsPulls(node: NodeView): Eligibility {
  if (!isNodeReady(node)) {
    const status = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    return ineligible('NotReady', `node is not Ready (Ready condition ${status ?? 'missing'})`);
  }
  if (!isSchedulable(node)) return ineligible('Unschedulable', 'node is cordoned (spec.unschedulable)');
  return ELIGIBLE;
}

/** The part of a pod spec that decides where it may run; any V1PodSpec is one. */
export interface PodSchedulingSpec {
  readonly nodeName?: string;
  readonly nodeSelector?: Readonly<Record<string, string>>;
  readonly affinity?: AffinitySpec;
  readonly tolerations?: readonly TolerationSpec[];
  readonly os?: { readonly name: string };
  /** Extended resources (e.g. nvidia.com/gpu) some container requests a positive amount of; see requestedExtendedResources. */
  readonly extendedResources?: readonly string[];
  /** Why admission refuses pods of this spec, so they run nowhere (a missing or conflicting RuntimeClass); see withRuntimeClass. */
  readonly rejection?: string;
}

// ---- taints and tolerations -------------------------------------------------------------------------

/** v1.Toleration.ToleratesTaint: empty effect matches all effects, empty key any key, operator defaults to Equal. */
export function toleratesTaint(toleration: TolerationSpec, taint: TaintSpec): boolean {
  const effect = toleration.effect ?? '';
  if (effect !== '' && effect !== taint.effect) return false;
  const key = toleration.key ?? '';
  if (key !== '' && key !== taint.key) return false;
  switch (toleration.operator ?? '') {
    case '':
    case 'Equal':
      return (toleration.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
    default:
      // Operators this version does not know (e.g. newer alpha ones) tolerate nothing, like an old scheduler.
      return false;
  }
}

function isSchedulingTaint(taint: TaintSpec): boolean {
  // The TaintToleration filter considers only these; PreferNoSchedule is a scoring hint.
  return taint.effect === 'NoSchedule' || taint.effect === 'NoExecute';
}

/** The first NoSchedule/NoExecute taint no toleration tolerates, or undefined. */
export function findUntoleratedTaint(
  taints: readonly TaintSpec[] | undefined,
  tolerations: readonly TolerationSpec[] | undefined,
): TaintSpec | undefined {
  const tols = tolerations ?? [];
  return (taints ?? []).find((t) => isSchedulingTaint(t) && !tols.some((tol) => toleratesTaint(tol, t)));
}

export function describeTaint(taint: TaintSpec): string {
  const value = taint.value ?? '';
  return value === '' ? `${taint.key}:${taint.effect}` : `${taint.key}=${value}:${taint.effect}`;
}

// ---- extended resources and RuntimeClass (finding 22 of the review) ----------------------------------

/**
 * The scheduler's NodeResourcesFit also filters on extended resources: a pod requesting `nvidia.com/gpu`
 * never runs on a node without allocatable GPUs. Only "allocatable > 0" is checked, not the free amount:
 * what other pods use changes by the second, and an image is worth having where the pod can ever run.
 * Native resources (cpu, memory, hugepages, ephemeral-storage, anything under kubernetes.io/) are not
 * checked for the same reason.
 */
export function isExtendedResourceName(name: string): boolean {
  // v1helper.IsExtendedResourceName: a domain-prefixed name outside kubernetes.io, not a quota "requests." name.
  return name.includes('/') && !name.includes('kubernetes.io/') && !name.startsWith('requests.');
}

/** A quantity's number part has a non-zero digit; extended resources are integers, so this is "> 0". */
export function isPositiveQuantity(q: string): boolean {
  const number = /^\+?([0-9]*\.?[0-9]*)/.exec(q.trim())?.[1] ?? '';
  return /[1-9]/.test(number);
}

export function nodeHasExtendedResource(node: NodeView, resource: string): boolean {
  const q = node.status?.allocatable?.[resource];
  return q !== undefined && isPositiveQuantity(q);
}

/** What requestedExtendedResources reads of a container; any V1Container is one. */
export interface ContainerResourcesSpec {
  readonly resources?: {
    readonly requests?: Readonly<Record<string, string>>;
    readonly limits?: Readonly<Record<string, string>>;
  };
}

/**
 * Extended resources any container or init container requests a positive amount of, sorted. A limit counts
 * too: for extended resources the API server defaults the request to the limit (and requires them equal).
 */
export function requestedExtendedResources(containers: readonly ContainerResourcesSpec[]): string[] {
  const names = new Set<string>();
  for (const c of containers) {
    for (const amounts of [c.resources?.requests, c.resources?.limits]) {
      for (const [name, q] of Object.entries(amounts ?? {})) if (isExtendedResourceName(name) && isPositiveQuantity(q)) names.add(name);
    }
  }
  return [...names].sort();
}

// ---- compiled pod placement -------------------------------------------------------------------------

/** A matchFields requirement; only In/NotIn with one value exist, read against the node's fields. */
interface FieldRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn';
  readonly value: string;
}

type CompiledTerm =
  | { readonly kind: 'term'; readonly labels: readonly LabelRequirement[]; readonly fields: readonly FieldRequirement[] }
  | { readonly kind: 'invalid'; readonly error: string };

/**
 * The scheduling constraints of a pod spec, validated once. Evaluating it against many nodes is cheap;
 * `key` is equal for two placements exactly when they constrain nodes identically in content, so a caller
 * can evaluate each distinct placement once per node.
 */
export interface PodPlacement {
  readonly nodeName: string | undefined;
  readonly nodeSelector: readonly (readonly [string, string])[];
  /** undefined: no required node affinity. An empty list (all terms empty) selects no node. */
  readonly requiredTerms: readonly CompiledTerm[] | undefined;
  readonly tolerations: readonly TolerationSpec[];
  readonly podOS: string | undefined;
  readonly extendedResources: readonly string[];
  readonly rejection: string | undefined;
  readonly key: string;
}

function compileFieldRequirement(key: string, operator: string, values: readonly string[] | undefined): FieldRequirement | string {
  const vals = values ?? [];
  if (operator !== 'In' && operator !== 'NotIn') return `matchFields ${JSON.stringify(key)}: unsupported operator ${operator}`;
  const value = vals[0];
  if (vals.length !== 1 || value === undefined) return `matchFields ${JSON.stringify(key)} ${operator}: needs exactly one value`;
  return { key, operator, value };
}

function isEmptyTerm(term: NodeSelectorTermSpec): boolean {
  return (term.matchExpressions ?? []).length === 0 && (term.matchFields ?? []).length === 0;
}

/** A term with any invalid requirement never matches, but the other terms still count (as in the scheduler). */
function compileTerm(term: NodeSelectorTermSpec): CompiledTerm {
  const labels: LabelRequirement[] = [];
  const errors: string[] = [];
  for (const expr of term.matchExpressions ?? []) {
    const parsed = parseRequirement(expr.key, expr.operator, expr.values, nodeSelectorOperators);
    if (parsed.ok) labels.push(parsed.value);
    else errors.push(`matchExpressions: ${parsed.error}`);
  }
  const fields: FieldRequirement[] = [];
  for (const expr of term.matchFields ?? []) {
    const parsed = compileFieldRequirement(expr.key, expr.operator, expr.values);
    if (typeof parsed === 'string') errors.push(parsed);
    else fields.push(parsed);
  }
  return errors.length > 0 ? { kind: 'invalid', error: errors.join('; ') } : { kind: 'term', labels, fields };
}

export function normalizedToleration(t: TolerationSpec): readonly string[] {
  return [t.key ?? '', t.operator ?? '', t.value ?? '', t.effect ?? ''];
}

export function compilePodPlacement(spec: PodSchedulingSpec): PodPlacement {
  const nodeName = spec.nodeName !== undefined && spec.nodeName !== '' ? spec.nodeName : undefined;
  const nodeSelector = Object.entries(spec.nodeSelector ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  // Empty terms select nothing and are dropped, so required affinity made only of them matches no node.
  const rawTerms = required?.nodeSelectorTerms.filter((t) => !isEmptyTerm(t));
  const requiredTerms = rawTerms?.map(compileTerm);
  const tolerations = spec.tolerations ?? [];
  const podOS = spec.os?.name !== undefined && spec.os.name !== '' ? spec.os.name : undefined;
  const extendedResources = [...new Set(spec.extendedResources ?? [])].sort();
  const rejection = spec.rejection;
  const key = JSON.stringify([
    nodeName ?? null,
    nodeSelector,
    rawTerms?.map((t) => [
      (t.matchExpressions ?? []).map((e) => [e.key, e.operator, e.values ?? []]),
      (t.matchFields ?? []).map((e) => [e.key, e.operator, e.values ?? []]),
    ]) ?? null,
    tolerations.map(normalizedToleration),
    podOS ?? null,
    // Appended only when set, so placements without them keep the keys they had.
    ...(extendedResources.length > 0 || rejection !== undefined ? [extendedResources, rejection ?? null] : []),
  ]);
  return { nodeName, nodeSelector, requiredTerms, tolerations, podOS, extendedResources, rejection, key };
}

/** The fields a node selector term's matchFields can read; only metadata.name exists for nodes. */
function nodeFields(node: NodeView): LabelSet {
  const name = node.metadata?.name ?? '';
  return name === '' ? {} : { 'metadata.name': name };
}

function termMatches(term: CompiledTerm, labels: LabelSet, fields: LabelSet): boolean {
  if (term.kind === 'invalid') return false;
  if (!term.labels.every((r) => requirementMatches(r, labels))) return false;
  // Like the scheduler: a node with no fields (no name) is not constrained by matchFields.
  if (Object.keys(fields).length === 0) return true;
  return term.fields.every((f) => ((labelValue(fields, f.key) ?? '') === f.value) === (f.operator === 'In'));
}

/** Does every term fail because of a requirement on `platformKey`? Then that is the reason to report. */
function termsBlockedBy(terms: readonly CompiledTerm[], labels: LabelSet, platformKey: string): boolean {
  return (
    terms.length > 0 &&
    terms.every((t) => t.kind === 'term' && t.labels.some((r) => r.key === platformKey && !requirementMatches(r, labels)))
  );
}

function describeLabel(labels: LabelSet, key: string): string {
  const value = labelValue(labels, key);
  return value === undefined ? `node has no ${key} label` : `node has ${key}=${value}`;
}

/** The first reason (in `ineligibilityReasons` order) the placement rules this node out, or eligible. */
export function placementAllows(placement: PodPlacement, node: NodeView): Eligibility {
  const base = nodeAcceptsPulls(node);
  if (!base.eligible) return base;
  if (placement.rejection !== undefined) return ineligible('RuntimeClassRejected', placement.rejection);

  const name = node.metadata?.name ?? '';
  if (placement.nodeName !== undefined && placement.nodeName !== name) {
    return ineligible('NodeNameMismatch', `pod template sets nodeName ${placement.nodeName}`);
  }

  const labels: LabelSet = node.metadata?.labels ?? {};
  const selectorFails = placement.nodeSelector.some(([k, v]) => labelValue(labels, k) !== v);
  const terms = placement.requiredTerms;
  const affinityFails = terms !== undefined && !terms.some((t) => termMatches(t, labels, nodeFields(node)));

  // The common case (everything matches) allocates nothing; explaining a failure may.
  if (selectorFails || affinityFails || placement.podOS !== undefined) {
    const selectorMisses = placement.nodeSelector.filter(([k, v]) => labelValue(labels, k) !== v);
    const nodeOS = labelValue(labels, OS_LABEL);
    if (placement.podOS !== undefined && nodeOS !== undefined && nodeOS !== placement.podOS) {
      return ineligible('OSMismatch', `pod spec.os.name is ${placement.podOS}, node has ${OS_LABEL}=${nodeOS}`);
    }
    for (const [reason, key] of [['OSMismatch', OS_LABEL], ['ArchMismatch', ARCH_LABEL]] as const) {
      const miss = selectorMisses.find(([k]) => k === key);
      if (miss !== undefined) {
        return ineligible(reason, `nodeSelector ${key}=${miss[1]}: ${describeLabel(labels, key)}`);
      }
      if (affinityFails && termsBlockedBy(terms, labels, key)) {
        return ineligible(reason, `required node affinity on ${key} does not match: ${describeLabel(labels, key)}`);
      }
    }
    const firstMiss = selectorMisses[0];
    if (firstMiss !== undefined) {
      const [key, value] = firstMiss;
      return ineligible('NodeSelectorMismatch', `nodeSelector ${key}=${value}: ${describeLabel(labels, key)}`);
    }
    if (affinityFails) {
      const invalid = terms.flatMap((t) => (t.kind === 'invalid' ? [t.error] : []));
      if (terms.length === 0) {
        return ineligible('AffinityMismatch', 'required node affinity has only empty terms, which select no node');
      }
      const detail = invalid.length > 0 ? ` (${invalid.length} invalid, never matching: ${invalid.join('; ')})` : '';
      return ineligible('AffinityMismatch', `none of ${terms.length} required node affinity terms matches${detail}`);
    }
  }

  const taint = findUntoleratedTaint(node.spec?.taints, placement.tolerations);
  if (taint !== undefined) return ineligible('UntoleratedTaint', `taint ${describeTaint(taint)} is not tolerated`);
  const missing = placement.extendedResources.find((r) => !nodeHasExtendedResource(node, r));
  if (missing !== undefined) return ineligible('MissingExtendedResource', `pods request ${missing}; the node's status.allocatable has none`);
  return ELIGIBLE;
}

/** One-shot form of compilePodPlacement + placementAllows. */
export function podCanRunOn(spec: PodSchedulingSpec, node: NodeView): Eligibility {
  return placementAllows(compilePodPlacement(spec), node);
}

// ---- PrePullImage node targeting ----------------------------------------------------------------------

/** A PrePullImage's `spec.nodes.affinity` and `spec.nodes.tolerations`; both optional. */
export interface NodeTargetingSpec {
  readonly affinity?: AffinitySpec;
  readonly tolerations?: readonly TolerationSpec[];
}

/**
 * Node targeting of a PrePullImage, compiled once. With a workload's placement, taints count only when
 * tolerations are set (the pods' own tolerations decide); without one, see listedImageAllows.
 */
export interface NodeTargeting {
  /** undefined: no required node affinity. */
  readonly requiredTerms: readonly CompiledTerm[] | undefined;
  /** undefined: taints are not considered. */
  readonly tolerations: readonly TolerationSpec[] | undefined;
  /** Equal for two targetings exactly when they select nodes identically in content. */
  readonly key: string;
}

/** undefined when the spec constrains nothing (neither affinity nor tolerations). */
export function compileNodeTargeting(spec: NodeTargetingSpec): NodeTargeting | undefined {
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required === undefined && spec.tolerations === undefined) return undefined;
  const rawTerms = required?.nodeSelectorTerms.filter((t) => !isEmptyTerm(t));
  const key = JSON.stringify([
    rawTerms?.map((t) => [
      (t.matchExpressions ?? []).map((e) => [e.key, e.operator, e.values ?? []]),
      (t.matchFields ?? []).map((e) => [e.key, e.operator, e.values ?? []]),
    ]) ?? null,
    spec.tolerations?.map(normalizedToleration) ?? null,
  ]);
  return { requiredTerms: rawTerms?.map(compileTerm), tolerations: spec.tolerations, key };
}

/** Whether a Ready, schedulable node meets the targeting: required affinity first, then taints when tolerations are set. */
export function targetingAllows(targeting: NodeTargeting, node: NodeView): Eligibility {
  const terms = targeting.requiredTerms;
  if (terms !== undefined && !terms.some((t) => termMatches(t, node.metadata?.labels ?? {}, nodeFields(node)))) {
    if (terms.length === 0) return ineligible('AffinityMismatch', 'required node affinity has only empty terms, which select no node');
    const invalid = terms.flatMap((t) => (t.kind === 'invalid' ? [t.error] : []));
    const detail = invalid.length > 0 ? ` (${invalid.length} invalid, never matching: ${invalid.join('; ')})` : '';
    return ineligible('AffinityMismatch', `none of ${terms.length} required node affinity terms matches${detail}`);
  }
  if (targeting.tolerations !== undefined) {
    const taint = findUntoleratedTaint(node.spec?.taints, targeting.tolerations);
    if (taint !== undefined) return ineligible('UntoleratedTaint', `taint ${describeTaint(taint)} is not tolerated`);
  }
  return ELIGIBLE;
}

/**
 * Finding 6 of the review: an image with no workload placement (hand-written, static, ConfigMap) meets taints as a
 * pod with the targeting's tolerations would, none when it sets none. So control-plane nodes
 * (node-role.kubernetes.io/control-plane:NoSchedule) and other tainted nodes get it only when a toleration says
 * so, as they would get its pods.
 */
export function listedImageAllows(targeting: NodeTargeting | undefined, node: NodeView): Eligibility {
  if (targeting !== undefined) {
    const t = targetingAllows(targeting, node);
    if (!t.eligible || targeting.tolerations !== undefined) return t;
  }
  const taint = findUntoleratedTaint(node.spec?.taints, targeting?.tolerations);
  if (taint !== undefined) return ineligible('UntoleratedTaint', `taint ${describeTaint(taint)} is not tolerated (the PrePullImage sets no toleration for it)`);
  return ELIGIBLE;
}
