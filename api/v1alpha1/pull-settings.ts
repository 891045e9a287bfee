// How one image is pulled: retries, timeout, pull secrets, and the legacy resources block. Shared by
// PrePullPolicy, PrePullImage and NodeImageSet so the three agree on bounds and defaults.
import * as s from '../schema.ts';
import type { Infer } from '../schema.ts';
import { boundedDuration } from './duration.ts';
import { localObjectReferenceSchema } from './meta.ts';

export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_BACKOFF_SECONDS = 30;
export const DEFAULT_TIMEOUT = '10m';
export const MIN_TIMEOUT = '1s';
export const MAX_TIMEOUT = '24h';
export const DEFAULT_MEMORY_REQUEST = '64Mi';
export const DEFAULT_CPU_REQUEST = '100m';
export const MAX_PULL_SECRETS = 32;

export const retrySchema = s.object({
  maxAttempts: s.integer({
    minimum: 1,
    maximum: 100,
    description: 'Attempts per node before the image is marked Failed there, the first one included.',
  }).default(DEFAULT_MAX_ATTEMPTS),
  backoffSeconds: s.integer({
    minimum: 0,
    maximum: 3600,
    description: 'Seconds to wait before the first retry; later retries back off exponentially, with jitter.',
  }).default(DEFAULT_BACKOFF_SECONDS),
}, { description: 'Retries of failed pulls on each node.' });
export type Retry = Infer<typeof retrySchema>;

export function timeout(description: string): s.Schema<string> {
  return boundedDuration(MIN_TIMEOUT, MAX_TIMEOUT, description);
}

const TIMEOUT_DESCRIPTION = `Time allowed for one pull attempt on one node, as a duration (e.g. 90s, 10m, 1h); ${MIN_TIMEOUT} to ${MAX_TIMEOUT}.`;
export const timeoutSchema = timeout(TIMEOUT_DESCRIPTION).default(DEFAULT_TIMEOUT);

// resource.Quantity's serialised form, rewritten without backslashes (see image-reference.ts).
const QUANTITY_PATTERN = '^[+-]?(([0-9]+([.][0-9]*)?)|([.][0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+([.][0-9]*)?)|([.][0-9]+))))?$';

function quantity(description: string): s.Schema<number | string> {
  return s.intOrString({ maxLength: 64, pattern: QUANTITY_PATTERN, description });
}

const NO_EFFECT =
  'Accepted for compatibility and has no effect: kwarm runs no pull Jobs or pods, each node\'s kwarm-agent ' +
  'pulls through the container runtime\'s CRI socket, so there is nothing to size.';

export const resourcesSchema = s.object({
  requests: s.object({
    memory: quantity('Memory request, e.g. 64Mi.').default(DEFAULT_MEMORY_REQUEST),
    cpu: quantity('CPU request, e.g. 100m.').default(DEFAULT_CPU_REQUEST),
  }, { description: 'Requests for pull jobs; no effect, see resources.' }).default({}),
  limits: s.object({
    memory: quantity('Memory limit, e.g. 256Mi.').optional(),
    cpu: quantity('CPU limit, e.g. 500m.').optional(),
  }, { description: 'Limits for pull jobs; no effect, see resources.' }).optional(),
}, { description: `Resources for pull jobs. ${NO_EFFECT}` });
export type Resources = Infer<typeof resourcesSchema>;

export const MIN_REFRESH_INTERVAL = '1m';
export const MAX_REFRESH_INTERVAL = '8760h';

export const refreshIntervalSchema = boundedDuration(
  MIN_REFRESH_INTERVAL,
  MAX_REFRESH_INTERVAL,
  `How often every target node re-resolves a mutable tag (an image without a digest) and pulls it again when the registry has moved it; ${MIN_REFRESH_INTERVAL} to ${MAX_REFRESH_INTERVAL}. Absent: only on request (annotation kwarm.io/refresh).`,
);

export function pullSecretReferences(description: string): s.Schema<Infer<typeof localObjectReferenceSchema>[]> {
  return s.array(localObjectReferenceSchema, { maxItems: MAX_PULL_SECRETS, listType: { map: ['name'] }, description });
}
