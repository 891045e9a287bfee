// The pull engine's "what next" decisions, on plain values: after a failed attempt, wait for the runtime,
// retry after a back-off, or give up; whether a failed image waits for its pull secrets to change, and
// whether they did. Pure: randomness and versions come in as arguments.
import type { NodeImage } from '../api/v1alpha1/nodeimageset.ts';
import { backoffDelaySeconds, decideRetry, type RandomSource } from '../lib/backoff.ts';
import type { ImageRecord } from './image-record.ts';
import type { PullFailure } from './pull-errors.ts';

/** Ceiling of the retry delay; the API allows backoffSeconds up to 3600, so the cap must not cut below it. */
export const MAX_BACKOFF_SECONDS = 3600;

export type NextStep =
  /** The runtime is away: not the image's fault, no attempt is spent; ask again after `delayMs`. */
  | { readonly kind: 'wait-for-runtime'; readonly delayMs: number }
  | { readonly kind: 'retry'; readonly delaySeconds: number }
  | { readonly kind: 'give-up' };

export interface NextStepInput {
  readonly failure: PullFailure;
  /** Attempts made in this round, the failed one included (at least 1). */
  readonly attempts: number;
  readonly retry: NodeImage['retry'];
  /** Consecutive waits for the runtime so far. */
  readonly runtimeWaits: number;
  readonly runtimeRetryMs: { readonly initial: number; readonly max: number };
  readonly previousDelaySeconds: number | undefined;
  readonly maxBackoffSeconds: number;
  readonly random: RandomSource;
}

export function nextStep(input: NextStepInput): NextStep {
  if (input.failure.reason === 'RuntimeUnavailable') {
    const { initial, max } = input.runtimeRetryMs;
    const seconds = backoffDelaySeconds({ baseSeconds: initial / 1000, capSeconds: max / 1000, jitter: 'none' }, Math.min(input.runtimeWaits, 16) + 1, input.random);
    return { kind: 'wait-for-runtime', delayMs: seconds * 1000 };
  }
  const decision = decideRetry({
    attempts: Math.max(1, input.attempts),
    maxAttempts: input.retry.maxAttempts,
    permanent: input.failure.permanent,
    policy: { baseSeconds: input.retry.backoffSeconds, capSeconds: input.maxBackoffSeconds, jitter: 'decorrelated' },
    random: input.random,
    ...(input.previousDelaySeconds !== undefined ? { previousDelaySeconds: input.previousDelaySeconds } : {}),
  });
  switch (decision.kind) {
    case 'retry':
      return { kind: 'retry', delaySeconds: decision.delaySeconds };
    case 'give-up':
      return { kind: 'give-up' };
    default: {
      const never: never = decision;
      throw new Error(`unhandled retry decision ${JSON.stringify(never)}`);
    }
  }
}

/** A Failed image whose last attempt was refused by the registry, with pull secrets that could change. */
export function waitsForSecretChange(record: ImageRecord, entry: NodeImage): boolean {
  return record.phase === 'Failed' && record.reason === 'Unauthorized' && entry.pullSecrets.length > 0;
}

/** True when the pull secrets read now differ from those the Unauthorized attempt used. */
export function secretsChanged(record: ImageRecord, entry: NodeImage, currentVersion: string): boolean {
  return waitsForSecretChange(record, entry) && record.secretsVersion !== currentVersion;
}
