// From the images wanted (PrePullImages) and the nodes to each node's NodeImageSet spec, releasing new
// (node, image) pairs only within the cluster-wide pull budget. The budget is counted from the
// NodeImageSets themselves (released entries the agent has not finished), so a restarted or newly elected
// controller continues exactly where the last one stopped. A refresh raises an entry's round (see
// refresh.ts); the raise of a finished pair is a new pull and waits for the budget like one. So is the re-pull
// of an image the runtime lost (an agent with --repull-after-gc=wait reports it Pending/RemovedFromRuntime at
// its round and waits): it does not count while it waits, and is released as round+1 when the budget allows.
// Only nodes whose agent works hold the budget (node-image-set-view.ts agentState): a node without an agent
// (Windows, virtual nodes) or with a silent or disk-paused one keeps its entries but neither counts nor gets
// new ones. Pure: no I/O, no clock (the time comes in PlanInput.agents).
import {
  durationMilliseconds,
  MAX_IMAGE_SOURCES,
  MAX_NODE_IMAGES,
  MAX_NODE_REMOVALS,
  type LabelSelector,
  type NodeImage,
  type NodeImageSetSpec,
  type Retry,
} from '../../api/v1alpha1/index.ts';
import { byImage, compareStrings, entriesDigest, removalsDigest, specDigestOf, type NodeRemoval } from './node-image-set-digest.ts';
import { compileLabelSelector, compiledSelectorMatches, type CompiledLabelSelector } from './label-selector.ts';
import { agentStaleAtMs, agentState, awaitsRepull, isFinished, type NodeImageSetView } from './node-image-set-view.ts';
import { nodeAcceptsPulls, placementAllows, targetingAllows, type NodeTargeting, type NodeView, type PodPlacement } from './node-eligibility.ts';

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
}

export interface PlanInput {
  readonly targets: readonly ImageTarget[];
  /** Node objects (a projection with name, uid, labels, taints, unschedulable and the Ready condition is enough). */
  readonly nodes: Iterable<NodeView>;
  readonly current: ReadonlyMap<string, NodeImageSetView>;
  /** Cluster-wide released-but-unfinished pairs (--max-concurrent-pulls); 0 = unlimited. */
  readonly clusterPullBudget: number;
  /** Pulls each agent runs at once (--max-pulls-per-node); written as every NodeImageSet's spec.maxConcurrentPulls. */
  readonly maxPullsPerNode: number;
  /** Remembered from the last pass (see PlanMemo); optional. */
  readonly memo?: PlanMemo;
  /**
   * Nodes carrying the warm-up taint. Each one that accepts pulls gets a NodeImageSet even with nothing to
   * pull, so the barrier sees it planned and lifts it at once instead of at its timeout.
   */
  readonly warming?: ReadonlySet<string>;
  /**
   * The time and the heartbeat age after which a node's agent counts as absent (see agentState). Undefined:
   * every node's agent counts as alive.
   */
  readonly agents?: { readonly nowMs: number; readonly staleMs: number };
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
  /** Pairs wanted on nodes whose agent is absent (see agentState): not released, not counted. */
  readonly withoutAgent: number;
  /** When a node holding budget would see its agent turn absent (ms); undefined without `agents`. */
  readonly dueAtMs: number | undefined;
}

