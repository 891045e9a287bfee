// The comparable form of a NodeImageSet spec: its entries (and removals) as fixed text in a fixed order, so
// equal specs digest equally however they were built. The planner digests what it plans, the decoder what it
// reads back; equal digests mean nothing to write. Pure.
import type { NodeImage, NodeImageSetSpec } from '../../api/v1alpha1/index.ts';
import { digest } from '../write/canonical-json.ts';

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareSources(a: NodeImage['sources'][number], b: NodeImage['sources'][number]): number {
  return compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

/**
 * One entry as fixed text: every field in a fixed order, lists sorted, so equal entries give equal text
 * however they were built. The destructuring fails to compile when NodeImage gains a field this misses.
 */
function entryText(e: NodeImage): string {
  const { image, imageDigest, pullSecrets, timeout, retry, round, sources, gatesNode, ...otherEntryFields } = e;
  const { maxAttempts, backoffSeconds, ...otherRetryFields } = retry;
  const _exhaustive: Record<string, never> = { ...otherEntryFields, ...otherRetryFields };
  return JSON.stringify([
    image, imageDigest ?? null, [...pullSecrets].sort(compareStrings), timeout, maxAttempts, backoffSeconds, round,
    [...sources].sort(compareSources).map((x) => [x.namespace, x.name]),
    // Only when set, so entries without it digest as they always did (no rewrite of every NodeImageSet).
    ...(gatesNode === true ? ['gatesNode'] : []),
  ]);
}

export function byImage(a: NodeImage, b: NodeImage): number {
  return compareStrings(a.image, b.image);
}

/** Digest of a spec's entries, sorted by image; `sorted` says they already are. */
export function entriesDigest(images: readonly NodeImage[], sorted = false): string {
  const list = sorted ? images : [...images].sort(byImage);
  return digest(list.map(entryText).join('\n'));
}

export type NodeRemoval = NodeImageSetSpec['removals'][number];

/** Digest of spec.removals in image order; '' for none, so a spec without removals digests as it always did. */
export function removalsDigest(removals: readonly NodeRemoval[]): string {
  if (removals.length === 0) return '';
  const text = [...removals]
    .sort((a, b) => compareStrings(a.image, b.image))
    .map((r) => {
      // Fails to compile when a removal entry gains a field this misses.
      const { image, sources, ...otherFields } = r;
      const _exhaustive: Record<string, never> = otherFields;
      return JSON.stringify([image, [...sources].sort(compareSources).map((x) => [x.namespace, x.name])]);
    });
  return digest(text.join('\n'));
}

/**
 * A NodeImageSet's digest from its owner, its per-node limit, entriesDigest of its entries, removalsDigest of
 * its removals and spec.gatingImages. Removals and gatingImages count only when present, so a spec without
 * them digests as it always did.
 */
export function specDigestOf(ownerUid: string | undefined, perNodeLimit: number, entries: string, removals = '', gatingImages = 0): string {
  return digest(`${ownerUid ?? ''}\n${perNodeLimit}\n${entries}${removals === '' ? '' : `\nremovals ${removals}`}${gatingImages > 0 ? `\ngating ${gatingImages}` : ''}`);
}

/**
 * Compares a planned NodeImageSet with a cached one: the owner and the spec, entries in image order and
 * their lists in a fixed order, so equal specs digest equally however they were built.
 */
export function nodeImageSetDigest(ownerUid: string | undefined, spec: NodeImageSetSpec): string {
  return specDigestOf(ownerUid, spec.maxConcurrentPulls, entriesDigest(spec.images), removalsDigest(spec.removals), spec.gatingImages ?? 0);
}
