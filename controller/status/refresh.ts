// When a PrePullImage's target nodes must re-resolve and pull its image again, and which round asks them
// to. A refresh is recorded in the PrePullImage's status.refresh before any node sees it; every round the
// planner writes is computed from that record, so a restarted controller raises exactly the same rounds.
// Pure: no I/O, no clock (the caller passes the time).
import { createHash } from 'node:crypto';
import { durationMilliseconds, REFRESH_ANNOTATION, type PrePullImageStatus } from '../../api/v1alpha1/index.ts';
import type { StatusEvent } from './status-rollup.ts';

export type RefreshRecord = NonNullable<PrePullImageStatus['refresh']>;

/** status.refresh.requested is bounded by the CRD; longer annotation values are kept as their digest. */
export const MAX_REQUESTED_LENGTH = 256;

/**
 * The round a PrePullImage wants its NodeImageSet entries to have: its last refresh as Unix seconds, 0 when
 * never refreshed. Only ever grows, because lastTime does (see nextLastTime).
 */
export function wantedRound(refresh: PrePullImageStatus['refresh']): number {
  if (refresh === undefined) return 0;
  const ms = Date.parse(refresh.lastTime);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
}

/** A mutable reference: no digest in the image, none pinned in spec.imageDigest. Only these are refreshed on an interval. */
export function isMutableImage(image: string, imageDigest: string | undefined): boolean {
  return imageDigest === undefined && !image.includes('@');
}

/** The annotation value as status.refresh.requested records it. */
export function requestedValue(annotation: string): string {
  if (annotation.length <= MAX_REQUESTED_LENGTH) return annotation;
  return `sha256:${createHash('sha256').update(annotation).digest('hex')}`;
}

function rfc3339Seconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * lastTime of a refresh requested at `nowMs`: whole seconds (metav1.Time), and at least one second after the
 * previous one, so two refreshes within one second still raise the round twice.
 */
export function nextLastTime(previous: PrePullImageStatus['refresh'], nowMs: number): string {
  const now = Math.floor(nowMs / 1000);
  return rfc3339Seconds(Math.max(now, wantedRound(previous) + 1));
}

export interface RefreshInput {
  readonly image: string;
  readonly imageDigest: string | undefined;
  /** metadata.annotations[kwarm.io/refresh]. */
  readonly annotation: string | undefined;
  /** spec.refreshInterval. */
  readonly refreshInterval: string | undefined;
  readonly generation: number;
  readonly creationTimestamp: string | undefined;
  /** The status as last written (the controller's own pending write included). */
  readonly status: PrePullImageStatus | undefined;
  readonly nowMs: number;
}

export type RefreshTrigger = 'Annotation' | 'Interval';

export type RefreshDecision =
  /** Nothing to do now; `dueAtMs` is when the interval will ask for one (undefined: not until something changes). */
  | { readonly kind: 'none'; readonly dueAtMs: number | undefined }
  | { readonly kind: 'refresh'; readonly trigger: RefreshTrigger; readonly refresh: RefreshRecord; readonly event: StatusEvent };

function latest(times: readonly (string | undefined)[]): number | undefined {
  let best: number | undefined;
  for (const t of times) {
    const ms = t === undefined ? Number.NaN : Date.parse(t);
    if (Number.isFinite(ms) && (best === undefined || ms > best)) best = ms;
  }
  return best;
}

/**
 * When refreshInterval asks for the next refresh, or undefined when it never will as things stand: no interval,
 * a pinned digest (nothing can move), or a round still under way (Pending or InProgress, which a new round
 * would restart; the status change that ends it brings a new pass). Counted from the later of the last
 * refresh and the last completion; an image never refreshed nor completed (Failed) counts from its creation,
 * so a failed mutable tag is retried once per interval.
 */
export function intervalDueAt(input: RefreshInput): number | undefined {
  if (input.refreshInterval === undefined || !isMutableImage(input.image, input.imageDigest)) return undefined;
  const intervalMs = durationMilliseconds(input.refreshInterval);
  const s = input.status;
  if (intervalMs === undefined || s === undefined || s.observedGeneration !== input.generation) return undefined;
  if (s.phase !== 'Completed' && s.phase !== 'Failed') return undefined;
  const base = latest([s.refresh?.lastTime, s.phase === 'Completed' ? s.completionTime : undefined]) ?? latest([input.creationTimestamp]);
  return base === undefined ? undefined : base + intervalMs;
}

function intervalText(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 1000)}s`;
}

/** Whether this pass records a new refresh: a new annotation value first, else a due interval. */
export function refreshDecision(input: RefreshInput): RefreshDecision {
  const previous = input.status?.refresh;
  if (input.annotation !== undefined) {
    const requested = requestedValue(input.annotation);
    if (requested !== previous?.requested) {
      return {
        kind: 'refresh',
        trigger: 'Annotation',
        refresh: { requested, lastTime: nextLastTime(previous, input.nowMs) },
        event: {
          type: 'Normal',
          reason: 'RefreshRequested',
          message: `${REFRESH_ANNOTATION}=${requested.length > 64 ? `${requested.slice(0, 63)}…` : requested}: every target node re-resolves ${input.image} and pulls it again`,
        },
      };
    }
  }
  const dueAtMs = intervalDueAt(input);
  if (dueAtMs === undefined || dueAtMs > input.nowMs) return { kind: 'none', dueAtMs };
  const interval = durationMilliseconds(input.refreshInterval ?? '') ?? 0;
  return {
    kind: 'refresh',
    trigger: 'Interval',
    refresh: { ...(previous?.requested !== undefined ? { requested: previous.requested } : {}), lastTime: nextLastTime(previous, input.nowMs) },
    event: {
      type: 'Normal',
      reason: 'RefreshRequested',
      message: `refreshInterval ${intervalText(interval)} elapsed: every target node re-resolves ${input.image} and pulls it again if the tag moved`,
    },
  };
}
