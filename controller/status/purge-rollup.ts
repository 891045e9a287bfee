// From the agents' answers to a removal (NodeImageSet status.removals) up to PrePullImage status.purge,
// the Ready condition of a purging PrePullImage and the Purged Event. Pure: the caller passes the time.
import {
  MAX_STATUS_NODES,
  prePullImageConditionTypes,
  type Condition,
  type PrePullImageStatus,
  type RemovalResult,
} from '../../api/v1alpha1/index.ts';
import type { PlannedNodeImageSet } from '../plan/node-plan.ts';
import type { NodeImageSetView, NodeRemovalStatusView } from '../plan/node-image-set-view.ts';
import { clip, setCondition } from './status-rollup.ts';

export type PurgeStatus = NonNullable<PrePullImageStatus['purge']>;
type PurgeNode = NonNullable<PurgeStatus['nodes']>[number];

/** Reason for a node that did not answer in time (gone, NotReady, agent down). */
export const NO_ANSWER = 'NoAnswer';

export interface PurgeInput {
  readonly image: string;
  /** Nodes the removal is asked of. */
  readonly nodes: readonly string[];
  readonly planned: ReadonlyMap<string, PlannedNodeImageSet>;
  readonly current: ReadonlyMap<string, NodeImageSetView>;
  /** Epoch ms after which nodes that have not answered count as failed (NoAnswer); undefined: wait for them. */
  readonly giveUpAtMs: number | undefined;
  readonly nowMs: number;
}

export interface PurgeRollup {
  readonly purge: PurgeStatus;
  /** Every node has answered (or was given up on). */
  readonly done: boolean;
}

/** A node's answer, when its agent has given one for the removal the plan asks of it. */
function answerOf(node: string, image: string, input: PurgeInput): NodeRemovalStatusView | undefined {
  const planned = input.planned.get(node);
  // The plan cancelled the removal: another PrePullImage (e.g. the re-created workload's) wants the image there.
  if (planned?.wantedAgain?.includes(image) === true) return WANTED_AGAIN;
  const asked = planned?.spec.removals.some((r) => r.image === image) ?? false;
  return asked ? input.current.get(node)?.removals?.get(image) : undefined;
}

const WANTED_AGAIN: NodeRemovalStatusView = {
  result: 'Kept', reason: 'Wanted', message: 'another PrePullImage wants the image on this node (waiting for the pull budget); the removal was not asked',
};

const DETAIL_ORDER: Record<RemovalResult, number> = { Failed: 0, Kept: 1, Removed: 2, NotPresent: 3 };

export function purgeRollup(input: PurgeInput): PurgeRollup {
  let removed = 0;
  let kept = 0;
  let failed = 0;
  let pending = 0;
  const detail: PurgeNode[] = [];
  const givenUp = input.giveUpAtMs !== undefined && input.nowMs >= input.giveUpAtMs;
  for (const node of input.nodes) {
    let a: NodeRemovalStatusView | undefined = answerOf(node, input.image, input);
    if (a === undefined && givenUp) a = { result: 'Failed', reason: NO_ANSWER, message: 'the node did not answer before the PrePullImage\'s timeout' };
    if (a === undefined) {
      pending++;
      continue;
    }
    switch (a.result) {
      case 'Removed':
      case 'NotPresent':
        removed++;
        break;
      case 'Kept':
        kept++;
        break;
      case 'Failed':
        failed++;
        break;
      default: {
        const unreachable: never = a.result;
        return unreachable;
      }
    }
    const reason = clip(a.reason, 128);
    const message = clip(a.message, 1024);
    detail.push({ node, result: a.result, ...(reason !== undefined ? { reason } : {}), ...(message !== undefined ? { message } : {}) });
  }
  detail.sort((a, b) => DETAIL_ORDER[a.result] - DETAIL_ORDER[b.result] || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const nodes = detail.slice(0, MAX_STATUS_NODES);
  const purge: PurgeStatus = { total: input.nodes.length, removed, kept, failed, pending, ...(nodes.length > 0 ? { nodes } : {}) };
  return { purge, done: pending === 0 };
}

/** One line with the counts, for the condition and the Event. */
export function purgeSummary(image: string, p: PurgeStatus): string {
  const parts = [`removed from ${p.removed}`, `kept on ${p.kept}`, `failed on ${p.failed}`];
  if (p.pending > 0) parts.push(`waiting for ${p.pending}`);
  return `${image}: ${parts.join(', ')} of ${p.total} nodes`;
}

export interface PurgeStatusInput {
  readonly generation: number;
  readonly image: string;
  readonly rollup: PurgeRollup;
  readonly previous: PrePullImageStatus | undefined;
  readonly now: string;
}

/**
 * The status of a PrePullImage whose image is being removed: the pull fields go (nothing is pulled for
 * it any more), status.purge carries the counts, and Ready is False (the image is meant to be absent).
 */
export function purgingStatus(input: PurgeStatusInput): { status: PrePullImageStatus; purged: boolean } {
  const { purge, done } = input.rollup;
  const ready: Omit<Condition, 'lastTransitionTime'> = {
    type: prePullImageConditionTypes.Ready,
    status: 'False',
    reason: done ? 'Purged' : 'Purging',
    message: purgeSummary(input.image, purge),
    observedGeneration: input.generation,
  };
  const status: PrePullImageStatus = {
    observedGeneration: input.generation,
    conditions: [setCondition(input.previous?.conditions, ready, input.now)],
    purge,
    // The last refresh stays on record (its time is the round the nodes were asked for).
    ...(input.previous?.refresh !== undefined ? { refresh: input.previous.refresh } : {}),
  };
  // The Event is due when this status is the first to record that every node answered.
  const wasDone = input.previous?.purge !== undefined && input.previous.purge.pending === 0 && input.previous.observedGeneration === input.generation &&
    input.previous.conditions?.some((c) => c.type === prePullImageConditionTypes.Ready && c.reason === 'Purged') === true;
  return { status, purged: done && !wasDone };
}
