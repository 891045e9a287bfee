// The pull engine: turns the NodeImageSet spec into CRI calls. Each image is surveyed first
// (ImageStatus, outside the concurrency limit), then pulled through the WorkQueue when needed, with
// a per-attempt timeout (AbortSignal + gRPC deadline), credentials from the referenced pull
// secrets, retries with back-off, and digest verification. Everything it learns is kept in one
// ImageRecord per image; `onChange` tells the owner to publish it.
//
// Each tracked image has an epoch: a spec change, removal or re-pull bumps it and cancels what was
// queued or running for the old one, and any late result for an old epoch is ignored.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { NodeImage, NodeImageSetSpec, NodeImageSetStatus } from '../api/v1alpha1/nodeimageset.ts';
import { durationMilliseconds } from '../api/v1alpha1/duration.ts';
import { countCriError, countPullCall, type AgentMetrics } from './agent-metrics.ts';
import type { RandomSource } from '../lib/backoff.ts';
import type { RegistryCredential } from './credentials.ts';
import type { ImageInfo, ImageRuntime, RegistryAuth } from './cri/runtime.ts';
import {
  classifySpecChange,
  digestProblem,
  needsPull,
  pendingRecord,
  reportedRepoDigest,
  type ImageRecord,
} from './image-record.ts';
import { pullCredentials, secretsVersion, type PullCredentials } from './pull-credentials.ts';
import { redact } from './redaction.ts';
import { classifyAttemptFailure, classifyPullError, pullFailure, type PullFailure } from './pull-errors.ts';
import { WorkQueue, type DrainResult, type TaskOutcome } from './work-queue.ts';
import { broughtIn } from './pulled-images.ts';
import { warmthVerdict } from './warmth-check.ts';
import { MAX_BACKOFF_SECONDS, REMOVED_FROM_RUNTIME, nextStep, secretsChanged, waitsForSecretChange } from './pull-decision.ts';
import type { SecretSource } from './secret-reader.ts';
import { errorText } from '../lib/errors.ts';

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
/** Deadline for the quick calls (ImageStatus) made around a pull. */
const STATUS_CALL_TIMEOUT_MS = 30_000;
/** A survey answer this recent is not asked again when the pull starts. */
const FRESH_SURVEY_MS = 1000;

export interface PullEngineOptions {
  runtime: ImageRuntime;
  secrets: SecretSource;
  /** --max-pulls-per-node: the most pulls at once, whatever the NodeImageSet asks for. */
  cap: number;
  log: Logger;
  metrics: AgentMetrics;
  /** Called (synchronously) whenever a record changed. */
  onChange: () => void;
  /**
   * An image found gone from the runtime (kubelet image GC): `now` pulls it again at once; `wait` reports it
   * Pending with reason RemovedFromRuntime and pulls only once the controller raises its round, so re-pulls
   * go through the cluster-wide budget. Default `now`.
   */
  repullAfterGc?: RepullAfterGc;
  /** Called when a pull brought an image onto the node that was not there under that reference before. */
  onBroughtIn?: (imageId: string) => void;
  now?: () => number;
  random?: RandomSource;
  /** ImageStatus calls at once while surveying (they do not take pull slots). */
  surveyConcurrency?: number;
  /** Ceiling for the exponential retry delay. */
  maxBackoffSeconds?: number;
  /** Waits while the runtime is unreachable: first, and ceiling (doubling in between). */
  runtimeRetryMs?: { initial: number; max: number };
}

export type RepullAfterGc = 'now' | 'wait';

/** What a survey leads to when the runtime does not have the image (or has the wrong one). */
type AfterSurvey = 'pull' | 'keep-failed' | 'hold-if-missing';

type AttemptResult =
  | { readonly kind: 'present'; readonly info: ImageInfo }
  | { readonly kind: 'pulled'; readonly info: ImageInfo; readonly newImage: boolean }
  | { readonly kind: 'failed'; readonly failure: PullFailure };

interface Tracked {
  entry: NodeImage;
  record: ImageRecord;
  epoch: number;
  /** The round was raised: pull even if the image is present. */
  force: boolean;
  /** The round in which a mutable tag was last resolved by a pull (or found resolved at start). */
  resolvedRound: number | undefined;
  /** Queue key of the survey or attempt in flight for this epoch. */
  taskKey: string | undefined;
  retryTimer: AbortController | undefined;
  lastDelaySeconds: number | undefined;
  runtimeWaits: number;
}

