// Which nodes each PrePullImage selects: its spec.nodes (names, selector, affinity, tolerations) and, for
// workload-derived images, where the workload's pods can run; grouped so each distinct selection is
// evaluated once. Also the removals of purging targets. Pure: no I/O, no clock.
import { MAX_IMAGE_SOURCES, MAX_NODE_REMOVALS, type LabelSelector, type Retry } from '../../api/v1alpha1/index.ts';
import { compileLabelSelector, compiledSelectorMatches, type CompiledLabelSelector } from './label-selector.ts';
import { compareStrings, type NodeRemoval } from './node-image-set-digest.ts';
import { listedImageAllows, placementAllows, targetingAllows, type NodeTargeting, type NodeView, type PodPlacement } from './node-eligibility.ts';
import { sameItems } from '../../lib/same-items.ts';

/** One PrePullImage as the planner sees it, derived or hand-written. */
export interface ImageTarget {
  /** `namespace/name` of the PrePullImage. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly image: string;
  readonly imageDigest: string | undefined;
  /** spec.nodes.names; undefined when not set. */
  readonly nodeNames: readonly string[] | undefined;
  /** spec.nodes.selector; undefined when not set. */
  readonly nodeSelector: LabelSelector | undefined;
  /** Where the owning workload's pods can run; undefined for hand-written, static and ConfigMap images. */
  readonly placement: PodPlacement | undefined;
  /** spec.nodes.affinity and spec.nodes.tolerations, compiled; undefined when neither is set. */
  readonly targeting: NodeTargeting | undefined;
  /** Names of the copies in kwarm's namespace. */
  readonly pullSecrets: readonly string[];
  readonly retry: Retry;
  readonly timeout: string;
  /**
   * Remove the image from the target nodes instead of pulling it (state Absent, or deleted with
   * purgeOnDelete). Target nodes are then all matching nodes, Ready or not, and no budget applies.
   */
  readonly purge?: boolean;
  /** The round this PrePullImage wants of its entries (refresh.ts wantedRound); 0 when never refreshed. */
  readonly round: number;
  /** spec.gateNewNodes (of the PrePullImage, or of the policy it is derived from): its nodes' warm-up waits for it. */
  readonly gatesNodes?: boolean;
  /** metadata.creationTimestamp; absent for a derived one not created yet. Orders conflicting sources (entry-merge.ts). */
  readonly createdAt?: string;
}

export interface NodeInfo {
  readonly node: NodeView;
  readonly name: string;
  readonly uid: string;
}

type NodeFilter = { readonly kind: 'all' } | { readonly kind: 'some'; readonly names: ReadonlySet<string>; readonly selector: CompiledLabelSelector | undefined } | { readonly kind: 'none' };

function nodeFilter(t: ImageTarget): NodeFilter {
  if (t.nodeNames === undefined && t.nodeSelector === undefined) return { kind: 'all' };
  let selector: CompiledLabelSelector | undefined;
  if (t.nodeSelector !== undefined) {
    const compiled = compileLabelSelector(t.nodeSelector);
    // An invalid selector selects nothing: a typo never widens the set of nodes.
    if (!compiled.ok && t.nodeNames === undefined) return { kind: 'none' };
    selector = compiled.ok ? compiled.value : undefined;
  }
  return { kind: 'some', names: new Set(t.nodeNames ?? []), selector };
}

function filterAllows(f: NodeFilter, n: NodeInfo): boolean {
  switch (f.kind) {
    case 'all':
      return true;
    case 'none':
      return false;
    case 'some':
      return f.names.has(n.name) || (f.selector !== undefined && compiledSelectorMatches(f.selector, n.node.metadata?.labels));
    default: {
      const unreachable: never = f;
      return unreachable;
    }
  }
}

/** The memo slots eligibleGroups reuses between passes (PlanMemo has them). */
export interface GroupMemo {
  ready: readonly NodeView[];
  groups: Map<string, readonly string[]>;
  /** A target of each group key: what the key's nodes are evaluated with when some nodes change. */
  groupTargets: Map<string, ImageTarget>;
}

/** Targets that select the same nodes, in key order. */
export interface TargetGroup {
  readonly names: readonly string[];
  readonly targets: ImageTarget[];
}

const groupKeys = new WeakMap<ImageTarget, string>();

/** What decides the nodes a target selects, as a key; computed once per target object (targets are not changed). */
function groupKeyOf(t: ImageTarget): string {
  let key = groupKeys.get(t);
  if (key === undefined) {
    key = JSON.stringify([t.nodeNames === undefined ? null : [...t.nodeNames].sort(), t.nodeSelector ?? null, t.placement?.key ?? null, t.targeting?.key ?? null]);
    groupKeys.set(t, key);
  }
  return key;
}

/** Whether target `t` wants node `n` (Ready and schedulable already): its node filter, placement and targeting. */
function selects(t: ImageTarget, filter: NodeFilter, n: NodeInfo): boolean {
  const { placement, targeting } = t;
  // Both apply when both exist: the pods' placement and the PrePullImage's own targeting.
  return filterAllows(filter, n) && (placement === undefined
    ? listedImageAllows(targeting, n.node).eligible
    : placementAllows(placement, n.node).eligible && (targeting === undefined || targetingAllows(targeting, n.node).eligible));
}

