// From the images wanted (PrePullImages) and the nodes to each node's NodeImageSet spec, releasing new
// (node, image) pairs only within the cluster-wide pull budget. The budget is counted from the
// NodeImageSets themselves (released entries the agent has not finished), so a restarted or newly elected
// controller continues exactly where the last one stopped. A refresh raises an entry's round (see
// refresh.ts); the raise of a finished pair is a new pull and waits for the budget like one. So is the re-pull
// of an image the runtime lost (an agent with --repull-after-gc=wait reports it Pending/RemovedFromRuntime at
// its round and waits): it does not count while it waits, and is released as round+1 when the budget allows.
// Only nodes whose agent works hold the budget (node-image-set-view.ts agentState): a node without an agent
// (Windows, virtual nodes) or with a silent or disk-paused one keeps its entries but neither counts nor gets
// new ones. Nor does a pair whose last attempt failed while the agent waits out its retry back-off
// (node-image-set-view.ts inBackoff): when the retry starts it counts again, so the budget can be exceeded by
// the pairs whose back-off ends together, and nothing new is released until it is back under (finding 6,
// docs/decisions/0017). Pure: no I/O, no clock (the time comes in PlanInput.agents).
import { MAX_NODE_IMAGES, type NodeImage, type NodeImageSetSpec } from '../../api/v1alpha1/index.ts';
import { byImage, compareStrings, entriesDigest, removalsDigest, specDigestOf, type NodeRemoval } from './node-image-set-digest.ts';
import { agentStaleAtMs, agentState, awaitsRepull, holdsBudget, isFinished, type NodeImageSetView } from './node-image-set-view.ts';
import { mergeEntry, refuseConflictingPins, type SourceRefusal } from './entry-merge.ts';
import { capImagesPerNamespace, capNodeImagesPerNamespace, namespacePullCap, type NamespaceLimits } from './namespace-limits.ts';
import { namespaceOf, releaseFairly, type Candidate } from './fair-release.ts';
import { nodeAcceptsPulls, type NodeView } from './node-eligibility.ts';
import { eligibleGroups, planRemovals, type ImageTarget, type NodeInfo, type TargetGroup } from './target-groups.ts';
import { fitsNodeImageSet } from './size-bound.ts';
import { PlanMemo, type ClassShaped, type MergedEntry, type NodeClass, type NodeList, type SettledNode } from './plan-memo.ts';
import { sameItems } from '../../lib/same-items.ts';

export type { ImageTarget } from './target-groups.ts';

export { MAX_ENTRY_PULL_SECRETS, type SourceRefusal } from './entry-merge.ts';
export { PlanMemo } from './plan-memo.ts';

export interface PlanInput {
  readonly targets: readonly ImageTarget[];
  /** Node objects (a projection with name, uid, labels, taints, unschedulable and the Ready condition is enough). */
  readonly nodes: Iterable<NodeView>;
  readonly current: ReadonlyMap<string, NodeImageSetView>;
  /** Cluster-wide released-but-unfinished pairs (--max-concurrent-pulls); 0 = unlimited. */
  readonly clusterPullBudget: number;
  /** Pulls each agent runs at once (--max-pulls-per-node); written as every NodeImageSet's spec.maxConcurrentPulls. */
  readonly maxPullsPerNode: number;
  /** --max-images-per-namespace: distinct images one namespace's PrePullImages may want; 0 or absent = no cap. */
  readonly maxImagesPerNamespace?: number;
  /** A namespace the cap does not apply to (kwarm's own: the policies' static images). */
  readonly uncappedNamespace?: string;
  /** --namespace-pull-share and --namespace-node-images-per-node. */
  readonly namespaceLimits?: NamespaceLimits;
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
  /**
   * Images a purge asks to remove here that another target wants on this node but the budget has not released
   * yet: the removal is left out (the agent would not see them as Wanted), and the purge counts them Kept (Wanted).
   */
  readonly wantedAgain?: readonly string[];
}