/** CRI AuthConfig for one credential. No server address: the credential was already matched to
 * the image's registry, and containerd would drop credentials whose address it cannot parse. */
function registryAuth(c: RegistryCredential): RegistryAuth {
  const auth: RegistryAuth = {};
  if (c.username !== '') auth.username = c.username;
  if (c.password !== '') auth.password = c.password;
  if (c.identityToken !== '') auth.identityToken = c.identityToken;
  if (c.registryToken !== '') auth.registryToken = c.registryToken;
  return auth;
}

export class PullEngine {
  readonly #opts: PullEngineOptions;
  readonly #now: () => number;
  readonly #random: RandomSource;
  readonly #entries = new Map<string, Tracked>();
  #order: string[] = [];
  readonly #pulls: WorkQueue<AttemptResult>;
  readonly #surveys: WorkQueue<ImageInfo | undefined>;
  readonly #surveyAbort = new AbortController();
  #epochs = 0;
  #tasks = 0;
  #closed = false;
  #surveying = 0;
  readonly #surveyWaiters: (() => void)[] = [];
  #generation: number | undefined;
  #first = true;

  constructor(opts: PullEngineOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#pulls = new WorkQueue({ cap: opts.cap });
    this.#surveys = new WorkQueue({ cap: opts.surveyConcurrency ?? 4, signal: this.#surveyAbort.signal });
  }

  /** The generation of the spec last applied. */
  get observedGeneration(): number | undefined {
    return this.#generation;
  }

  /** The effective concurrency limit. */
  get limit(): number {
    return this.#pulls.limit;
  }

  get activePulls(): number {
    return this.#pulls.active;
  }

  /** Resolves once no survey is queued or running: every image's presence in the runtime is known. */
  surveyed(): Promise<void> {
    if (this.#surveying === 0) return Promise.resolve();
    return new Promise((resolve) => this.#surveyWaiters.push(resolve));
  }

  /** Records in spec order. */
  records(): ImageRecord[] {
    return this.#order.flatMap((k) => {
      const t = this.#entries.get(k);
      return t === undefined ? [] : [t.record];
    });
  }

