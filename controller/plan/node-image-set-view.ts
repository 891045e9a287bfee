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
  /** Container starts the agent counted for this image (status/start-rollup.ts sums them); absent: 0. */
  readonly warmStarts?: number;
  readonly coldStarts?: number;
  readonly pullMillisecondsSaved?: number;
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
  /** metadata.creationTimestamp (ms): how long an agent has had to report from this node. */
  readonly createdMs?: number;
  /** status.imageFs.pullsPaused: the node's disk guard holds every new pull. */
  readonly pullsPaused?: boolean;
  /**
   * status.heartbeatTime (ms), or undefined while no agent ever wrote one. A cell the decoder updates in
   * place: a heartbeat alone asks for no pass (at 5,000 nodes heartbeats arrive many times a second), and
   * the next pass, whatever woke it, reads the latest.
   */
  readonly agent?: AgentBeat;
}

/** The agent's last heartbeat on one node; see NodeImageSetView.agent. */
export interface AgentBeat {
  heartbeatMs: number | undefined;
}

/**
 * Whether a node's agent can work on the pairs released to it, which is what lets them hold the budget:
 * - `alive`: it wrote a heartbeat less than `staleMs` ago, and its disk guard does not hold pulls;
 * - `starting`: no heartbeat yet, but the NodeImageSet is younger than `staleMs` (or not written yet), so an
 *   agent may still be starting;
 * - `absent`: the last heartbeat is older than `staleMs`, or none came within `staleMs` of the NodeImageSet's
 *   creation (no agent runs there: a Windows or virtual node, an agent that crash-loops), or pulls are paused.
 */
export type AgentState = 'alive' | 'starting' | 'absent';

export function agentState(view: NodeImageSetView | undefined, nowMs: number, staleMs: number): AgentState {
  if (view === undefined) return 'starting';
  if (view.pullsPaused === true) return 'absent';
  const beat = view.agent?.heartbeatMs;
  if (beat !== undefined) return nowMs - beat < staleMs ? 'alive' : 'absent';
  return view.createdMs === undefined || nowMs - view.createdMs < staleMs ? 'starting' : 'absent';
}

/** When `agentState` of this view turns `absent` with no new event, if it can (ms). */
export function agentStaleAtMs(view: NodeImageSetView | undefined, staleMs: number): number | undefined {
  if (view === undefined || view.pullsPaused === true) return undefined;
  const since = view.agent?.heartbeatMs ?? view.createdMs;
  return since === undefined ? undefined : since + staleMs;
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

/**
 * True when the agent's last attempt of this round failed and it waits out its retry back-off (or waits for the
 * container runtime to come back) before trying again: a Pending record that carries the failure's reason. The
 * agent clears the reason when an attempt starts (Pulling), so a pair only queued for a pull slot has none.
 * Finding 6 of the review: such a pair holds no budget slot while it waits (docs/decisions/0017).
 */
export function inBackoff(status: NodeImageStatusView | undefined, round: number): boolean {
  return status !== undefined && status.round === round && status.phase === 'Pending' && status.reason !== undefined && status.reason !== REMOVED_FROM_RUNTIME;
}

/** True when a released pair holds a budget slot: not finished, not waiting for its re-pull, not in back-off. */
export function holdsBudget(status: NodeImageStatusView | undefined, round: number): boolean {
  return !isFinished(status, round) && !awaitsRepull(status, round) && !inBackoff(status, round);
}
