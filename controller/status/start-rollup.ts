// Warm and cold container starts and the pull time saved, summed from the target nodes' NodeImageSets
// into PrePullImage status (warmStarts, coldStarts, pullSecondsSaved), so `kubectl get ppi` answers
// "is kwarm helping?". The agents count (agent/container-starts.ts); this only adds up, for the nodes
// the PrePullImage targets now. Pure.
import type { PrePullImageStatus } from '../../api/v1alpha1/index.ts';
import { isRecord } from '../../lib/raw.ts';
import type { NodeImageSetView } from '../plan/node-image-set-view.ts';

export interface StartCounts {
  readonly warmStarts?: number;
  readonly coldStarts?: number;
  readonly pullMillisecondsSaved?: number;
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

/** The counts of one NodeImageSet status.images entry, only those above 0 (the decoder keeps them). */
export function startCounts(entry: unknown): StartCounts {
  if (!isRecord(entry)) return {};
  const warm = count(entry.warmStarts);
  const cold = count(entry.coldStarts);
  const saved = count(entry.pullMillisecondsSaved);
  return {
    ...(warm !== undefined ? { warmStarts: warm } : {}),
    ...(cold !== undefined ? { coldStarts: cold } : {}),
    ...(saved !== undefined ? { pullMillisecondsSaved: saved } : {}),
  };
}

export interface StartRollup {
  readonly warmStarts: number;
  readonly coldStarts: number;
  /** Whole seconds. */
  readonly pullSecondsSaved: number;
}

/** Sums the counts for `image` over `nodes`; undefined when no node counted a start (the status stays as it was). */
export function startRollup(image: string, nodes: readonly string[], current: ReadonlyMap<string, NodeImageSetView>): StartRollup | undefined {
  let warm = 0;
  let cold = 0;
  let savedMs = 0;
  for (const node of nodes) {
    const s = current.get(node)?.status.get(image);
    if (s === undefined) continue;
    warm += s.warmStarts ?? 0;
    cold += s.coldStarts ?? 0;
    savedMs += s.pullMillisecondsSaved ?? 0;
  }
  if (warm === 0 && cold === 0) return undefined;
  return { warmStarts: warm, coldStarts: cold, pullSecondsSaved: Math.round(savedMs / 1000) };
}

/** `status` with the roll-up's fields (left out when there is none). */
export function withStarts(status: PrePullImageStatus, rollup: StartRollup | undefined): PrePullImageStatus {
  return rollup === undefined ? status : { ...status, ...rollup };
}
