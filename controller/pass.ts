// One controller pass: derive what is wanted from the caches, then four stages, each a pure plan handed to
// the one writer: A refreshes (persisted before any round is planned from them), B specs (secret copies,
// PrePullImages, NodeImageSets; their generations feed C), C statuses and Events, D deletes. Between passes
// it keeps only caches: the overlays of its own writes and memos that save work.
import type { Logger } from 'winston';
import type { PrePullImage } from '../api/v1alpha1/index.ts';
import { POLICY_LABEL, SOURCE_ANNOTATION } from '../api/v1alpha1/labels.ts';
import { isArgoKind } from './derive/argo-workflow-images.ts';
import { DesiredImagesMemo, desiredPrePullImages, prePullImageKey, type PolicyEvaluation } from './derive/desired-images.ts';
import { CONFIGMAP_SOURCE, desiredListedImages, ListedImagesMemo, type ListedEvaluation } from './derive/listed-images.ts';
import { namespacesWithPullSecrets, secretKey } from './derive/pull-secrets.ts';
import type { ControllerMetrics } from './metrics.ts';
import { planDeletes, planSpecs, SpecMemos, type PrePullImageSets } from './plan/spec-plan.ts';
import type { Informers } from './sources/informers.ts';
import { planRefreshes } from './status/refresh-plan.ts';
import { wantedRound } from './status/refresh.ts';
import { planStatuses, StatusMemo } from './status/status-plan.ts';
import { isManaged, metaTime } from './write/api-objects.ts';
import { Overlays } from './write/overlays.ts';
import { writeCount, type WritePlan } from './write/writes.ts';
import { nodeWarmsWithoutTaint, withoutWarmupTaint } from './warmup/decode.ts';
import type { NodeView } from './plan/node-eligibility.ts';
import type { NamespaceLimits } from './plan/namespace-limits.ts';
import { Writer, type ApiWriter } from './write/writer.ts';

export interface PassOptions {
  readonly client: ApiWriter;
  readonly log: Logger;
  readonly metrics: ControllerMetrics;
  readonly informers: Informers;
  /** kwarm's namespace: pull secret copies and the PrePullImages of static lists live here. */
  readonly namespace: string;
  /** --max-concurrent-pulls: released-but-unfinished (node, image) pairs in the whole cluster; 0 = unlimited. */
  readonly clusterPullBudget: number;
  /** --max-pulls-per-node: written into every NodeImageSet for its agent. */
  readonly maxPullsPerNode: number;
  readonly statusProgressIntervalMs: number;
  readonly writeConcurrency: number;
  readonly identity: string;
  readonly now: () => Date;
  /** --warmup-taint: no workload tolerates it, so the planner sees nodes without it. */
  readonly warmupTaintKey: string;
  /**
   * --warmup-condition-on-new-nodes: nodes younger than this (the warm-up timeout) are warming without the taint
   * too (warmup/decode.ts warmsWithoutTaint). Absent: only tainted nodes are.
   */
  readonly warmupNewNodesMs?: number;
  /** --agent-stale-after: an agent silent this long holds no budget and gets no new pulls. */
  readonly agentStaleMs: number;
  /** --max-images-per-namespace (0: no cap); kwarm's own namespace is not capped. */
  readonly maxImagesPerNamespace: number;
  /** --namespace-pull-share and --namespace-node-images-per-node; absent: neither applies. */
  readonly namespaceLimits?: NamespaceLimits;
  /** Whether an event is waiting for the next pass: progress-only status writes then yield to it (writer.ts). */
  readonly newWork?: () => boolean;
}

export interface PassResult {
  /** Every write succeeded (or found its object gone). */
  readonly ok: boolean;
  /**
   * When a held-back status write, a purge's give-up time, a refreshInterval or a failed write's retry comes
   * due (ms).
   */
  readonly dueAtMs: number | undefined;
}

/** How long a pass waits for the pull Secret lists of namespaces it has just started watching. */
const SECRET_LIST_WAIT_MS = 2000;

/** The earliest of some times (ms); undefined when none is set. */
function earliest(times: readonly (number | undefined)[]): number | undefined {
  return times.reduce<number | undefined>((x, y) => (y === undefined ? x : Math.min(x ?? y, y)), undefined);
}

/** What a pass derives from the caches before planning. */
interface Derived {
  readonly sets: PrePullImageSets;
  readonly evaluations: ReadonlyMap<string, PolicyEvaluation>;
  readonly listed: ReadonlyMap<string, ListedEvaluation>;
  /** Sources the policies name that have not listed yet (see SpecInput.sourcesListing). */
  readonly listing: readonly string[];
}

export class Pass {
  private readonly o: PassOptions;
  private readonly overlays = new Overlays();
  private readonly writer: Writer;
  private readonly desiredMemo = new DesiredImagesMemo();
  private readonly listedMemo = new ListedImagesMemo();
  private readonly specMemos = new SpecMemos();
  private readonly statusMemo = new StatusMemo();

