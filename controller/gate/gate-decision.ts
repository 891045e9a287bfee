// The rollout gate's decisions, for one pod: whether a new pod gets kwarm's scheduling gate, and whether a gated
// pod is released (images warm enough, or its timeout passed). Inputs are the pod, the PrePullImages the pod's
// policy derived for its workload, that policy, which agents report, and the time; nothing else, so a restarted
// or newly elected controller decides exactly as the last one would. Both fail open: anything unknown means no
// gate, and every gate comes off at the policy's timeout. Pure: no I/O, no clock.
import { ROLLOUT_GATE_NAME } from '../../api/v1alpha1/index.ts';
import type { GateImageView, GatePodView, GatePolicyView } from './views.ts';

/** Namespaces whose pods are never gated, whatever the policies say: kwarm's own and the cluster's system pods. */
export function neverGated(namespace: string, kwarmNamespace: string): boolean {
  return namespace === kwarmNamespace || namespace === 'kube-system';
}

/** Workload kinds whose pods are gated, and how a pod's controller owner leads to them. */
export type PodWorkload =
  | { readonly kind: 'Deployment' | 'StatefulSet'; readonly name: string }
  | undefined;

/**
 * The pod's workload from its controller owner; for a ReplicaSet, `replicaSetOwner` is the ReplicaSet's own
 * controller owner (looked up by the caller). Other owners (DaemonSet, Job, a bare ReplicaSet) are not gated:
 * a DaemonSet pod is bound to one node whose image the gate cannot make appear sooner, and a Job's pods are
 * not a rollout.
 */
export function podWorkload(pod: GatePodView, replicaSetOwner: { kind: string; name: string } | undefined): PodWorkload {
  if (pod.owner === undefined) return undefined;
  if (pod.owner.kind === 'StatefulSet') return { kind: 'StatefulSet', name: pod.owner.name };
  if (pod.owner.kind === 'ReplicaSet' && replicaSetOwner?.kind === 'Deployment') return { kind: 'Deployment', name: replicaSetOwner.name };
  return undefined;
}

export type Warmth =
  | { readonly warm: true }
  | { readonly warm: false; readonly waiting: string };

/**
 * Whether one PrePullImage is warm enough for a pod whose container runs `image`: it pre-pulls that very image,
 * its status describes its current spec, at least one target node has it, and every other target node either
 * has it, gave up (Failed: waiting longer brings nothing), or has an agent that does not report (it may never
 * pull). Nodes the status does not name cannot be told apart, so they hold the gate.
 */
export function imageWarmth(ppi: GateImageView, image: string, agentReports: (node: string) => boolean): Warmth {
  const what = `${ppi.namespace}/${ppi.name}`;
  if (ppi.image !== image) return { warm: false, waiting: `${what} does not pre-pull ${image} yet` };
  const s = ppi.summary;
  if (s === undefined || ppi.observedGeneration !== ppi.generation) return { warm: false, waiting: `${what}: no status for its current spec yet` };
  if (s.completed < 1) return { warm: false, waiting: `${image} is on none of its ${s.total} target nodes yet` };
  const unfinished = s.pending + s.pulling;
  if (unfinished === 0) return { warm: true };
  const named = ppi.unfinished.filter((n) => n.phase !== 'Failed');
  const pulling = named.filter((n) => agentReports(n.node));
  if (named.length < unfinished || pulling.length > 0) {
    return { warm: false, waiting: `${image} is on ${s.completed} of ${s.total} target nodes` };
  }
  return { warm: true };
}

export interface GateContext {
  /** PrePullImages derived for the pod's workload (any policy; those of other policies are ignored). */
  readonly images: readonly GateImageView[];
  /** Policies by name (only those the images name are needed). */
  readonly policies: ReadonlyMap<string, GatePolicyView>;
  readonly agentReports: (node: string) => boolean;
}

export type PodWarmth =
  /** No policy with the gate enabled pre-pulls any of the pod's images. */
  | { readonly kind: 'NotSelected' }
  | { readonly kind: 'Warm'; readonly policy: GatePolicyView }
  | { readonly kind: 'Cold'; readonly policy: GatePolicyView; readonly waiting: readonly string[] };

/**
 * Whether the pod's images are warm enough: every container whose image a gate-enabled policy pre-pulls
 * (its PrePullImage for this workload and container name) is warm (imageWarmth). Containers no policy
 * pre-pulls for this workload do not count.
 */
