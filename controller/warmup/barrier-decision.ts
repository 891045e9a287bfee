// The node warm-up barrier, decided for one node: keep or remove kwarm's startup taint, what the ImagesWarm
// condition says, and which Event records the lift. Inputs are the Node, its NodeImageSet (gating entries
// flagged by the planner, phases written by the agent) and the time; nothing else, so a restarted or newly
// elected controller decides exactly as the last one would. Fails open: at the timeout the taint comes off
// whatever the images, the agent or the NodeImageSet. Pure: no I/O, no clock.
import { durationMilliseconds, IMAGES_WARM_CONDITION, type NodePullPhase } from '../../api/v1alpha1/index.ts';
import { metaTime } from '../write/api-objects.ts';

export interface WarmupOptions {
  /** Key of kwarm's startup taint; every taint with this key is kwarm's, whatever its effect. */
  readonly taintKey: string;
  /** From the taint's timeAdded (or the node's creation) to the lift whatever the images. */
  readonly timeoutMs: number;
  /** An agent heartbeat older than this counts as an agent that does not report (for the messages only). */
  readonly agentStaleMs: number;
  /**
   * Also write ImagesWarm on new nodes that do not carry kwarm's taint, for readiness gates that use the
   * condition instead (Node Readiness Controller). Off: nodes without the taint are left alone.
   */
  readonly conditionOnNewNodes: boolean;
  /**
   * From the barrier's start (as for the timeout) until "nothing gates this node" lifts it. The controller's
   * watches are not one snapshot: a workload created just before the node may reach it just after, and a
   * NodeImageSet planned without it would lift the node for good.
   */
  readonly settleMs: number;
}

export interface NodeTaint {
  readonly key: string;
  readonly effect: string;
  readonly value?: string;
  readonly timeAdded?: string;
}

export interface NodeConditionView {
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string | undefined;
}

/** The part of a Node the barrier reads. */
export interface WarmupNodeView {
  readonly name: string;
  readonly uid: string;
  /** metadata.creationTimestamp. */
  readonly createdAt: string;
  readonly taints: readonly NodeTaint[];
  readonly ready: boolean;
  /** The ImagesWarm condition as it stands, if any. */
  readonly imagesWarm: NodeConditionView | undefined;
}

export interface GatingEntry {
  readonly image: string;
  readonly round: number;
}

export interface ImageProgress {
  readonly phase: NodePullPhase;
  readonly round: number;
}

/** The part of a NodeImageSet the barrier reads. */
export interface WarmupImageSetView {
  /** uid of the Node that owns it (a NodeImageSet of a former Node of the same name does not count). */
  readonly ownerUid: string | undefined;
  /** spec.gatingImages (absent: 0). */
  readonly gatingImages: number;
  /** spec.images entries with gatesNode. */
  readonly gating: readonly GatingEntry[];
  /** status.images by image. */
  readonly progress: ReadonlyMap<string, ImageProgress>;
  /** status.heartbeatTime. */
  readonly heartbeatTime: string | undefined;
}

/** Why the barrier is lifted (condition True) or still holds (False); also the condition's reason. */
export const LIFT_REASONS = ['ImagesPresent', 'NoGatingImages', 'PullFailed', 'TimedOut'] as const;
export type LiftReason = (typeof LIFT_REASONS)[number];
export const HOLD_REASONS = ['NodeNotReady', 'NotPlanned', 'Pulling', 'AgentNotReporting'] as const;
export type HoldReason = (typeof HOLD_REASONS)[number];

export interface ConditionWrite {
  readonly type: typeof IMAGES_WARM_CONDITION;
  readonly status: 'True' | 'False';
  readonly reason: LiftReason | HoldReason;
  readonly message: string;
  /** Kept from the current condition while the status does not change. */
  readonly lastTransitionTime: string;
}

export const BARRIER_EVENT_REASONS = ['WarmupComplete', 'WarmupPullFailed', 'WarmupTimedOut'] as const;

export interface BarrierEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: (typeof BARRIER_EVENT_REASONS)[number];
  readonly message: string;
}

export interface BarrierDecision {
  /** Remove every taint with kwarm's key (the writer removes only those). */
  readonly removeTaint: boolean;
  /** The condition to write; undefined when the current one already says this (no write). */
  readonly condition: ConditionWrite | undefined;
  /** Sent once, with the condition's change to True. */
  readonly event: BarrierEvent | undefined;
  /** When this node must be decided again even if nothing changes (its timeout); undefined: only on change. */
  readonly recheckAtMs: number | undefined;
}

const NOTHING: BarrierDecision = { removeTaint: false, condition: undefined, event: undefined, recheckAtMs: undefined };

function parseTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