export interface NodePlan {
  /** Nodes that have images, or already have a NodeImageSet (which may become empty). */
  readonly nodeImageSets: ReadonlyMap<string, PlannedNodeImageSet>;
  /** Target key → eligible node names, sorted. */
  readonly targetNodes: ReadonlyMap<string, readonly string[]>;
  /**
   * Pairs released and holding the budget once this plan is written; never above the budget unless it already was
   * (pairs back from their retry back-off count again).
   */
  readonly unfinished: number;
  /** Pairs wanted but waiting for the budget (or for room in a full NodeImageSet). */
  readonly held: number;
  /** Pairs wanted on nodes whose agent is absent (see agentState): not released, not counted. */
  readonly withoutAgent: number;
  /** When a node holding budget would see its agent turn absent (ms); undefined without `agents`. */
  readonly dueAtMs: number | undefined;
  /** PrePullImages (by key) not planned, or not honoured in full, and why (entry-merge.ts). */
  readonly refused: ReadonlyMap<string, SourceRefusal>;
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
      if (holdsBudget(status, entry.round)) unfinished++;
    }
  }
  return { view, entriesDigest: c.entriesDigest, asClass, unfinished: asClass ? unfinished : 0 };
}


// The taints the node lifecycle controller and `kubectl cordon` put on a node that is NotReady or cordoned.
const STATE_TAINTS = new Set(['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable', 'node.kubernetes.io/unschedulable']);

/**
 * Finding 12 of the review: a NotReady or cordoned node that has a NodeImageSet keeps the entries it was given
 * that are still wanted there (as if the node were Ready and uncordoned), each in its released round. So a
 * kubelet blip or a drain neither cancels the agent's pulls nor drops the "Wanted" protection purges look at;
 * nothing new is released there, and no round is raised, until the node is back.
 */
function frozenEntries(
  nodes: readonly NodeInfo[], ready: readonly NodeInfo[], targets: readonly ImageTarget[], input: PlanInput,
  entryFor: (list: readonly ImageTarget[]) => NodeImage,
): Map<string, Map<string, NodeImage>> {
  const readyNames = new Set(ready.map((n) => n.name));
  // Each one seen as the Ready, uncordoned node it was, without the taints that say it is not.
  const frozen = nodes.filter((n) => !readyNames.has(n.name) && (input.current.get(n.name)?.released.size ?? 0) > 0).map((n) => {
    const taints = (n.node.spec?.taints ?? []).filter((t) => !STATE_TAINTS.has(t.key));
    const spec = { ...n.node.spec, unschedulable: false, taints };
    return { ...n, node: { ...n.node, spec, status: { conditions: [{ type: 'Ready', status: 'True' }] } } };
  });
  const out = new Map<string, Map<string, NodeImage>>();
  if (frozen.length === 0) return out;
  const byNode = new Map<string, Map<string, ImageTarget[]>>();
  for (const g of eligibleGroups(targets, frozen, undefined)) {
    for (const name of g.names) {
      let images = byNode.get(name);
      if (images === undefined) byNode.set(name, (images = new Map<string, ImageTarget[]>()));
      for (const t of g.targets) {
        const list = images.get(t.image);
        if (list === undefined) images.set(t.image, [t]);
        else list.push(t);
      }
    }
  }
  for (const [name, images] of byNode) {
    const released = input.current.get(name)?.released;
    const keep = new Map<string, NodeImage>();
    for (const [image, list] of images) {
      const round = released?.get(image);
      if (round === undefined) continue;
      const e = entryFor(list.sort((a, b) => compareStrings(a.key, b.key)));
      keep.set(image, e.round === round ? e : { ...e, round });
    }
    if (keep.size > 0) out.set(name, keep);
  }
  return out;
}

