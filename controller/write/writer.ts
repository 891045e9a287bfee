// The one place the controller writes: it applies a WritePlan step by step (the writes of a step
// concurrently, within a limit), records each successful write in its overlay so the next pass plans from
// what was written, and reports what failed. A failed write never stops the others, and is retried on its
// own back-off (finding 7 of the review): until it comes due, later plans that still contain it hold it back,
// so one write the API server always refuses neither slows the loop nor the other writes.
import type { Logger } from 'winston';
import { CONTROLLER_FIELD_MANAGER, PURGE_FIELD_MANAGER } from '../../api/v1alpha1/labels.ts';
import { backoffDelaySeconds, type BackoffPolicy } from '../../lib/backoff.ts';
import { eachLimited } from '../../lib/each-limited.ts';
import { errorText } from '../../lib/errors.ts';
import { isNotFound, type KubeClient } from '../../lib/kube-client.ts';
import { isRecord } from '../../lib/raw.ts';
import type { ControllerMetrics } from '../metrics.ts';
import { decodeSecret } from '../sources/decode.ts';
import {
  eventBody,
  finalizerApplyBody,
  finalizerRemovalPatch,
  metaTime,
  nodeImageSetApplyBody,
  paths,
  prePullImageApplyBody,
  prePullImageStatusBody,
  prePullPolicyStatusBody,
  secretCopyBody,
} from './api-objects.ts';
import type { Overlays } from './overlays.ts';
import type { Write, WritePlan } from './writes.ts';

/** The requests the writer sends: the consumer-side part of KubeClient. */
export type ApiWriter = Pick<KubeClient, 'apply' | 'patch' | 'create' | 'delete'>;

export interface WriterOptions {
  readonly client: ApiWriter;
  readonly log: Logger;
  readonly metrics: ControllerMetrics;
  /** kwarm's namespace, where pull secret copies live. */
  readonly namespace: string;
  /** Shown as the reporting instance of Events. */
  readonly identity: string;
  /** Writes sent at once (the client's rate limit still applies). */
  readonly concurrency: number;
  readonly overlays: Overlays;
  /** When each PrePullImage status was last written (ms); the status stage holds progress-only writes back by it. */
  readonly statusWrittenAt: Map<string, number>;
}

export interface ApplyResult {
  /** Some write failed or was held back by its back-off (NotFound excepted: the object is gone, nothing to retry). */
  readonly failed: boolean;
  /** When the earliest failed or held-back write of this apply may be tried again (ms). */
  readonly retryAtMs: number | undefined;
  /** Generations the API server returned for derived PrePullImages applied. */
  readonly generations: ReadonlyMap<string, number>;
  /** Steps skipped because a write before them failed, by index. */
  readonly skipped: ReadonlySet<number>;
  /** Progress-only status writes left for the next pass because new work was waiting (see Writer.apply). */
  readonly deferred: number;
}

/** After a failed write, that write alone: 0.4 s, doubling, at most 30 s (no jitter: one controller, one API server). */
export const WRITE_RETRY: BackoffPolicy = { baseSeconds: 0.4, capSeconds: 30, jitter: 'none' };
/** A failed write not planned again for this long is forgotten (its next failure starts at the first delay). */
const RETRY_FORGET_MS = 2 * WRITE_RETRY.capSeconds * 1000;

/**
 * A write that failed: what it sent, how often in a row, when it may be tried again, when a plan last
 * contained it (ms).
 */
interface RetryState {
  readonly content: string;
  failures: number;
  dueMs: number;
  seenMs: number;
}

type Outcome = { readonly kind: 'done'; readonly body: unknown } | { readonly kind: 'notFound' } | { readonly kind: 'failed' };

/** generation of a write response (0 when absent). */
function responseGeneration(body: unknown): number {
  const g = isRecord(body) && isRecord(body.metadata) ? body.metadata.generation : undefined;
  return typeof g === 'number' ? g : 0;
}

/** What one apply of a plan has seen so far. */
interface Run {
  readonly signal: AbortSignal;
  readonly nowMs: number;
  readonly now: string;
  failed: boolean;
  retryAtMs: number | undefined;
  readonly generations: Map<string, number>;
  /** PrePullImage statuses not written (failed or gone): their finalizers stay. */
  readonly unwritten: Set<string>;
}

