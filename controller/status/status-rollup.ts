// From NodeImageSet statuses back up to PrePullImage and PrePullPolicy status, and the Events the
// transitions deserve. Pure: the caller passes the time, and a resync with nothing changed produces the
// same status (timestamps move only on transitions), so it writes nothing.
import {
  MAX_STATUS_NODES,
  prePullImageConditionTypes,
  prePullPolicyConditionTypes,
  type Condition,
  type NodePullPhase,
  type PrePullImagePhase,
  type PrePullImageStatus,
  type PrePullPolicyStatus,
} from '../../api/v1alpha1/index.ts';
import { ARGO_GROUP_VERSION } from '../derive/argo-workflow-images.ts';
import type { PolicyEvaluation } from '../derive/desired-images.ts';
import { inputsCondition } from '../derive/derived-validation.ts';
import type { ConfigMapsState, ListedEvaluation } from '../derive/listed-images.ts';
import type { PlannedNodeImageSet, SourceRefusal } from '../plan/node-plan.ts';
import type { NodeImageSetView } from '../plan/node-image-set-view.ts';

export const PULL_SECRETS_READY = 'PullSecretsReady';

export type EventReason = 'PullStarted' | 'PullCompleted' | 'PullFailed' | 'PullRefused' | 'PullSecretProblem' | 'Purged' | 'RefreshRequested' | 'InvalidImageList' | 'NodeImageSetFull';

export interface StatusEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: EventReason;
  readonly message: string;
}

/** Sets a condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  previous: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: string,
): Condition {
  const old = previous?.find((c) => c.type === next.type);
  const lastTransitionTime = old !== undefined && old.status === next.status ? old.lastTransitionTime : now;
  return { ...next, lastTransitionTime };
}

export interface SecretResolution {
  /** Secrets the PrePullImage names. */
  readonly referenced: number;
  /** One line per secret that could not be used, e.g. `regcred: SecretNotFound: ...`. */
  readonly problems: readonly string[];
  /** Secrets not known yet and not copied before: their namespace's Secrets are not listed yet, or their list fails. Absent: 0. */
  readonly unknown?: number;
}

export interface ImageStatusInput {
  readonly generation: number;
  readonly image: string;
  /** The round this PrePullImage wants (see refresh.ts wantedRound); a node still below it has not caught up. Default 0. */
  readonly round?: number;
  /** Eligible target nodes. */
  readonly nodes: readonly string[];
  readonly planned: ReadonlyMap<string, PlannedNodeImageSet>;
  readonly current: ReadonlyMap<string, NodeImageSetView>;
  readonly previous: PrePullImageStatus | undefined;
  readonly secrets: SecretResolution;
  readonly now: string;
  /** Why the planner left this PrePullImage out or did not honour it in full (node-plan.ts NodePlan.refused). */
  readonly refusal?: SourceRefusal;
}

interface NodeState {
  readonly node: string;
  readonly phase: NodePullPhase;
  readonly reason: string | undefined;
  readonly message: string | undefined;
  readonly startedAt: string | undefined;
  readonly finishedAt: string | undefined;
}

function nodeState(node: string, image: string, input: ImageStatusInput): NodeState {
  const round = input.planned.get(node)?.released.get(image);
  // Released, or a requested refresh, not yet: the pair waits for the cluster-wide budget.
  const waiting = round === undefined || round < (input.round ?? 0);
  const s = waiting ? undefined : input.current.get(node)?.status.get(image);
  // Status of an older round says nothing about this one, except that it is under way.
  if (s === undefined || round === undefined || s.round !== round) {
    return { node, phase: 'Pending', reason: waiting ? 'WaitingForBudget' : undefined, message: undefined, startedAt: undefined, finishedAt: undefined };
  }
  return { node, phase: s.phase, reason: s.reason, message: s.message, startedAt: s.startedAt, finishedAt: s.finishedAt };
}

function phaseOf(total: number, c: Record<NodePullPhase, number>): PrePullImagePhase {
  if (total > 0 && c.Completed === total) return 'Completed';
  if (c.Failed > 0 && c.Pending + c.Pulling === 0) return 'Failed';
  if (c.Pulling > 0 || c.Completed + c.Failed > 0) return 'InProgress';
  return 'Pending';
}

