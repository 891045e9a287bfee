// When a list-watch reconnects and how long each watch asks the server to last. Pure: randomness comes in
// as a function. Both are jittered so that thousands of agents that lost the API server together (a
// restart, a network blip) do not come back, or time out their watches, in lock-step.
import { backoffDelaySeconds, type RandomSource } from './backoff.ts';

export interface ReconnectPolicy {
  initialMs: number;
  maxMs: number;
}

/**
 * The wait before reconnect number `failures` (1 = after the first failure): decorrelated jitter, so never
 * below `initialMs`, growing roughly threefold from the previous wait, capped at `maxMs`.
 */
export function reconnectDelayMs(policy: ReconnectPolicy, failures: number, random: RandomSource, previousMs?: number): number {
  const seconds = backoffDelaySeconds(
    { baseSeconds: policy.initialMs / 1000, capSeconds: policy.maxMs / 1000, jitter: 'decorrelated' },
    Math.max(1, Math.floor(failures)),
    random,
    previousMs === undefined ? undefined : previousMs / 1000,
  );
  return Math.round(seconds * 1000);
}

/**
 * The server-side timeout of one watch request: uniform in [base, 2·base), as client-go picks 5 to 10 minutes
 * from a 5-minute base. Whole seconds, since that is what the API takes.
 */
export function watchTimeoutSeconds(baseSeconds: number, random: RandomSource): number {
  if (!Number.isFinite(baseSeconds) || baseSeconds < 1) throw new RangeError(`watch timeout must be at least 1 s, got ${baseSeconds}`);
  const r = random();
  const draw = Number.isFinite(r) && r > 0 ? Math.min(r, 1 - Number.EPSILON) : 0;
  return Math.floor(baseSeconds * (1 + draw));
}
