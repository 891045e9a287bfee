// The one place the controller writes: it applies a WritePlan step by step (the writes of a step
// concurrently, within a limit), records each successful write in its overlay so the next pass plans from
// what was written, and reports what failed. A failed write never stops the others; the pass is retried.
import type { Logger } from 'winston';
import { CONTROLLER_FIELD_MANAGER, PURGE_FIELD_MANAGER } from '../../api/v1alpha1/labels.ts';
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
  /** Some write failed (NotFound excepted: the object is gone, nothing to retry). */
  readonly failed: boolean;
  /** Generations the API server returned for derived PrePullImages applied. */
  readonly generations: ReadonlyMap<string, number>;
  /** Steps skipped because a write before them failed, by index. */
  readonly skipped: ReadonlySet<number>;
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
  readonly generations: Map<string, number>;
  /** PrePullImage statuses not written (failed or gone): their finalizers stay. */
  readonly unwritten: Set<string>;
}

export class Writer {
  private readonly o: WriterOptions;

  constructor(opts: WriterOptions) {
    this.o = opts;
  }

  /**
   * Applies `plan` in order; `nowMs` stamps Events and the status write times. `failedBefore`: a write of an
   * earlier stage of the same pass failed (steps that need everything before them written are skipped).
   */
  async apply(plan: WritePlan, nowMs: number, signal: AbortSignal, failedBefore = false): Promise<ApplyResult> {
    const run: Run = { signal, nowMs, now: metaTime(new Date(nowMs)), failed: failedBefore, generations: new Map(), unwritten: new Set() };
    const skipped = new Set<number>();
    // A function, so TypeScript does not keep the narrowing of `run.failed` across awaits.
    const failedSoFar = (): boolean => run.failed;
    for (const [i, step] of plan.entries()) {
      if (step.onlyIfNoFailure === true && failedSoFar()) {
        skipped.add(i);
        continue;
      }
      await eachLimited(step.writes, this.o.concurrency, (w) => this.write(w, run));
    }
    return { failed: run.failed, generations: run.generations, skipped };
  }

  private async attempt(what: string, run: Run, fn: () => Promise<unknown>): Promise<Outcome> {
    try {
      return { kind: 'done', body: await fn() };
    } catch (err) {
      if (isNotFound(err)) return { kind: 'notFound' };
      this.o.log.warn('write failed', { what, error: errorText(err) });
      run.failed = true;
      return { kind: 'failed' };
    }
  }

  private async write(w: Write, run: Run): Promise<void> {
    const { client, overlays, namespace } = this.o;
    const { signal } = run;
    switch (w.kind) {
      case 'secretCopy': {
        const out = await this.attempt(`secret ${w.copy.name}`, run, () =>
          client.apply(paths.secret(namespace, w.copy.name), secretCopyBody(namespace, w.copy), CONTROLLER_FIELD_MANAGER, signal));
        const written = out.kind === 'done' ? decodeSecret(out.body) : undefined;
        if (written !== undefined) overlays.secretCopies.record(w.copy.name, written);
        return;
      }
      case 'prePullImage': {
        const { namespace: ns, name } = w.desired;
        const out = await this.attempt(`prepullimage ${w.key}`, run, () =>
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
        await this.attempt(`prepullimage finalizer ${ns}/${name}`, run, () => w.add
          ? client.apply(paths.prePullImage(ns, name), finalizerApplyBody(ns, name), PURGE_FIELD_MANAGER, signal)
          : client.patch(paths.prePullImage(ns, name), 'json', finalizerRemovalPatch(w.ppi), signal));
        return;
      }
      case 'nodeImageSet': {
        const p = w.planned;
        const out = await this.attempt(`nodeimageset ${p.node}`, run, () =>
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
        await this.attempt(`prepullimage finalizer ${ns}/${name}`, run, () =>
          client.patch(paths.prePullImage(ns, name), 'json', finalizerRemovalPatch(w.ppi), signal));
        return;
      }
      case 'policyStatus': {
        const out = await this.attempt(`prepullpolicy status ${w.name}`, run, () =>
          client.apply(paths.policyStatus(w.name), prePullPolicyStatusBody(w.name, w.status), CONTROLLER_FIELD_MANAGER, signal));
        if (out.kind === 'done') overlays.policyStatuses.record(w.name, { rvBefore: w.resourceVersion, status: w.status });
        return;
      }
      case 'event':
        await this.attempt(`event ${w.involved.kind.toLowerCase()} ${w.subject.namespace}/${w.subject.name} ${w.event.reason}`, run, () =>
          client.create(paths.events(w.subject.namespace), eventBody(w.subject, w.event, run.now, this.o.identity, w.involved), signal));
        return;
      case 'deletePrePullImage': {
        const out = await this.attempt(`delete prepullimage ${w.key}`, run, () =>
          client.delete(paths.prePullImage(w.ppi.metadata.namespace ?? '', w.ppi.metadata.name ?? ''), signal));
        if (out.kind !== 'failed') overlays.deletions.record(w.key, true);
        return;
      }
      case 'deleteSecretCopy': {
        const out = await this.attempt(`delete secret ${w.name}`, run, () => client.delete(paths.secret(namespace, w.name), signal));
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
      client.apply(paths.prePullImageStatus(ns, name), prePullImageStatusBody(ns, name, w.status), CONTROLLER_FIELD_MANAGER, run.signal));
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
    // between the two writes loses one Event rather than duplicating it).
    const subject = { namespace: ns, name, uid: w.ppi.metadata.uid ?? '' };
    for (const ev of w.events) {
      await this.attempt(`event ${w.key} ${ev.reason}`, run, () =>
        client.create(paths.events(ns), eventBody(subject, ev, run.now, this.o.identity), run.signal));
    }
  }
}