/** What planNodeImageSets decided, as NodeImageSet specs: kept and released entries, removals, gating. */
function nodeImageSetsOf(a: {
  readonly input: PlanInput;
  readonly nodes: readonly NodeInfo[];
  readonly ready: readonly NodeInfo[];
  readonly kept: ReadonlyMap<string, Map<string, NodeImage> | NodeClass>;
  readonly removalsOn: ReadonlyMap<string, NodeRemoval[]>;
  readonly wantedOn: ReadonlyMap<string, NodeClass>;
}): Map<string, PlannedNodeImageSet> {
  const { input, nodes, ready, kept, removalsOn, wantedOn } = a;
  const nodeImageSets = new Map<string, PlannedNodeImageSet>();
  const warming = new Set(ready.filter((n) => input.warming?.has(n.name) === true).map((n) => n.name));
  const perNodeLimit = input.maxPullsPerNode;
  const memo = input.memo;
  const classShaped = new Map<string, ClassShaped<PlannedNodeImageSet>>();
  // By node, in name order: a NodeImageSet whose Node is gone is left to the garbage collector.
  for (const info of nodes) {
    const name = info.name;
    if (!kept.has(name) && !input.current.has(name) && !removalsOn.has(name) && !warming.has(name)) continue;
    const k = kept.get(name);
    const asked = removalsOn.get(name) ?? [];
    // Finding 14: a removal of an image another target wants here waits for nothing; held by the budget, it is not
    // in spec.images yet, so the removal is cancelled rather than let the agent remove what is about to be pulled.
    const wanted = wantedOn.get(name)?.wanted;
    const heldBack = k instanceof Map && wanted !== undefined ? asked.filter((r) => wanted.has(r.image) && !k.has(r.image)).map((r) => r.image) : [];
    const removals = heldBack.length === 0 ? asked : asked.filter((r) => !heldBack.includes(r.image));
    const wantedAgain = heldBack.length > 0 ? { wantedAgain: heldBack } : {};
    const removed = removalsDigest(removals);
    // Counted from what the node wants, held entries included: a node whose gating pulls all wait for the
    // budget must not look as if it had nothing to wait for.
    const gating = wantedOn.get(name)?.gating ?? 0;
    const gatingSpec = gating > 0 ? { gatingImages: gating } : {};
    if (k !== undefined && !(k instanceof Map)) {
      // Without removals, a node's spec is its class's: the same as last pass while the class and node are.
      const before = removals.length === 0 ? memo?.classShaped.get(name) as ClassShaped<PlannedNodeImageSet> | undefined : undefined;
      if (before !== undefined && before.entries === k.entries && before.uid === info.uid && before.gating === gating && before.perNodeLimit === perNodeLimit) {
        nodeImageSets.set(name, before.planned);
        classShaped.set(name, before);
        continue;
      }
      const spec: NodeImageSetSpec = { maxConcurrentPulls: perNodeLimit, images: k.entries as NodeImage[], removals, ...gatingSpec };
      const planned = { node: name, nodeUid: info.uid, spec, digest: specDigestOf(info.uid, perNodeLimit, k.entriesDigest, removed, gating), released: k.released };
      nodeImageSets.set(name, planned);
      if (removals.length === 0) classShaped.set(name, { planned, uid: info.uid, entries: k.entries, gating, perNodeLimit });
      continue;
    }
    const entries = [...(k?.values() ?? [])].sort(byImage);
    // Nothing released yet and nothing to empty: no write (unless the node is warming, see PlanInput.warming).
    if (entries.length === 0 && removals.length === 0 && heldBack.length === 0 && gating === 0 && !input.current.has(name) && !warming.has(name)) continue;
    const spec: NodeImageSetSpec = { maxConcurrentPulls: perNodeLimit, images: entries, removals, ...gatingSpec };
    const released = new Map(entries.map((e) => [e.image, e.round]));
    nodeImageSets.set(name, {
      node: name, nodeUid: info.uid, spec, digest: specDigestOf(info.uid, perNodeLimit, entriesDigest(entries, true), removed, gating), released, ...wantedAgain,
    });
  }
  if (memo !== undefined) memo.classShaped = classShaped;
  return nodeImageSets;
}

/**
 * Which targets want which nodes, after the per-namespace caps and the refusal of conflicting pins; the removals
 * purges ask; and, per node, the groups (targets wanting the same nodes) it is in, in group order.
 */