  /**
   * Makes the tracked images follow `spec`. `previous` is the status found on the object when the
   * agent started: used once, only for what CRI cannot tell (a Failed round is not retried on
   * restart; a mutable tag already resolved in this round is not pulled again; a raised round is).
   */
  applySpec(spec: NodeImageSetSpec, generation: number | undefined, previous?: NodeImageSetStatus): void {
    if (this.#closed) return;
    this.#generation = generation;
    this.#pulls.setLimit(spec.maxConcurrentPulls);
    const wanted = new Set(spec.images.map((e) => e.image));
    for (const [key, t] of this.#entries) {
      if (!wanted.has(key)) {
        this.#cancelTasks(t);
        this.#entries.delete(key);
      }
    }
    this.#order = spec.images.map((e) => e.image);
    const hints = this.#first ? new Map((previous?.images ?? []).map((i) => [i.image, i])) : new Map<string, never>();
    this.#first = false;
    for (const entry of spec.images) {
      const t = this.#entries.get(entry.image);
      if (t === undefined) {
        this.#track(entry, hints.get(entry.image));
        continue;
      }
      const change = classifySpecChange(t.entry, entry);
      t.entry = entry;
      switch (change.kind) {
        case 'unchanged':
          break;
        case 'new-round':
          this.#restart(t, true);
          this.#survey(t, 'pull');
          break;
        case 'settings':
          // A running or waiting pull picks the new settings up at its next attempt.
          if (t.record.phase === 'Failed' || (t.record.phase === 'Completed' && entry.imageDigest !== undefined)) {
            this.#restart(t, false);
            this.#survey(t, 'pull');
          }
          break;
        default: {
          const never: never = change;
          throw new Error(`unhandled spec change ${JSON.stringify(never)}`);
        }
      }
    }
    this.#opts.onChange();
  }

  #track(entry: NodeImage, hint: NonNullable<NodeImageSetStatus['images']>[number] | undefined): void {
    const t: Tracked = {
      entry,
      record: pendingRecord(entry),
      epoch: ++this.#epochs,
      force: false,
      resolvedRound: undefined,
      taskKey: undefined,
      retryTimer: undefined,
      lastDelaySeconds: undefined,
      runtimeWaits: 0,
    };
    let then: AfterSurvey = 'pull';
    const holding = this.#opts.repullAfterGc === 'wait';
    if (hint !== undefined && hint.round !== undefined) {
      if (hint.round < entry.round) t.force = true;
      else if (hint.round === entry.round && hint.phase === 'Completed') {
        t.resolvedRound = entry.round;
        // Finished in this round: if the runtime lost it meanwhile, that is a re-pull after GC.
        if (holding) then = 'hold-if-missing';
      } else if (hint.round === entry.round && hint.phase === 'Pending' && hint.reason === REMOVED_FROM_RUNTIME && holding) {
        t.resolvedRound = entry.round;
        then = 'hold-if-missing';
      } else if (hint.round === entry.round && hint.phase === 'Failed') {
        // A decision, not a runtime fact: kept so a restart does not hammer the registry again.
        then = 'keep-failed';
        t.record = { ...t.record, phase: 'Failed', attempts: hint.attempts ?? 0 };
        if (hint.reason !== undefined) t.record.reason = hint.reason;
        if (hint.message !== undefined) t.record.message = hint.message;
        if (hint.startedAt !== undefined) t.record.startedAt = Date.parse(hint.startedAt);
        if (hint.finishedAt !== undefined) t.record.finishedAt = Date.parse(hint.finishedAt);
        if (hint.secretsVersion !== undefined) t.record.secretsVersion = hint.secretsVersion;
      }
    }
    this.#entries.set(entry.image, t);
    this.#survey(t, then);
  }

