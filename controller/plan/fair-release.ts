// Finding 6 of the review: the cluster's pull budget is shared fairly between namespaces. Each free slot goes to
// the namespace holding the fewest unfinished pairs (released ones and those released in this pass), ties by
// name; within a namespace image by image (all nodes of one image before the next), so its rollout finishes
// first. A pair several namespaces want is charged to the first of them by name. So while several namespaces
// wait, none gets a slot past its share, ceil(budget / namespaces waiting or holding); a slot nobody else waits
// for is lent to whoever does, but never past --namespace-pull-share of the budget, which bounds what a newcomer
// waits for: the lent pulls are not taken back, they end (finished, or in back-off). docs/decisions/0017. Pure.
import type { NodeImage } from '../../api/v1alpha1/index.ts';
import { compareStrings } from './node-image-set-digest.ts';

/** A (node, image) pair waiting for the budget. */
export interface Candidate {
  readonly node: string;
  readonly image: string;
  /** A refresh of a finished pair, or the re-pull of a lost one: its entry is already in the NodeImageSet. */
  readonly raise: boolean;
  /** The round to release it in; the wanted entry's own when undefined. */
  readonly round?: number;
}

export interface ReleaseInput {
  readonly candidates: readonly Candidate[];
  /** Unfinished pairs per namespace before this release; updated as pairs are released. */
  readonly heldBy: Map<string, number>;
  /** Unfinished pairs cluster-wide before this release. */
  readonly unfinished: number;
  /** 0 = unlimited. */
  readonly clusterPullBudget: number;
  /** Most pairs one namespace may hold (namespacePullCap). */
  readonly perNamespace: number;
  /** The entry a candidate would be released with. */
  readonly entryOf: (c: Candidate) => NodeImage | undefined;
  /** Puts a released pair into its node's entries: 'hold' when it does not fit there, 'skip' when it has none. */
  readonly admit: (c: Candidate, entry: NodeImage) => 'release' | 'hold' | 'skip';
}

/** The namespace a pair is charged to: its first source's (sources are in key order, so the first by name). */
export function namespaceOf(entry: NodeImage | undefined): string {
  return entry?.sources[0]?.namespace ?? '';
}

/** Releases candidates within the budget, fairly; returns the pairs unfinished afterwards and those held. */
export function releaseFairly(input: ReleaseInput): { unfinished: number; held: number } {
  const { candidates, heldBy, perNamespace } = input;
  const queues = new Map<string, Candidate[]>();
  for (const c of candidates) {
    const ns = namespaceOf(input.entryOf(c));
    const q = queues.get(ns);
    if (q === undefined) queues.set(ns, [c]);
    else q.push(c);
  }
  for (const q of queues.values()) q.sort((a, b) => compareStrings(b.image, a.image) || compareStrings(b.node, a.node));
  let unfinished = input.unfinished;
  let available = input.clusterPullBudget === 0 ? Number.POSITIVE_INFINITY : Math.max(0, input.clusterPullBudget - unfinished);
  let held = 0;
  const order = [...queues.keys()];
  let left = candidates.length;
  for (;;) {
    // Without a budget every pair is released (up to each node's cap) and the order changes nothing else;
    // with one, the loop ends when it is spent, so its length is bounded by the budget.
    if (available <= 0) {
      held += left;
      break;
    }
    let ns: string | undefined;
    // Unlimited: nothing to share, so no search (a first rollout may have a pair per node and image).
    if (available === Number.POSITIVE_INFINITY) {
      while (order.length > 0 && (queues.get(order[0] ?? '')?.length ?? 0) === 0) order.shift();
      ns = order[0];
    } else for (const n of order) {
      if ((queues.get(n)?.length ?? 0) === 0 || (heldBy.get(n) ?? 0) >= perNamespace) continue;
      if (ns === undefined || (heldBy.get(n) ?? 0) < (heldBy.get(ns) ?? 0) || ((heldBy.get(n) ?? 0) === (heldBy.get(ns) ?? 0) && compareStrings(n, ns) < 0)) ns = n;
    }
    if (ns === undefined) {
      // Every namespace still waiting holds its whole share.
      held += left;
      break;
    }
    // Queues are sorted in reverse, so the next pair is at the end.
    const c = queues.get(ns)?.pop();
    if (c === undefined) break;
    left--;
    const entry = input.entryOf(c);
    if (entry === undefined) continue;
    const outcome = input.admit(c, entry);
    if (outcome === 'skip') continue;
    if (outcome === 'hold') {
      held++;
      continue;
    }
    const charged = namespaceOf(entry);
    heldBy.set(charged, (heldBy.get(charged) ?? 0) + 1);
    available--;
    unfinished++;
  }
  return { unfinished, held };
}