function selectTargets(input: PlanInput, nodes: readonly NodeInfo[], ready: readonly NodeInfo[]): {
  refused: Map<string, SourceRefusal>;
  targets: ImageTarget[];
  groups: TargetGroup[];
  targetNodes: Map<string, readonly string[]>;
  removalsOn: Map<string, NodeRemoval[]>;
  memberOf: Map<string, number[]>;
} {
  const pins = refuseConflictingPins(input.targets);
  const capped = capImagesPerNamespace(pins.kept, input.maxImagesPerNamespace ?? 0, input.uncappedNamespace);
  const refused = new Map<string, SourceRefusal>([...pins.refused, ...capped.refused]);
  const sorted = capped.kept.sort((a, b) => compareStrings(a.key, b.key));
  const wanting = sorted.filter((t) => t.purge !== true);
  const selected = eligibleGroups(wanting, ready, input.memo);
  const overNodes = capNodeImagesPerNamespace(selected, input.namespaceLimits?.nodeImagesPerNode ?? 0, ready.length, input.uncappedNamespace);
  for (const [key, r] of overNodes) refused.set(key, r);
  const targets = overNodes.size === 0 ? wanting : wanting.filter((t) => !overNodes.has(t.key));
  // A group left without targets wants nothing (memberOf below skips it).
  const groups = overNodes.size === 0 ? selected : selected.map((g) => ({ ...g, targets: g.targets.filter((t) => !overNodes.has(t.key)) }));
  const targetNodes = new Map<string, readonly string[]>();
  for (const g of groups) for (const t of g.targets) targetNodes.set(t.key, g.names);
  const removalsOn = planRemovals(sorted.filter((t) => t.purge === true), nodes, targetNodes);

  const memberOf = new Map<string, number[]>();
  groups.forEach((g, i) => {
    if (g.targets.length === 0) return;
    for (const n of g.names) {
      const list = memberOf.get(n);
      if (list === undefined) memberOf.set(n, [i]);
      else list.push(i);
    }
  });

  return { refused, targets, groups, targetNodes, removalsOn, memberOf };
}

/** The nodes by name, and the Ready ones; kept from the last pass while the Node objects are the same. */
function nodesOf(input: PlanInput): NodeList {
  const given = [...input.nodes];
  const known = input.memo?.nodes;
  if (known !== undefined && sameItems(known.given, given)) return known;
  const nodes: NodeInfo[] = [];
  for (const node of given) {
    const name = node.metadata?.name ?? '';
    if (name !== '') nodes.push({ node, name, uid: node.metadata?.uid ?? '' });
  }
  nodes.sort((a, b) => compareStrings(a.name, b.name));
  const list = { given, nodes, ready: nodes.filter((n) => nodeAcceptsPulls(n.node).eligible) };
  if (input.memo !== undefined) input.memo.nodes = list;
  return list;
}

/**
 * The pass's merged entries and node classes. Entries are shared between nodes wanting the same image for the
 * same targets, and kept from the last pass while the targets are the same objects (plan-memo.ts); a merge
 * that leaves a digest unchecked refuses the pinning PrePullImage in `refused` (DigestConflict).
 */
function entryClasses(groups: readonly TargetGroup[], refused: Map<string, SourceRefusal>, memo: PlanMemo | undefined): {
  entryFor: (list: readonly ImageTarget[]) => NodeImage;
  classOf: (ids: readonly number[]) => NodeClass;
  entries: Map<string, MergedEntry>;
  classesByTargets: Map<string, NodeClass>;
} {
  const entries = new Map<string, MergedEntry>();
  const use = (memoKey: string, merged: MergedEntry): void => {
    if (entries.has(memoKey)) return;
    entries.set(memoKey, merged);
    for (const u of merged.unchecked) {
      if (refused.has(u.key)) continue;
      refused.set(u.key, {
        reason: 'DigestConflict',
        message: `${merged.entry.image}: PrePullImage ${u.unpinned} wants this image without a digest on nodes this one targets, so its entry there carries no pin and this one's digest is not checked there`,
        excluded: false,
      });
    }
  };
  const mergedFor = (list: readonly ImageTarget[]): readonly [string, MergedEntry] => {
    const memoKey = memo !== undefined ? memo.targetKey(list) : list.map((t) => t.key).join('\n');
    const merged = entries.get(memoKey) ?? memo?.entries.get(memoKey) ?? mergeEntry(list);
    use(memoKey, merged);
    return [memoKey, merged];
  };
  const entryFor = (list: readonly ImageTarget[]): NodeImage => mergedFor(list)[1].entry;
  const classes = new Map<string, NodeClass>();
  const classesByTargets = new Map<string, NodeClass>();
  const classOf = (ids: readonly number[]): NodeClass => {
    const classKey = ids.join(',');
    let c = classes.get(classKey);
    if (c === undefined) {
      const members = ids.flatMap((i) => groups[i]?.targets ?? []).sort((a, b) => compareStrings(a.key, b.key));
      const targetsKey = memo?.targetKey(members);
      const known = targetsKey === undefined ? undefined : memo?.classes.get(targetsKey);
      if (known !== undefined) {
        for (const [memoKey, merged] of known.merged) use(memoKey, merged);
        c = known;
      } else {
        const targetsByImage = new Map<string, ImageTarget[]>();
        for (const t of members) {
          const list = targetsByImage.get(t.image);
          if (list === undefined) targetsByImage.set(t.image, [t]);
          else list.push(t);
        }
        const merged = [...targetsByImage.values()].map(mergedFor);
        const wanted = new Map(merged.map(([, m]) => [m.entry.image, m.entry]));
        const sorted = [...wanted.values()].sort(byImage);
        const gating = Math.min(MAX_NODE_IMAGES, sorted.filter((e) => e.gatesNode === true).length);
        c = { wanted, entries: sorted, released: new Map(sorted.map((e) => [e.image, e.round])), entriesDigest: entriesDigest(sorted, true), gating, merged };
      }
      classes.set(classKey, c);
      if (targetsKey !== undefined) classesByTargets.set(targetsKey, c);
    }
    return c;
  };

  return { entryFor, classOf, entries, classesByTargets };
}

