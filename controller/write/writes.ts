// What a planning stage asks the writer to do, as plain values: one entry per API request (with the Events
// that follow a status), grouped into steps the writer runs in order. Pure data; writer.ts does the I/O.
import type { PrePullImage, PrePullImageStatus, PrePullPolicyStatus } from '../../api/v1alpha1/index.ts';
import type { DesiredPrePullImage } from '../derive/desired-images.ts';
import type { SecretCopy } from '../derive/pull-secrets.ts';
import type { PlannedNodeImageSet } from '../plan/node-plan.ts';
import type { NodeImageSetView } from '../plan/node-image-set-view.ts';
import type { RefreshRecord } from '../status/refresh.ts';
import type { StatusEvent } from '../status/status-rollup.ts';
import type { EventSubject } from './api-objects.ts';

export type Write =
  /** Apply a pull secret copy in kwarm's namespace. */
  | { readonly kind: 'secretCopy'; readonly copy: SecretCopy }
  /** Apply a derived PrePullImage; `digest` is what the overlay remembers. */
  | { readonly kind: 'prePullImage'; readonly key: string; readonly desired: DesiredPrePullImage; readonly digest: string }
  /** Add (apply under its own field manager) or remove (patch) the purge finalizer of a hand-written PrePullImage. */
  | { readonly kind: 'purgeFinalizer'; readonly ppi: PrePullImage; readonly add: boolean }
  /** Apply a NodeImageSet spec; `current` is the view it replaces (its status stays in the overlay's view). */
  | { readonly kind: 'nodeImageSet'; readonly planned: PlannedNodeImageSet; readonly current: NodeImageSetView | undefined }
  /**
   * Apply a PrePullImage status, then create its Events (after the status that records the transition, so a
   * retried pass never repeats them). `refresh`: the status records a new refresh (stage A).
   */
  | {
    readonly kind: 'prePullImageStatus';
    readonly key: string;
    readonly ppi: PrePullImage;
    readonly status: PrePullImageStatus;
    readonly events: readonly StatusEvent[];
    readonly refresh?: { readonly record: RefreshRecord; readonly trigger: string };
  }
  /** Remove the purge finalizer of a deleted PrePullImage, unless its status write in this pass failed. */
  | { readonly kind: 'releaseFinalizer'; readonly key: string; readonly ppi: PrePullImage }
  | { readonly kind: 'policyStatus'; readonly name: string; readonly status: PrePullPolicyStatus; readonly resourceVersion: string | undefined }
  /** An Event on some other object (a ConfigMap with a bad image list). */
  | { readonly kind: 'event'; readonly subject: EventSubject; readonly involved: { readonly apiVersion: string; readonly kind: string }; readonly event: StatusEvent }
  | { readonly kind: 'deletePrePullImage'; readonly key: string; readonly ppi: PrePullImage }
  | { readonly kind: 'deleteSecretCopy'; readonly name: string };

export interface WriteStep {
  readonly writes: readonly Write[];
  /** Skip the step when a write before it failed in this apply (its writes are only right after those). */
  readonly onlyIfNoFailure?: boolean;
}

/** Steps run one after the other; the writes of one step run concurrently (within the writer's limit). */
export type WritePlan = readonly WriteStep[];

export function writeCount(plan: WritePlan): number {
  return plan.reduce((n, step) => n + step.writes.length, 0);
}