interface NodeInfo {
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

/** What a node's cached NodeImageSet was found to hold, against the entries of its class. */
interface SettledNode {
  readonly view: NodeImageSetView;
  readonly entriesDigest: string;
  /** The view released exactly the class's entries, in round 0. */
  readonly asClass: boolean;
  /** Of those, the ones not finished. */
  readonly unfinished: number;
}

/**
 * What planning remembers between passes, so a pass in a quiet cluster does little per node:
 * - which nodes each distinct (node filter, placement, targeting) selects, valid while the Ready nodes are the same
 *   objects (the informer keeps an unchanged Node's projection);
 * - per node, how its cached NodeImageSet (the same object) compares with the same class entries.
 * Only a cache: a plan is the same with or without it.
 */
export class PlanMemo {
  ready: readonly NodeView[] = [];
  groups = new Map<string, readonly string[]>();
  settled = new Map<string, SettledNode>();
}

/** Targets that select the same nodes, in key order. */
interface TargetGroup {
  readonly names: readonly string[];
  readonly targets: ImageTarget[];
}

function sameObjects(a: readonly object[], b: readonly object[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Groups targets by the nodes they select, evaluating each distinct (node filter, placement, targeting) once. */
function eligibleGroups(targets: readonly ImageTarget[], ready: readonly NodeInfo[], memo: PlanMemo | undefined): TargetGroup[] {
  const readyNodes = ready.map((n) => n.node);
  const known = memo !== undefined && sameObjects(memo.ready, readyNodes) ? memo.groups : new Map<string, readonly string[]>();
  const used = new Map<string, readonly string[]>();
  const groups = new Map<readonly string[], TargetGroup>();
  for (const t of targets) {
    const groupKey = JSON.stringify([
      t.nodeNames === undefined ? null : [...t.nodeNames].sort(), t.nodeSelector ?? null, t.placement?.key ?? null, t.targeting?.key ?? null,
    ]);
    let names = used.get(groupKey) ?? known.get(groupKey);
    if (names === undefined) {
      const filter = nodeFilter(t);
      const { placement, targeting } = t;
      // Both apply when both exist: the pods' placement and the PrePullImage's own targeting.
      names = ready
        .filter((n) => filterAllows(filter, n) && (placement === undefined || placementAllows(placement, n.node).eligible) &&
          (targeting === undefined || targetingAllows(targeting, n.node).eligible))
        .map((n) => n.name);
    }
    used.set(groupKey, names);
    // Different keys may select the same nodes; an empty selection is one group too (it wants nothing).
    let group = groups.get(names);
    if (group === undefined) groups.set(names, (group = { names, targets: [] }));
    group.targets.push(t);
  }
  if (memo !== undefined) {
    memo.ready = readyNodes;
    memo.groups = used;
  }
  return [...groups.values()];
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
  let round = first.round;
  const secrets = new Set<string>();
  for (const t of targets) {
    if (t !== first) {
      retry = { maxAttempts: Math.max(retry.maxAttempts, t.retry.maxAttempts), backoffSeconds: Math.min(retry.backoffSeconds, t.retry.backoffSeconds) };
      timeout = longerTimeout(timeout, t.timeout);
      imageDigest ??= t.imageDigest;
      round = Math.max(round, t.round);
    }
    for (const s of t.pullSecrets) secrets.add(s);
  }
  const entry: NodeImage = {
    image: first.image,
    pullSecrets: [...secrets].sort(compareStrings).slice(0, MAX_ENTRY_PULL_SECRETS),
    timeout,
    retry,
    round,
    sources: targets.slice(0, MAX_IMAGE_SOURCES).map((t) => ({ namespace: t.namespace, name: t.name })),
  };
  if (imageDigest !== undefined) entry.imageDigest = imageDigest;
  // Only when set: the entries digest then stays as it was, and no existing NodeImageSet is rewritten.
  if (targets.some((t) => t.gatesNodes === true)) entry.gatesNode = true;
  return entry;
}

/**
 * Nodes in the same groups want the same images from the same targets: one class each, planned once.
 * In a steady cluster every node of a class has exactly the class's entries released in their wanted
 * rounds, and then shares the class's spec, released map and entries digest instead of building its own.
 */
interface NodeClass {
  /** image → entry, in the round its sources want. */
  readonly wanted: ReadonlyMap<string, NodeImage>;
  /** The wanted entries sorted by image. */
  readonly entries: readonly NodeImage[];
  readonly released: ReadonlyMap<string, number>;
  readonly entriesDigest: string;
  /** Wanted entries that gate the node's warm-up, released or held back by the budget (spec.gatingImages). */
  readonly gating: number;
}

/** Whether `view` has exactly the class's images released, each in its wanted round, and how many are unfinished. */
function settle(view: NodeImageSetView, c: NodeClass): SettledNode {
  let asClass = view.released.size === c.wanted.size;
  let unfinished = 0;
  if (asClass) {
    for (const [image, entry] of c.wanted) {
      const status = view.status.get(image);
      // A pair waiting for its re-pull needs a round of its own: not the class's spec any more.
      if (view.released.get(image) !== entry.round || awaitsRepull(status, entry.round)) {
        asClass = false;
        break;
      }
      if (!isFinished(status, entry.round)) unfinished++;
    }
  }
  return { view, entriesDigest: c.entriesDigest, asClass, unfinished: asClass ? unfinished : 0 };
}

/**
 * spec.removals per node from the purging targets: every node the target selects, Ready or not (an agent
 * that comes back answers then), each image once with the targets behind it.
 */
function planRemovals(purging: readonly ImageTarget[], nodes: readonly NodeInfo[], targetNodes: Map<string, readonly string[]>): Map<string, NodeRemoval[]> {
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

export function planNodeImageSets(input: PlanInput): NodePlan {
  const nodes: NodeInfo[] = [];
  for (const node of input.nodes) {
    const name = node.metadata?.name ?? '';
    if (name !== '') nodes.push({ node, name, uid: node.metadata?.uid ?? '' });
  }
  nodes.sort((a, b) => compareStrings(a.name, b.name));
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const ready = nodes.filter((n) => nodeAcceptsPulls(n.node).eligible);
  const sorted = [...input.targets].sort((a, b) => compareStrings(a.key, b.key));
  const targets = sorted.filter((t) => t.purge !== true);
  const groups = eligibleGroups(targets, ready, input.memo);
  const targetNodes = new Map<string, readonly string[]>();
  for (const g of groups) for (const t of g.targets) targetNodes.set(t.key, g.names);
  const removalsOn = planRemovals(sorted.filter((t) => t.purge === true), nodes, targetNodes);

  // node → the groups it is in, in group order.
  const memberOf = new Map<string, number[]>();
  groups.forEach((g, i) => {
    if (g.targets.length === 0) return;
    for (const n of g.names) {
      const list = memberOf.get(n);
      if (list === undefined) memberOf.set(n, [i]);
      else list.push(i);
    }
  });

  // Entries are shared between nodes wanting the same image for the same targets.
  const entryMemo = new Map<string, NodeImage>();
  const entryFor = (list: readonly ImageTarget[]): NodeImage => {
    const memoKey = list.length === 1 ? (list[0]?.key ?? '') : list.map((t) => t.key).join('\n');
    let entry = entryMemo.get(memoKey);
    if (entry === undefined) entryMemo.set(memoKey, (entry = mergeEntry(list)));
    return entry;
  };
  const classes = new Map<string, NodeClass>();
  const classOf = (ids: readonly number[]): NodeClass => {
    const classKey = ids.join(',');
    let c = classes.get(classKey);
    if (c === undefined) {
      const members = ids.flatMap((i) => groups[i]?.targets ?? []).sort((a, b) => compareStrings(a.key, b.key));
      const targetsByImage = new Map<string, ImageTarget[]>();
      for (const t of members) {
        const list = targetsByImage.get(t.image);
        if (list === undefined) targetsByImage.set(t.image, [t]);
        else list.push(t);
      }
      const wanted = new Map([...targetsByImage].map(([image, list]) => [image, entryFor(list)]));
      const entries = [...wanted.values()].sort(byImage);
      const gating = Math.min(MAX_NODE_IMAGES, entries.filter((e) => e.gatesNode === true).length);
      c = { wanted, entries, released: new Map(entries.map((e) => [e.image, e.round])), entriesDigest: entriesDigest(entries, true), gating };
      classes.set(classKey, c);
    }
    return c;
  };

  // Kept entries (already released) count against the budget while unfinished; new ones are candidates.
  let unfinished = 0;
  const kept = new Map<string, Map<string, NodeImage> | NodeClass>();
  const wantedOn = new Map<string, NodeClass>();
  // `raise`: a refresh of a finished pair (or the re-pull of a lost one), kept in its old round until the
  // budget releases it in `round` (the wanted entry's own round when undefined).
  const candidates: { node: string; image: string; raise: boolean; round?: number }[] = [];
  const settled = new Map<string, SettledNode>();
  // Pairs on a node without a working agent neither count nor get released (finding 1 of the review).
  let withoutAgent = 0;
  let dueAtMs: number | undefined;
  const agents = input.agents;
  for (const [node, ids] of memberOf) {
    const c = classOf(ids);
    wantedOn.set(node, c);
    const current = input.current.get(node);
    const absent = agents !== undefined && agentState(current, agents.nowMs, agents.staleMs) === 'absent';
    const countedBefore = unfinished;
    const pending = (): void => {
      // A node that holds budget is planned again when its agent would turn absent, event or not.
      const staleAt = agents !== undefined && unfinished > countedBefore ? agentStaleAtMs(current, agents.staleMs) : undefined;
      if (staleAt !== undefined) dueAtMs = Math.min(dueAtMs ?? staleAt, staleAt);
    };
    if (current !== undefined) {
      const known = input.memo?.settled.get(node);
      const s = known?.view === current && known.entriesDigest === c.entriesDigest ? known : settle(current, c);
      settled.set(node, s);
      if (s.asClass) {
        if (!absent) unfinished += s.unfinished;
        pending();
        kept.set(node, c);
        continue;
      }
    }
    const keep = new Map<string, NodeImage>();
    for (const [image, base] of c.wanted) {
      const round = current?.released.get(image);
      if (round === undefined) {
        if (absent) withoutAgent++;
        else candidates.push({ node, image, raise: false });
        continue;
      }
      const status = current?.status.get(image);
      if (base.round > round && isFinished(status, round)) {
        keep.set(image, { ...base, round });
        if (absent) withoutAgent++;
        else candidates.push({ node, image, raise: true });
        continue;
      }
      if (awaitsRepull(status, round)) {
        keep.set(image, round === base.round ? base : { ...base, round });
        if (absent) withoutAgent++;
        else candidates.push({ node, image, raise: true, round: Math.max(base.round, round + 1) });
        continue;
      }
      // Rounds never go down (the CRD forbids it); an unfinished pair is raised at once, it already counts.
      const next = Math.max(round, base.round);
      keep.set(image, next === base.round ? base : { ...base, round: next });
      if (!isFinished(status, next) && !absent) unfinished++;
    }
    pending();
    kept.set(node, keep);
  }

  // Release image by image (all nodes of one image before the next), so one rollout finishes first.
  candidates.sort((a, b) => compareStrings(a.image, b.image) || compareStrings(a.node, b.node));
  let available = input.clusterPullBudget === 0 ? Number.POSITIVE_INFINITY : Math.max(0, input.clusterPullBudget - unfinished);
  let held = 0;
  for (const c of candidates) {
    const keep = kept.get(c.node);
    const entry = wantedOn.get(c.node)?.wanted.get(c.image);
    // Only nodes with candidates have a map of their own.
    if (!(keep instanceof Map) || entry === undefined) continue;
    if (available <= 0 || (!c.raise && keep.size >= MAX_NODE_IMAGES)) {
      held++;
      continue;
    }
    keep.set(c.image, c.round === undefined || c.round === entry.round ? entry : { ...entry, round: c.round });
    available--;
    unfinished++;
  }

  const nodeImageSets = new Map<string, PlannedNodeImageSet>();
  const warming = new Set(ready.filter((n) => input.warming?.has(n.name) === true).map((n) => n.name));
  const names = new Set([...kept.keys(), ...input.current.keys(), ...removalsOn.keys(), ...warming]);
  const perNodeLimit = input.maxPullsPerNode;
  for (const name of [...names].sort(compareStrings)) {
    const info = nodeByName.get(name);
    // A NodeImageSet whose Node is gone is left to the garbage collector.
    if (info === undefined) continue;
    const k = kept.get(name);
    const removals = removalsOn.get(name) ?? [];
    const removed = removalsDigest(removals);
    // Counted from what the node wants, held entries included: a node whose gating pulls all wait for the
    // budget must not look as if it had nothing to wait for.
    const gating = wantedOn.get(name)?.gating ?? 0;
    const gatingSpec = gating > 0 ? { gatingImages: gating } : {};
    if (k !== undefined && !(k instanceof Map)) {
      const spec: NodeImageSetSpec = { maxConcurrentPulls: perNodeLimit, images: k.entries as NodeImage[], removals, ...gatingSpec };
      nodeImageSets.set(name, { node: name, nodeUid: info.uid, spec, digest: specDigestOf(info.uid, perNodeLimit, k.entriesDigest, removed, gating), released: k.released });
      continue;
    }
    const entries = [...(k?.values() ?? [])].sort(byImage);
    // Nothing released yet and nothing to empty: no write (unless the node is warming, see PlanInput.warming).
    if (entries.length === 0 && removals.length === 0 && gating === 0 && !input.current.has(name) && !warming.has(name)) continue;
    const spec: NodeImageSetSpec = { maxConcurrentPulls: perNodeLimit, images: entries, removals, ...gatingSpec };
    const released = new Map(entries.map((e) => [e.image, e.round]));
    nodeImageSets.set(name, {
      node: name, nodeUid: info.uid, spec, digest: specDigestOf(info.uid, perNodeLimit, entriesDigest(entries, true), removed, gating), released,
    });
  }
  if (input.memo !== undefined) input.memo.settled = settled;
  return { nodeImageSets, targetNodes, unfinished, held, withoutAgent, dueAtMs };
}
