// A ListWatch whose decoder is given the object it replaces. A decoder that keeps nothing new returns that
// object itself; then nothing the controller reads changed (a heartbeat, a status field it does not keep,
// a scale) and no pass is asked for. One wrapper for every informer of the controller.
import type { Logger } from 'winston';
import type { KubeClient } from '../../lib/kube-client.ts';
import { ListWatch, objectKey } from '../../lib/list-watch.ts';
import { field, str } from '../../lib/raw.ts';

export interface ProjectedWatchOptions<T> {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** The projection of `raw`; `previous` itself when nothing kept changed; undefined to drop it. */
  readonly decode: (raw: unknown, previous: T | undefined) => T | undefined;
  /** Something kept changed (an object added, changed or deleted). */
  readonly onChange: () => void;
  readonly onError?: (message: string) => void;
}

export function projectedWatch<T>(o: ProjectedWatchOptions<T>): ListWatch<T> {
  let unchanged: string | undefined;
  const informer: ListWatch<T> = new ListWatch<T>({
    client: o.client,
    path: o.path,
    log: o.log,
    ...(o.labelSelector !== undefined ? { labelSelector: o.labelSelector } : {}),
    ...(o.fieldSelector !== undefined ? { fieldSelector: o.fieldSelector } : {}),
    ...(o.onError !== undefined ? { onError: o.onError } : {}),
    decode: (raw) => {
      const key = objectKey(str(field(raw, 'metadata', 'namespace')), str(field(raw, 'metadata', 'name')) ?? '');
      const previous = informer.get(key);
      const obj = o.decode(raw, previous);
      unchanged = obj !== undefined && obj === previous ? key : undefined;
      return obj;
    },
    onChange: (key, obj) => {
      const same = obj !== undefined && key === unchanged;
      unchanged = undefined;
      if (!same) o.onChange();
    },
  });
  return informer;
}