function durationText(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m}m` : `${Math.round(m / 60)}h`;
}

/** Where the gating images stand on the node. */
type Warmth =
  | { readonly kind: 'lift'; readonly reason: 'ImagesPresent' | 'NoGatingImages' | 'PullFailed'; readonly message: string }
  | { readonly kind: 'hold'; readonly reason: HoldReason; readonly message: string; readonly agentStaleAtMs?: number };

function agentText(set: WarmupImageSetView, nowMs: number, opts: WarmupOptions): { alive: boolean; text: string; staleAtMs?: number } {
  const beat = parseTime(set.heartbeatTime);
  if (beat === undefined) return { alive: false, text: 'kwarm-agent has not reported from this node' };
  const staleAtMs = beat + opts.agentStaleMs;
  if (nowMs >= staleAtMs) return { alive: false, text: `kwarm-agent's last heartbeat from this node was ${durationText(nowMs - beat)} ago` };
  return { alive: true, text: '', staleAtMs };
}

function warmth(node: WarmupNodeView, set: WarmupImageSetView | undefined, nowMs: number, opts: WarmupOptions): Warmth {
  if (!node.ready) return { kind: 'hold', reason: 'NodeNotReady', message: 'the node is not Ready; kwarm-agent pulls once it is' };
  if (set === undefined || set.ownerUid !== node.uid) {
    return { kind: 'hold', reason: 'NotPlanned', message: `kwarm-controller has not written this node's NodeImageSet yet` };
  }
  const required = Math.max(set.gatingImages, set.gating.length);
  if (required === 0) return { kind: 'lift', reason: 'NoGatingImages', message: 'no PrePullImage or PrePullPolicy with gateNewNodes targets this node' };
  let present = 0;
  const failed: string[] = [];
  let unfinished = 0;
  for (const e of set.gating) {
    const p = set.progress.get(e.image);
    // Progress of an earlier round (before a refresh) says nothing about this one.
    const phase = p !== undefined && p.round === e.round ? p.phase : 'Pending';
    if (phase === 'Completed') present++;
    else if (phase === 'Failed') failed.push(e.image);
    else unfinished++;
  }
  const held = required - set.gating.length;
  if (present >= required) return { kind: 'lift', reason: 'ImagesPresent', message: `all ${required} gating images are present on the node` };
  const counts = `${present} of ${required} gating images present`;
  // Nothing left that could still arrive: waiting longer only delays the node.
  if (failed.length > 0 && unfinished === 0 && held <= 0) {
    const shown = failed.slice(0, 3).join(', ') + (failed.length > 3 ? ` and ${failed.length - 3} more` : '');
    return { kind: 'lift', reason: 'PullFailed', message: `${counts}; kwarm-agent gave up on ${shown} (see the NodeImageSet's status)` };
  }
  const agent = agentText(set, nowMs, opts);
  const waiting = held > 0 ? `${counts}, ${held} waiting for the cluster-wide pull budget` : counts;
  if (!agent.alive) return { kind: 'hold', reason: 'AgentNotReporting', message: `${waiting}; ${agent.text}` };
  return { kind: 'hold', reason: 'Pulling', message: waiting, ...(agent.staleAtMs !== undefined ? { agentStaleAtMs: agent.staleAtMs } : {}) };
}

function conditionFor(current: NodeConditionView | undefined, status: 'True' | 'False', reason: LiftReason | HoldReason, message: string, nowMs: number): ConditionWrite | undefined {
  if (current?.status === status && current.reason === reason && current.message === message) return undefined;
  const lastTransitionTime = current?.status === status && current.lastTransitionTime !== undefined ? current.lastTransitionTime : metaTime(new Date(nowMs));
  return { type: IMAGES_WARM_CONDITION, status, reason, message, lastTransitionTime };
}

function liftEvent(reason: LiftReason, message: string): BarrierEvent {
  switch (reason) {
    case 'ImagesPresent':
    case 'NoGatingImages':
      return { type: 'Normal', reason: 'WarmupComplete', message };
    case 'PullFailed':
      return { type: 'Warning', reason: 'WarmupPullFailed', message };
    case 'TimedOut':
      return { type: 'Warning', reason: 'WarmupTimedOut', message };
    default: {
      const unreachable: never = reason;
      return unreachable;
    }
  }
}

/**
 * Which nodes the barrier looks after: those carrying kwarm's taint, nodes whose ImagesWarm it set False
 * earlier, and with `conditionOnNewNodes` (for readiness gates that use the condition instead, such as the
 * Node Readiness Controller) nodes younger than the timeout. A node whose ImagesWarm is True and has no taint
 * is done: the barrier is a start-up gate, it never closes again on a running node. Without the taint and
 * without the option, nothing is written: clusters that do not use the barrier see no Node writes.
 */
export function barrierApplies(node: WarmupNodeView, nowMs: number, opts: WarmupOptions): boolean {
  if (node.taints.some((t) => t.key === opts.taintKey)) return true;
  if (node.imagesWarm === undefined && !opts.conditionOnNewNodes) return false;
  return warmsWithoutTaint(node.imagesWarm?.status, node.createdAt, nowMs, opts.timeoutMs);
}

