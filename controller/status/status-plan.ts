// Stage C of a pass, pure: statuses back up and the Events their transitions deserve. PrePullImage statuses
// from the node plan and the NodeImageSets as last written (progress-only changes held back), purges and
// the finalizers they release, PrePullPolicy statuses, and Warning Events for bad ConfigMap image lists.
import {
  durationMilliseconds,
  prePullPolicyConditionTypes,
  type PrePullImage,
  type PrePullImagePhase,
  type PrePullImageStatus,
  type PrePullPolicy,
} from '../../api/v1alpha1/index.ts';
import { isArgoKind } from '../derive/argo-workflow-images.ts';
import type { PolicyEvaluation, SelectedKind } from '../derive/desired-images.ts';
import type { ListedEvaluation } from '../derive/listed-images.ts';
import type { SecretPlan } from '../derive/pull-secrets.ts';
import type { ImageTarget, NodePlan } from '../plan/node-plan.ts';
import type { NodeImageSetView } from '../plan/node-image-set-view.ts';
import { canonicalDigest, digest } from '../write/canonical-json.ts';
import type { Overlays } from '../write/overlays.ts';
import type { Write, WritePlan } from '../write/writes.ts';
import { purgeRollup, purgeSummary, purgingStatus } from './purge-rollup.ts';
import { startRollup, withStarts } from './start-rollup.ts';
import { configMapProblemText, prePullImageStatus, prePullPolicyStatus, type StatusEvent } from './status-rollup.ts';
import { leftOutForSize, sizeLimitEvents } from './size-limit-events.ts';
import { sameItems } from '../../lib/same-items.ts';

/** Small numbers naming objects by identity, for fingerprints of a status's inputs. */
class ObjectIds {
  private readonly ids = new WeakMap<object, number>();
  private next = 1;

  of(o: object | undefined): number {
    if (o === undefined) return 0;
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = this.next++));
    return id;
  }
}

/** A PrePullImage status computed in an earlier pass, reused while its inputs are the same. */
interface RolledUpStatus {
  readonly fingerprint: string;
  readonly status: PrePullImageStatus;
  readonly events: StatusEvent[];
  /** The status differs from the previous one: write it. */
  readonly changed: boolean;
}

/**
 * What the status stage keeps between passes: statuses rolled up (reused while their inputs are the same
 * objects), when each status was last written, and the ConfigMap problems an Event was sent for. Losing it
 * costs only work (and at most one repeated Event per problem after a restart, which the policies'
 * conditions prevent).
 */
export class StatusMemo {
  readonly ids = new ObjectIds();
  rolledUp = new Map<string, RolledUpStatus>();
  /** When each PrePullImage status was last written (ms); the writer sets it. */
  readonly writtenAt = new Map<string, number>();
  /** ConfigMap problems (uid, resourceVersion, key) an Event was sent for. */
  reportedProblems = new Set<string>();
  /** PrePullImages and the full nodes a NodeImageSetFull Event was sent for (size-limit-events.ts). */
  reportedFull = new Set<string>();
  /** The last pass's token of each node list, reused while its nodes' planned and cached objects are the same. */
  nodesTokens = new Map<readonly string[], NodesToken>();
}

/** A node list's token and the planned and cached NodeImageSet objects it stands for. */
interface NodesToken {
  readonly planned: readonly unknown[];
  readonly cached: readonly unknown[];
  readonly token: string;
}

export interface StatusInput {
  readonly cached: ReadonlyMap<string, PrePullImage>;
  readonly targets: readonly ImageTarget[];
  readonly secretRefs: ReadonlyMap<string, readonly string[]>;
  readonly secrets: SecretPlan;
  /** Generations of derived PrePullImages written in this pass or pending in the overlay. */
  readonly generations: ReadonlyMap<string, number>;
  readonly nodePlan: NodePlan;
  readonly current: ReadonlyMap<string, NodeImageSetView>;
  readonly policies: Iterable<PrePullPolicy>;
  readonly evaluations: ReadonlyMap<string, PolicyEvaluation>;
  readonly listed: ReadonlyMap<string, ListedEvaluation>;
  /** Argo kinds the cluster serves (undefined: discovery has not answered). */
  readonly argoServed: ReadonlySet<string> | undefined;
  readonly overlays: Overlays;
  readonly memo: StatusMemo;
  readonly nowMs: number;
  /** `nowMs` as metav1.Time. */
  readonly now: string;
  /** A status that only counts progress is written at most this often. */
  readonly progressIntervalMs: number;
}

