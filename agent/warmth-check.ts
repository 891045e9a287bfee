// Keeping images warm: every verify interval the engine looks up each Completed image in the
// runtime and pulls again what is gone (kubelet image GC). Each pass is also the agent's heartbeat.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { PullEngine } from './pull-engine.ts';

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