/** What a write sends, to tell a retry of the same write from a changed one (computed only after a failure). */
function writeContent(w: Write): string {
  if (w.kind === 'prePullImage') return w.digest;
  if (w.kind === 'nodeImageSet') return w.planned.digest;
  return JSON.stringify(w);
}

/**
 * A status write that only counts progress (no Event, no refresh): the next pass plans it again from the
 * same caches, so it may wait for one pass without anything being lost.
 */
function progressOnly(w: Write): w is Extract<Write, { kind: 'prePullImageStatus' }> {
  return w.kind === 'prePullImageStatus' && w.refresh === undefined && w.events.length === 0;
}

/** What identifies a write across plans: the same object and request. */
export function writeId(w: Write): string {
  switch (w.kind) {
    case 'secretCopy': return `secretCopy ${w.copy.name}`;
    case 'prePullImage': return `prePullImage ${w.key}`;
    case 'purgeFinalizer': return `purgeFinalizer ${w.ppi.metadata.namespace ?? ''}/${w.ppi.metadata.name ?? ''}`;
    case 'nodeImageSet': return `nodeImageSet ${w.planned.node}`;
    case 'prePullImageStatus': return `prePullImageStatus ${w.key}`;
    case 'releaseFinalizer': return `releaseFinalizer ${w.key}`;
    case 'policyStatus': return `policyStatus ${w.name}`;
    case 'event': return `event ${w.involved.kind} ${w.subject.namespace}/${w.subject.name} ${w.event.reason}`;
    case 'deletePrePullImage': return `deletePrePullImage ${w.key}`;
    case 'deleteSecretCopy': return `deleteSecretCopy ${w.name}`;
    default: {
      const unreachable: never = w;
      throw new Error(`unhandled write ${JSON.stringify(unreachable)}`);
    }
  }
}

export class Writer {
  private readonly o: WriterOptions;
  /** Writes that failed, by writeId: held back until their back-off has passed. */
  private readonly retries = new Map<string, RetryState>();
  /** The last apply given `newWork` deferred writes: the next one does not, so statuses are never starved. */
  private deferredLast = false;

  constructor(opts: WriterOptions) {
    this.o = opts;
  }

  /**
   * Applies `plan` in order; `nowMs` stamps Events and the status write times. `failedBefore`: a write of an
   * earlier stage of the same pass failed (steps that need everything before them written are skipped).
   * `newWork`: whether an event is waiting for the next pass. While it is, progress-only status writes not yet
   * sent are left for the next pass (counted as held back: due at once), so a change is planned after the writes
   * in flight rather than after hundreds of READY-count updates at the API server's pace. Never in two applies
   * in a row: the pass after one that deferred writes them all.
   */
  async apply(plan: WritePlan, nowMs: number, signal: AbortSignal, failedBefore = false, newWork?: () => boolean): Promise<ApplyResult> {
    const run: Run = {
      signal, nowMs, now: metaTime(new Date(nowMs)), failed: failedBefore, retryAtMs: undefined, generations: new Map(), unwritten: new Set(),
    };
    const mayDefer = newWork !== undefined && !this.deferredLast;
    let deferred = 0;
    const defer = (w: Write): boolean => {
      if (!mayDefer || !progressOnly(w) || !newWork()) return false;
      deferred++;
      run.failed = true;
      run.retryAtMs = Math.min(run.retryAtMs ?? run.nowMs, run.nowMs);
      run.unwritten.add(w.key);
      return true;
    };
    for (const [id, r] of this.retries) if (nowMs - r.seenMs > RETRY_FORGET_MS) this.retries.delete(id);
    const skipped = new Set<number>();
    // A function, so TypeScript does not keep the narrowing of `run.failed` across awaits.
    const failedSoFar = (): boolean => run.failed;
    for (const [i, step] of plan.entries()) {
      if (step.onlyIfNoFailure === true && failedSoFar()) {
        skipped.add(i);
        continue;
      }
      await eachLimited(step.writes, this.o.concurrency, (w) => this.held(w, run) || defer(w) ? Promise.resolve() : this.write(w, run));
    }
    if (newWork !== undefined) this.deferredLast = deferred > 0;
    if (deferred > 0) this.o.log.debug('status writes left for the next pass: new work is waiting', { deferred });
    return { failed: run.failed, retryAtMs: run.retryAtMs, generations: run.generations, skipped, deferred };
  }

