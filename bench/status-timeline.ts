// Watches NodeImageSets and notes when each change first arrived: an image entering a node's spec,
// and each phase an image reached in its status (per round). Watching instead of polling keeps the
// API server's load out of the figures; arrival times are this process's clock, like the timers
// the benchmarks start.
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import { decodeNodeImageSet, NODE_IMAGE_SETS_PATH } from '../agent/node-image-set-watch.ts';
import type { KubeClient } from '../lib/kube-client.ts';
import { ListWatch } from '../lib/list-watch.ts';

type Phase = 'Pending' | 'Pulling' | 'Completed' | 'Failed';

interface Seen {
  spec: Set<string>;
  status: Set<string>;
}

function specKey(node: string, image: string): string {
  return `${node}\n${image}`;
}

function statusKey(node: string, image: string, round: number, phase: Phase): string {
  return `${node}\n${image}\n${round}\n${phase}`;
}

export class NodeImageSetTimeline {
  readonly #watch: ListWatch<Seen>;
  readonly #times = new Map<string, number>();

  constructor(client: KubeClient, opts: { fieldSelector?: string } = {}) {
    this.#watch = new ListWatch<Seen>({
      client,
      path: NODE_IMAGE_SETS_PATH,
      ...(opts.fieldSelector !== undefined ? { fieldSelector: opts.fieldSelector } : {}),
      log: winston.createLogger({ silent: true }),
      decode: (raw) => {
        const now = Date.now();
        const o = decodeNodeImageSet(raw);
        if (o === undefined) return undefined;
        const seen: Seen = { spec: new Set(), status: new Set() };
        for (const e of o.spec.images) {
          const k = specKey(o.name, e.image);
          seen.spec.add(k);
          if (!this.#times.has(k)) this.#times.set(k, now);
        }
        for (const s of o.status?.images ?? []) {
          const k = statusKey(o.name, s.image, s.round ?? 0, s.phase);
          seen.status.add(k);
          if (!this.#times.has(k)) this.#times.set(k, now);
        }
        return seen;
      },
      onChange: () => undefined,
    });
  }

  /** Runs the watch until `signal` aborts; resolves once the first list is in. */
  async start(signal: AbortSignal): Promise<{ running: Promise<void> }> {
    const running = this.#watch.run(signal);
    await this.#watch.waitForSync(signal);
    return { running };
  }

  /** When `image` first appeared in `node`'s spec. */
  specAt(node: string, image: string): number | undefined {
    return this.#times.get(specKey(node, image));
  }

  /** When `node`'s status first showed `image` in `phase` for `round`. */
  statusAt(node: string, image: string, phase: Phase, round = 0): number | undefined {
    return this.#times.get(statusKey(node, image, round, phase));
  }

  /** Waits until `probe` returns a value; polls the in-memory timeline, not the API. */
  async waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(10);
    }
  }
}
