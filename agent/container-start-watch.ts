// Lists the node's containers through CRI every interval and hands them to the agent, which counts the
// starts of its images warm or cold (container-starts.ts decides; this is only the polling). A failed
// list is logged and counted as a CRI error; the next pass tries again and misses nothing, since the
// ledger's watermark, not the pass, decides what is new.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { countCriError, type AgentMetrics } from './agent-metrics.ts';
import type { ContainerView } from './container-starts.ts';
import type { ImageRuntime } from './cri/runtime.ts';
import { classifyPullError } from './pull-errors.ts';
import { errorText } from '../lib/errors.ts';

const LIST_TIMEOUT_MS = 30_000;

export interface ContainerStartWatchOptions {
  runtime: ImageRuntime;
  /** 0: never runs. */
  intervalMs: number;
  log: Logger;
  metrics: AgentMetrics;
  onList: (containers: ContainerView[]) => void;
}

export async function runContainerStartWatch(opts: ContainerStartWatchOptions, signal: AbortSignal): Promise<void> {
  if (opts.intervalMs <= 0) return;
  const stopped = (): boolean => signal.aborted;
  // The first list at once: on a first start it sets the watermark (what ran before is not counted).
  for (let first = true; !stopped(); first = false) {
    if (!first) await sleep(opts.intervalMs, undefined, { signal }).catch(() => undefined);
    if (stopped()) break;
    try {
      const listed = await opts.runtime.listContainers({ signal: AbortSignal.any([signal, AbortSignal.timeout(LIST_TIMEOUT_MS)]) });
      opts.onList(listed.map((c) => ({ id: c.id, createdAt: c.createdAt.getTime(), image: c.image, imageRef: c.imageRef, imageId: c.imageId })));
    } catch (err) {
      if (stopped()) break;
      countCriError(opts.metrics, classifyPullError(err).reason);
      opts.log.warn('could not list containers to count warm and cold starts; trying again next time', { error: errorText(err) });
    }
  }
}
