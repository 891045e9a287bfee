// What the controller keeps of a NodeImageSet (decoded once in sources/decode.ts), and where one released
// (node, image) pair stands for the cluster-wide budget. Pure: no I/O, no clock.
import { REMOVED_FROM_RUNTIME, type NodePullPhase, type RemovalResult } from '../../api/v1alpha1/index.ts';

export interface NodeImageStatusView {
  readonly phase: NodePullPhase;
  readonly round: number;
  readonly reason?: string;
  readonly message?: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
}

/** An agent's answer to a spec.removals entry. */
export interface NodeRemovalStatusView {
  readonly result: RemovalResult;
  readonly reason?: string;
  readonly message?: string;
}

/** What the controller keeps of a NodeImageSet: enough to diff its spec and count its unfinished pulls. */
export interface NodeImageSetView {
  readonly name: string;
  /** metadata.uid when read from the API (a NodeImageSet deleted and created again has a new one). */
  readonly uid?: string;
  readonly generation: number;
  readonly ownerUid: string | undefined;
  /** nodeImageSetDigest of the spec as stored. */
  readonly specDigest: string;
  /** Spec entries: image → round. */
  readonly released: ReadonlyMap<string, number>;
  /** Status entries by image. */
  readonly status: ReadonlyMap<string, NodeImageStatusView>;
  /** status.removals by image; absent when there are none. */
  readonly removals?: ReadonlyMap<string, NodeRemovalStatusView>;
}

/** True when the agent finished this entry's current round, successfully or not. */
export function isFinished(status: NodeImageStatusView | undefined, round: number): boolean {
  return status !== undefined && status.round === round && (status.phase === 'Completed' || status.phase === 'Failed');
}

/**
 * True when the agent pulled this round, the runtime lost the image since, and the agent waits for a raised
 * round to pull it again (--repull-after-gc=wait). Such a pair is finished as far as the budget goes.
 */
export function awaitsRepull(status: NodeImageStatusView | undefined, round: number): boolean {
  return status !== undefined && status.round === round && status.phase === 'Pending' && status.reason === REMOVED_FROM_RUNTIME;
}