  /** Whether `w` failed before and its back-off has not passed: then it is not sent, and counts as failed. */
  private held(w: Write, run: Run): boolean {
    const r = this.retries.get(writeId(w));
    if (r === undefined) return false;
    r.seenMs = run.nowMs;
    // A changed write (a fixed Deployment, say) is a new one: sent at once.
    if (r.dueMs <= run.nowMs || r.content !== writeContent(w)) return false;
    run.failed = true;
    run.retryAtMs = Math.min(run.retryAtMs ?? r.dueMs, r.dueMs);
    if (w.kind === 'prePullImageStatus') run.unwritten.add(w.key);
    return true;
  }

  /** Sends one request; `retry` names the write whose back-off a failure raises (none: the failure is only logged). */
  private async attempt(what: string, run: Run, fn: () => Promise<unknown>, retry?: Write): Promise<Outcome> {
    const id = retry === undefined ? undefined : writeId(retry);
    try {
      const body = await fn();
      if (id !== undefined) this.retries.delete(id);
      return { kind: 'done', body };
    } catch (err) {
      if (isNotFound(err)) {
        if (id !== undefined) this.retries.delete(id);
        return { kind: 'notFound' };
      }
      run.failed = true;
      if (id !== undefined && retry !== undefined) {
        const content = writeContent(retry);
        const before = this.retries.get(id);
        const failures = (before?.content === content ? before.failures : 0) + 1;
        const dueMs = run.nowMs + backoffDelaySeconds(WRITE_RETRY, failures, Math.random) * 1000;
        this.retries.set(id, { content, failures, dueMs, seenMs: run.nowMs });
        run.retryAtMs = Math.min(run.retryAtMs ?? dueMs, dueMs);
        this.o.log.warn('write failed', { what, error: errorText(err), failures, retryInMs: Math.round(dueMs - run.nowMs) });
      } else {
        this.o.log.warn('write failed', { what, error: errorText(err) });
      }
      return { kind: 'failed' };
    }
  }

