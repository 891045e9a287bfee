// How the PrePullImages (sources) that want one image on one node share its NodeImageSet entry, so that no
// source, whatever namespace it lives in, changes the outcome of another's pulls (finding 5 of the review;
// docs/decisions/0016-shared-entries-between-tenants.md):
// - digest pins never merge: of the sources pinning different digests for the same image, the earliest
//   (creation time, then namespace/name) keeps the image and the later ones are refused (DigestConflict);
// - an entry carries a pin only when every source of it pins that digest: a pin never fails a source that
//   did not ask for one (the pinned source is told its pin is not checked there);
// - retry and timeout move towards the defaults, never past the most patient or most hurried source, so one
//   source can neither hold a budget slot for 24 hours nor cut another's pulls short below the default;
// - pull secrets are taken round-robin across sources before the 16-entry cut, so no source pushes out
//   another's secrets.
// Pure: no I/O, no clock.
import {
  DEFAULT_BACKOFF_SECONDS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_TIMEOUT,
  durationMilliseconds,
  MAX_IMAGE_SOURCES,
  type NodeImage,
  type Retry,
} from '../../api/v1alpha1/index.ts';
import { compareStrings } from './node-image-set-digest.ts';
import type { ImageTarget } from './target-groups.ts';

/** Pull secrets per NodeImageSet entry, as the CRD bounds them. */
export const MAX_ENTRY_PULL_SECRETS = 16;

/** Why a PrePullImage is not (or not fully) honoured, for its Ready condition. */
export interface SourceRefusal {
  readonly reason: 'DigestConflict' | 'NamespaceImageLimit' | 'NamespaceNodeImageLimit';
  readonly message: string;
  /** True: the source is left out of planning altogether (it targets no node). */
  readonly excluded: boolean;
}

/** Earlier first: creation time (absent = not created yet = last), then `namespace/name`. */
export function compareAge(a: ImageTarget, b: ImageTarget): number {
  const ca = a.createdAt ?? '\uffff';
  const cb = b.createdAt ?? '\uffff';
  return compareStrings(ca, cb) || compareStrings(a.key, b.key);
}

/**
 * Sources pinning a digest other than the earliest pin of the same image are left out of planning, each
 * refused with the earliest pinning source named. Purges are not pulls and are never refused.
 */
export function refuseConflictingPins(targets: readonly ImageTarget[]): { kept: ImageTarget[]; refused: Map<string, SourceRefusal> } {
  const firstPin = new Map<string, ImageTarget>();
  for (const t of targets) {
    if (t.purge === true || t.imageDigest === undefined) continue;
    const first = firstPin.get(t.image);
    if (first === undefined || compareAge(t, first) < 0) firstPin.set(t.image, t);
  }
  const refused = new Map<string, SourceRefusal>();
  const kept: ImageTarget[] = [];
  for (const t of targets) {
    const first = t.purge === true || t.imageDigest === undefined ? undefined : firstPin.get(t.image);
    if (first !== undefined && first.imageDigest !== t.imageDigest) {
      refused.set(t.key, {
        reason: 'DigestConflict',
        message: `${t.image}: PrePullImage ${first.key}, created earlier, pins ${first.imageDigest ?? ''}; this one pins ${t.imageDigest ?? ''}. ` +
          'Pins of one image never merge, so this one is not planned until the pins agree or the other is deleted',
        excluded: true,
      });
      continue;
    }
    kept.push(t);
  }
  return { kept, refused };
}

function ms(duration: string): number {
  return durationMilliseconds(duration) ?? 0;
}

/**
 * `values` merged towards `fallback`: the value closest to it within [min, max] of the values. Whatever
 * one source asks, the result lies between what the others ask and the default.
 */
function towards(values: readonly number[], fallback: number): number {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return Math.min(hi, Math.max(lo, fallback));
}

export function mergeRetry(retries: readonly Retry[]): Retry {
  return {
    maxAttempts: towards(retries.map((r) => r.maxAttempts), DEFAULT_MAX_ATTEMPTS),
    backoffSeconds: towards(retries.map((r) => r.backoffSeconds), DEFAULT_BACKOFF_SECONDS),
  };
}

export function mergeTimeout(timeouts: readonly string[]): string {
  const first = timeouts[0];
  if (first === undefined) return DEFAULT_TIMEOUT;
  const target = towards(timeouts.map(ms), ms(DEFAULT_TIMEOUT));
  // One of the sources' own spellings when one matches, so an unchanged set of sources writes the same text.
  return timeouts.find((t) => ms(t) === target) ?? DEFAULT_TIMEOUT;
}

/** Each source's secrets in its own order, taken one per source in turn, without repeats, at most `max`. */
export function roundRobinSecrets(lists: readonly (readonly string[])[], max: number): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest && out.length < max; i++) {
    for (const list of lists) {
      const s = list[i];
      if (s === undefined || seen.has(s)) continue;
      seen.add(s);
      out.push(s);
      if (out.length >= max) break;
    }
  }
  return out;
}

/**
 * The PrePullImages behind targets, each once: a PrePullImage being deleted and its successor (spec-plan.ts
 * successorKey) are two targets of one namespace and name. `sources` is an atomic list (decision 0019), so the
 * API server would not refuse the repeat.
 */
function distinctSources(targets: readonly ImageTarget[]): { namespace: string; name: string }[] {
  const seen = new Set<string>();
  const out: { namespace: string; name: string }[] = [];
  for (const t of targets) {
    const id = `${t.namespace}/${t.name}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ namespace: t.namespace, name: t.name });
  }
  return out;
}

/**
 * One spec entry for the sources (sorted by key, conflicting pins already refused) that want the same image on
 * a node. `unchecked` lists the pinned sources whose pin the entry does not carry, with an unpinned source.
 */
export function mergeEntry(targets: readonly ImageTarget[]): { entry: NodeImage; unchecked: readonly { key: string; unpinned: string }[] } {
  const first = targets[0];
  if (first === undefined) throw new Error('mergeEntry needs at least one target');
  const unpinned = targets.find((t) => t.imageDigest === undefined);
  const entry: NodeImage = {
    image: first.image,
    pullSecrets: roundRobinSecrets(targets.map((t) => t.pullSecrets), MAX_ENTRY_PULL_SECRETS),
    timeout: mergeTimeout(targets.map((t) => t.timeout)),
    retry: mergeRetry(targets.map((t) => t.retry)),
    round: Math.max(...targets.map((t) => t.round)),
    sources: distinctSources(targets).slice(0, MAX_IMAGE_SOURCES),
  };
  if (unpinned === undefined && first.imageDigest !== undefined) entry.imageDigest = first.imageDigest;
  // Only when set: the entries digest then stays as it was, and no existing NodeImageSet is rewritten.
  if (targets.some((t) => t.gatesNodes === true)) entry.gatesNode = true;
  const unchecked = unpinned === undefined ? [] : targets.filter((t) => t.imageDigest !== undefined).map((t) => ({ key: t.key, unpinned: unpinned.key }));
  return { entry, unchecked };
}
