// Which images this agent brought onto its node itself: the provenance that lets a removal touch only
// what kwarm added, never an image the kubelet, a user or the node image put there. Kept as image ids
// in NodeImageSet status (status.pulledImageIds), so it survives agent restarts; the agent reads it
// back from the status it finds when it starts. Pure: plain lists in, plain lists out.
import { MAX_PULLED_IMAGE_IDS } from '../api/v1alpha1/nodeimageset.ts';

/**
 * Whether a pull brought the image in: the runtime had nothing under that reference before, or had
 * other content (a moved tag). An image that was already there under the same reference is not ours.
 */
export function broughtIn(beforeId: string | undefined, afterId: string): boolean {
  return beforeId !== afterId;
}

/** `ids` with `id` added (moved to the end if known); the oldest are forgotten beyond the limit. */
export function withPulled(ids: readonly string[], id: string, max: number = MAX_PULLED_IMAGE_IDS): string[] {
  const out = ids.filter((i) => i !== id);
  out.push(id);
  return out.length > max ? out.slice(out.length - max) : out;
}

export function withoutPulled(ids: readonly string[], id: string): string[] {
  return ids.filter((i) => i !== id);
}