  constructor(opts: PassOptions) {
    this.o = opts;
    this.writer = new Writer({
      client: opts.client, log: opts.log, metrics: opts.metrics, namespace: opts.namespace, identity: opts.identity,
      concurrency: opts.writeConcurrency, overlays: this.overlays, statusWrittenAt: this.statusMemo.writtenAt,
    });
  }

  /** Desired PrePullImages from policies, workloads, Argo objects, static lists and ConfigMaps; the cached ones. */
  private derive(signal: AbortSignal): Derived {
    const src = this.o.informers;
    const { namespace } = this.o;
    src.followPolicies(signal);
    const workloadImages = desiredPrePullImages(
      src.policies.values(), src.workloadViews(), new Map(src.serviceAccounts.entries()), this.desiredMemo, { objects: src.argo.objects(), clusterNamespace: namespace },
    );
    const listed = desiredListedImages({
      policies: src.policies.values(), configMaps: src.configMapWatches.synced(), listErrors: src.configMapWatches.listErrors(),
      namespace, memo: this.listedMemo,
    });
    const desired = new Map([...workloadImages.images, ...listed.images]);
    const pendingPolicies = new Set([...listed.policies].filter(([, ev]) => ev.configMaps.kind === 'pending').map(([name]) => name));
    const argoUncertain = src.argo.uncertainKinds();
    const uncertainSource = (p: PrePullImage): boolean => {
      if (!isManaged(p)) return false;
      // Its policy exists but does not decode (finding 11): unknown, not deleted, so its images are neither deleted nor purged.
      if (src.policies.undecodableKeys().has(p.metadata.labels?.[POLICY_LABEL] ?? '')) return true;
      if (p.metadata.annotations?.[SOURCE_ANNOTATION] === CONFIGMAP_SOURCE) return pendingPolicies.has(p.metadata.labels?.[POLICY_LABEL] ?? '');
      const ownerKind = p.metadata.ownerReferences?.find((o) => o.controller === true)?.kind ?? '';
      return isArgoKind(ownerKind) && argoUncertain.has(ownerKind);
    };
    const cached = new Map<string, PrePullImage>();
    for (const p of src.prePullImages.values()) {
      const { namespace: ns, name } = p.metadata;
      if (ns !== undefined && name !== undefined) cached.set(prePullImageKey(ns, name), p);
    }
    src.followSecrets(namespacesWithPullSecrets([
      ...[...desired.values()].map((d) => ({ namespace: d.namespace, imagePullSecrets: d.spec.imagePullSecrets })),
      ...[...cached.values()].map((p) => ({ namespace: p.metadata.namespace, imagePullSecrets: p.spec.imagePullSecrets })),
    ]), signal);
    return {
      sets: {
        desired,
        cached,
        keptAsCached: (key, p) => !desired.has(key) && p.metadata.deletionTimestamp === undefined && uncertainSource(p),
      },
      evaluations: workloadImages.policies,
      listed: listed.policies,
      listing: [...src.workloads.unsynced(), ...argoUncertain, ...[...pendingPolicies].map((name) => `ConfigMaps of ${name}`)],
    };
  }

