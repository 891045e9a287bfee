// Answers the NodeImageSet's spec.removals, one entry at a time: keeps an image that spec.images (or the
// pull engine, under another name) wants, that a container uses, that kwarm did not bring onto the node,
// that the runtime pins or that is the pod sandbox image; otherwise removes it through CRI RemoveImage
// and checks it is gone. Each entry is answered once; its answer lives in status.removals,
// so a restarted agent does not act again. An entry that leaves the spec drops its answer.
import type { Logger } from 'winston';
import type { NodeImageSetSpec, NodeImageSetStatus } from '../api/v1alpha1/nodeimageset.ts';
import { countCriError, type AgentMetrics } from './agent-metrics.ts';
import { CriError, type ContainerInfo, type ImageInfo, type ImageRuntime } from './cri/runtime.ts';
import { classifyPullError, GrpcCode } from './pull-errors.ts';
import {
  afterRemoval,
  firstStep,
  removalStatus,
  secondStep,
  type RemovalAnswer,
  type RemovalStatus,
  type WantedImage,
} from './removal-decision.ts';
import { errorText } from '../lib/errors.ts';

const CALL_TIMEOUT_MS = 30_000;

export interface ImageRemoverOptions {
  runtime: ImageRuntime;
  log: Logger;
  metrics: AgentMetrics;
  /** spec.images and the pull engine's records, read afresh at every step. */
  wanted: () => WantedImage[];
  /** Ids of the images the agent brought onto the node itself, read afresh at every step. */
  pulledImageIds: () => readonly string[];
  /** Called after an image was removed (it is no longer one the agent brought in). */
  onRemoved: (imageId: string) => void;
  /** Called (synchronously) whenever an answer was added or dropped. */
  onChange: () => void;
  now?: () => number;
  /** How long an entry waits before it is tried again (a pull was in flight, or the runtime was down). */
  retryMs?: number;
}

/** One try at an entry: an answer, or try again later. */
type Attempt = { readonly kind: 'answered'; readonly answer: RemovalAnswer } | { readonly kind: 'later'; readonly why: string };

export class ImageRemover {
  readonly #opts: ImageRemoverOptions;
  readonly #now: () => number;
  /** spec.removals images, in spec order. */
  #order: string[] = [];
  readonly #answers = new Map<string, RemovalStatus>();
  #first = true;
  #wake: (() => void) | undefined;
  #dirty = true;

