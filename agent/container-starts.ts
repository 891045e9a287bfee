// Did kwarm help? For each image in the NodeImageSet, the container starts on this node that found it
// already pulled by kwarm (warm) and those that did not (cold), and the pull time kwarm saved. Pure: the
// agent feeds it its image records and what CRI ListContainers returns, with the time as an argument;
// the ledger goes into NodeImageSet status (per image, plus one watermark) so a restarted agent goes on
// counting without counting a container twice.
//
// The rules, for a container of a managed image created at time t:
// - warm: kwarm's own pull of the image on this node had completed before t (warmSince <= t);
// - cold: kwarm did not have the image Completed at t (readySince undefined or later than t): the kubelet
//   pulled it, or kwarm was late;
// - neither: kwarm had it Completed at t but found it present rather than pulling it (the node image, the
//   kubelet or someone else put it there). kwarm did nothing for that start, nor was it late.
// Pull time saved: kwarm's measured pull of the image on this node, credited once, at the first warm start
// after that pull. Later starts would have found the image present anyway (the first one brought it in),
// so crediting every warm start would count the same pull many times.
// A container counts only if it was created after the entry appeared in the NodeImageSet (so a long-running
// container does not count when its image becomes managed) and after the watermark (counted already).
import type { NodeImageSetStatus, NodeImageStatus } from '../api/v1alpha1/nodeimageset.ts';
import type { NodePullPhase } from '../api/v1alpha1/prepullimage.ts';
import { REMOVED_FROM_RUNTIME } from './pull-decision.ts';

/** What the ledger keeps per image; times are epoch ms. */
export interface StartEntry {
  /** When the agent first saw the entry in spec. */
  wantedSince: number;
  /** When kwarm last had the image Completed (pulled or found), cleared while it is not present. */
  readySince?: number;
  /** When kwarm's own pull of the image completed, cleared while it is not present. */
  warmSince?: number;
  /** How long kwarm's pull behind warmSince took. */
  pullMs?: number;
  /** pullMs was already added to savedMs (at the first warm start after that pull). */
  pullCredited?: boolean;
  /** From wantedSince to the first readySince: set once. */
  timeToWarmMs?: number;
  warmStarts: number;
  coldStarts: number;
  savedMs: number;
}

export interface StartLedger {
  /** Containers created at or before this time (epoch ms) were counted already; undefined before the first look. */
  readonly countedUntil: number | undefined;
  readonly entries: ReadonlyMap<string, StartEntry>;
}

export const EMPTY_LEDGER: StartLedger = { countedUntil: undefined, entries: new Map() };

/** The part of an image record the ledger reads. */
export interface RecordView {
  image: string;
  phase: NodePullPhase;
  reason?: string;
  imageId?: string;
  /** Set when kwarm's own pull made the record Completed. */
  pulledAt?: number;
  pullMs?: number;
  /** The runtime had the image when the current attempt started. */
  presentBefore?: boolean;
}

/** The part of a CRI container the ledger reads. */
export interface ContainerView {
  id: string;
  /** Epoch ms. */
  createdAt: number;
  /** The image as in the container's spec (the kubelet writes the image id there). */
  image: string;
  imageRef: string;
  imageId: string;
}

/** Whether a record says the image is not on the node (found gone, or being pulled or failed without it). */
function notPresent(r: RecordView): boolean {
  switch (r.phase) {
    case 'Completed':
      return false;
    case 'Pending':
      if (r.reason === REMOVED_FROM_RUNTIME) return true;
      // Pending without a reason only waits for its survey (e.g. right after a restart): says nothing.
      if (r.reason === undefined) return false;
      return r.presentBefore !== true;
    case 'Pulling':
    case 'Failed':
      // A forced re-pull (a refresh round) of an image the node has: starts meanwhile still find it.
      return r.presentBefore !== true;
    default: {
      const never: never = r.phase;
      throw new Error(`unhandled phase ${String(never)}`);
    }
  }
}

export interface ObserveResult {
  ledger: StartLedger;
  /** Times to warm (ms) that became known now, for the histogram. */
  warmed: number[];
}

/**
 * Follows the records: new entries get wantedSince = now, entries gone from spec are dropped, an image
 * that became Completed gets readySince (and warmSince when kwarm pulled it), one no longer present loses both.
 */
export function observeRecords(ledger: StartLedger, records: readonly RecordView[], now: number): ObserveResult {
  const entries = new Map<string, StartEntry>();
  const warmed: number[] = [];
  for (const r of records) {
    const before = ledger.entries.get(r.image);
    const e: StartEntry = before === undefined ? { wantedSince: now, warmStarts: 0, coldStarts: 0, savedMs: 0 } : { ...before };
    if (r.phase === 'Completed') {
      if (e.readySince === undefined) e.readySince = r.pulledAt ?? now;
      if (r.pulledAt !== undefined && (e.warmSince === undefined || r.pulledAt > e.warmSince)) {
        e.warmSince = r.pulledAt;
        e.readySince = Math.min(e.readySince, r.pulledAt);
        if (r.pullMs !== undefined) e.pullMs = r.pullMs;
        else delete e.pullMs;
        delete e.pullCredited;
      }
      if (e.timeToWarmMs === undefined) {
        e.timeToWarmMs = Math.max(0, e.readySince - e.wantedSince);
        warmed.push(e.timeToWarmMs);
      }
    } else if (notPresent(r)) {
      delete e.readySince;
      delete e.warmSince;
      delete e.pullMs;
      delete e.pullCredited;
    }
    entries.set(r.image, e);
  }
  return { ledger: { countedUntil: ledger.countedUntil, entries }, warmed };
}

