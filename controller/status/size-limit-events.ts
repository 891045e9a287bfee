// Warning Events for PrePullImages whose image waits on some nodes because those nodes' NodeImageSets are at
// their size cap (plan/size-bound.ts). One Event per PrePullImage and set of such nodes: the same situation
// pass after pass sends nothing more. Pure: no I/O.
import { MAX_NODE_IMAGES, type PrePullImage } from '../../api/v1alpha1/index.ts';
import { entryBytes, listBytes, MAX_NODE_IMAGE_SET_SPEC_BYTES } from '../plan/size-bound.ts';
import { MAX_ENTRY_PULL_SECRETS, type ImageTarget, type NodePlan } from '../plan/node-plan.ts';
import type { Write } from '../write/writes.ts';

export const NODE_IMAGE_SET_FULL_REASON = 'NodeImageSetFull' as const;
const NODES_NAMED = 5;

/**
 * More than the largest entry the CRD allows (a 512-character image, 16 secret names of 253, 4 sources of
 * 316), estimated: a set with more room than this is not full for anyone.
 */
const MAX_ENTRY_BYTES = 16 * 1024;

/** What one target would add to a node as an entry of its own: the estimate held against a full set. */
function targetEntryBytes(t: ImageTarget): number {
  return entryBytes({
    image: t.image, pullSecrets: t.pullSecrets.slice(0, MAX_ENTRY_PULL_SECRETS), timeout: t.timeout, retry: t.retry, round: t.round,
    sources: [{ namespace: t.namespace, name: t.name }],
  });
}

/**
 * PrePullImages (by key) and the target nodes whose planned NodeImageSet has no room for their image, by count
 * or by bytes: they wait there until entries leave. A node that merely waits for the pull budget is not one.
 */
export function leftOutForSize(plan: NodePlan, targets: readonly ImageTarget[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  // Most clusters have no node anywhere near the cap: find the ones that could be full first.
  const nearlyFull = new Map<string, { readonly count: number; readonly bytes: number; readonly released: ReadonlyMap<string, number> }>();
  for (const [name, set] of plan.nodeImageSets) {
    const bytes = listBytes(set.spec.images);
    if (set.spec.images.length >= MAX_NODE_IMAGES || bytes + MAX_ENTRY_BYTES > MAX_NODE_IMAGE_SET_SPEC_BYTES) {
      nearlyFull.set(name, { count: set.spec.images.length, bytes, released: set.released });
    }
  }
  if (nearlyFull.size === 0) return out;
  for (const t of targets) {
    if (t.purge === true) continue;
    let own: number | undefined;
    for (const name of plan.targetNodes.get(t.key) ?? []) {
      const full = nearlyFull.get(name);
      if (full === undefined || full.released.has(t.image)) continue;
      own ??= targetEntryBytes(t);
      if (full.count < MAX_NODE_IMAGES && full.bytes + own <= MAX_NODE_IMAGE_SET_SPEC_BYTES) continue;
      const nodes = out.get(t.key);
      if (nodes === undefined) out.set(t.key, [name]);
      else nodes.push(name);
    }
  }
  return out;
}

export function sizeLimitEvents(
  leftOut: ReadonlyMap<string, readonly string[]>,
  cached: ReadonlyMap<string, PrePullImage>,
  reportedBefore: ReadonlySet<string>,
): { writes: Write[]; reported: Set<string> } {
  const writes: Write[] = [];
  const reported = new Set<string>();
  for (const [key, nodes] of leftOut) {
    const ppi = cached.get(key);
    const { namespace, name, uid } = ppi?.metadata ?? {};
    if (namespace === undefined || name === undefined || uid === undefined) continue;
    const id = `${key}@${[...nodes].sort().join(',')}`;
    reported.add(id);
    if (reportedBefore.has(id)) continue;
    const named = nodes.slice(0, NODES_NAMED).join(', ') + (nodes.length > NODES_NAMED ? ` and ${nodes.length - NODES_NAMED} more` : '');
    writes.push({
      kind: 'event',
      subject: { namespace, name, uid },
      involved: { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage' },
      event: {
        type: 'Warning',
        reason: NODE_IMAGE_SET_FULL_REASON,
        message: `not released on ${nodes.length} node(s) (${named}): their NodeImageSet is at its cap (${MAX_NODE_IMAGES} images or about ${MAX_NODE_IMAGE_SET_SPEC_BYTES / 1024} KiB of entries); it is released there when other images leave`,
      },
    });
  }
  return { writes, reported };
}
