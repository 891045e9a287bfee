// What the agent knows about one wanted image, and the pure decisions about it: whether the image
// the runtime has will do, which repo digest to report, how a spec change affects it, how a
// record becomes a status entry. No I/O, no clock: times come in as arguments.
import type { NodeImage, NodeImageStatus } from '../api/v1alpha1/nodeimageset.ts';
import type { NodePullPhase } from '../api/v1alpha1/prepullimage.ts';
import { isMutable, parseImageRef, repositoryName, type ImageRef } from '../lib/image-ref.ts';
import type { ImageInfo } from './cri/runtime.ts';

/** Status limits from the CRD schema. */
export const MAX_MESSAGE_LENGTH = 1024;
export const MAX_REASON_LENGTH = 128;
const MAX_STRING_LENGTH = 512;

/** One image entry as the agent tracks it; times are epoch milliseconds. */
export interface ImageRecord {
  image: string;
  phase: NodePullPhase;
  /** The spec round this record describes. */
  round: number;
  /** Pull attempts made in this round. */
  attempts: number;
  imageId?: string;
  repoDigest?: string;
  sizeBytes?: number;
  reason?: string;
  message?: string;
  startedAt?: number;
  finishedAt?: number;
  lastVerifiedAt?: number;
  /** Which versions of the pull secrets the last attempt read (see pull-credentials.ts). */
  secretsVersion?: string;
  /** When kwarm's own pull made this record Completed; absent when it found the image present. Not in status. */
  pulledAt?: number;
  /** How long that pull took (the attempt, from its start to the image verified). Not in status. */
  pullMs?: number;
  /** The runtime had the image when the current attempt started (a forced or re-resolving pull). Not in status. */
  presentBefore?: boolean;
}

export function pendingRecord(entry: NodeImage): ImageRecord {
  return { image: entry.image, phase: 'Pending', round: entry.round, attempts: 0 };
}

/** The fields of a spec entry that change how it is pulled; a change to any of them is a new try. */
export function entryFingerprint(entry: NodeImage): string {
  return JSON.stringify([entry.round, entry.imageDigest ?? '', [...entry.pullSecrets].sort(), entry.timeout, entry.retry.maxAttempts, entry.retry.backoffSeconds]);
}

/** What a spec change means for an image already tracked. */
export type SpecChange =
  /** Nothing that affects pulling changed. */
  | { readonly kind: 'unchanged' }
  /** The round was raised: pull again even if the image is present. */
  | { readonly kind: 'new-round' }
  /** Settings changed (secrets, digest, timeout, retries): a Failed image gets a fresh try, a present one is re-checked. */
  | { readonly kind: 'settings' };

export function classifySpecChange(before: NodeImage, after: NodeImage): SpecChange {
  if (after.round > before.round) return { kind: 'new-round' };
  if (entryFingerprint(before) === entryFingerprint(after)) return { kind: 'unchanged' };
  return { kind: 'settings' };
}

/** The reference parsed; undefined for references the CRD rules should have kept out. */
export function parsedReference(image: string): ImageRef | undefined {
  const r = parseImageRef(image);
  return r.ok ? r.ref : undefined;
}

/** "repo@sha256:…" entries of `info` that belong to the repository of `image`, parsed. */
function repoDigestsOf(info: ImageInfo, image: ImageRef): { raw: string; digest: string }[] {
  const repo = repositoryName(image);
  const out: { raw: string; digest: string }[] = [];
  for (const raw of info.repoDigests) {
    const r = parsedReference(raw);
    if (r?.digest !== undefined && repositoryName(r) === repo) out.push({ raw, digest: r.digest });
  }
  return out;
}

/** The repo digest to report: the one for the image's own repository, else the first one. */
export function reportedRepoDigest(info: ImageInfo, image: string): string | undefined {
  const ref = parsedReference(image);
  const own = ref === undefined ? [] : repoDigestsOf(info, ref);
  return own[0]?.raw ?? info.repoDigests[0];
}

/** Whether the runtime's image carries `digest` for the image's repository. */
export function hasDigest(info: ImageInfo, image: string, digest: string): boolean {
  const ref = parsedReference(image);
  if (ref === undefined) return false;
  return repoDigestsOf(info, ref).some((d) => d.digest === digest);
}

export interface PresenceContext {
  entry: NodeImage;
  /** Raised round: pull whatever the runtime has. */
  force: boolean;
  /** A mutable tag (`:latest`, untagged) was already resolved in this round. */
  resolvedThisRound: boolean;
}

/**
 * Whether a pull is needed given what the runtime has (IfNotPresent, except that mutable tags are
 * re-resolved once per round and a pinned digest must match).
 */
export function needsPull(info: ImageInfo | undefined, ctx: PresenceContext): boolean {
  if (info === undefined || ctx.force) return true;
  const ref = parsedReference(ctx.entry.image);
  if (ref !== undefined && isMutable(ref) && !ctx.resolvedThisRound) return true;
  if (ctx.entry.imageDigest !== undefined && !hasDigest(info, ctx.entry.image, ctx.entry.imageDigest)) return true;
  return false;
}

/** After a pull: undefined when the result is acceptable, else why not. */
export function digestProblem(info: ImageInfo, entry: NodeImage): string | undefined {
  if (entry.imageDigest === undefined || hasDigest(info, entry.image, entry.imageDigest)) return undefined;
  const got = info.repoDigests.length === 0 ? 'no repo digest' : info.repoDigests.join(', ');
  return `spec wants ${entry.imageDigest}, the runtime reports ${got}`;
}

/** Cut to at most `max` code points (the unit the API server counts), marking the cut. */
function truncate(text: string, max: number): string {
  const points = Array.from(text);
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}

export function rfc3339(ms: number): string {
  // metav1.Time has second precision; finer values would only cause extra status writes.
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** A record in the NodeImageSet status shape, bounded to the schema's limits. */
export function recordStatus(r: ImageRecord): NodeImageStatus {
  const out: NodeImageStatus = { image: r.image, phase: r.phase, attempts: r.attempts, round: r.round };
  if (r.imageId !== undefined) out.imageId = truncate(r.imageId, MAX_STRING_LENGTH);
  if (r.repoDigest !== undefined) out.repoDigest = truncate(r.repoDigest, MAX_STRING_LENGTH);
  if (r.sizeBytes !== undefined) out.sizeBytes = r.sizeBytes;
  if (r.reason !== undefined) out.reason = truncate(r.reason, MAX_REASON_LENGTH);
  if (r.message !== undefined) out.message = truncate(r.message, MAX_MESSAGE_LENGTH);
  if (r.startedAt !== undefined) out.startedAt = rfc3339(r.startedAt);
  if (r.finishedAt !== undefined) out.finishedAt = rfc3339(r.finishedAt);
  if (r.lastVerifiedAt !== undefined) out.lastVerifiedAt = rfc3339(r.lastVerifiedAt);
  if (r.secretsVersion !== undefined) out.secretsVersion = r.secretsVersion;
  return out;
}