export interface StatusPlan {
  /** Statuses and their Events, then finalizer releases, then policy statuses, then ConfigMap Events (only if all went well). */
  readonly writes: WritePlan;
  /** Index of the ConfigMap Events step in `writes`: when it ran, `reportedProblems` replaces the memo's. */
  readonly configMapEventsStep: number;
  readonly reportedProblems: Set<string>;
  readonly rolledUp: Map<string, RolledUpStatus>;
  readonly phases: Record<PrePullImagePhase, number>;
  /** When a held-back progress write or a purge's give-up time is due (ms). */
  readonly dueAtMs: number | undefined;
  /** Workloads each evaluated policy selects, by kind, for the metrics. */
  readonly watched: ReadonlyMap<string, Readonly<Record<SelectedKind, number>>>;
}

/** What a status says apart from progress counts; when this differs from the previous status, write at once. */
function statusShape(s: PrePullImageStatus | undefined): string {
  if (s === undefined) return '';
  const conditions = (s.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.observedGeneration]);
  return JSON.stringify([s.observedGeneration, s.phase, s.summary?.total, s.startTime, s.completionTime, conditions]);
}

const earliest = (a: number | undefined, b: number): number => Math.min(a ?? b, b);

interface ImageStatuses {
  readonly writes: Write[];
  readonly rolledUp: Map<string, RolledUpStatus>;
  readonly phaseOf: Map<string, PrePullImagePhase | undefined>;
  readonly phases: Record<PrePullImagePhase, number>;
  readonly dueAtMs: number | undefined;
}

function imageStatuses(input: StatusInput, targetByKey: ReadonlyMap<string, ImageTarget>): ImageStatuses {
  const { cached, nodePlan: plan, current, memo, overlays, nowMs, now } = input;
  const phases: Record<PrePullImagePhase, number> = { Pending: 0, InProgress: 0, Completed: 0, Failed: 0 };
  const phaseOf = new Map<string, PrePullImagePhase | undefined>();
  const writes: Write[] = [];
  // A status depends on its target nodes' planned specs and cached NodeImageSets: one token per node list
  // (targets of one group share the list), so an image none of whose nodes changed is not rolled up again.
  // The planner hands out the same planned objects while nothing changed: then the token is not built again.
  const nodesTokens = new Map<readonly string[], NodesToken>();
  const nodesToken = (nodes: readonly string[]): string => {
    let t = nodesTokens.get(nodes);
    if (t === undefined) {
      const planned = nodes.map((n) => plan.nodeImageSets.get(n));
      const cached = nodes.map((n) => current.get(n));
      const before = memo.nodesTokens.get(nodes);
      if (before !== undefined && sameItems(before.planned, planned) && sameItems(before.cached, cached)) t = before;
      else {
        const parts = nodes.map((n, i) => `${planned[i]?.digest ?? ''}/${memo.ids.of(cached[i])}`);
        t = { planned, cached, token: `${memo.ids.of(nodes)}:${digest(parts.join('\n'))}` };
      }
      nodesTokens.set(nodes, t);
    }
    return t.token;
  };
  const rolledUp = new Map<string, RolledUpStatus>();
  let dueAtMs: number | undefined;
  for (const [key, p] of cached) {
    const t = targetByKey.get(key);
    if (t === undefined || p.metadata.deletionTimestamp !== undefined || t.purge === true) continue;
    const previous = overlays.prePullImageStatus(key, p);
    const refs = input.secretRefs.get(key) ?? [];
    const problems = refs.flatMap((r) => {
      const pr = input.secrets.problems.get(r);
      return pr === undefined ? [] : [`${r}: ${pr.reason}: ${pr.message}`];
    });
    const unknown = refs.filter((r) => input.secrets.unknown.has(r)).length;
    const generation = input.generations.get(key) ?? p.metadata.generation ?? 0;
    const nodes = plan.targetNodes.get(key) ?? [];
    // `now` is left out: with the same inputs (previous status included) the rollup moves no timestamp.
    const refusal = plan.refused.get(key);
    const fingerprint = JSON.stringify([generation, t.image, t.round, memo.ids.of(previous), nodesToken(nodes), refs.length, problems, unknown, refusal ?? null]);
    let r = memo.rolledUp.get(key);
    if (r?.fingerprint !== fingerprint) {
      const { status, events } = prePullImageStatus({
        generation, image: t.image, round: t.round, nodes, planned: plan.nodeImageSets, current, previous, secrets: { referenced: refs.length, problems, unknown }, now,
        ...(refusal !== undefined ? { refusal } : {}),
      });
      const withCounts = withStarts(status, startRollup(t.image, nodes, current));
      r = { fingerprint, status: withCounts, events, changed: canonicalDigest(withCounts) !== canonicalDigest(previous ?? {}) };
    }
    rolledUp.set(key, r);
    phaseOf.set(key, r.status.phase);
    if (r.status.phase !== undefined) phases[r.status.phase]++;
    if (!r.changed) continue;
    const last = memo.writtenAt.get(key);
    const dueAt = last === undefined ? nowMs : last + input.progressIntervalMs;
    if (dueAt > nowMs && statusShape(r.status) === statusShape(previous)) {
      dueAtMs = earliest(dueAtMs, dueAt);
      continue;
    }
    writes.push({ kind: 'prePullImageStatus', key, ppi: p, status: r.status, events: r.events });
  }
  memo.nodesTokens = nodesTokens;
  return { writes, rolledUp, phaseOf, phases, dueAtMs };
}