  /** One full pass. */
  async run(signal: AbortSignal): Promise<PassResult> {
    const { log, metrics, informers: src } = this.o;
    const overlays = this.overlays;
    const passStart = performance.now();
    let computeMs = 0;
    const timed = <T>(compute: () => T): T => {
      const start = performance.now();
      try {
        return compute();
      } finally {
        computeMs += performance.now() - start;
      }
    };
    const apply = (plan: WritePlan, nowMs: number, failedBefore = false, newWork?: () => boolean) =>
      this.writer.apply(plan, nowMs, signal, failedBefore, newWork);
    const now = metaTime(this.o.now());
    const derived = timed(() => this.derive(signal));
    // A namespace referenced for the first time: its pull Secrets are listed before planning (bounded; after that
    // they are 'unknown', which keeps existing copies).
    await src.waitForSecrets(signal, SECRET_LIST_WAIT_MS);
    const { cached } = derived.sets;

    // A. Refreshes, persisted before planning raises any round from them.
    const refreshAt = this.o.now().getTime();
    const refresh = timed(() => planRefreshes(cached, overlays, refreshAt));
    const a = await apply(refresh.writes, refreshAt);

    // B. Specs, in the order the agents need them. A warming node is planned as if untainted: the taint
    // exists to keep workloads off until their images are there, so it must not keep the images away.
    const taintKey = this.o.warmupTaintKey;
    const nodes: NodeView[] = [];
    const warming = new Set<string>();
    const newNodesMs = this.o.warmupNewNodesMs;
    for (const n of src.nodes.values()) {
      const view = withoutWarmupTaint(n, taintKey);
      const warms = view !== n || (newNodesMs !== undefined && nodeWarmsWithoutTaint(n, refreshAt, newNodesMs));
      if (warms && n.metadata?.name !== undefined) warming.add(n.metadata.name);
      nodes.push(view);
    }
    const spec = timed(() => planSpecs({
      ...derived.sets,
      overlays,
      memos: this.specMemos,
      roundOf: (key) => {
        const p = cached.get(key);
        return p === undefined ? 0 : wantedRound(overlays.prePullImageStatus(key, p)?.refresh);
      },
      nodes,
      warming,
      sourcesListing: derived.listing.length > 0,
      nodeImageSets: src.nodeImageSets,
      secretCopies: { get: (name) => src.secretCopies.get(secretKey(this.o.namespace, name)), values: () => src.secretCopies.values() },
      sourceSecret: (key) => src.sourceSecret(key),
      clusterPullBudget: this.o.clusterPullBudget,
      maxPullsPerNode: this.o.maxPullsPerNode,
      maxImagesPerNamespace: this.o.maxImagesPerNamespace, uncappedNamespace: this.o.namespace,
      ...(this.o.namespaceLimits !== undefined ? { namespaceLimits: this.o.namespaceLimits } : {}),
      agents: { nowMs: refreshAt, staleMs: this.o.agentStaleMs },
      nowMs: refreshAt,
    }));
    if (warming.size > 0 && derived.listing.length > 0) log.debug('warming nodes with nothing to gate them wait for sources still listing', { sources: derived.listing });
    for (const key of spec.shadowed) log.debug('a hand-written PrePullImage has the name kwarm would derive; leaving it alone', { prePullImage: key });
    const specStart = performance.now();
    const b = await apply(spec.writes, refreshAt);
    const specWritesMs = performance.now() - specStart;

    // C. Statuses back up, and Events on transitions.
    const statusAt = this.o.now().getTime();
    const status = timed(() => planStatuses({
      cached, targets: spec.targets, secretRefs: spec.secretRefs, secrets: spec.secrets,
      generations: new Map([...spec.pendingGenerations, ...b.generations]),
      nodePlan: spec.nodePlan, current: spec.current, policies: src.policies.values(), evaluations: derived.evaluations, listed: derived.listed,
      argoServed: src.argo.served, overlays, memo: this.statusMemo, nowMs: statusAt, now, progressIntervalMs: this.o.statusProgressIntervalMs,
    }));
    this.statusMemo.rolledUp = status.rolledUp;
    for (const key of this.statusMemo.writtenAt.keys()) if (!cached.has(key)) this.statusMemo.writtenAt.delete(key);
    overlays.refreshes.retain((key) => cached.has(key));
    metrics.watchedDeployments.reset();
    metrics.watchedWorkloads.reset();
    for (const [policy, byKind] of status.watched) {
      metrics.watchedDeployments.set({ policy }, byKind.Deployment);
      for (const [kind, n] of Object.entries(byKind)) metrics.watchedWorkloads.set({ policy, kind }, n);
    }
    // Only statuses yield to new work: specs are what a change waits for, deletes are few.
    const c = await apply(status.writes, statusAt, a.failed || b.failed, this.o.newWork);
    if (!c.skipped.has(status.configMapEventsStep)) this.statusMemo.reportedProblems = status.reportedProblems;

    // D. Deletions last: nothing still needs them.
    const deletes = timed(() => planDeletes(derived.sets, overlays, spec.secrets));
    const d = await apply(deletes, statusAt);
    overlays.deletions.retain((key) => cached.has(key));

    metrics.planDuration.observe(computeMs / 1000);
    metrics.setPhases(status.phases);
    metrics.unfinishedPulls.set(spec.nodePlan.unfinished);
    metrics.heldPulls.set(spec.nodePlan.held);
    const writes = writeCount(refresh.writes) + writeCount(spec.writes) + writeCount(status.writes) + writeCount(deletes);
    if (writes > 0) {
      const [secrets, prePullImages, , nodeImageSets] = spec.writes.map((s) => s.writes.length);
      log.debug('reconciled', {
        secrets, prePullImages, nodeImageSets, statuses: status.writes[0]?.writes.length ?? 0, policies: status.writes[2]?.writes.length ?? 0,
        deleted: writeCount(deletes), unfinished: spec.nodePlan.unfinished, held: spec.nodePlan.held, withoutAgent: spec.nodePlan.withoutAgent,
        computeMs: Math.round(computeMs), specWritesMs: Math.round(specWritesMs), passMs: Math.round(performance.now() - passStart),
      });
    }
    const dueAtMs = earliest([refresh.dueAtMs, status.dueAtMs, spec.nodePlan.dueAtMs, spec.purgeDueAtMs, a.retryAtMs, b.retryAtMs, c.retryAtMs, d.retryAtMs]);
    return { ok: !(a.failed || b.failed || c.failed || d.failed), dueAtMs };
  }
}
