// The node warm-up barrier's API: which images a node registered with kwarm's startup taint waits for, and
// the names kwarm uses on Nodes (taint key, condition type). Shared by the CRDs, the controller and the docs.
import * as s from '../schema.ts';

/** Default key of the startup taint kwarm removes once a node's gating images are present (effect NoSchedule). */
export const DEFAULT_WARMUP_TAINT_KEY = 'kwarm.io/warming';
/** The Node condition kwarm writes: True once the node's gating images are present, or the barrier was lifted without them. */
export const IMAGES_WARM_CONDITION = 'ImagesWarm';
/** Default time after a node's creation at which the barrier comes off whatever the images (fail open). */
export const DEFAULT_WARMUP_TIMEOUT = '10m';

const GATE_TEXT =
  `Nodes that carry kwarm's startup taint (default ${DEFAULT_WARMUP_TAINT_KEY}, e.g. new nodes registered with it) keep it, ` +
  `and their ${IMAGES_WARM_CONDITION} condition stays False, until this image is present on them; the controller's ` +
  '--warmup-timeout (counted from the node\'s creation) lifts the taint anyway. Off: the image is pre-pulled, but no node waits for it.';

/** spec.gateNewNodes on a PrePullPolicy (for every image it derives) or a PrePullImage. */
export function gateNewNodes(what: string): s.Schema<boolean, boolean, 'defaulted'> {
  return s.boolean({ description: `${what} ${GATE_TEXT}` }).default(false);
}