/** `text` cut to `max` characters, an ellipsis marking the cut (status fields have bounded lengths). */
export function clip(text: string | undefined, max: number): string | undefined {
  return text === undefined ? undefined : text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const DETAIL_ORDER: Record<NodePullPhase, number> = { Failed: 0, Pulling: 1, Pending: 2, Completed: 3 };

/** PullSecretsReady: False with the problems; Unknown while a secret is not known yet (not True: nothing was copied for it); else True. */
function pullSecretsReady(secrets: SecretResolution, generation: number): Omit<Condition, 'lastTransitionTime'> {
  const base = { type: PULL_SECRETS_READY, observedGeneration: generation };
  if (secrets.problems.length > 0) return { ...base, status: 'False', reason: 'SecretUnusable', message: clip(secrets.problems.join('; '), 4096) ?? '' };
  const unknown = secrets.unknown ?? 0;
  if (unknown > 0) {
    return {
      ...base, status: 'Unknown', reason: 'SecretsNotListed',
      message: `${unknown} of ${secrets.referenced} pull secrets not read yet: their namespace's Secrets are not listed yet, or listing them fails (see the controller's log)`,
    };
  }
  return { ...base, status: 'True', reason: 'Copied', message: `${secrets.referenced} pull secrets copied to kwarm's namespace` };
}

export function prePullImageStatus(input: ImageStatusInput): { status: PrePullImageStatus; events: StatusEvent[] } {
  const { generation, image, now } = input;
  const counts: Record<NodePullPhase, number> = { Pending: 0, Pulling: 0, Completed: 0, Failed: 0 };
  const notable: NodeState[] = [];
  let firstStart: string | undefined;
  let lastFinish: string | undefined;
  for (const node of input.nodes) {
    const st = nodeState(node, image, input);
    counts[st.phase]++;
    if (st.phase !== 'Completed' && notable.length < MAX_STATUS_NODES * 4) notable.push(st);
    if (st.startedAt !== undefined && (firstStart === undefined || st.startedAt < firstStart)) firstStart = st.startedAt;
    if (st.finishedAt !== undefined && (lastFinish === undefined || st.finishedAt > lastFinish)) lastFinish = st.finishedAt;
  }
  const total = input.nodes.length;
  const refusal = input.refusal;
  // Left out of planning: nothing will happen until the user acts, so it is Failed, not Pending forever.
  const phase = refusal?.excluded === true ? 'Failed' : phaseOf(total, counts);
  const prev = input.previous?.observedGeneration === generation ? input.previous : undefined;
  const prevPhase = prev?.phase;

  const ready = ((): Omit<Condition, 'lastTransitionTime'> => {
    const base = { type: prePullImageConditionTypes.Ready, observedGeneration: generation };
    if (refusal !== undefined) return { ...base, status: 'False', reason: refusal.reason, message: clip(refusal.message, 32_000) ?? '' };
    switch (phase) {
      case 'Completed':
        return { ...base, status: 'True', reason: 'ImagePresent', message: `${image} is present on all ${total} target nodes` };
      case 'Failed':
        return { ...base, status: 'False', reason: 'PullFailed', message: `${image} failed on ${counts.Failed} of ${total} target nodes` };
      case 'InProgress':
        return { ...base, status: 'False', reason: 'Pulling', message: `${counts.Completed} of ${total} target nodes have ${image}` };
      case 'Pending':
        return total === 0
          ? { ...base, status: 'False', reason: 'NoTargetNodes', message: 'no Ready, schedulable node matches' }
          : { ...base, status: 'False', reason: 'Pending', message: `waiting to pull ${image} on ${total} target nodes` };
      default: {
        const unreachable: never = phase;
        return unreachable;
      }
    }
  })();
  const conditions: Condition[] = [setCondition(input.previous?.conditions, ready, now)];
  if (input.secrets.referenced > 0) conditions.push(setCondition(input.previous?.conditions, pullSecretsReady(input.secrets, generation), now));

  notable.sort((a, b) => DETAIL_ORDER[a.phase] - DETAIL_ORDER[b.phase] || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const nodes = notable.slice(0, MAX_STATUS_NODES).map((st) => {
    const reason = clip(st.reason, 128);
    const message = clip(st.message, 1024);
    return { node: st.node, phase: st.phase, ...(reason !== undefined ? { reason } : {}), ...(message !== undefined ? { message } : {}) };
  });

  const started = counts.Pulling + counts.Completed + counts.Failed > 0;
  const startTime = prev?.startTime ?? (started ? firstStart ?? now : undefined);
  const completionTime = phase === 'Completed' ? (prevPhase === 'Completed' ? prev?.completionTime : undefined) ?? lastFinish ?? now : undefined;
  const status: PrePullImageStatus = {
    observedGeneration: generation,
    phase,
    summary: { total, pending: counts.Pending, pulling: counts.Pulling, completed: counts.Completed, failed: counts.Failed },
    ready: `${counts.Completed}/${total}`,
    conditions,
    ...(startTime !== undefined ? { startTime } : {}),
    ...(completionTime !== undefined ? { completionTime } : {}),
    ...(nodes.length > 0 ? { nodes } : {}),
    // Written when a refresh is requested (before any node sees it); kept by every later rollup.
    ...(input.previous?.refresh !== undefined ? { refresh: input.previous.refresh } : {}),
  };

  const events: StatusEvent[] = [];
  if (phase !== prevPhase) {
    if (phase === 'InProgress' && (prevPhase === undefined || prevPhase === 'Pending')) {
      events.push({ type: 'Normal', reason: 'PullStarted', message: `Pulling ${image} on ${total} target nodes` });
    } else if (phase === 'Completed') {
      events.push({ type: 'Normal', reason: 'PullCompleted', message: `${image} is present on all ${total} target nodes` });
    } else if (phase === 'Failed' && refusal?.excluded === true) {
      events.push({ type: 'Warning', reason: 'PullRefused', message: clip(`${refusal.reason}: ${refusal.message}`, 1024) ?? '' });
    } else if (phase === 'Failed') {
      const failed = nodes.find((n) => n.phase === 'Failed');
      const why = failed === undefined ? '' : `; ${failed.node}: ${failed.reason ?? 'failed'}${failed.message !== undefined ? ` (${failed.message})` : ''}`;
      events.push({ type: 'Warning', reason: 'PullFailed', message: clip(`${image} failed on ${counts.Failed} of ${total} target nodes${why}`, 1024) ?? '' });
    }
  }
  const oldSecrets = input.previous?.conditions?.find((c) => c.type === PULL_SECRETS_READY);
  const newSecrets = conditions.find((c) => c.type === PULL_SECRETS_READY);
  if (newSecrets?.status === 'False' && (oldSecrets?.status !== 'False' || oldSecrets.message !== newSecrets.message)) {
    events.push({ type: 'Warning', reason: 'PullSecretProblem', message: clip(newSecrets.message, 1024) ?? '' });
  }
  return { status, events };
}

export const RESOURCES_IGNORED_MESSAGE =
  'spec.resources has no effect: kwarm runs no pull Jobs or pods; each node\'s kwarm-agent pulls through the CRI socket';

export interface PolicyStatusInput {
  readonly generation: number;
  readonly evaluation: PolicyEvaluation;
  /** The policy's static and ConfigMap images; undefined when it has none (as before either existed). */
  readonly listed?: ListedEvaluation;
  /** Phases of the PrePullImages derived through the policy, from every source (undefined: not written yet). */
  readonly imagePhases: readonly (PrePullImagePhase | undefined)[];
  readonly previous: PrePullPolicyStatus | undefined;
  readonly now: string;
  /** The Argo kinds the policy names, and those the cluster serves (undefined: discovery has not answered yet). */
  readonly argo?: ArgoSourceInput;
}

export interface ArgoSourceInput {
  readonly named: readonly string[];
  readonly served: ReadonlySet<string> | undefined;
}

/**
 * ArgoSourceActive for a policy naming Argo kinds: False (NotInstalled) listing the kinds the cluster does not
 * serve, True once all are served. Until discovery has answered, the previous condition stands.
 */
export function argoSourceCondition(
  input: ArgoSourceInput,
  previous: readonly Condition[] | undefined,
  generation: number,
  now: string,
): Condition | undefined {
  const type = prePullPolicyConditionTypes.ArgoSourceActive;
  if (input.named.length === 0) return undefined;
  if (input.served === undefined) return previous?.find((c) => c.type === type);
  const served = input.served;
  const missing = input.named.filter((k) => !served.has(k));
  const base = { type, observedGeneration: generation };
  return setCondition(previous, missing.length > 0
    ? { ...base, status: 'False', reason: 'NotInstalled', message: `the cluster does not serve ${missing.join(', ')} (${ARGO_GROUP_VERSION}); their images are not pre-pulled until the Argo Workflows CRDs are installed` }
    : { ...base, status: 'True', reason: 'Watching', message: `watching ${input.named.join(', ')} (${ARGO_GROUP_VERSION})` }, now);
}

export function prePullPolicyStatus(input: PolicyStatusInput): PrePullPolicyStatus {
  const { evaluation: ev, generation, now } = input;
  const total = input.imagePhases.length;
  const completed = input.imagePhases.filter((p) => p === 'Completed').length;
  const failed = input.imagePhases.filter((p) => p === 'Failed').length;
  const shadowed = ev.shadowed > 0 ? `; ${ev.shadowed} more selected workloads belong to an earlier policy (by name)` : '';
  const base = { type: prePullPolicyConditionTypes.Ready, observedGeneration: generation };
  const ready: Omit<Condition, 'lastTransitionTime'> = ev.selectorError !== undefined
    ? { ...base, status: 'False', reason: 'InvalidSelector', message: ev.selectorError }
    : total === 0
      ? { ...base, status: 'True', reason: 'NoWorkloads', message: `no workload matches the selector${listedNone(input.listed)}${shadowed}` }
      : completed === total
        ? { ...base, status: 'True', reason: 'ImagesPresent', message: `all ${total} images ${imageSources(ev.watchedWorkloads, input.listed)} are present on their target nodes${shadowed}` }
        : failed > 0
          ? { ...base, status: 'False', reason: 'PullFailed', message: `${failed} of ${total} images failed; ${completed} ready${shadowed}` }
          : { ...base, status: 'False', reason: 'Pulling', message: `${completed} of ${total} images ready${shadowed}` };
  const resources: Omit<Condition, 'lastTransitionTime'> = {
    type: prePullPolicyConditionTypes.ResourcesIgnored,
    status: 'True',
    reason: 'NoPullJobs',
    message: RESOURCES_IGNORED_MESSAGE,
    observedGeneration: generation,
  };
  const conditions = [setCondition(input.previous?.conditions, ready, now), setCondition(input.previous?.conditions, resources, now)];
  const cms = input.listed?.configMaps ?? { kind: 'unset' };
  const configMapsValid = configMapsCondition(cms, generation);
  if (configMapsValid !== undefined) conditions.push(setCondition(input.previous?.conditions, configMapsValid, now));
  const argo = input.argo === undefined ? undefined : argoSourceCondition(input.argo, input.previous?.conditions, generation, now);
  if (argo !== undefined) conditions.push(argo);
  const inputs = inputsCondition(ev.inputProblems ?? [], input.previous?.conditions, generation);
  if (inputs !== undefined) conditions.push(setCondition(input.previous?.conditions, inputs, now));
  return {
    observedGeneration: generation,
    watchedWorkloads: ev.watchedWorkloads,
    ...(cms.kind === 'unset' ? {} : { watchedConfigMaps: cms.kind === 'watched' ? cms.configMaps : 0 }),
    images: total,
    conditions,
  };
}

function listedNone(listed: ListedEvaluation | undefined): string {
  return listed?.configMaps.kind === undefined || listed.configMaps.kind === 'unset' ? '' : ' and the selected ConfigMaps list no image';
}

/** Where a policy's images come from, for the Ready message. */
function imageSources(workloads: number, listed: ListedEvaluation | undefined): string {
  const fromStatic = listed?.staticImages.length ?? 0;
  const fromConfigMaps = listed?.configMapImages.length ?? 0;
  if (fromStatic === 0 && fromConfigMaps === 0) return `of ${workloads} workloads`;
  const parts = [
    ...(workloads > 0 ? [`${workloads} workloads`] : []),
    ...(fromStatic > 0 ? [`spec.images (${fromStatic})`] : []),
    ...(fromConfigMaps > 0 ? [`ConfigMaps (${fromConfigMaps})`] : []),
  ];
  return `from ${parts.join(', ')}`;
}

const MAX_PROBLEMS_SHOWN = 10;

/** The text naming one bad key; it carries the ConfigMap's resourceVersion, so a recorded problem is recognised after a restart. */
export function configMapProblemText(p: { namespace: string; name: string; resourceVersion: string; key: string; message: string }): string {
  return `ConfigMap ${p.namespace}/${p.name} key ${JSON.stringify(p.key)} (resourceVersion ${p.resourceVersion}): ${p.message}`;
}

/** ConfigMapsValid, only for a policy with spec.configMaps. */
export function configMapsCondition(state: ConfigMapsState, generation: number): Omit<Condition, 'lastTransitionTime'> | undefined {
  const base = { type: prePullPolicyConditionTypes.ConfigMapsValid, observedGeneration: generation };
  switch (state.kind) {
    case 'unset':
      return undefined;
    case 'invalidSelector':
      return { ...base, status: 'False', reason: 'InvalidSelector', message: state.error };
    case 'pending':
      return state.error === undefined
        ? { ...base, status: 'Unknown', reason: 'Listing', message: 'the selected ConfigMaps have not been listed yet' }
        : { ...base, status: 'Unknown', reason: 'ListFailed', message: clip(`cannot list the selected ConfigMaps: ${state.error}`, 4096) ?? '' };
    case 'watched': {
      if (state.problems.length === 0) {
        return { ...base, status: 'True', reason: 'ImageListsValid', message: `every key of the ${state.configMaps} selected ConfigMaps lists images` };
      }
      const shown = state.problems.slice(0, MAX_PROBLEMS_SHOWN).map(configMapProblemText);
      const more = state.problems.length > MAX_PROBLEMS_SHOWN ? `; and ${state.problems.length - MAX_PROBLEMS_SHOWN} more` : '';
      return { ...base, status: 'False', reason: 'InvalidImageList', message: clip(`${shown.join('; ')}${more}`, 32_000) ?? '' };
    }
    default: {
      const unreachable: never = state;
      return unreachable;
    }
  }
}