  /** New epoch: whatever was queued, running or waiting for the old one is cancelled. */
  #restart(t: Tracked, force: boolean): void {
    this.#cancelTasks(t);
    t.epoch = ++this.#epochs;
    t.force = force;
    t.lastDelaySeconds = undefined;
    t.runtimeWaits = 0;
    t.record = pendingRecord(t.entry);
  }

  #cancelTasks(t: Tracked): void {
    t.retryTimer?.abort();
    t.retryTimer = undefined;
    if (t.taskKey !== undefined) {
      this.#surveys.cancel(t.taskKey);
      this.#pulls.cancel(t.taskKey);
      t.taskKey = undefined;
    }
  }

  #current(image: string, epoch: number): Tracked | undefined {
    const t = this.#entries.get(image);
    return t !== undefined && t.epoch === epoch && !this.#closed ? t : undefined;
  }

  #presence(t: Tracked): Parameters<typeof needsPull>[1] {
    return { entry: t.entry, force: t.force, resolvedThisRound: t.resolvedRound === t.entry.round };
  }

  /** Asks the runtime whether the image is already there; pulls only when needed (and `then` allows). */
  #survey(t: Tracked, then: AfterSurvey): void {
    const { image } = t.entry;
    const epoch = t.epoch;
    const key = `${image}#${++this.#tasks}`;
    t.taskKey = key;
    const res = this.#surveys.enqueue(key, (signal) =>
      this.#opts.runtime.imageStatus(image, { signal: AbortSignal.any([signal, AbortSignal.timeout(STATUS_CALL_TIMEOUT_MS)]) }));
    if (res.kind !== 'accepted') return;
    this.#surveying++;
    void res.done.then((outcome) => {
      if (--this.#surveying === 0) for (const wake of this.#surveyWaiters.splice(0)) wake();
      const cur = this.#current(image, epoch);
      if (cur === undefined || outcome.kind === 'cancelled') return;
      cur.taskKey = undefined;
      if (outcome.kind === 'completed' && outcome.value !== undefined && !needsPull(outcome.value, this.#presence(cur))) {
        this.#markPresent(cur, outcome.value);
        this.#opts.onChange();
        return;
      }
      if (outcome.kind === 'failed') {
        // The attempt asks again and handles the error; a survey only saves time.
        this.#opts.log.debug('image survey failed', { image, error: errorText(outcome.error) });
      }
      if (then === 'hold-if-missing' && outcome.kind === 'completed' && outcome.value === undefined) {
        this.#markGone(cur);
        this.#opts.onChange();
        return;
      }
      if (then === 'keep-failed') {
        this.#opts.log.info('image failed in this round before the agent restarted; not retrying until the round changes', { image, reason: cur.record.reason });
        return;
      }
      this.#enqueuePull(cur, outcome.kind === 'completed' ? { info: outcome.value, at: this.#now() } : undefined);
    });
  }

  /** `known`: what a survey just found, reused if the attempt starts at once. */
  #enqueuePull(t: Tracked, known?: { info: ImageInfo | undefined; at: number }): void {
    const { image } = t.entry;
    const epoch = t.epoch;
    const key = `${image}#${++this.#tasks}`;
    t.taskKey = key;
    const res = this.#pulls.enqueue(key, (signal) => this.#attempt(t, signal, known));
    if (res.kind !== 'accepted') return;
    void res.done.then((outcome) => {
      this.#afterAttempt(image, epoch, outcome);
    });
  }

  /** One attempt, holding a pull slot: check presence, pull with each matching credential, verify. */
  async #attempt(t: Tracked, signal: AbortSignal, known?: { info: ImageInfo | undefined; at: number }): Promise<AttemptResult> {
    const { runtime, log, metrics } = this.#opts;
    const entry = t.entry;
    const { image } = entry;
    let before: ImageInfo | undefined;
    if (known !== undefined && this.#now() - known.at < FRESH_SURVEY_MS) {
      before = known.info;
    } else {
      try {
        before = await runtime.imageStatus(image, { signal: AbortSignal.any([signal, AbortSignal.timeout(STATUS_CALL_TIMEOUT_MS)]) });
      } catch (err) {
        signal.throwIfAborted();
        return { kind: 'failed', failure: classifyAttemptFailure(err, signal) };
      }
    }
    // Cancelled meanwhile (spec change, shutdown): the record now belongs to a newer epoch.
    signal.throwIfAborted();
    if (before !== undefined && !needsPull(before, this.#presence(t))) return { kind: 'present', info: before };

    t.record = { image, phase: 'Pulling', round: entry.round, attempts: t.record.attempts + 1, startedAt: this.#now() };
    // A forced or re-resolving pull of an image the node has: starts meanwhile still find it (container-starts.ts).
    if (before !== undefined) t.record.presentBefore = true;
    this.#opts.onChange();

    let creds: PullCredentials;
    try {
      creds = pullCredentials(image, entry.pullSecrets, await this.#opts.secrets.read(entry.pullSecrets, signal));
    } catch (err) {
      signal.throwIfAborted();
      return { kind: 'failed', failure: pullFailure('Unknown', errorText(err)) };
    }
    for (const problem of creds.unusable) log.warn('unusable pull secret', { image, error: problem });
    const { candidates, secretValues, missing } = creds;
    if (missing.length > 0) log.warn('pull secrets not found; pulling without them', { image, missing });
    // Which secrets this attempt used: an Unauthorized failure is tried again once they change (rotation).
    t.record.secretsVersion = creds.version;

    const timeoutMs = durationMilliseconds(entry.timeout) ?? DEFAULT_TIMEOUT_MS;
    const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    const deadline = this.#now() + timeoutMs;
    let failure: PullFailure | undefined;
    for (const [i, cred] of candidates.entries()) {
      const started = performance.now();
      metrics.activePulls.inc();
      log.info('pulling image', {
        image,
        attempt: t.record.attempts,
        ...(cred !== undefined ? { credential: cred.describe(), credentialIndex: i + 1, credentials: candidates.length } : {}),
      });
      try {
        await runtime.pullImage(image, cred === undefined ? undefined : registryAuth(cred), { signal: attemptSignal, deadline });
        countPullCall(metrics, 'succeeded', (performance.now() - started) / 1000);
        failure = undefined;
        break;
      } catch (err) {
        const seconds = (performance.now() - started) / 1000;
        if (signal.aborted) {
          countPullCall(metrics, 'cancelled', seconds);
          throw signal.reason;
        }
        const f = classifyAttemptFailure(err, attemptSignal);
        failure = { ...f, message: redact(f.message, secretValues) };
        countPullCall(metrics, 'failed', seconds);
        countCriError(metrics, f.reason);
        // Another credential may be the right one; any other failure would repeat.
        if (f.reason !== 'Unauthorized') break;
      } finally {
        metrics.activePulls.dec();
      }
    }
    if (failure !== undefined) {
      if (failure.reason === 'Unauthorized' && missing.length > 0) {
        failure = { ...failure, message: `${failure.message} (pull secrets not found in the kwarm namespace: ${missing.join(', ')})` };
      }
      return { kind: 'failed', failure };
    }

    let after: ImageInfo | undefined;
    try {
      after = await runtime.imageStatus(image, { signal: AbortSignal.any([signal, AbortSignal.timeout(STATUS_CALL_TIMEOUT_MS)]) });
    } catch (err) {
      signal.throwIfAborted();
      return { kind: 'failed', failure: classifyAttemptFailure(err, signal) };
    }
    if (after === undefined) return { kind: 'failed', failure: pullFailure('Unknown', 'the runtime reports no image right after pulling it') };
    const problem = digestProblem(after, entry);
    if (problem !== undefined) return { kind: 'failed', failure: pullFailure('DigestMismatch', problem) };
    return { kind: 'pulled', info: after, newImage: broughtIn(before?.id, after.id) };
  }

  #afterAttempt(image: string, epoch: number, outcome: TaskOutcome<AttemptResult>): void {
    const t = this.#entries.get(image);
    if (t === undefined || t.epoch !== epoch) return;
    t.taskKey = undefined;
    switch (outcome.kind) {
      case 'cancelled':
        // Shutdown or a spec change: nothing is left "Pulling".
        if (t.record.phase === 'Pulling') t.record = { ...t.record, phase: 'Pending' };
        break;
      case 'failed':
        this.#failed(t, classifyPullError(outcome.error));
        break;
      case 'completed': {
        const r = outcome.value;
        switch (r.kind) {
          case 'present':
            this.#markPresent(t, r.info);
            break;
          case 'pulled':
            this.#markPulled(t, r.info, r.newImage);
            break;
          case 'failed':
            this.#failed(t, r.failure);
            break;
          default: {
            const never: never = r;
            throw new Error(`unhandled attempt result ${JSON.stringify(never)}`);
          }
        }
        break;
      }
      default: {
        const never: never = outcome;
        throw new Error(`unhandled task outcome ${JSON.stringify(never)}`);
      }
    }
    this.#opts.onChange();
  }

  #markPresent(t: Tracked, info: ImageInfo): void {
    const r: ImageRecord = { ...t.record, phase: 'Completed', imageId: info.id, sizeBytes: info.sizeBytes, lastVerifiedAt: this.#now() };
    const digest = reportedRepoDigest(info, t.entry.image);
    if (digest !== undefined) r.repoDigest = digest;
    delete r.reason;
    delete r.message;
    t.record = r;
    t.force = false;
    t.resolvedRound = t.entry.round;
    t.runtimeWaits = 0;
  }

  /** Gone from the runtime, held until the controller raises the round (--repull-after-gc=wait). */
  #markGone(t: Tracked): void {
    this.#opts.log.warn('image removed from the runtime; waiting for kwarm-controller to release its re-pull', { image: t.entry.image, imageId: t.record.imageId });
    t.record = {
      ...t.record,
      phase: 'Pending',
      reason: REMOVED_FROM_RUNTIME,
      message: 'the runtime no longer has the image (kubelet image garbage collection?); it is pulled again when kwarm-controller releases it within --max-concurrent-pulls',
    };
  }

  #markPulled(t: Tracked, info: ImageInfo, newImage: boolean): void {
    const now = this.#now();
    this.#markPresent(t, info);
    t.record.finishedAt = now;
    // kwarm's own pull made it present: what counts a later container start as warm and the time it saved.
    t.record.pulledAt = now;
    if (t.record.startedAt !== undefined) t.record.pullMs = now - t.record.startedAt;
    delete t.record.presentBefore;
    if (newImage) {
      this.#opts.metrics.pulledBytes.inc(info.sizeBytes);
      this.#opts.onBroughtIn?.(info.id);
    }
    this.#opts.log.info('image pulled', {
      image: t.entry.image,
      imageId: info.id,
      sizeBytes: info.sizeBytes,
      attempts: t.record.attempts,
      durationMs: t.record.startedAt === undefined ? undefined : now - t.record.startedAt,
    });
  }

  #failed(t: Tracked, failure: PullFailure): void {
    const { log } = this.#opts;
    const image = t.entry.image;
    const attempts = failure.reason === 'RuntimeUnavailable'
      // The attempt that met an absent runtime does not count: it never reached the registry.
      ? (t.record.phase === 'Pulling' ? Math.max(0, t.record.attempts - 1) : t.record.attempts)
      : Math.max(1, t.record.attempts);
    const step = nextStep({
      failure,
      attempts,
      retry: t.entry.retry,
      runtimeWaits: t.runtimeWaits,
      runtimeRetryMs: this.#opts.runtimeRetryMs ?? { initial: 500, max: 5000 },
      previousDelaySeconds: t.lastDelaySeconds,
      maxBackoffSeconds: this.#opts.maxBackoffSeconds ?? MAX_BACKOFF_SECONDS,
      random: this.#random,
    });
    switch (step.kind) {
      case 'wait-for-runtime':
        t.runtimeWaits++;
        t.record = { ...t.record, phase: 'Pending', attempts, reason: failure.reason, message: `waiting for the container runtime: ${failure.message}` };
        log.warn('container runtime unavailable; pull will be retried', { image, retryInMs: step.delayMs, error: failure.message });
        this.#scheduleRetry(t, step.delayMs);
        break;
      case 'retry': {
        t.lastDelaySeconds = step.delaySeconds;
        const seconds = Math.round(step.delaySeconds * 10) / 10;
        t.record = {
          ...t.record,
          phase: 'Pending',
          attempts,
          reason: failure.reason,
          message: `attempt ${attempts} of ${t.entry.retry.maxAttempts} failed, retrying in ${seconds}s: ${failure.message}`,
          finishedAt: this.#now(),
        };
        log.warn('pull failed; will retry', { image, reason: failure.reason, attempt: attempts, retryInSeconds: seconds, error: failure.message });
        this.#scheduleRetry(t, step.delaySeconds * 1000);
        break;
      }
      case 'give-up':
        t.record = { ...t.record, phase: 'Failed', attempts, reason: failure.reason, message: failure.message, finishedAt: this.#now() };
        log.error('pull failed', { image, reason: failure.reason, attempts, permanent: failure.permanent, error: failure.message });
        break;
      default: {
        const never: never = step;
        throw new Error(`unhandled next step ${JSON.stringify(never)}`);
      }
    }
  }

  #scheduleRetry(t: Tracked, delayMs: number): void {
    const epoch = t.epoch;
    const timer = new AbortController();
    t.retryTimer = timer;
    void sleep(delayMs, undefined, { signal: timer.signal }).then(
      () => {
        const cur = this.#current(t.entry.image, epoch);
        if (cur === undefined || cur.retryTimer !== timer) return;
        cur.retryTimer = undefined;
        this.#enqueuePull(cur);
      },
      () => undefined,
    );
  }

  /**
   * The warmth check: every image reported Completed is looked up in the runtime; one that is gone
   * (kubelet image GC, someone's crictl rmi) is pulled again and counted.
   */
  async verify(signal: AbortSignal): Promise<{ checked: number; repulled: string[]; retried: string[] }> {
    const { runtime, log, metrics } = this.#opts;
    let checked = 0;
    const repulled: string[] = [];
    // A function: TypeScript would otherwise keep `signal.aborted` narrowed to false across awaits.
    const stopped = (): boolean => signal.aborted || this.#closed;
    for (const t of [...this.#entries.values()]) {
      if (stopped()) break;
      if (t.record.phase !== 'Completed' || t.taskKey !== undefined) continue;
      const epoch = t.epoch;
      let info: ImageInfo | undefined;
      try {
        info = await runtime.imageStatus(t.entry.image, { signal: AbortSignal.any([signal, AbortSignal.timeout(STATUS_CALL_TIMEOUT_MS)]) });
      } catch (err) {
        if (stopped()) break;
        const f = classifyPullError(err);
        countCriError(metrics, f.reason);
        // With the runtime gone every other lookup would fail the same way: try again next time.
        if (f.reason === 'RuntimeUnavailable') break;
        continue;
      }
      checked++;
      const cur = this.#current(t.entry.image, epoch);
      if (cur === undefined || cur.record.phase !== 'Completed') continue;
      const verdict = warmthVerdict(cur.record, info);
      switch (verdict.kind) {
        case 'gone':
          metrics.repulls.inc();
          repulled.push(cur.entry.image);
          if (this.#opts.repullAfterGc === 'wait') {
            this.#markGone(cur);
            break;
          }
          log.warn('image removed from the runtime; pulling it again', { image: cur.entry.image, imageId: cur.record.imageId });
          this.#restart(cur, false);
          this.#enqueuePull(cur);
          break;
        case 'changed': {
          const prevAttempts = cur.record.attempts;
          this.#markPresent(cur, verdict.info);
          cur.record.attempts = prevAttempts;
          break;
        }
        case 'unchanged':
          break;
        default: {
          const never: never = verdict;
          throw new Error(`unhandled warmth verdict ${JSON.stringify(never)}`);
        }
      }
    }
    const retried = await this.#retryRotatedSecrets(signal);
    this.#opts.onChange();
    return { checked, repulled, retried };
  }

  /**
   * An image that failed Unauthorized is tried again once the pull secrets it names have changed since
   * that attempt (a rotated token, a Secret created late): the spec does not change when a Secret does.
   */
  async #retryRotatedSecrets(signal: AbortSignal): Promise<string[]> {
    const retried: string[] = [];
    const stopped = (): boolean => signal.aborted || this.#closed;
    for (const t of [...this.#entries.values()]) {
      if (stopped()) break;
      if (!waitsForSecretChange(t.record, t.entry) || t.taskKey !== undefined) continue;
      const epoch = t.epoch;
      let version: string;
      try {
        version = secretsVersion(t.entry.pullSecrets, await this.#opts.secrets.read(t.entry.pullSecrets, signal));
      } catch (err) {
        if (stopped()) break;
        this.#opts.log.debug('could not read pull secrets to look for a rotation', { image: t.entry.image, error: errorText(err) });
        continue;
      }
      const cur = this.#current(t.entry.image, epoch);
      if (cur === undefined || !secretsChanged(cur.record, cur.entry, version)) continue;
      this.#opts.log.info('pull secrets changed since the Unauthorized pull; trying again', { image: cur.entry.image, pullSecrets: cur.entry.pullSecrets });
      retried.push(cur.entry.image);
      this.#restart(cur, false);
      this.#enqueuePull(cur);
    }
    return retried;
  }

  /** Disk guard: start no new pulls (running ones continue). */
  pausePulls(): void {
    this.#pulls.pause();
  }

  resumePulls(): void {
    this.#pulls.resume();
  }

  get pullsPaused(): boolean {
    return this.#pulls.paused;
  }

  /** The NodeImageSet is gone: forget everything and cancel what runs. */
  clear(): void {
    for (const t of this.#entries.values()) this.#cancelTasks(t);
    this.#entries.clear();
    this.#order = [];
    this.#generation = undefined;
    this.#opts.onChange();
  }

  /**
   * Shutdown: no new work, queued pulls dropped, running ones given `graceMs` to finish and then
   * cancelled. Records of pulls that did not finish go back to Pending.
   */
  async drain(graceMs: number): Promise<DrainResult> {
    for (const t of this.#entries.values()) {
      t.retryTimer?.abort();
      t.retryTimer = undefined;
    }
    this.#surveyAbort.abort(new Error('agent is shutting down'));
    const result = await this.#pulls.drain(graceMs);
    // Let the outcome callbacks of the last tasks run before the records are read.
    await new Promise((resolve) => setImmediate(resolve));
    this.#closed = true;
    for (const t of this.#entries.values()) {
      if (t.record.phase === 'Pulling') t.record = { ...t.record, phase: 'Pending' };
    }
    this.#opts.onChange();
    return result;
  }
}