  private async write(w: Write, run: Run): Promise<void> {
    const { client, overlays, namespace } = this.o;
    const { signal } = run;
    const attempt = (what: string, fn: () => Promise<unknown>): Promise<Outcome> => this.attempt(what, run, fn, w);
    switch (w.kind) {
      case 'secretCopy': {
        const out = await attempt(`secret ${w.copy.name}`, () =>
          client.apply(paths.secret(namespace, w.copy.name), secretCopyBody(namespace, w.copy), CONTROLLER_FIELD_MANAGER, signal));
        const written = out.kind === 'done' ? decodeSecret(out.body) : undefined;
        if (written !== undefined) overlays.secretCopies.record(w.copy.name, written);
        return;
      }
      case 'prePullImage': {
        const { namespace: ns, name } = w.desired;
        const out = await attempt(`prepullimage ${w.key}`, () =>
          client.apply(paths.prePullImage(ns, name), prePullImageApplyBody(w.desired), CONTROLLER_FIELD_MANAGER, signal));
        if (out.kind !== 'done') return;
        const generation = responseGeneration(out.body);
        overlays.prePullImages.record(w.key, { generation, digest: w.digest });
        run.generations.set(w.key, generation);
        return;
      }
      case 'purgeFinalizer': {
        const ns = w.ppi.metadata.namespace ?? '';
        const name = w.ppi.metadata.name ?? '';
        await attempt(`prepullimage finalizer ${ns}/${name}`, () => w.add
          ? client.apply(paths.prePullImage(ns, name), finalizerApplyBody(ns, name), PURGE_FIELD_MANAGER, signal)
          : client.patch(paths.prePullImage(ns, name), 'json', finalizerRemovalPatch(w.ppi), signal));
        return;
      }
      case 'nodeImageSet': {
        const p = w.planned;
        const out = await attempt(`nodeimageset ${p.node}`, () =>
          client.apply(paths.nodeImageSet(p.node), nodeImageSetApplyBody(p), CONTROLLER_FIELD_MANAGER, signal));
        if (out.kind !== 'done') return;
        const generation = responseGeneration(out.body);
        const cur = w.current;
        overlays.nodeImageSets.record(p.node, {
          generation,
          view: {
            name: p.node, generation, ownerUid: p.nodeUid, specDigest: p.digest, released: p.released, status: cur?.status ?? new Map(),
            ...(cur?.removals !== undefined ? { removals: cur.removals } : {}),
          },
        });
        return;
      }
      case 'prePullImageStatus':
        await this.writeStatus(w, run);
        return;
      case 'releaseFinalizer': {
        // A finalizer goes only after the status (and Event) that record the purge.
        if (run.unwritten.has(w.key)) return;
        const ns = w.ppi.metadata.namespace ?? '';
        const name = w.ppi.metadata.name ?? '';
        await attempt(`prepullimage finalizer ${ns}/${name}`, () =>
          client.patch(paths.prePullImage(ns, name), 'json', finalizerRemovalPatch(w.ppi), signal));
        return;
      }
      case 'policyStatus': {
        const out = await attempt(`prepullpolicy status ${w.name}`, () =>
          client.apply(paths.policyStatus(w.name), prePullPolicyStatusBody(w.name, w.status), CONTROLLER_FIELD_MANAGER, signal));
        if (out.kind === 'done') overlays.policyStatuses.record(w.name, { rvBefore: w.resourceVersion, status: w.status });
        return;
      }
      case 'event':
        await attempt(`event ${w.involved.kind.toLowerCase()} ${w.subject.namespace}/${w.subject.name} ${w.event.reason}`, () =>
          client.create(paths.events(w.subject.namespace), eventBody(w.subject, w.event, run.now, this.o.identity, w.involved), signal));
        return;
      case 'deletePrePullImage': {
        const out = await attempt(`delete prepullimage ${w.key}`, () =>
          client.delete(paths.prePullImage(w.ppi.metadata.namespace ?? '', w.ppi.metadata.name ?? ''), signal));
        if (out.kind !== 'failed') overlays.deletions.record(w.key, true);
        return;
      }
      case 'deleteSecretCopy': {
        const out = await attempt(`delete secret ${w.name}`, () => client.delete(paths.secret(namespace, w.name), signal));
        if (out.kind !== 'failed') overlays.secretCopies.record(w.name, 'deleted');
        return;
      }
      default: {
        const unreachable: never = w;
        throw new Error(`unhandled write ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private async writeStatus(w: Extract<Write, { kind: 'prePullImageStatus' }>, run: Run): Promise<void> {
    const { client, overlays, log, metrics } = this.o;
    const ns = w.ppi.metadata.namespace ?? '';
    const name = w.ppi.metadata.name ?? '';
    const what = w.refresh === undefined ? `prepullimage status ${w.key}` : `prepullimage refresh ${w.key}`;
    const out = await this.attempt(what, run, () =>
      client.apply(paths.prePullImageStatus(ns, name), prePullImageStatusBody(ns, name, w.status), CONTROLLER_FIELD_MANAGER, run.signal), w);
    if (out.kind !== 'done') {
      run.unwritten.add(w.key);
      return;
    }
    overlays.prePullImageStatuses.record(w.key, { rvBefore: w.ppi.metadata.resourceVersion, status: w.status });
    if (w.refresh === undefined) {
      this.o.statusWrittenAt.set(w.key, run.nowMs);
    } else {
      log.info('refresh requested', { prePullImage: w.key, trigger: w.refresh.trigger, lastTime: w.refresh.record.lastTime });
      metrics.refreshes.inc({ trigger: w.refresh.trigger });
      overlays.refreshes.record(w.key, { uid: w.ppi.metadata.uid, refresh: w.refresh.record });
    }
    // Events only after the status that records the transition: a retried pass never repeats them (a crash
    // between the two writes loses one Event rather than duplicating it), so a failed one is not retried.
    const subject = { namespace: ns, name, uid: w.ppi.metadata.uid ?? '' };
    for (const ev of w.events) {
      await this.attempt(`event ${w.key} ${ev.reason}`, run, () =>
        client.create(paths.events(ns), eventBody(subject, ev, run.now, this.o.identity), run.signal));
    }
  }
}