/**
 * Purges: the agents' answers up to status.purge; once every node of a deleted one has answered, its
 * finalizer goes (after the status and the Purged Event that record it).
 */
function purgeStatuses(input: StatusInput, targetByKey: ReadonlyMap<string, ImageTarget>): { writes: Write[]; releases: Write[]; dueAtMs: number | undefined } {
  const writes: Write[] = [];
  const releases: Write[] = [];
  let dueAtMs: number | undefined;
  for (const [key, p] of input.cached) {
    const t = targetByKey.get(key);
    if (t?.purge !== true) continue;
    const previous = input.overlays.prePullImageStatus(key, p);
    const deletedAt = p.metadata.deletionTimestamp === undefined ? undefined : Date.parse(p.metadata.deletionTimestamp);
    // A deletion never waits forever: nodes that have not answered within the timeout count as failed.
    const giveUpAtMs = deletedAt === undefined ? undefined : deletedAt + (durationMilliseconds(t.timeout) ?? 600_000);
    const rollup = purgeRollup({
      image: t.image, nodes: input.nodePlan.targetNodes.get(key) ?? [], planned: input.nodePlan.nodeImageSets, current: input.current, giveUpAtMs, nowMs: input.nowMs,
    });
    if (!rollup.done && giveUpAtMs !== undefined) dueAtMs = earliest(dueAtMs, giveUpAtMs);
    const { status, purged } = purgingStatus({ generation: p.metadata.generation ?? 0, image: t.image, rollup, previous, now: input.now });
    const events: StatusEvent[] = purged
      ? [{ type: rollup.purge.failed > 0 ? 'Warning' : 'Normal', reason: 'Purged', message: purgeSummary(t.image, rollup.purge) }]
      : [];
    if (canonicalDigest(status) !== canonicalDigest(previous ?? {})) writes.push({ kind: 'prePullImageStatus', key, ppi: p, status, events });
    if (deletedAt !== undefined && rollup.done) releases.push({ kind: 'releaseFinalizer', key, ppi: p });
  }
  return { writes, releases, dueAtMs };
}

