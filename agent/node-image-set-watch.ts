// The agent's one watch: its own NodeImageSet (fieldSelector metadata.name=<node>), through the
// shared list-watch cache, which restarts on any error. Objects are decoded once here; a status
// that does not decode is dropped rather than the whole object (the agent rewrites status anyway), and
// an object whose spec does not decode leaves the last one that did in place.
import type { Logger } from 'winston';
import { decode } from '../api/schema.ts';
import { API_VERSION } from '../api/v1alpha1/group.ts';
import { objectMetaSchema } from '../api/v1alpha1/meta.ts';
import {
  nodeImageSetSpecSchema,
  nodeImageSetStatusSchema,
  type NodeImageSetSpec,
  type NodeImageSetStatus,
} from '../api/v1alpha1/nodeimageset.ts';
import type { KubeClient } from '../lib/kube-client.ts';
import { ListWatch } from '../lib/list-watch.ts';
import { field } from '../lib/raw.ts';

export interface WatchedNodeImageSet {
  name: string;
  uid: string | undefined;
  generation: number | undefined;
  spec: NodeImageSetSpec;
  status: NodeImageSetStatus | undefined;
}

/** Decodes a NodeImageSet from the wire; undefined when its metadata or spec is unusable. */
export function decodeNodeImageSet(raw: unknown, log?: Logger): WatchedNodeImageSet | undefined {
  const meta = decode(objectMetaSchema, field(raw, 'metadata'));
  const spec = decode(nodeImageSetSpecSchema, field(raw, 'spec') ?? {});
  if (!meta.ok || !spec.ok || meta.value.name === undefined) {
    // The list-watch keeps the last version that decoded (finding 11): the agent goes on with that spec.
    log?.error('NodeImageSet does not decode; going on with the last spec that did, if any', { errors: [...(meta.ok ? [] : meta.errors), ...(spec.ok ? [] : spec.errors)].slice(0, 10) });
    return undefined;
  }
  const rawStatus = field(raw, 'status');
  const status = rawStatus === undefined ? undefined : decode(nodeImageSetStatusSchema, rawStatus);
  return {
    name: meta.value.name,
    uid: meta.value.uid,
    generation: meta.value.generation,
    spec: spec.value,
    status: status?.ok === true ? status.value : undefined,
  };
}

export const NODE_IMAGE_SETS_PATH = `/apis/${API_VERSION}/nodeimagesets`;

export interface NodeImageSetWatchOptions {
  client: KubeClient;
  nodeName: string;
  log: Logger;
  /** Called with the object after every change, or undefined when it does not exist. */
  onChange: (obj: WatchedNodeImageSet | undefined) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export class NodeImageSetWatch {
  readonly #lw: ListWatch<WatchedNodeImageSet>;
  readonly #nodeName: string;

  constructor(opts: NodeImageSetWatchOptions) {
    this.#nodeName = opts.nodeName;
    this.#lw = new ListWatch<WatchedNodeImageSet>({
      client: opts.client,
      path: NODE_IMAGE_SETS_PATH,
      fieldSelector: `metadata.name=${opts.nodeName}`,
      decode: (raw) => decodeNodeImageSet(raw, opts.log),
      onChange: (_key, obj) => { opts.onChange(obj); },
      log: opts.log,
      initialBackoffMs: opts.initialBackoffMs ?? 500,
      maxBackoffMs: opts.maxBackoffMs ?? 10_000,
    });
  }

  /** The object as last seen; undefined before the first list or when it does not exist. */
  get current(): WatchedNodeImageSet | undefined {
    return this.#lw.get(this.#nodeName);
  }

  get synced(): boolean {
    return this.#lw.synced;
  }

  /** A watch stream is open. */
  get healthy(): boolean {
    return this.#lw.healthy;
  }

  get lastError(): string | undefined {
    return this.#lw.lastError;
  }

  waitForSync(signal: AbortSignal): Promise<void> {
    return this.#lw.waitForSync(signal);
  }

  run(signal: AbortSignal): Promise<void> {
    return this.#lw.run(signal);
  }
}