export type StartResult = 'warm' | 'cold' | 'neither';

/** How one container start counts for the entry whose image it runs. */
export function classifyStart(e: StartEntry, createdAt: number): StartResult {
  if (e.warmSince !== undefined && e.warmSince <= createdAt) return 'warm';
  if (e.readySince === undefined || createdAt < e.readySince) return 'cold';
  return 'neither';
}

/**
 * The spec image a container runs: the entry written exactly as the container's image, else the first entry
 * whose resolved image id is the container's (the kubelet puts the image id in the container spec).
 */
export function entryOf(c: ContainerView, images: readonly { image: string; imageId?: string }[]): string | undefined {
  const byName = images.find((i) => i.image === c.image);
  if (byName !== undefined) return byName.image;
  const ids = [c.image, c.imageRef, c.imageId].filter((v) => v !== '');
  return images.find((i) => i.imageId !== undefined && ids.includes(i.imageId))?.image;
}

export interface CountResult {
  ledger: StartLedger;
  warm: number;
  cold: number;
  savedMs: number;
}

/**
 * Counts the containers created after the watermark. The first look (no watermark yet) only sets it, to
 * `now` or the newest container if later: what ran before the agent ever looked is not kwarm's doing.
 */
export function countStarts(ledger: StartLedger, containers: readonly ContainerView[], images: readonly { image: string; imageId?: string }[], now: number): CountResult {
  if (ledger.countedUntil === undefined) {
    const newest = containers.reduce((m, c) => Math.max(m, c.createdAt), now);
    return { ledger: { countedUntil: newest, entries: ledger.entries }, warm: 0, cold: 0, savedMs: 0 };
  }
  const since = ledger.countedUntil;
  const fresh = containers.filter((c) => c.createdAt > since).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  let entries: Map<string, StartEntry> | undefined;
  let countedUntil = since;
  let warm = 0;
  let cold = 0;
  let savedMs = 0;
  for (const c of fresh) {
    const image = entryOf(c, images);
    const current = image === undefined ? undefined : (entries ?? ledger.entries).get(image);
    if (image === undefined || current === undefined || c.createdAt < current.wantedSince) continue;
    // Advanced past every start of a managed image, never past others: a watermark that followed every
    // container would be a status write on every pod start on the node. (Others stay out by wantedSince.)
    countedUntil = c.createdAt;
    const result = classifyStart(current, c.createdAt);
    // Not counted, and not looked at again: were the image lost later, it would wrongly turn cold.
    if (result === 'neither') continue;
    entries ??= new Map(ledger.entries);
    const e = { ...current };
    if (result === 'warm') {
      e.warmStarts++;
      warm++;
      if (e.pullCredited !== true && e.pullMs !== undefined) {
        e.savedMs += e.pullMs;
        savedMs += e.pullMs;
        e.pullCredited = true;
      }
    } else {
      e.coldStarts++;
      cold++;
    }
    entries.set(image, e);
  }
  const same = countedUntil === since && entries === undefined;
  return { ledger: same ? ledger : { countedUntil, entries: entries ?? ledger.entries }, warm, cold, savedMs };
}

// ---- The ledger in NodeImageSet status ----

/** RFC 3339 with milliseconds: the order of a pull's completion and a container's creation can be that close. */
export function rfc3339Millis(ms: number): string {
  return new Date(ms).toISOString();
}

function parseTime(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The status fields of one image entry; absent counts stay absent, so images nobody starts add no fields. */
export function entryStatus(e: StartEntry): Partial<NodeImageStatus> {
  const out: Partial<NodeImageStatus> = { wantedSince: rfc3339Millis(e.wantedSince) };
  if (e.warmStarts > 0) out.warmStarts = e.warmStarts;
  if (e.coldStarts > 0) out.coldStarts = e.coldStarts;
  if (e.savedMs > 0) out.pullMillisecondsSaved = Math.round(e.savedMs);
  if (e.readySince !== undefined) out.readySince = rfc3339Millis(e.readySince);
  if (e.warmSince !== undefined) out.warmSince = rfc3339Millis(e.warmSince);
  if (e.pullMs !== undefined) out.pullMilliseconds = Math.round(e.pullMs);
  if (e.pullCredited === true) out.pullCredited = true;
  if (e.timeToWarmMs !== undefined) out.timeToWarmMilliseconds = Math.round(e.timeToWarmMs);
  return out;
}

/** The ledger a previous agent left in status; entries without wantedSince (older agents) start afresh. */
export function ledgerFromStatus(status: NodeImageSetStatus | undefined): StartLedger {
  const entries = new Map<string, StartEntry>();
  for (const i of status?.images ?? []) {
    const wantedSince = parseTime(i.wantedSince);
    if (wantedSince === undefined) continue;
    const e: StartEntry = { wantedSince, warmStarts: i.warmStarts ?? 0, coldStarts: i.coldStarts ?? 0, savedMs: i.pullMillisecondsSaved ?? 0 };
    const readySince = parseTime(i.readySince);
    const warmSince = parseTime(i.warmSince);
    if (readySince !== undefined) e.readySince = readySince;
    if (warmSince !== undefined) e.warmSince = warmSince;
    if (i.pullMilliseconds !== undefined) e.pullMs = i.pullMilliseconds;
    if (i.pullCredited === true) e.pullCredited = true;
    if (i.timeToWarmMilliseconds !== undefined) e.timeToWarmMs = i.timeToWarmMilliseconds;
    entries.set(i.image, e);
  }
  return { countedUntil: parseTime(status?.startsCountedUntil), entries };
}