function policyStatuses(
  input: StatusInput,
  phaseOf: ReadonlyMap<string, PrePullImagePhase | undefined>,
): { writes: Write[]; namedBefore: string[]; watched: Map<string, Readonly<Record<SelectedKind, number>>> } {
  const writes: Write[] = [];
  const namedBefore: string[] = [];
  const watched = new Map<string, Readonly<Record<SelectedKind, number>>>();
  for (const policy of input.policies) {
    const name = policy.metadata.name ?? '';
    const ev = input.evaluations.get(name);
    if (ev === undefined) continue;
    const listedEv = input.listed.get(name);
    // Until its ConfigMaps are listed, a policy's status would only say so: wait for the list, unless it fails.
    if (listedEv?.configMaps.kind === 'pending' && listedEv.configMaps.error === undefined) continue;
    watched.set(name, ev.watchedByKind);
    const previous = input.overlays.policyStatus(name, policy);
    const named = previous?.conditions?.find((c) => c.type === prePullPolicyConditionTypes.ConfigMapsValid)?.message;
    if (named !== undefined) namedBefore.push(named);
    const status = prePullPolicyStatus({
      generation: policy.metadata.generation ?? 0,
      evaluation: ev,
      ...(listedEv === undefined ? {} : { listed: listedEv }),
      imagePhases: [...ev.images, ...(listedEv?.staticImages ?? []), ...(listedEv?.configMapImages ?? [])].map((k) => phaseOf.get(k)),
      previous,
      now: input.now,
      argo: { named: policy.spec.workloadKinds.filter(isArgoKind), served: input.argoServed },
    });
    if (canonicalDigest(status) !== canonicalDigest(previous ?? {})) {
      writes.push({ kind: 'policyStatus', name, status, resourceVersion: policy.metadata.resourceVersion });
    }
  }
  return { writes, namedBefore, watched };
}

/**
 * One Warning Event (InvalidImageList) per bad key of a ConfigMap version, sent after the policy status
 * naming it; a problem a ConfigMapsValid condition already named before this pass (written by an earlier
 * process, before a restart) is not sent again.
 */
function configMapProblemEvents(
  listed: Iterable<ListedEvaluation>,
  namedBefore: readonly string[],
  reportedBefore: ReadonlySet<string>,
): { writes: Write[]; reported: Set<string> } {
  const reported = new Set<string>();
  const writes: Write[] = [];
  for (const ev of listed) {
    if (ev.configMaps.kind !== 'watched') continue;
    for (const p of ev.configMaps.problems) {
      const id = `${p.uid}/${p.resourceVersion}/${p.key}`;
      if (reported.has(id)) continue;
      reported.add(id);
      if (reportedBefore.has(id)) continue;
      const text = configMapProblemText(p);
      if (namedBefore.some((m) => m.includes(text))) continue;
      writes.push({
        kind: 'event',
        subject: { namespace: p.namespace, name: p.name, uid: p.uid },
        involved: { apiVersion: 'v1', kind: 'ConfigMap' },
        event: { type: 'Warning', reason: 'InvalidImageList', message: text.length > 1024 ? `${text.slice(0, 1021)}...` : text },
      });
    }
  }
  return { writes, reported };
}

export function planStatuses(input: StatusInput): StatusPlan {
  const targetByKey = new Map(input.targets.map((t) => [t.key, t]));
  const images = imageStatuses(input, targetByKey);
  const purges = purgeStatuses(input, targetByKey);
  const policies = policyStatuses(input, images.phaseOf);
  const problems = configMapProblemEvents(input.listed.values(), policies.namedBefore, input.memo.reportedProblems);
  const full = sizeLimitEvents(leftOutForSize(input.nodePlan, input.targets), input.cached, input.memo.reportedFull);
  input.memo.reportedFull = full.reported;
  const dueAtMs = [images.dueAtMs, purges.dueAtMs].reduce<number | undefined>((a, b) => (b === undefined ? a : earliest(a, b)), undefined);
  return {
    writes: [
      { writes: [...images.writes, ...purges.writes, ...full.writes] },
      // A finalizer is removed only after the status that records the purge (the writer checks it was written).
      { writes: purges.releases },
      { writes: policies.writes },
      // Only once the conditions naming them are written, so a failed pass does not send them early.
      { writes: problems.writes, onlyIfNoFailure: true },
    ],
    configMapEventsStep: 3,
    reportedProblems: problems.reported,
    rolledUp: images.rolledUp,
    phases: images.phases,
    dueAtMs,
    watched: policies.watched,
  };
}
