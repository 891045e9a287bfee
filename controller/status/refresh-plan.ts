// Stage A of a pass, pure: new refreshes (the annotation changed, or refreshInterval is due), recorded in
// status.refresh before any NodeImageSet is planned from them, so rounds follow from the persisted record
// only (ADR 0007). Also when the next interval refresh is due, for the loop's wake-up.
import type { PrePullImage } from '../../api/v1alpha1/index.ts';
import { REFRESH_ANNOTATION } from '../../api/v1alpha1/labels.ts';
import type { Overlays } from '../write/overlays.ts';
import type { Write, WritePlan } from '../write/writes.ts';
import { refreshDecision } from './refresh.ts';

export interface RefreshPlan {
  readonly writes: WritePlan;
  /** When the next refreshInterval comes due (ms), if any PrePullImage has one. */
  readonly dueAtMs: number | undefined;
}

export function planRefreshes(cached: ReadonlyMap<string, PrePullImage>, overlays: Overlays, nowMs: number): RefreshPlan {
  let dueAtMs: number | undefined;
  const writes: Write[] = [];
  for (const [key, p] of cached) {
    if (p.metadata.deletionTimestamp !== undefined) continue;
    const previous = overlays.prePullImageStatus(key, p);
    const decision = refreshDecision({
      image: p.spec.image,
      imageDigest: p.spec.imageDigest,
      annotation: p.metadata.annotations?.[REFRESH_ANNOTATION],
      refreshInterval: p.spec.refreshInterval,
      generation: p.metadata.generation ?? 0,
      creationTimestamp: p.metadata.creationTimestamp,
      status: previous,
      nowMs,
    });
    switch (decision.kind) {
      case 'none':
        if (decision.dueAtMs !== undefined) dueAtMs = Math.min(dueAtMs ?? decision.dueAtMs, decision.dueAtMs);
        break;
      case 'refresh':
        writes.push({
          kind: 'prePullImageStatus', key, ppi: p, status: { ...previous, refresh: decision.refresh }, events: [decision.event],
          refresh: { record: decision.refresh, trigger: decision.trigger },
        });
        break;
      default: {
        const unreachable: never = decision;
        throw new Error(`unhandled refresh decision ${JSON.stringify(unreachable)}`);
      }
    }
  }
  return { writes: [{ writes }], dueAtMs };
}
