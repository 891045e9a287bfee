// The agent's Prometheus metrics, on a registry of its own (no global default registry), served on
// --metrics-bind-address. Label values come from bounded sets only.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PullFailureReason } from './pull-errors.ts';

/** How one PullImage call ended. */
export const PULL_CALL_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;
export type PullCallStatus = (typeof PULL_CALL_STATUSES)[number];

/** Outcomes of a status patch. */
export type StatusWriteResult = 'written' | 'error';

export interface AgentMetrics {
  readonly registry: Registry;
  /** Wall time of each PullImage call, by how it ended. */
  readonly pullDuration: Histogram<'status'>;
  /** PullImage calls in flight. */
  readonly activePulls: Gauge;
  readonly pullsTotal: Counter<'status'>;
  /** Sizes the runtime reports for images a pull actually brought in. */
  readonly pulledBytes: Counter;
  /** Images pulled again because they disappeared from the runtime (kubelet image GC). */
  readonly repulls: Counter;
  /** Failed CRI calls by reason (the same reasons as in NodeImageSet status). */
  readonly criErrors: Counter<'reason'>;
  readonly statusWrites: Counter<'result'>;
  /** Bytes of the status patches written (the JSON bodies). */
  readonly statusWriteBytes: Counter;
  /** Answers to NodeImageSet spec.removals entries, by result (Removed, NotPresent, Kept, Failed). */
  readonly removals: Counter<'result'>;
  /** Container starts of images in the NodeImageSet: warm (kwarm had pulled the image first) or cold. */
  readonly containerStarts: Counter<'result'>;
  /** kwarm's pull time of an image, added at the first warm start after that pull. */
  readonly pullSecondsSaved: Counter;
  /** From an entry appearing in the NodeImageSet to the image Completed on this node. */
  readonly timeToWarm: Histogram;
}

export function createAgentMetrics(opts: { defaultMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  // Event-loop lag sampled every 100 ms, not the default 10: the idle agent would otherwise wake 100 times a second.
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  const containerStarts = new Counter({
    name: 'kwarm_container_starts_total',
    help: 'Containers started on this node with an image of its NodeImageSet: warm when kwarm had pulled the image before the container was created, cold when it did not have it yet (the kubelet pulled it, or kwarm was late). Starts of images kwarm found already present are not counted.',
    labelNames: ['result'] as const,
    registers,
  });
  // Both series exist from the start, so a warm-start ratio has a denominator before the first start.
  for (const result of ['warm', 'cold']) containerStarts.inc({ result }, 0);
  return {
    registry,
    pullDuration: new Histogram({
      name: 'kwarm_pull_duration_seconds',
      help: 'Duration of CRI PullImage calls made by the agent, by outcome.',
      labelNames: ['status'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    }),
    activePulls: new Gauge({
      name: 'kwarm_active_pulls',
      help: 'CRI PullImage calls in flight on this node.',
      registers,
    }),
    pullsTotal: new Counter({
      name: 'kwarm_pulls_total',
      help: 'CRI PullImage calls made by the agent, by outcome (succeeded, failed, cancelled).',
      labelNames: ['status'],
      registers,
    }),
    pulledBytes: new Counter({
      name: 'kwarm_pulled_bytes_total',
      help: 'Size, as the runtime reports it, of images the agent pulled onto this node.',
      registers,
    }),
    repulls: new Counter({
      name: 'kwarm_repulls_total',
      help: 'Images pulled again because they were removed from the runtime (e.g. by kubelet image garbage collection).',
      registers,
    }),
    criErrors: new Counter({
      name: 'kwarm_cri_errors_total',
      help: 'Failed CRI calls, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    statusWrites: new Counter({
      name: 'kwarm_status_writes_total',
      help: 'NodeImageSet status patches sent, by result.',
      labelNames: ['result'],
      registers,
    }),
    statusWriteBytes: new Counter({
      name: 'kwarm_status_write_bytes_total',
      help: 'Bytes of the NodeImageSet status patches written (JSON bodies): only the fields that changed are sent.',
      registers,
    }),
    removals: new Counter({
      name: 'kwarm_removals_total',
      help: 'Images the agent was asked to remove, by what it did: Removed, NotPresent, Kept (in use or wanted) or Failed.',
      labelNames: ['result'],
      registers,
    }),
    containerStarts,
    pullSecondsSaved: new Counter({
      name: 'kwarm_pull_seconds_saved_total',
      help: 'Pull time kwarm saved on this node: its own measured pull of an image, added at the first warm start after that pull.',
      registers,
    }),
    timeToWarm: new Histogram({
      name: 'kwarm_time_to_warm_seconds',
      help: 'Time from an image appearing in the NodeImageSet to it being present (Completed) on this node.',
      buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
  };
}

export function countPullCall(metrics: AgentMetrics, status: PullCallStatus, seconds: number): void {
  metrics.pullDuration.observe({ status }, seconds);
  metrics.pullsTotal.inc({ status });
}

export function countCriError(metrics: AgentMetrics, reason: PullFailureReason): void {
  metrics.criErrors.inc({ reason });
}
