// One node's agent, put together: the NodeImageSet watch feeds the pull engine, the engine's
// records become the status document the reporter writes, the warmth check and the disk guard run
// beside it. Startup waits for the runtime (with back-off) and the first list; shutdown stops new
// work, lets running pulls finish within the grace period and flushes status.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { Check } from '../lib/endpoints.ts';
import type { KubeClient } from '../lib/kube-client.ts';
import type { AgentMetrics } from './agent-metrics.ts';
import type { ImageRuntime, RuntimeVersion } from './cri/runtime.ts';
import { runDiskGuard, type StatfsFn } from './disk-guard.ts';
import { runtimeLiveness, runtimeReadiness } from './health-checks.ts';
import { withoutPulled, withPulled } from './pulled-images.ts';
import { ImageRemover } from './image-remover.ts';
import { NodeImageSetWatch, type WatchedNodeImageSet } from './node-image-set-watch.ts';
import { PullEngine, type RepullAfterGc } from './pull-engine.ts';
import type { DrainResult } from './work-queue.ts';
import { RuntimeHealth, connectRuntime, type ConnectOptions } from './runtime-connection.ts';
import { KubeSecretSource, type SecretSource } from './secret-reader.ts';
import { buildStatus, type ImageFsReport } from './status-document.ts';
import { StatusReporter } from './status-reporter.ts';
import { runWarmthCheck } from './warmth-check.ts';
import { runContainerStartWatch } from './container-start-watch.ts';
import { EMPTY_LEDGER, countStarts, ledgerFromStatus, observeRecords, type ContainerView, type StartLedger } from './container-starts.ts';
import { errorText } from '../lib/errors.ts';

export interface AgentConfig {
  nodeName: string;
  /** kwarm's namespace, where the controller puts the copied pull secrets. */
  namespace: string;
  /** --cri-socket; undefined means auto-detect. */
  criSocket: string | undefined;
  /** Paths tried by auto-detection; the usual containerd, CRI-O and k3s paths when undefined. */
  criCandidates?: readonly string[];
  maxPullsPerNode: number;
  verifyIntervalMs: number;
  /** How often container starts are counted warm or cold; 0 or undefined = never. */
  containerStartsIntervalMs?: number;
  /** 0 = off. */
  diskThresholdPercent: number;
  diskCheckIntervalMs: number;
  shutdownGraceMs: number;
  /** --runtime-unreachable-timeout: liveness fails once the runtime has been silent this long; 0 = never. */
  runtimeUnreachableLimitMs: number;
  /** --repull-after-gc; `now` when undefined. */
  repullAfterGc?: RepullAfterGc;
  statusMinIntervalMs?: number;
  runtimeProbeIntervalMs?: number;
}

export interface AgentDeps {
  client: KubeClient;
  log: Logger;
  metrics: AgentMetrics;
  /** Defaults to GETs in `config.namespace`. */
  secrets?: SecretSource;
  connect?: ConnectOptions['connect'];
  statfs?: StatfsFn;
  /** Epoch ms; Date.now by default. */
  now?: () => number;
}

export interface ShutdownSummary extends DrainResult {
  /** False when the final status could not be written. */
  statusFlushed: boolean;
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => { signal.addEventListener('abort', () => { resolve(); }, { once: true }); });
}

