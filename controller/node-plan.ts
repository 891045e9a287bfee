// From the images wanted (PrePullImages) and the nodes to each node's NodeImageSet spec, releasing new
// (node, image) pairs only within the cluster-wide pull budget. The budget is counted from the
// NodeImageSets themselves (released entries the agent has not finished), so a restarted or newly elected
// controller continues exactly where the last one stopped. Pure: no I/O, no clock.
import type { V1Node } from '@kubernetes/client-node';
import {
  durationMilliseconds,
  MAX_IMAGE_SOURCES,
  MAX_NODE_IMAGES,
  type LabelSelector,
  type NodeImage,
  type NodeImageSetSpec,
  type NodePullPhase,
  type Retry,
} from '../api/v1alpha1/index.ts';
import { canonicalJson, digest } from './canonical-json.ts';
import { compileLabelSelector, compiledSelectorMatches, type CompiledLabelSelector } from './label-selector.ts';
import { nodeAcceptsPulls, placementAllows, type PodPlacement } from './node-eligibility.ts';

/** Pull secrets per NodeImageSet entry, as the CRD bounds them. */
export const MAX_ENTRY_PULL_SECRETS = 16;

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
  /** Where the owning workload's pods can run; undefined for hand-written PrePullImages. */
  readonly placement: PodPlacement | undefined;
  /** Names of the copies in kwarm's namespace. */
  readonly pullSecrets: readonly string[];
  readonly retry: Retry;
  readonly timeout: string;
}

export interface NodeImageStatusView {
  readonly phase: NodePullPhase;
  readonly round: number;
  readonly reason?: string;
  readonly message?: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
}

/** What the controller keeps of a NodeImageSet: enough to diff its spec and count its unfinished pulls. */
export interface NodeImageSetView {
  readonly name: string;
  readonly generation: number;
  readonly ownerUid: string | undefined;
  /** nodeImageSetDigest of the spec as stored. */
  readonly specDigest: string;
  /** Spec entries: image → round. */
  readonly released: ReadonlyMap<string, number>;
  /** Status entries by image. */
  readonly status: ReadonlyMap<string, NodeImageStatusView>;
}

