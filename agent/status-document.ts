// The NodeImageSet status the agent publishes, built from what it knows, and the merge patch that
// writes it. Pure: the same inputs give the same document, so "changed" is a string comparison.
import type { NodeImageSetStatus } from '../api/v1alpha1/nodeimageset.ts';
import { recordStatus, rfc3339, type ImageRecord } from './image-record.ts';
import type { RemovalStatus } from './removal-decision.ts';
import { entryStatus, rfc3339Millis, type StartLedger } from './container-starts.ts';

export interface ImageFsReport {
  usedBytes?: number;
  capacityBytes?: number;
  usedPercent?: number;
  pullsPaused?: boolean;
}

export interface StatusInputs {
  /** Records in spec order. */
  records: readonly ImageRecord[];
  /** metadata.generation of the spec the records describe. */
  observedGeneration: number | undefined;
  runtime: { name: string; version: string } | undefined;
  /** Epoch ms of the last heartbeat. */
  heartbeatAt: number | undefined;
  imageFs: ImageFsReport | undefined;
  /** Answers to spec.removals, in spec order; absent or empty: none. */
  removals?: readonly RemovalStatus[];
  /** Ids of the images the agent brought onto the node, oldest first; absent or empty: none. */
  pulledImageIds?: readonly string[];
  /** Container starts counted per image (container-starts.ts); absent: none. */
  starts?: StartLedger;
}

export function buildStatus(input: StatusInputs): NodeImageSetStatus {
  const starts = input.starts;
  const images = input.records.map((r) => {
    const e = starts?.entries.get(r.image);
    return e === undefined ? recordStatus(r) : { ...recordStatus(r), ...entryStatus(e) };
  });
  const count = (phase: string): number => images.filter((i) => i.phase === phase).length;
  const status: NodeImageSetStatus = {};
  if (input.observedGeneration !== undefined) status.observedGeneration = input.observedGeneration;
  if (input.runtime !== undefined) status.runtime = { name: input.runtime.name.slice(0, 64), version: input.runtime.version.slice(0, 128) };
  if (input.heartbeatAt !== undefined) status.heartbeatTime = rfc3339(input.heartbeatAt);
  if (input.imageFs !== undefined) status.imageFs = { ...input.imageFs };
  status.images = images;
  if (input.removals !== undefined && input.removals.length > 0) status.removals = input.removals.map((r) => ({ ...r }));
  if (input.pulledImageIds !== undefined && input.pulledImageIds.length > 0) status.pulledImageIds = [...input.pulledImageIds];
  if (starts?.countedUntil !== undefined) status.startsCountedUntil = rfc3339Millis(starts.countedUntil);
  status.desired = images.length;
  status.ready = count('Completed');
  status.pulling = count('Pulling');
  status.failed = count('Failed');
  return status;
}

/** Every top-level status field, so a patch can clear the ones the document leaves out. */
const STATUS_FIELDS = ['observedGeneration', 'runtime', 'heartbeatTime', 'imageFs', 'images', 'removals', 'pulledImageIds', 'startsCountedUntil', 'desired', 'ready', 'pulling', 'failed'] as const;

/** The whole status as a merge-patch body: every top-level field, null where the document has none. */
function fullBody(status: NodeImageSetStatus): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of STATUS_FIELDS) body[field] = status[field] ?? null;
  // imageFs is an object: merged key by key, so clear its absent keys too.
  if (status.imageFs !== undefined) {
    const fs: Record<string, unknown> = {};
    for (const k of ['usedBytes', 'capacityBytes', 'usedPercent', 'pullsPaused'] as const) fs[k] = status.imageFs[k] ?? null;
    body.imageFs = fs;
  }
  return body;
}

/**
 * A JSON merge patch for the status subresource that makes the status equal `status`: fields absent from
 * it are set to null (deleted); `images` is a list, so a merge patch replaces it whole. Given the status
 * last written (`written`), only the top-level fields that differ from it are sent: a heartbeat does not
 * resend every image entry.
 */
export function statusMergePatch(status: NodeImageSetStatus, written?: NodeImageSetStatus): { status: Record<string, unknown> } {
  const body = fullBody(status);
  if (written === undefined) return { status: body };
  const before = fullBody(written);
  const changed: Record<string, unknown> = {};
  for (const field of STATUS_FIELDS) {
    if (JSON.stringify(body[field]) !== JSON.stringify(before[field])) changed[field] = body[field];
  }
  return { status: changed };
}

/** A stable text form for "did anything change". */
export function statusKey(status: NodeImageSetStatus): string {
  return JSON.stringify(fullBody(status));
}