export class Agent {
  readonly #config: AgentConfig;
  readonly #deps: AgentDeps;
  readonly #reporter: StatusReporter;
  readonly #watch: NodeImageSetWatch;
  #engine: PullEngine | undefined;
  #remover: ImageRemover | undefined;
  #health: RuntimeHealth | undefined;
  #runtime: ImageRuntime | undefined;
  #runtimeInfo: RuntimeVersion | undefined;
  #heartbeatAt: number | undefined;
  #latestImageFs: ImageFsReport | undefined;
  #publishedImageFs: ImageFsReport | undefined;
  /** The spec last handed to the engine, to skip events that only changed status. */
  #appliedKey: string | undefined;
  #holdPublish = false;
  /** The disk guard's last decision; undefined before its first measurement. */
  #diskPause: boolean | undefined;
  readonly #now: () => number;
  /** Stands in for "the runtime last answered" until it first does. */
  readonly #startedAt: number;
  #connectError: string | undefined;
  /** Images this agent brought onto the node (status.pulledImageIds); restored from status at start. */
  #pulledImageIds: string[] = [];
  /** Container starts counted per image (status.images[].warmStarts, ...); restored from status at start. */
  #starts: StartLedger = EMPTY_LEDGER;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#startedAt = this.#now();
    this.#reporter = new StatusReporter({
      client: deps.client,
      nodeName: config.nodeName,
      log: deps.log,
      metrics: deps.metrics,
      ...(config.statusMinIntervalMs !== undefined ? { minIntervalMs: config.statusMinIntervalMs } : {}),
    });
    this.#watch = new NodeImageSetWatch({
      client: deps.client,
      nodeName: config.nodeName,
      log: deps.log,
      onChange: (obj) => { this.#onObject(obj); },
    });
  }

  /** Liveness: fails only when the runtime has been silent longer than the limit (see health-checks.ts). */
  liveness(): Record<string, Check> {
    return {
      cri: () => {
        const state = this.#health?.state;
        return runtimeLiveness({
          answeredAtMs: this.#health?.answeredAt ?? this.#startedAt,
          nowMs: this.#now(),
          limitMs: this.#config.runtimeUnreachableLimitMs,
          lastError: state === undefined ? this.#connectError : state.kind === 'unreachable' ? state.error : undefined,
        });
      },
    };
  }

  /** Readiness: the runtime answers and the NodeImageSet watch is open. */
  readiness(): Record<string, Check> {
    return {
      cri: () => {
        const state = this.#health?.state;
        return runtimeReadiness(state === undefined ? { kind: 'connecting', lastError: this.#connectError } : state.kind === 'ok' ? { kind: 'ok' } : state);
      },
      api: () => (this.#watch.healthy ? { ok: true } : { ok: false, reason: `NodeImageSet watch not open${this.#watch.lastError !== undefined ? `: ${this.#watch.lastError}` : ''}` }),
    };
  }

  /** Runs until `stop` aborts, then shuts down gracefully. */
  async run(stop: AbortSignal): Promise<ShutdownSummary> {
    const config = this.#config;
    const log = this.#deps.log;
    const loops = new AbortController();
    const tasks: Promise<unknown>[] = [this.#watch.run(loops.signal), this.#reporter.run(loops.signal)];
    const finish = async (): Promise<void> => {
      loops.abort();
      await Promise.allSettled(tasks);
      this.#runtime?.close();
    };
    try {
      const found = await connectRuntime({
        ...(config.criSocket !== undefined ? { explicit: config.criSocket } : {}),
        ...(config.criCandidates !== undefined ? { candidates: config.criCandidates } : {}),
        ...(this.#deps.connect !== undefined ? { connect: this.#deps.connect } : {}),
        log,
        onFailure: (why) => { this.#connectError = why; },
      }, stop);
      this.#runtime = found.runtime;
      this.#runtimeInfo = found.version;
      await this.#watch.waitForSync(stop);
    } catch (err) {
      await finish();
      if (stop.aborted) return { finished: 0, aborted: 0, dropped: 0, statusFlushed: true };
      throw err;
    }
    const runtime = this.#runtime;
    const engine = new PullEngine({
      runtime,
      secrets: this.#deps.secrets ?? new KubeSecretSource(this.#deps.client, config.namespace),
      cap: config.maxPullsPerNode,
      repullAfterGc: config.repullAfterGc ?? 'now',
      log,
      metrics: this.#deps.metrics,
      onChange: () => {
        this.#remover?.poke();
        this.#publish();
      },
      onBroughtIn: (imageId) => { this.#pulledImageIds = withPulled(this.#pulledImageIds, imageId); },
    });
    this.#engine = engine;
    // Removals see the engine's records: an image wanted (under any name) or still being pulled is never removed.
    const remover = new ImageRemover({
      runtime,
      log,
      metrics: this.#deps.metrics,
      wanted: () => engine.records().map((r) => ({ image: r.image, phase: r.phase, ...(r.imageId !== undefined ? { imageId: r.imageId } : {}) })),
      pulledImageIds: () => this.#pulledImageIds,
      onRemoved: (imageId) => { this.#pulledImageIds = withoutPulled(this.#pulledImageIds, imageId); },
      onChange: () => { this.#publish(); },
    });
    this.#remover = remover;
    // With the guard on, nothing is pulled before the first measurement says there is room.
    if (config.diskThresholdPercent > 0) engine.pausePulls();
    this.#health = new RuntimeHealth({
      runtime,
      initial: this.#runtimeInfo,
      log,
      now: this.#now,
      intervalMs: config.runtimeProbeIntervalMs ?? 5000,
      onChange: (state) => {
        if (state.kind === 'ok') this.#runtimeInfo = state.version;
        this.#publish();
      },
    });
    this.#heartbeatAt = Date.now();
    // The first status shows what CRI has, not "Pending" for images that are already there.
    this.#holdPublish = true;
    this.#onObject(this.#watch.current);
    await Promise.race([engine.surveyed(), sleep(10_000, undefined, { signal: stop }).catch(() => undefined)]);
    this.#holdPublish = false;
    this.#publish();
    log.info('agent started', {
      node: config.nodeName,
      maxPullsPerNode: config.maxPullsPerNode,
      images: engine.records().length,
      verifyIntervalMs: config.verifyIntervalMs,
      diskThresholdPercent: config.diskThresholdPercent,
    });
    tasks.push(
      this.#health.run(loops.signal),
      remover.run(loops.signal),
      runWarmthCheck({
        engine,
        intervalMs: config.verifyIntervalMs,
        log,
        onPass: () => {
          this.#heartbeatAt = Date.now();
          this.#publishedImageFs = this.#latestImageFs;
          this.#publish();
        },
      }, loops.signal),
      runContainerStartWatch({
        runtime,
        intervalMs: config.containerStartsIntervalMs ?? 0,
        log,
        metrics: this.#deps.metrics,
        onList: (containers) => { this.#onContainers(containers); },
      }, loops.signal),
      runDiskGuard({
        runtime,
        thresholdPercent: config.diskThresholdPercent,
        intervalMs: config.diskCheckIntervalMs,
        log,
        ...(this.#deps.statfs !== undefined ? { statfs: this.#deps.statfs } : {}),
        onReport: (report, pause) => { this.#onDiskReport(report, pause); },
      }, loops.signal),
    );

    await aborted(stop);
    log.info('shutting down: no new pulls; waiting for running ones', { graceMs: config.shutdownGraceMs, running: engine.activePulls });
    const drained = await engine.drain(config.shutdownGraceMs);
    this.#publish();
    let statusFlushed = true;
    try {
      await this.#reporter.flush(AbortSignal.timeout(5000));
    } catch (err) {
      statusFlushed = false;
      log.error('final status write failed', { error: errorText(err) });
    }
    await finish();
    return { ...drained, statusFlushed };
  }

  #onObject(obj: WatchedNodeImageSet | undefined): void {
    this.#reporter.objectSeen(obj?.uid);
    const engine = this.#engine;
    if (engine === undefined) return;
    if (obj === undefined) {
      if (this.#appliedKey !== undefined) {
        this.#deps.log.info('NodeImageSet is gone; dropping its images', { node: this.#config.nodeName });
        engine.clear();
        this.#remover?.clear();
      }
      this.#appliedKey = undefined;
      return;
    }
    const key = JSON.stringify([obj.uid, obj.generation, obj.spec]);
    if (key === this.#appliedKey) return;
    const first = this.#appliedKey === undefined;
    this.#appliedKey = key;
    // What this agent pulled before it restarted; merged, so nothing learnt since start is lost.
    if (first) this.#starts = ledgerFromStatus(obj.status);
    if (first) for (const id of obj.status?.pulledImageIds ?? []) if (!this.#pulledImageIds.includes(id)) this.#pulledImageIds = withPulled(this.#pulledImageIds, id);
    // The previous status only matters once, when the agent has just started.
    engine.applySpec(obj.spec, obj.generation, first ? obj.status : undefined);
    this.#remover?.applySpec(obj.spec, first ? obj.status : undefined);
  }

  #onDiskReport(report: ImageFsReport, pause: boolean): void {
    const engine = this.#engine;
    if (engine === undefined) return;
    this.#latestImageFs = report;
    const changed = pause !== this.#diskPause;
    this.#diskPause = pause;
    if (pause) engine.pausePulls();
    else engine.resumePulls();
    if (changed && pause) {
      this.#deps.log.warn('image filesystem above the disk threshold; new pulls wait', { usedPercent: report.usedPercent, thresholdPercent: this.#config.diskThresholdPercent });
    } else if (changed && this.#config.diskThresholdPercent > 0) {
      this.#deps.log.info('image filesystem below the disk threshold; pulls may start', { usedPercent: report.usedPercent });
    }
    // Published at once when it matters (first figures, pause changed); otherwise with the heartbeat,
    // so fluctuating byte counts do not cause a write each time.
    if (changed || this.#publishedImageFs === undefined) {
      this.#publishedImageFs = report;
      this.#publish();
    }
  }

  /** The ledger follows the records: entries appear and go with spec, readySince/warmSince with presence. */
  #observeRecords(engine: PullEngine): void {
    const { ledger, warmed } = observeRecords(this.#starts, engine.records(), this.#now());
    this.#starts = ledger;
    for (const ms of warmed) this.#deps.metrics.timeToWarm.observe(ms / 1000);
  }

  #onContainers(containers: ContainerView[]): void {
    const engine = this.#engine;
    if (engine === undefined || this.#holdPublish) return;
    this.#observeRecords(engine);
    const counted = countStarts(this.#starts, containers, engine.records(), this.#now());
    if (counted.ledger === this.#starts) return;
    this.#starts = counted.ledger;
    const { metrics, log } = this.#deps;
    if (counted.warm > 0) metrics.containerStarts.inc({ result: 'warm' }, counted.warm);
    if (counted.cold > 0) metrics.containerStarts.inc({ result: 'cold' }, counted.cold);
    if (counted.savedMs > 0) metrics.pullSecondsSaved.inc(counted.savedMs / 1000);
    if (counted.warm + counted.cold > 0) log.info('container starts counted', { warm: counted.warm, cold: counted.cold, pullSecondsSaved: counted.savedMs / 1000 });
    this.#publish();
  }

  #publish(): void {
    const engine = this.#engine;
    if (engine === undefined || this.#holdPublish) return;
    this.#observeRecords(engine);
    const info = this.#runtimeInfo;
    this.#reporter.update(buildStatus({
      records: engine.records(),
      observedGeneration: engine.observedGeneration,
      runtime: info === undefined ? undefined : { name: info.runtimeName, version: info.runtimeVersion },
      heartbeatAt: this.#heartbeatAt,
      imageFs: this.#publishedImageFs,
      removals: this.#remover?.statuses() ?? [],
      pulledImageIds: this.#pulledImageIds,
      starts: this.#starts,
    }));
  }
}