  constructor(opts: ImageRemoverOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Follows `spec.removals`. `previous` is the status found when the agent started: its answers stand
   * for the entries still in spec (each entry is answered once).
   */
  applySpec(spec: NodeImageSetSpec, previous?: NodeImageSetStatus): void {
    this.#order = spec.removals.map((r) => r.image);
    const inSpec = new Set(this.#order);
    if (this.#first) {
      this.#first = false;
      for (const r of previous?.removals ?? []) if (inSpec.has(r.image)) this.#answers.set(r.image, r);
    }
    for (const image of this.#answers.keys()) if (!inSpec.has(image)) this.#answers.delete(image);
    this.poke();
    this.#opts.onChange();
  }

  /** The NodeImageSet is gone. */
  clear(): void {
    this.#order = [];
    this.#answers.clear();
    this.#opts.onChange();
  }

  /** Something the decisions read changed (the spec, a pull finished): look at waiting entries again. */
  poke(): void {
    this.#dirty = true;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Answers in spec order. */
  statuses(): RemovalStatus[] {
    return this.#order.flatMap((image) => {
      const a = this.#answers.get(image);
      return a === undefined ? [] : [a];
    });
  }

  get unanswered(): number {
    return this.#order.filter((i) => !this.#answers.has(i)).length;
  }

  async run(signal: AbortSignal): Promise<void> {
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      this.#dirty = false;
      let later = false;
      for (const image of [...this.#order]) {
        if (stopped()) return;
        if (this.#answers.has(image) || !this.#order.includes(image)) continue;
        const attempt = await this.#attempt(image, signal);
        if (stopped()) return;
        if (attempt.kind === 'later') {
          this.#opts.log.debug('removal waits', { image, why: attempt.why });
          later = true;
          continue;
        }
        // The entry may have left the spec while the runtime was asked.
        if (!this.#order.includes(image)) continue;
        this.#record(image, attempt.answer);
      }
      // Entries that wait are tried again after a while, or sooner when something changes.
      await this.#nextChange(signal, later ? (this.#opts.retryMs ?? 5000) : undefined);
    }
  }

  /** Resolves at the next poke (at once if one came during the pass), on abort, or after `timeoutMs`. */
  #nextChange(signal: AbortSignal, timeoutMs: number | undefined): Promise<void> {
    if (this.#dirty) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #record(image: string, answer: RemovalAnswer): void {
    const { log, metrics } = this.#opts;
    this.#answers.set(image, removalStatus(image, answer, this.#now()));
    metrics.removals.inc({ result: answer.result });
    const fields = { image, result: answer.result, ...(answer.result === 'Kept' || answer.result === 'Failed' ? { reason: answer.reason, detail: answer.message } : {}) };
    if (answer.result === 'Failed') log.warn('image removal failed', fields);
    else log.info('image removal answered', fields);
    this.#opts.onChange();
  }

  /**
   * The id of the runtime's sandbox image, when the runtime names it and has it. A runtime that cannot say
   * (no verbose Status, or no such key) gives none: the other protections still apply.
   */
  async #sandboxImageIds(call: { signal: AbortSignal }): Promise<string[]> {
    let ref: string | undefined;
    try {
      ref = await this.#opts.runtime.sandboxImage(call);
    } catch (err) {
      // A runtime without the Status call cannot name it; any other failure leaves the entry unanswered.
      if (err instanceof CriError && err.code === GrpcCode.UNIMPLEMENTED) return [];
      throw err;
    }
    if (ref === undefined) return [];
    const info = await this.#opts.runtime.imageStatus(ref, call);
    return info === undefined ? [] : [info.id];
  }

  async #attempt(image: string, signal: AbortSignal): Promise<Attempt> {
    const { runtime } = this.#opts;
    const call = { signal: AbortSignal.any([signal, AbortSignal.timeout(CALL_TIMEOUT_MS)]) };
    const first = firstStep(image, this.#opts.wanted());
    if (first.kind === 'answer') return { kind: 'answered', answer: first.answer };
    if (first.kind === 'wait') return { kind: 'later', why: first.why };
    try {
      const info: ImageInfo | undefined = await runtime.imageStatus(image, call);
      const containers: ContainerInfo[] = info === undefined ? [] : await runtime.listContainers(call);
      const sandboxImageIds = info === undefined ? [] : await this.#sandboxImageIds(call);
      const second = secondStep(image, info, this.#opts.wanted(), containers, { pulledImageIds: this.#opts.pulledImageIds(), sandboxImageIds });
      if (second.kind === 'answer') return { kind: 'answered', answer: second.answer };
      // The spec or the engine may have moved while the runtime answered: ask again right before removing.
      const again = firstStep(image, this.#opts.wanted());
      if (again.kind === 'answer') return { kind: 'answered', answer: again.answer };
      if (again.kind === 'wait') return { kind: 'later', why: again.why };
      await runtime.removeImage(image, call);
      const answer = afterRemoval(await runtime.imageStatus(image, call));
      if (answer.result === 'Removed') this.#opts.onRemoved(second.imageId);
      return { kind: 'answered', answer };
    } catch (err) {
      if (signal.aborted) return { kind: 'later', why: 'shutting down' };
      const f = classifyPullError(err);
      countCriError(this.#opts.metrics, f.reason);
      // The runtime being away says nothing about the image: try again.
      if (f.reason === 'RuntimeUnavailable' || f.reason === 'Cancelled') return { kind: 'later', why: `${f.reason}: ${errorText(err)}` };
      return { kind: 'answered', answer: { result: 'Failed', reason: f.reason, message: f.message } };
    }
  }
}
