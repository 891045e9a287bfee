// Writing NodeImageSets as the controller would (server-side apply of spec) and reading back what
// the agent reports, for the agent's integration tests.
import { setTimeout as sleep } from 'node:timers/promises';
import { API_VERSION } from '../../../api/v1alpha1/group.ts';
import type { NodeImageSetSpecInput, NodeImageStatus } from '../../../api/v1alpha1/nodeimageset.ts';
import { decodeNodeImageSet, NODE_IMAGE_SETS_PATH, type WatchedNodeImageSet } from '../../../agent/node-image-set-watch.ts';
import type { KubeClient } from '../../../lib/kube-client.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

export const CONTROLLER_FIELD_MANAGER = 'kwarm-controller';

/** Creates or updates the spec of NodeImageSet `name`, the way kwarm-controller does. */
export async function applySpec(client: KubeClient, name: string, spec: NodeImageSetSpecInput): Promise<WatchedNodeImageSet> {
  const raw = await client.apply(`${NODE_IMAGE_SETS_PATH}/${name}`, {
    apiVersion: API_VERSION,
    kind: 'NodeImageSet',
    metadata: { name },
    spec,
  }, CONTROLLER_FIELD_MANAGER, AbortSignal.timeout(30_000));
  const obj = decodeNodeImageSet(raw);
  if (obj === undefined) throw new Error(`applied NodeImageSet ${name} does not decode`);
  return obj;
}

export async function readNodeImageSet(client: KubeClient, name: string): Promise<WatchedNodeImageSet | undefined> {
  const raw = await client.getOptional(`${NODE_IMAGE_SETS_PATH}/${name}`, AbortSignal.timeout(30_000));
  return raw === undefined ? undefined : decodeNodeImageSet(raw);
}

export async function deleteNodeImageSet(client: KubeClient, name: string): Promise<void> {
  await client.delete(`${NODE_IMAGE_SETS_PATH}/${name}`, AbortSignal.timeout(30_000));
}

export function imageStatus(obj: WatchedNodeImageSet | undefined, image: string): NodeImageStatus | undefined {
  return obj?.status?.images?.find((i) => i.image === image);
}

/** A one-line summary of the reported images, for failure messages. */
export function describeStatus(obj: WatchedNodeImageSet | undefined): string {
  if (obj === undefined) return '(no object)';
  const images = obj.status?.images ?? [];
  return images.map((i) => `${i.image.replace(/^127\.0\.0\.1:\d+\//, '')}=${i.phase}${i.reason !== undefined ? `(${i.reason})` : ''}#${i.attempts ?? 0}`).join(', ') || '(no images in status)';
}

/**
 * Polls the object until `check` returns true, and returns it; on timeout the error shows the
 * last status seen.
 */
export async function waitForStatus(
  client: KubeClient,
  name: string,
  check: (obj: WatchedNodeImageSet) => boolean,
  opts: { what: string; timeoutMs?: number },
): Promise<WatchedNodeImageSet> {
  let last: WatchedNodeImageSet | undefined;
  try {
    return await waitFor(async () => {
      last = await readNodeImageSet(client, name);
      return last !== undefined && check(last) ? last : undefined;
    }, { what: opts.what, timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 200 });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast status of ${name}: ${describeStatus(last)}`);
  }
}

/** Every spec image has the given phase in status, for the current spec generation. */
export function allIn(phase: NodeImageStatus['phase'], images: readonly string[]) {
  return (obj: WatchedNodeImageSet): boolean =>
    obj.status?.observedGeneration === obj.generation &&
    images.every((image) => imageStatus(obj, image)?.phase === phase);
}

export interface StatusRecorder {
  /** Every version of the object seen, in order. */
  readonly versions: WatchedNodeImageSet[];
  stop(): Promise<void>;
}

/** Watches NodeImageSet `name` and keeps every version delivered, to check states that pass quickly. */
export async function recordVersions(client: KubeClient, name: string): Promise<StatusRecorder> {
  const ac = new AbortController();
  const versions: WatchedNodeImageSet[] = [];
  const page = await client.list(NODE_IMAGE_SETS_PATH, { fieldSelector: `metadata.name=${name}` }, ac.signal);
  for (const raw of page.items) {
    const obj = decodeNodeImageSet(raw);
    if (obj !== undefined) versions.push(obj);
  }
  const watching = (async () => {
    let rv = page.resourceVersion;
    while (!ac.signal.aborted) {
      await client.watch(NODE_IMAGE_SETS_PATH, { resourceVersion: rv, fieldSelector: `metadata.name=${name}` }, (ev) => {
        const obj = decodeNodeImageSet(ev.object);
        const meta = (ev.object as { metadata?: { resourceVersion?: string } } | undefined)?.metadata;
        if (meta?.resourceVersion !== undefined) rv = meta.resourceVersion;
        if (obj !== undefined && (ev.type === 'ADDED' || ev.type === 'MODIFIED')) versions.push(obj);
      }, ac.signal).catch(() => sleep(200));
    }
  })();
  return {
    versions,
    async stop() {
      ac.abort();
      await watching;
    },
  };
}

/** Writes status as if an earlier agent had (merge patch on the status subresource). */
export async function writeStatus(client: KubeClient, name: string, status: Record<string, unknown>): Promise<void> {
  await client.patch(`${NODE_IMAGE_SETS_PATH}/${name}/status`, 'merge', { status }, AbortSignal.timeout(30_000));
}