/** True when the agent finished this entry's current round, successfully or not. */
export function isFinished(status: NodeImageStatusView | undefined, round: number): boolean {
  return status !== undefined && status.round === round && (status.phase === 'Completed' || status.phase === 'Failed');
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function normalizeEntry(e: NodeImage): NodeImage {
  return {
    ...e,
    pullSecrets: [...e.pullSecrets].sort(compareStrings),
    sources: [...e.sources].sort((x, y) => compareStrings(`${x.namespace}/${x.name}`, `${y.namespace}/${y.name}`)),
  };
}

// Planned entries are shared between the nodes that want the same image, so each is serialised once.
const entryTexts = new WeakMap<NodeImage, string>();

function entryText(e: NodeImage): string {
  let text = entryTexts.get(e);
  if (text === undefined) entryTexts.set(e, (text = canonicalJson(normalizeEntry(e))));
  return text;
}

/**
 * Compares a planned NodeImageSet with a cached one: the owner and the spec, entries in image order and
 * their lists in a fixed order, so equal specs digest equally however they were built.
 */
export function nodeImageSetDigest(ownerUid: string | undefined, spec: NodeImageSetSpec): string {
  const entries = [...spec.images].sort((a, b) => compareStrings(a.image, b.image)).map(entryText);
  return digest(`${ownerUid ?? ''}\n${spec.maxConcurrentPulls}\n${entries.join('\n')}`);
}

export interface PlanInput {
  readonly targets: readonly ImageTarget[];
  /** Node objects (a projection with name, uid, labels, taints, unschedulable and the Ready condition is enough). */
  readonly nodes: Iterable<V1Node>;
  readonly current: ReadonlyMap<string, NodeImageSetView>;
  /** Cluster-wide released-but-unfinished pairs; 0 = unlimited. */
  readonly maxConcurrentPulls: number;
  readonly maxPullsPerNode: number;
}

export interface PlannedNodeImageSet {
  readonly node: string;
  readonly nodeUid: string;
  readonly spec: NodeImageSetSpec;
  readonly digest: string;
  /** image → round of every entry in spec. */
  readonly released: ReadonlyMap<string, number>;
}

export interface NodePlan {
  /** Nodes that have images, or already have a NodeImageSet (which may become empty). */
  readonly nodeImageSets: ReadonlyMap<string, PlannedNodeImageSet>;
  /** Target key → eligible node names, sorted. */
  readonly targetNodes: ReadonlyMap<string, readonly string[]>;
  /** Pairs released and not finished once this plan is written; never above the budget unless it already was. */
  readonly unfinished: number;
  /** Pairs wanted but waiting for the budget (or for room in a full NodeImageSet). */
  readonly held: number;
}

interface NodeInfo {
  readonly node: V1Node;
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

/** Eligible nodes per target, evaluating each distinct (node filter, placement) once. */
function eligibleNodes(targets: readonly ImageTarget[], ready: readonly NodeInfo[]): Map<string, readonly string[]> {
  const byGroup = new Map<string, readonly string[]>();
  const out = new Map<string, readonly string[]>();
  for (const t of targets) {
    const group = JSON.stringify([t.nodeNames === undefined ? null : [...t.nodeNames].sort(), t.nodeSelector ?? null, t.placement?.key ?? null]);
    let names = byGroup.get(group);
    if (names === undefined) {
      const filter = nodeFilter(t);
      const placement = t.placement;
      names = ready
        .filter((n) => filterAllows(filter, n) && (placement === undefined || placementAllows(placement, n.node).eligible))
        .map((n) => n.name);
      byGroup.set(group, names);
    }
    out.set(t.key, names);
  }
  return out;
}

function longerTimeout(a: string, b: string): string {
  return (durationMilliseconds(b) ?? 0) > (durationMilliseconds(a) ?? 0) ? b : a;
}

/** One spec entry for the targets (sorted by key) that want the same image on a node; the most patient settings win. */
function mergeEntry(targets: readonly ImageTarget[]): NodeImage {
  const first = targets[0];
  if (first === undefined) throw new Error('mergeEntry needs at least one target');
  let retry = first.retry;
  let timeout = first.timeout;
  let imageDigest = first.imageDigest;
  const secrets = new Set<string>();
  for (const t of targets) {
    if (t !== first) {
      retry = { maxAttempts: Math.max(retry.maxAttempts, t.retry.maxAttempts), backoffSeconds: Math.min(retry.backoffSeconds, t.retry.backoffSeconds) };
      timeout = longerTimeout(timeout, t.timeout);
      imageDigest ??= t.imageDigest;
    }
    for (const s of t.pullSecrets) secrets.add(s);
  }
  const entry: NodeImage = {
    image: first.image,
    pullSecrets: [...secrets].sort(compareStrings).slice(0, MAX_ENTRY_PULL_SECRETS),
    timeout,
    retry,
    round: 0,
    sources: targets.slice(0, MAX_IMAGE_SOURCES).map((t) => ({ namespace: t.namespace, name: t.name })),
  };
  if (imageDigest !== undefined) entry.imageDigest = imageDigest;
  return entry;
}

export function planNodeImageSets(input: PlanInput): NodePlan {
  const nodes: NodeInfo[] = [];
  for (const node of input.nodes) {
    const name = node.metadata?.name ?? '';
    if (name !== '') nodes.push({ node, name, uid: node.metadata?.uid ?? '' });
  }
  nodes.sort((a, b) => compareStrings(a.name, b.name));
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const ready = nodes.filter((n) => nodeAcceptsPulls(n.node).eligible);
  const targets = [...input.targets].sort((a, b) => compareStrings(a.key, b.key));
  const targetNodes = eligibleNodes(targets, ready);

  // node → image → wanting targets (in key order).
  const wanted = new Map<string, Map<string, ImageTarget[]>>();
  for (const t of targets) {
    for (const node of targetNodes.get(t.key) ?? []) {
      let images = wanted.get(node);
      if (images === undefined) wanted.set(node, (images = new Map<string, ImageTarget[]>()));
      const list = images.get(t.image);
      if (list === undefined) images.set(t.image, [t]);
      else list.push(t);
    }
  }

  // Entries are shared between nodes wanting the same image for the same targets.
  const entryMemo = new Map<string, NodeImage>();
  const entryFor = (list: readonly ImageTarget[]): NodeImage => {
    const memoKey = list.length === 1 ? (list[0]?.key ?? '') : list.map((t) => t.key).join('\n');
    let entry = entryMemo.get(memoKey);
    if (entry === undefined) entryMemo.set(memoKey, (entry = mergeEntry(list)));
    return entry;
  };

  // Kept entries (already released) count against the budget while unfinished; new ones are candidates.
  let unfinished = 0;
  const kept = new Map<string, Map<string, NodeImage>>();
  const candidates: { node: string; image: string }[] = [];
  for (const [node, images] of wanted) {
    const current = input.current.get(node);
    const keep = new Map<string, NodeImage>();
    for (const [image, list] of images) {
      const round = current?.released.get(image);
      if (round === undefined) {
        candidates.push({ node, image });
        continue;
      }
      const base = entryFor(list);
      keep.set(image, round === 0 ? base : { ...base, round });
      if (!isFinished(current?.status.get(image), round)) unfinished++;
    }
    kept.set(node, keep);
  }

  // Release image by image (all nodes of one image before the next), so one rollout finishes first.
  candidates.sort((a, b) => compareStrings(a.image, b.image) || compareStrings(a.node, b.node));
  let available = input.maxConcurrentPulls === 0 ? Number.POSITIVE_INFINITY : Math.max(0, input.maxConcurrentPulls - unfinished);
  let held = 0;
  for (const c of candidates) {
    const keep = kept.get(c.node);
    const list = wanted.get(c.node)?.get(c.image);
    if (keep === undefined || list === undefined) continue;
    if (available <= 0 || keep.size >= MAX_NODE_IMAGES) {
      held++;
      continue;
    }
    keep.set(c.image, entryFor(list));
    available--;
    unfinished++;
  }

  const nodeImageSets = new Map<string, PlannedNodeImageSet>();
  const names = new Set([...kept.keys(), ...input.current.keys()]);
  for (const name of [...names].sort(compareStrings)) {
    const info = nodeByName.get(name);
    // A NodeImageSet whose Node is gone is left to the garbage collector.
    if (info === undefined) continue;
    const entries = [...(kept.get(name)?.values() ?? [])].sort((a, b) => compareStrings(a.image, b.image));
    // Nothing released yet and nothing to empty: no write.
    if (entries.length === 0 && !input.current.has(name)) continue;
    const spec: NodeImageSetSpec = { maxConcurrentPulls: input.maxPullsPerNode, images: entries };
    const released = new Map(entries.map((e) => [e.image, e.round]));
    nodeImageSets.set(name, { node: name, nodeUid: info.uid, spec, digest: nodeImageSetDigest(info.uid, spec), released });
  }
  return { nodeImageSets, targetNodes, unfinished, held };
}