export function planNodeImageSets(input: PlanInput): NodePlan {
  const { nodes, ready } = nodesOf(input);
  const { refused, targets, groups, targetNodes, removalsOn, memberOf } = selectTargets(input, nodes, ready);

  const memo = input.memo;
  const { entryFor, classOf, entries, classesByTargets } = entryClasses(groups, refused, memo);

  // Kept entries (already released) count against the budget while unfinished; new ones are candidates.
  let unfinished = 0;
  // Unfinished pairs per namespace (namespaceOf), for the fair release below.
  const heldBy = new Map<string, number>();
  const holds = (entry: NodeImage): void => {
    const ns = namespaceOf(entry);
    heldBy.set(ns, (heldBy.get(ns) ?? 0) + 1);
  };
  const kept = new Map<string, Map<string, NodeImage> | NodeClass>();
  const wantedOn = new Map<string, NodeClass>();
  // `raise`: a refresh of a finished pair (or the re-pull of a lost one), kept in its old round until the
  // budget releases it in `round` (the wanted entry's own round when undefined).
  const candidates: Candidate[] = [];
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
        // Only with a budget does the share matter; then unfinished pairs are few, so this loop is short.
        if (!absent && s.unfinished > 0 && input.clusterPullBudget > 0) {
          for (const [image, entry] of c.wanted) if (holdsBudget(current.status.get(image), entry.round)) holds(entry);
        }
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
      if (holdsBudget(status, next) && !absent) {
        unfinished++;
        holds(base);
      }
    }
    pending();
    kept.set(node, keep);
  }

  for (const [node, keep] of frozenEntries(nodes, ready, targets, input, entryFor)) {
    const current = input.current.get(node);
    const absent = agents !== undefined && agentState(current, agents.nowMs, agents.staleMs) === 'absent';
    for (const [image, e] of keep) {
      if (!absent && holdsBudget(current?.status.get(image), e.round)) {
        unfinished++;
        holds(e);
      }
    }
    kept.set(node, keep);
  }

  const release = releaseFairly({
    candidates, heldBy, unfinished, clusterPullBudget: input.clusterPullBudget, perNamespace: namespacePullCap(input.clusterPullBudget, input.namespaceLimits),
    entryOf: (c) => wantedOn.get(c.node)?.wanted.get(c.image),
    admit: (c, entry) => {
      const keep = kept.get(c.node);
      // Only nodes with candidates have a map of their own.
      if (!(keep instanceof Map)) return 'skip';
      if (!c.raise && !fitsNodeImageSet(keep, entry)) return 'hold';
      keep.set(c.image, c.round === undefined || c.round === entry.round ? entry : { ...entry, round: c.round });
      return 'release';
    },
  });
  unfinished = release.unfinished;
  const held = release.held;

  const nodeImageSets = nodeImageSetsOf({ input, nodes, ready, kept, removalsOn, wantedOn });
  if (memo !== undefined) {
    memo.settled = settled;
    memo.entries = entries;
    memo.classes = classesByTargets;
  }
  return { nodeImageSets, targetNodes, unfinished, held, withoutAgent, dueAtMs, refused };
}