export function podWarmth(pod: GatePodView, workload: NonNullable<PodWorkload>, ctx: GateContext): PodWarmth {
  const key = `${workload.kind}/${workload.name}`;
  let policy: GatePolicyView | undefined;
  const waiting: string[] = [];
  for (const c of pod.containers) {
    const ppi = ctx.images.find((i) => i.namespace === pod.namespace && i.workload === key && i.container === c.name);
    if (ppi === undefined) continue;
    const p = ctx.policies.get(ppi.policy);
    if (p === undefined || !p.enabled) continue;
    policy ??= p;
    const w = imageWarmth(ppi, c.image, ctx.agentReports);
    if (!w.warm) waiting.push(`${c.name}: ${w.waiting}`);
  }
  if (policy === undefined) return { kind: 'NotSelected' };
  return waiting.length === 0 ? { kind: 'Warm', policy } : { kind: 'Cold', policy, waiting };
}

/** The JSON patch adding kwarm's gate to a pod being created (the list is created when absent). */
export function addGatePatch(pod: GatePodView): unknown[] {
  return pod.gates === undefined
    ? [{ op: 'add', path: '/spec/schedulingGates', value: [{ name: ROLLOUT_GATE_NAME }] }]
    : [{ op: 'add', path: '/spec/schedulingGates/-', value: { name: ROLLOUT_GATE_NAME } }];
}

/**
 * The JSON patch removing kwarm's gate from a pod, after testing the gate list it was computed from, so a gate
 * added or removed by someone else meanwhile fails the patch instead of being lost; undefined without the gate.
 */
export function removeGatePatch(pod: GatePodView): unknown[] | undefined {
  const gates = pod.gates ?? [];
  const i = gates.findIndex((g) => typeof g === 'object' && g !== null && (g as { name?: unknown }).name === ROLLOUT_GATE_NAME);
  if (i < 0) return undefined;
  return [{ op: 'test', path: '/spec/schedulingGates', value: gates }, { op: 'remove', path: `/spec/schedulingGates/${i}` }];
}

export const RELEASE_REASONS = ['ImagesWarm', 'TimedOut', 'NotSelected', 'Uninstalled'] as const;
export type ReleaseReason = (typeof RELEASE_REASONS)[number];

export type ReleaseDecision =
  | { readonly release: true; readonly reason: ReleaseReason; readonly message: string }
  /** Still cold; decide again at `recheckAtMs` (the timeout) or on any change. */
  | { readonly release: false; readonly recheckAtMs: number; readonly waiting: readonly string[] };

function parseTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Whether a gated pod is released now. `workload` undefined: the pod is (no longer) a gated kind of workload,
 * so it goes at once. The timeout counts from the pod's creation, which the pod itself records, so the
 * deadline survives any controller restart.
 */
export function decideRelease(pod: GatePodView, workload: PodWorkload, ctx: GateContext, nowMs: number): ReleaseDecision {
  if (workload === undefined) return { release: true, reason: 'NotSelected', message: 'the pod belongs to no Deployment or StatefulSet kwarm gates' };
  const w = podWarmth(pod, workload, ctx);
  switch (w.kind) {
    case 'NotSelected':
      return { release: true, reason: 'NotSelected', message: `no PrePullPolicy with rolloutGate.enabled pre-pulls the images of ${workload.kind}/${workload.name} any more` };
    case 'Warm':
      return { release: true, reason: 'ImagesWarm', message: `the images PrePullPolicy ${w.policy.name} pre-pulls for this pod are warm on its nodes` };
    case 'Cold': {
      // A pod without a readable creation time has no deadline to wait for: fail open.
      const createdMs = parseTime(pod.createdAt);
      const deadline = createdMs === undefined ? nowMs : createdMs + w.policy.timeoutMs;
      if (nowMs >= deadline) {
        return { release: true, reason: 'TimedOut', message: `rolloutGate.timeout of PrePullPolicy ${w.policy.name} passed; still waiting for ${w.waiting.join('; ')}` };
      }
      return { release: false, recheckAtMs: deadline, waiting: w.waiting };
    }
    default: {
      const unreachable: never = w;
      return unreachable;
    }
  }
}

/** The Event a release records on the pod. */
export function releaseEvent(d: Extract<ReleaseDecision, { release: true }>): { type: 'Normal' | 'Warning'; reason: string; message: string } {
  const type = d.reason === 'TimedOut' ? 'Warning' : 'Normal';
  const reason = d.reason === 'TimedOut' ? 'RolloutGateTimedOut' : 'RolloutGateReleased';
  return { type, reason, message: `Removed scheduling gate ${ROLLOUT_GATE_NAME} (${d.reason}): ${d.message}`.slice(0, 1024) };
}

/** An agent counts as reporting once it has written a heartbeat no older than `staleMs`. */
export function agentReportsAt(heartbeatTime: string | undefined, nowMs: number, staleMs: number): boolean {
  const beat = parseTime(heartbeatTime);
  return beat !== undefined && nowMs - beat <= staleMs;
}
