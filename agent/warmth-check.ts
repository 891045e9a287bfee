// Keeping images warm: every verify interval the engine looks up each Completed image in the
// runtime and pulls again what is gone (kubelet image GC). Each pass is also the agent's heartbeat.
// What one look-up means is decided here (`warmthVerdict`, pure); the engine acts on it.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { ImageInfo } from './cri/runtime.ts';
import type { ImageRecord } from './image-record.ts';
import type { PullEngine } from './pull-engine.ts';

export type WarmthVerdict =
  /** The runtime lost it: pull it again (counted as a re-pull). */
  | { readonly kind: 'gone' }
  /** Still the same image: nothing to record, so a quiet node writes nothing for it. */
  | { readonly kind: 'unchanged' }
  /** Present but different (another id under the same reference): record what the runtime has. */
  | { readonly kind: 'changed'; readonly info: ImageInfo };

export function warmthVerdict(record: ImageRecord, info: ImageInfo | undefined): WarmthVerdict {
  if (info === undefined) return { kind: 'gone' };
  return record.imageId === info.id && record.sizeBytes === info.sizeBytes ? { kind: 'unchanged' } : { kind: 'changed', info };
}

export interface WarmthCheckOptions {
  engine: PullEngine;
  intervalMs: number;
  log: Logger;
  /** Called after every pass, whatever it found (the heartbeat). */
  onPass: () => void;
}

export async function runWarmthCheck(opts: WarmthCheckOptions, signal: AbortSignal): Promise<void> {
  const stopped = (): boolean => signal.aborted;
  while (!stopped()) {
    await sleep(opts.intervalMs, undefined, { signal }).catch(() => undefined);
    if (stopped()) break;
    const started = performance.now();
    const { checked, repulled } = await opts.engine.verify(signal);
    opts.log.debug('warmth check done', { checked, repulled: repulled.length, durationMs: Math.round(performance.now() - started) });
    opts.onPass();
  }
}