/**
 * Whether a node without kwarm's taint is still warming, from its ImagesWarm status and creation time: the
 * condition is False, or absent on a node younger than `timeoutMs`. The barrier (barrierApplies) and the
 * planner (which gives such a node a NodeImageSet even with nothing to pull) decide it alike.
 */
export function warmsWithoutTaint(imagesWarm: string | undefined, createdAt: string | undefined, nowMs: number, timeoutMs: number): boolean {
  if (imagesWarm !== undefined) return imagesWarm !== 'True';
  const created = parseTime(createdAt);
  return created !== undefined && nowMs < created + timeoutMs;
}

/** The barrier's decision for one node at `nowMs`. */
export function decideBarrier(node: WarmupNodeView, set: WarmupImageSetView | undefined, nowMs: number, opts: WarmupOptions): BarrierDecision {
  if (!barrierApplies(node, nowMs, opts)) return NOTHING;
  const taints = node.taints.filter((t) => t.key === opts.taintKey);
  const hasTaint = taints.length > 0;
  // Lifted before (its removal failed, or the taint was put back): the gate stays open, whatever changed since.
  if (node.imagesWarm?.status === 'True') return { removeTaint: hasTaint, condition: undefined, event: undefined, recheckAtMs: undefined };
  // The clock starts when the taint was added when the API recorded it, else at the node's creation (kubelet
  // --register-with-taints and autoscaler start-up taints come with the node).
  const added = taints.map((t) => parseTime(t.timeAdded)).find((t) => t !== undefined);
  const startMs = added ?? parseTime(node.createdAt) ?? nowMs;
  const deadlineMs = startMs + opts.timeoutMs;

  const w = warmth(node, set, nowMs, opts);
  const settledAtMs = Math.min(startMs + opts.settleMs, deadlineMs);
  if (w.kind === 'lift' && w.reason === 'NoGatingImages' && nowMs < settledAtMs) {
    const message = `nothing gates this node so far; kwarm-controller waits until ${durationText(opts.settleMs)} after the node joined for workloads it may not have seen yet`;
    return { removeTaint: false, condition: conditionFor(node.imagesWarm, 'False', 'NotPlanned', message, nowMs), event: undefined, recheckAtMs: settledAtMs };
  }
  if (w.kind === 'lift') return lifted(node, hasTaint, w.reason, w.message, nowMs);
  if (nowMs >= deadlineMs) {
    const message = `warm-up timeout of ${durationText(opts.timeoutMs)} passed before the images were warm (${w.reason}: ${w.message})`;
    return lifted(node, hasTaint, 'TimedOut', message, nowMs);
  }
  // The agent turning stale changes the message; the deadline lifts the taint. Whichever comes first.
  const recheckAtMs = w.agentStaleAtMs !== undefined ? Math.min(deadlineMs, w.agentStaleAtMs) : deadlineMs;
  return { removeTaint: false, condition: conditionFor(node.imagesWarm, 'False', w.reason, w.message, nowMs), event: undefined, recheckAtMs };
}

function lifted(node: WarmupNodeView, hasTaint: boolean, reason: LiftReason, message: string, nowMs: number): BarrierDecision {
  // The Event goes with the condition's change to True, so a retried taint removal does not repeat it.
  const event = node.imagesWarm?.status !== 'True' ? liftEvent(reason, message) : undefined;
  return { removeTaint: hasTaint, condition: conditionFor(node.imagesWarm, 'True', reason, message, nowMs), event, recheckAtMs: undefined };
}

/**
 * The agent heartbeats on every verify pass (--verify-interval, 5m by default); three missed passes make it
 * count as not reporting.
 */
export const AGENT_STALE_MS = 15 * 60_000;

/** See WarmupOptions.settleMs: far longer than watch events of one moment arrive apart, far shorter than a node's boot. */
export const WARMUP_SETTLE_MS = 5000;

/** Validated barrier options from the controller's flags; throws with a message naming the flag. */
export function warmupOptions(taintKey: string, timeout: string, conditionOnNewNodes = false, agentStaleMs = AGENT_STALE_MS): WarmupOptions {
  if (!TAINT_KEY.test(taintKey) || taintKey.length > 316) {
    throw new Error(`--warmup-taint "${taintKey}" is not a taint key (a qualified name such as kwarm.io/warming)`);
  }
  const timeoutMs = durationMilliseconds(timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) throw new Error(`--warmup-timeout "${timeout}" is not a positive duration such as 10m`);
  return { taintKey, timeoutMs, agentStaleMs, conditionOnNewNodes, settleMs: WARMUP_SETTLE_MS };
}

// A qualified name: optional DNS subdomain prefix and '/', then a name of up to 63 characters.
const TAINT_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/u;