/** Above this share of the Ready nodes changed, every group is evaluated again instead of patched. */
const PATCH_SHARE = 0.25;

/**
 * The memo's groups brought up to date with the Ready nodes as they are now: only the nodes added, removed or
 * changed (another object) since are evaluated again, and a group whose nodes are the same keeps its array.
 * Undefined when too much changed (every group is evaluated again).
 */
function patchedGroups(memo: GroupMemo, ready: readonly NodeInfo[]): Map<string, readonly string[]> | undefined {
  const before = new Map(memo.ready.map((n) => [n.metadata?.name ?? '', n]));
  const now = new Set<string>();
  const changed: NodeInfo[] = [];
  for (const n of ready) {
    now.add(n.name);
    if (before.get(n.name) !== n.node) changed.push(n);
  }
  const gone = [...before.keys()].filter((name) => !now.has(name));
  if (changed.length + gone.length > Math.max(1, ready.length * PATCH_SHARE)) return undefined;
  const stale = new Set([...gone, ...changed.map((n) => n.name)]);
  const out = new Map<string, readonly string[]>();
  for (const [key, names] of memo.groups) {
    const t = memo.groupTargets.get(key);
    if (t === undefined) continue;
    const filter = nodeFilter(t);
    const added = changed.filter((n) => selects(t, filter, n)).map((n) => n.name);
    const kept = names.filter((name) => !stale.has(name));
    const patched = added.length === 0 ? kept : [...kept, ...added].sort(compareStrings);
    out.set(key, sameItems(patched, names) ? names : patched);
  }
  return out;
}

/**
 * Groups targets by the nodes they select, evaluating each distinct (node filter, placement, targeting) once;
 * with a memo, only what changed since its pass (group keys, Ready nodes) is evaluated.
 */
export function eligibleGroups(targets: readonly ImageTarget[], ready: readonly NodeInfo[], memo: GroupMemo | undefined): TargetGroup[] {
  const readyNodes = ready.map((n) => n.node);
  const known = memo === undefined ? new Map<string, readonly string[]>()
    : sameItems(memo.ready, readyNodes) ? memo.groups : patchedGroups(memo, ready) ?? new Map<string, readonly string[]>();
  const used = new Map<string, readonly string[]>();
  const usedTargets = new Map<string, ImageTarget>();
  const groups = new Map<readonly string[], TargetGroup>();
  for (const t of targets) {
    const groupKey = groupKeyOf(t);
    let names = used.get(groupKey) ?? known.get(groupKey);
    if (names === undefined) {
      const filter = nodeFilter(t);
      names = ready.filter((n) => selects(t, filter, n)).map((n) => n.name);
    }
    used.set(groupKey, names);
    if (!usedTargets.has(groupKey)) usedTargets.set(groupKey, t);
    // Different keys may select the same nodes; an empty selection is one group too (it wants nothing).
    let group = groups.get(names);
    if (group === undefined) groups.set(names, (group = { names, targets: [] }));
    group.targets.push(t);
  }
  if (memo !== undefined) {
    memo.ready = readyNodes;
    memo.groups = used;
    memo.groupTargets = usedTargets;
  }
  return [...groups.values()];
}

/**
 * spec.removals per node from the purging targets: every node the target selects, Ready or not (an agent
 * that comes back answers then), each image once with the targets behind it.
 */
export function planRemovals(purging: readonly ImageTarget[], nodes: readonly NodeInfo[], targetNodes: Map<string, readonly string[]>): Map<string, NodeRemoval[]> {
  const byNode = new Map<string, Map<string, ImageTarget[]>>();
  for (const t of purging) {
    const filter = nodeFilter(t);
    const placement = t.placement;
    // The targeting's required affinity, not its taints: a node tainted since the pull still gets the removal.
    const affinity = t.targeting === undefined ? undefined : { ...t.targeting, tolerations: undefined };
    const names = nodes
      .filter((n) => filterAllows(filter, n) && (placement === undefined || placementAllows(placement, n.node).eligible) &&
        (affinity === undefined || targetingAllows(affinity, n.node).eligible))
      .map((n) => n.name);
    targetNodes.set(t.key, names);
    for (const name of names) {
      let images = byNode.get(name);
      if (images === undefined) byNode.set(name, (images = new Map<string, ImageTarget[]>()));
      const list = images.get(t.image);
      if (list === undefined) images.set(t.image, [t]);
      else list.push(t);
    }
  }
  const out = new Map<string, NodeRemoval[]>();
  for (const [name, images] of byNode) {
    const removals = [...images]
      .map(([image, list]) => ({ image, sources: list.slice(0, MAX_IMAGE_SOURCES).map((t) => ({ namespace: t.namespace, name: t.name })) }))
      .sort((a, b) => compareStrings(a.image, b.image))
      .slice(0, MAX_NODE_REMOVALS);
    out.set(name, removals);
  }
  return out;
}
