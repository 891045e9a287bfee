// The controller's one reconcile loop. Informers only mark work dirty; each pass recomputes everything
// from the caches with the pure planners and writes only what differs from what the API server holds.
// What the controller just wrote is remembered until its own informers show it, so a pass that runs before
// the watch caught up neither writes twice nor miscounts the pull budget.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import {
  durationMilliseconds,
  prePullPolicyConditionTypes,
  REFRESH_ANNOTATION,
  type PrePullImage,
  type PrePullImagePhase,
  type PrePullImageStatus,
  type PrePullPolicy,
  type PrePullPolicyStatus,
} from '../api/v1alpha1/index.ts';
import { isNotFound, type KubeClient } from '../lib/kube-client.ts';
import { ListWatch, objectKey } from '../lib/list-watch.ts';
import { Wakeup } from '../lib/wakeup.ts';
import { cachedPrePullImageDigest, desiredPrePullImageDigest, eventBody, finalizerApplyBody, finalizerRemovalPatch, hasPurgeFinalizer, isManaged, metaTime, nodeImageSetApplyBody, paths, prePullImageApplyBody, prePullImageStatusBody, prePullPolicyStatusBody, secretCopyBody } from './write/api-objects.ts';
import { canonicalDigest, digest } from './write/canonical-json.ts';
import {
  decodeNode,
  decodeNodeImageSet,
  decodePolicy,
  decodePrePullImage,
  decodeSecret,
  decodeServiceAccount,
  field,
  str,
  SharedValues,
  workloadDecoder,
} from './sources/decode.ts';
import { ArgoSource } from './sources/argo-source.ts';
import { isArgoKind } from './derive/argo-workflow-images.ts';
import { argoKindsNamed, DesiredImagesMemo, desiredPrePullImages, prePullImageKey, type DesiredPrePullImage, type ServiceAccountView, type WorkloadView } from './derive/desired-images.ts';
import { ConfigMapWatches } from './sources/configmap-watches.ts';
import { CONFIGMAP_SOURCE, configMapWatchOf, desiredListedImages, ListedImagesMemo, type ListedEvaluation } from './derive/listed-images.ts';
import type { ControllerMetrics } from './metrics.ts';
import { compileNodeTargeting, type NodeTargeting, type NodeTargetingSpec, type NodeView } from './plan/node-eligibility.ts';
import { PlanMemo, planNodeImageSets, type ImageTarget, type NodeImageSetView, type PlannedNodeImageSet } from './plan/node-plan.ts';
import { refreshDecision, wantedRound, type RefreshRecord } from './status/refresh.ts';
import { copyMatches, DOCKER_CFG, DOCKER_CONFIG_JSON, planSecretCopies, secretKey, type SecretView } from './derive/pull-secrets.ts';
import { purgeRollup, purgeSummary, purgingStatus } from './status/purge-rollup.ts';
import { configMapProblemText, prePullImageStatus, prePullPolicyStatus, type StatusEvent } from './status/status-rollup.ts';
import { workloadKinds, type WorkloadKind } from './derive/workload-images.ts';
import { errorText } from '../lib/errors.ts';
import { CONTROLLER_FIELD_MANAGER, POLICY_LABEL, PURGE_FIELD_MANAGER, SECRET_COPY_LABEL, SOURCE_ANNOTATION } from '../api/v1alpha1/labels.ts';

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: ControllerMetrics;
  /** kwarm's namespace: pull secret copies and the PrePullImages of static lists live here. */
  readonly namespace: string;
  /** 0 = unlimited. */
  readonly maxConcurrentPulls: number;
  readonly maxPullsPerNode: number;
  /** A full pass without any event this often; it writes nothing when nothing changed. */
  readonly resyncPeriodMs: number;
  /** Events arriving within this window are handled by one pass. */
  readonly debounceMs?: number;
  /**
   * A PrePullImage status that only counts progress (nodes done, the READY column) is written at most this
   * often; phase and condition changes are written at once. Keeps writes per rollout from growing with the
   * number of passes.
   */
  readonly statusProgressIntervalMs?: number;
  /** Writes sent at once (the client's rate limit still applies). */
  readonly writeConcurrency?: number;
  /** Shown as the reporting instance of Events. */
  readonly identity: string;
  readonly now?: () => Date;
  /** How often the Argo Workflows kinds are looked up while a policy names one (default 60 s). */
  readonly argoDiscoveryIntervalMs?: number;
}

/** How long the first pass waits for the ConfigMap lists; after that, policies whose list is missing keep their ConfigMap images as they are. */
const CONFIGMAP_SYNC_WAIT_MS = 30_000;
/** The first pass waits at most this long for the Argo kinds' discovery and lists. */
const ARGO_SETTLE_TIMEOUT_MS = 30_000;

/** The parts of a write response the controller remembers. */
function responseMeta(body: unknown): { generation: number; resourceVersion: string | undefined; uid: string | undefined } {
  const meta = typeof body === 'object' && body !== null && 'metadata' in body ? body.metadata : undefined;
  const get = (k: string): unknown => (typeof meta === 'object' && meta !== null && k in meta ? (meta as Record<string, unknown>)[k] : undefined);
  const generation = get('generation');
  const rv = get('resourceVersion');
  const uid = get('uid');
  return {
    generation: typeof generation === 'number' ? generation : 0,
    resourceVersion: typeof rv === 'string' ? rv : undefined,
    uid: typeof uid === 'string' ? uid : undefined,
  };
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Small numbers naming objects by identity, for fingerprints of a pass's inputs. */
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
  readonly digest: string;
  /** The status differs from the previous one: write it. */
  readonly changed: boolean;
}

/** What a status says apart from progress counts; when this differs from the previous status, write at once. */
function statusShape(s: PrePullImageStatus | undefined): string {
  if (s === undefined) return '';
  const conditions = (s.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.observedGeneration]);
  return JSON.stringify([s.observedGeneration, s.phase, s.summary?.total, s.startTime, s.completionTime, conditions]);
}

interface StatusOverlay<S> {
  /** The cached resourceVersion when we wrote; once the cache moves on, the cache is the truth again. */
  readonly rvBefore: string | undefined;
  readonly status: S;
  readonly digest: string;
}

export class Controller {
  private readonly o: ControllerOptions & { debounceMs: number; statusProgressIntervalMs: number; writeConcurrency: number; now: () => Date };
  private readonly policies: ListWatch<PrePullPolicy>;
  private readonly prePullImages: ListWatch<PrePullImage>;
  private readonly nodeImageSets: ListWatch<NodeImageSetView>;
  private readonly nodes: ListWatch<NodeView>;
  private readonly serviceAccounts: ListWatch<ServiceAccountView>;
  private readonly secretSources: ListWatch<SecretView>[];
  private readonly secretCopies: ListWatch<SecretView>;
  private readonly workloads: Map<WorkloadKind, ListWatch<WorkloadView>>;
  private readonly informers: ListWatch<unknown>[];
  private readonly configMapWatches: ConfigMapWatches;
  private readonly listedMemo = new ListedImagesMemo();
  /** Compiled spec.nodes targeting by the (cached or memoised desired) spec.nodes object. Only a cache. */
  private readonly targetings = new WeakMap<NodeTargetingSpec, NodeTargeting | undefined>();
  /** ConfigMap problems (uid, resourceVersion, key) an Event was sent for; the policies' conditions also record them. */
  private reportedProblems = new Set<string>();
  private readonly argo: ArgoSource;

  private dirty = true;
  private readonly wakeup = new Wakeup();
  private syncedAll = false;
  private passes = 0;

  // What this process wrote and its informers have not shown yet.
  private readonly nisOverlay = new Map<string, { generation: number; view: NodeImageSetView }>();
  private readonly ppiOverlay = new Map<string, { generation: number; digest: string }>();
  private readonly ppiStatusOverlay = new Map<string, StatusOverlay<PrePullImageStatus>>();
  private readonly policyStatusOverlay = new Map<string, StatusOverlay<PrePullPolicyStatus>>();
  private readonly copyOverlay = new Map<string, SecretView | 'deleted'>();
  private readonly deleting = new Set<string>();
  private readonly planMemo = new PlanMemo();
  private readonly ids = new ObjectIds();
  private readonly ppiDigests = new WeakMap<PrePullImage, string>();
  private readonly desiredMemo = new DesiredImagesMemo();
  private readonly desiredDigests = new WeakMap<DesiredPrePullImage, string>();
  private rolledUp = new Map<string, RolledUpStatus>();
  /** When each PrePullImage status was last written (ms), and when a held-back progress write is due. */
  private readonly statusWrittenAt = new Map<string, number>();
  private progressDueAt: number | undefined;
  /** When refreshInterval next asks for a refresh of some PrePullImage (ms). */
  private refreshDueAt: number | undefined;
  /**
   * Refreshes this process recorded, until the cache shows them: unlike a whole status, a refresh record only
   * moves forward, so a cached object that changed for another reason cannot make it forget one (and repeat it).
   */
  private readonly refreshOverlay = new Map<string, { uid: string | undefined; refresh: RefreshRecord }>();

  constructor(opts: ControllerOptions) {
    this.o = { debounceMs: 100, statusProgressIntervalMs: 5000, writeConcurrency: 8, now: () => new Date(), ...opts };
    const { client, log } = opts;
    const shared = new SharedValues();
    // Decoders get the object they replace and may return it as is: then nothing the controller reads
    // changed (a heartbeat, a status field it does not keep) and no pass is needed.
    const lw = <T>(
      path: string,
      decode: (raw: unknown, previous: T | undefined) => T | undefined,
      extra: { fieldSelector?: string; labelSelector?: string } = {},
    ): ListWatch<T> => {
      let unchanged: string | undefined;
      const informer: ListWatch<T> = new ListWatch<T>({
        client, path, log, ...extra,
        decode: (raw) => {
          const key = objectKey(str(field(raw, 'metadata', 'namespace')), str(field(raw, 'metadata', 'name')) ?? '');
          const previous = informer.get(key);
          const obj = decode(raw, previous);
          unchanged = obj !== undefined && obj === previous ? key : undefined;
          return obj;
        },
        onChange: (key, obj) => {
          const same = obj !== undefined && key === unchanged;
          unchanged = undefined;
          if (!same) this.markDirty();
        },
      });
      return informer;
    };
    this.policies = lw(paths.policies, decodePolicy);
    this.prePullImages = lw(paths.prePullImages, decodePrePullImage);
    this.nodeImageSets = lw(paths.nodeImageSets, (raw, previous) => decodeNodeImageSet(raw, previous, shared));
    this.nodes = lw(paths.nodes, (raw, previous) => decodeNode(raw, previous, shared));
    this.serviceAccounts = lw(paths.serviceAccounts, decodeServiceAccount);
    this.secretSources = [DOCKER_CONFIG_JSON, DOCKER_CFG].map((type) => lw(paths.secrets, decodeSecret, { fieldSelector: `type=${type}` }));
    this.secretCopies = lw(paths.namespacedSecrets(opts.namespace), decodeSecret, { labelSelector: `${SECRET_COPY_LABEL}=true` });
    this.workloads = new Map(workloadKinds.map((k) => [k, lw(paths.workloads[k], workloadDecoder(k, shared))]));
    this.configMapWatches = new ConfigMapWatches({ client, log, onChange: () => { this.markDirty(); } });
    this.argo = new ArgoSource({ client, log, onChange: () => { this.markDirty(); }, discoveryIntervalMs: opts.argoDiscoveryIntervalMs ?? 60_000 });
    this.informers = [
      this.policies, this.prePullImages, this.nodeImageSets, this.nodes, this.serviceAccounts, this.secretCopies,
      ...this.secretSources, ...this.workloads.values(),
    ] as ListWatch<unknown>[];
  }

  /** All informers have listed once and the first pass is done. */
  get synced(): boolean {
    return this.syncedAll && this.passes > 0;
  }

  /** Informers whose watch is down, for readiness. */
  unhealthyInformers(): string[] {
    return [...this.informers.filter((i) => !i.healthy).map((i) => i.lastError ?? 'not synced'), ...this.configMapWatches.unhealthy()];
  }

  markDirty(): void {
    this.dirty = true;
    this.wakeup.wake();
  }

  private async waitForWork(signal: AbortSignal): Promise<void> {
    if (this.dirty) return;
    // A held-back progress write or a due refresh wakes the loop before the resync does.
    const next = Math.min(this.progressDueAt ?? Infinity, this.refreshDueAt ?? Infinity);
    const due = next === Infinity ? Infinity : Math.max(0, next - this.o.now().getTime());
    if (await this.wakeup.wait(Math.min(this.o.resyncPeriodMs, due), signal) === 'timeout') this.dirty = true;
  }

  /** Lists and watches everything, then reconciles until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { log } = this.o;
    const running = [...this.informers.map((i) => i.run(signal)), this.argo.run(signal)];
    try {
      await Promise.all(this.informers.map((i) => i.waitForSync(signal)));
      // The policies are known now: list their ConfigMaps and Argo objects before the first pass, so it
      // removes nothing they list. Both wait in parallel, each bounded.
      this.updateConfigMapWatches(signal);
      this.argo.want(argoKindsNamed(this.policies.values()));
      await Promise.all([this.configMapWatches.waitForSync(signal, CONFIGMAP_SYNC_WAIT_MS), this.argo.settle(signal, ARGO_SETTLE_TIMEOUT_MS)]);
      this.syncedAll = true;
      log.info('caches synced', { nodes: this.nodes.size, prePullImages: this.prePullImages.size, nodeImageSets: this.nodeImageSets.size });
      let failures = 0;
      // A function, so TypeScript does not keep the narrowing of `aborted` across awaits.
      const stopping = (): boolean => signal.aborted;
      while (!stopping()) {
        await this.waitForWork(signal);
        if (stopping()) break;
        await sleep(this.o.debounceMs, undefined, { signal }).catch(() => undefined);
        if (stopping()) break;
        this.dirty = false;
        const end = this.o.metrics.reconcileDuration.startTimer();
        try {
          const ok = await this.reconcile(signal);
          failures = ok ? 0 : failures + 1;
        } catch (err) {
          if (stopping()) break;
          failures++;
          log.error('reconcile failed', { error: errorText(err) });
        } finally {
          end();
          this.passes++;
        }
        if (failures > 0) {
          // Some write failed: try again, backing off so a broken API server is not hammered.
          this.dirty = true;
          await sleep(Math.min(30_000, 200 * 2 ** Math.min(failures, 8)), undefined, { signal }).catch(() => undefined);
        }
      }
    } finally {
      await Promise.allSettled([...running, this.configMapWatches.stop()]);
    }
  }

  /** One ConfigMap list-watch per distinct selector of the policies' spec.configMaps. */
  private updateConfigMapWatches(signal: AbortSignal): void {
    const queries = new Set<string>();
    for (const p of this.policies.values()) {
      if (p.metadata.deletionTimestamp !== undefined) continue;
      const w = configMapWatchOf(p);
      if (w.kind === 'selector') queries.add(w.query);
    }
    this.configMapWatches.update(queries, signal);
  }

  // ---- one pass -------------------------------------------------------------------------------------------

  private nodeImageSetView(name: string): NodeImageSetView | undefined {
    const cached = this.nodeImageSets.get(name);
    const overlay = this.nisOverlay.get(name);
    if (overlay === undefined) return cached;
    if (cached !== undefined && cached.generation >= overlay.generation) {
      this.nisOverlay.delete(name);
      return cached;
    }
    // Our write is not in the cache yet: its spec, with whatever status the cache has.
    if (cached === undefined) return overlay.view;
    const { removals: _stale, ...spec } = overlay.view;
    return { ...spec, status: cached.status, ...(cached.removals !== undefined ? { removals: cached.removals } : {}) };
  }

  private copyView(name: string): SecretView | undefined {
    const cached = this.secretCopies.get(secretKey(this.o.namespace, name));
    const overlay = this.copyOverlay.get(name);
    if (overlay === undefined) return cached;
    if (overlay === 'deleted' ? cached === undefined : copyMatches(cached, { name, source: overlay.annotations['kwarm.io/source'] ?? '', type: overlay.type, data: overlay.data })) {
      this.copyOverlay.delete(name);
      return cached;
    }
    return overlay === 'deleted' ? undefined : overlay;
  }

  private sourceSecret(key: string): SecretView | undefined {
    for (const lw of this.secretSources) {
      const s = lw.get(key);
      // Our own copies have the same types; they are never a source.
      if (s !== undefined && s.labels[SECRET_COPY_LABEL] !== 'true') return s;
    }
    return undefined;
  }

  private targetingOf(nodes: NodeTargetingSpec): NodeTargeting | undefined {
    if (this.targetings.has(nodes)) return this.targetings.get(nodes);
    const t = compileNodeTargeting(nodes);
    this.targetings.set(nodes, t);
    return t;
  }

  /** A PrePullImage's status as last written: this process's own write until the cache shows a newer object. */
  private statusOf(key: string, p: PrePullImage): PrePullImageStatus | undefined {
    const overlay = this.ppiStatusOverlay.get(key);
    if (overlay !== undefined && overlay.rvBefore !== p.metadata.resourceVersion) this.ppiStatusOverlay.delete(key);
    const status = this.ppiStatusOverlay.get(key)?.status ?? p.status;
    const written = this.refreshOverlay.get(key);
    if (written === undefined) return status;
    // Shown by the cache, or written for an object of the same name deleted since.
    if (written.uid !== p.metadata.uid || wantedRound(status?.refresh) >= wantedRound(written.refresh)) {
      this.refreshOverlay.delete(key);
      return status;
    }
    return { ...status, refresh: written.refresh };
  }

  /**
   * Records new refreshes (annotation or due refreshInterval) in status.refresh, before any NodeImageSet is
   * planned from them: the rounds follow from the persisted record only. Returns when the next is due.
   */
  private async recordRefreshes(
    cachedPPIs: ReadonlyMap<string, PrePullImage>,
    nowMs: number,
    attempt: (what: string, fn: () => Promise<unknown>) => Promise<unknown>,
    signal: AbortSignal,
  ): Promise<number | undefined> {
    const { client, log, metrics } = this.o;
    let dueAt: number | undefined;
    const writes: { key: string; p: PrePullImage; status: PrePullImageStatus; refresh: RefreshRecord; trigger: string; event: StatusEvent }[] = [];
    for (const [key, p] of cachedPPIs) {
      if (p.metadata.deletionTimestamp !== undefined) continue;
      const previous = this.statusOf(key, p);
      const decision = refreshDecision({
        image: p.spec.image,
        imageDigest: p.spec.imageDigest,
        annotation: p.metadata.annotations?.[REFRESH_ANNOTATION],
        refreshInterval: p.spec.refreshInterval,
        generation: p.metadata.generation ?? 0,
        creationTimestamp: p.metadata.creationTimestamp,
        status: previous,
        nowMs,
      });
      switch (decision.kind) {
        case 'none':
          if (decision.dueAtMs !== undefined) dueAt = Math.min(dueAt ?? decision.dueAtMs, decision.dueAtMs);
          break;
        case 'refresh':
          writes.push({ key, p, status: { ...previous, refresh: decision.refresh }, refresh: decision.refresh, trigger: decision.trigger, event: decision.event });
          break;
        default: {
          const unreachable: never = decision;
          throw new Error(`unhandled refresh decision ${JSON.stringify(unreachable)}`);
        }
      }
    }
    const now = metaTime(new Date(nowMs));
    await eachLimited(writes, this.o.writeConcurrency, async (w) => {
      const ns = w.p.metadata.namespace ?? '';
      const name = w.p.metadata.name ?? '';
      const body = await attempt(`prepullimage refresh ${w.key}`, () => client.apply(paths.prePullImageStatus(ns, name), prePullImageStatusBody(ns, name, w.status), CONTROLLER_FIELD_MANAGER, signal));
      if (body === undefined) return;
      log.info('refresh requested', { prePullImage: w.key, trigger: w.trigger, lastTime: w.refresh.lastTime });
      metrics.refreshes.inc({ trigger: w.trigger });
      this.ppiStatusOverlay.set(w.key, { rvBefore: w.p.metadata.resourceVersion, status: w.status, digest: canonicalDigest(w.status) });
      this.refreshOverlay.set(w.key, { uid: w.p.metadata.uid, refresh: w.refresh });
      // After the status that records it, as for the rollup's Events: a retried pass never repeats it.
      await attempt(`event ${w.key} ${w.event.reason}`, () => client.create(paths.events(ns), eventBody({ namespace: ns, name, uid: w.p.metadata.uid ?? '' }, w.event, now, this.o.identity), signal));
    });
    return dueAt;
  }

  /** Cached PrePullImages are replaced, never changed, when they change: their digest is computed once. */
  private cachedPrePullImageDigest(p: PrePullImage): string {
    let d = this.ppiDigests.get(p);
    if (d === undefined) this.ppiDigests.set(p, (d = cachedPrePullImageDigest(p)));
    return d;
  }

  /** Unchanged workloads derive the same objects (DesiredImagesMemo): their digest is computed once. */
  private desiredPrePullImageDigest(d: DesiredPrePullImage): string {
    let digest = this.desiredDigests.get(d);
    if (digest === undefined) this.desiredDigests.set(d, (digest = desiredPrePullImageDigest(d)));
    return digest;
  }

  private async write(what: string, fn: () => Promise<unknown>): Promise<unknown> {
    try {
      return await fn();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      this.o.log.warn('write failed', { what, error: errorText(err) });
      throw err;
    }
  }

  /**
   * One Warning Event (InvalidImageList) per bad key of a ConfigMap version. Sent after the policy status
   * naming it was written; a problem a ConfigMapsValid condition already named before this pass (written
   * by an earlier process, before a restart) is not sent again.
   */
  private async reportConfigMapProblems(
    evaluations: readonly ListedEvaluation[],
    namedBefore: readonly string[],
    now: string,
    signal: AbortSignal,
    attempt: (what: string, fn: () => Promise<unknown>) => Promise<unknown>,
  ): Promise<void> {
    const reported = new Set<string>();
    for (const ev of evaluations) {
      if (ev.configMaps.kind !== 'watched') continue;
      for (const p of ev.configMaps.problems) {
        const id = `${p.uid}/${p.resourceVersion}/${p.key}`;
        if (reported.has(id)) continue;
        reported.add(id);
        if (this.reportedProblems.has(id)) continue;
        const text = configMapProblemText(p);
        if (namedBefore.some((m) => m.includes(text))) continue;
        const event: StatusEvent = { type: 'Warning', reason: 'InvalidImageList', message: text.length > 1024 ? `${text.slice(0, 1021)}...` : text };
        await attempt(`event configmap ${p.namespace}/${p.name} ${p.key}`, () => this.o.client.create(
          paths.events(p.namespace),
          eventBody({ namespace: p.namespace, name: p.name, uid: p.uid }, event, now, this.o.identity, { apiVersion: 'v1', kind: 'ConfigMap' }),
          signal,
        ));
      }
    }
    this.reportedProblems = reported;
  }

  /** One full pass. Resolves false when some write failed (the pass is retried). */
  private async reconcile(signal: AbortSignal): Promise<boolean> {
    const { client, log, metrics, namespace } = this.o;
    const now = metaTime(this.o.now());
    let computeMs = 0;
    let mark = performance.now();
    const computed = (): void => { computeMs += performance.now() - mark; };
    const resume = (): void => { mark = performance.now(); };
    let failed = false;
    // A function, so TypeScript does not keep the narrowing of `failed` across awaits.
    const writeFailed = (): boolean => failed;
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<unknown> => {
      try {
        return await this.write(what, fn);
      } catch {
        failed = true;
        return undefined;
      }
    };

    // 1. Desired PrePullImages from policies and workloads.
    const serviceAccounts = new Map([...this.serviceAccounts.entries()]);
    const workloads: WorkloadView[] = [];
    for (const lw of this.workloads.values()) for (const w of lw.values()) workloads.push(w);
    this.argo.want(argoKindsNamed(this.policies.values()));
    const workloadImages = desiredPrePullImages(
      this.policies.values(), workloads, serviceAccounts, this.desiredMemo, { objects: this.argo.objects(), clusterNamespace: namespace },
    );
    this.updateConfigMapWatches(signal);
    const listed = desiredListedImages({
      policies: this.policies.values(), configMaps: this.configMapWatches.synced(), listErrors: this.configMapWatches.listErrors(),
      namespace, memo: this.listedMemo,
    });
    const desired = { images: new Map([...workloadImages.images, ...listed.images]), policies: workloadImages.policies };
    // Sources not known yet (ConfigMaps not listed for the policy; an Argo kind not discovered or listed):
    // their PrePullImages are unknown, not unwanted. Kept as cached: neither written nor removed, planned as they are.
    const pendingPolicies = new Set([...listed.policies].filter(([, ev]) => ev.configMaps.kind === 'pending').map(([name]) => name));
    const argoUncertain = this.argo.uncertainKinds();
    const uncertainSource = (p: PrePullImage): boolean => {
      if (!isManaged(p)) return false;
      if (p.metadata.annotations?.[SOURCE_ANNOTATION] === CONFIGMAP_SOURCE) return pendingPolicies.has(p.metadata.labels?.[POLICY_LABEL] ?? '');
      const ownerKind = p.metadata.ownerReferences?.find((o) => o.controller === true)?.kind ?? '';
      return isArgoKind(ownerKind) && argoUncertain.has(ownerKind);
    };
    const keptAsCached = (key: string, p: PrePullImage): boolean =>
      !desired.images.has(key) && p.metadata.deletionTimestamp === undefined && uncertainSource(p);

    const cachedPPIs = new Map<string, PrePullImage>();
    for (const p of this.prePullImages.values()) {
      const ns = p.metadata.namespace;
      const name = p.metadata.name;
      if (ns !== undefined && name !== undefined) cachedPPIs.set(prePullImageKey(ns, name), p);
    }

    const ppiWrites: DesiredPrePullImage[] = [];
    const ppiDeletes: PrePullImage[] = [];
    const generationOf = new Map<string, number>();
    for (const [key, d] of desired.images) {
      const cached = cachedPPIs.get(key);
      if (cached !== undefined && !isManaged(cached)) {
        log.debug('a hand-written PrePullImage has the name kwarm would derive; leaving it alone', { prePullImage: key });
        continue;
      }
      const digest = this.desiredPrePullImageDigest(d);
      const overlay = this.ppiOverlay.get(key);
      if (overlay !== undefined && cached !== undefined && (cached.metadata.generation ?? 0) >= overlay.generation) this.ppiOverlay.delete(key);
      const pending = this.ppiOverlay.get(key);
      if (pending?.digest === digest) {
        generationOf.set(key, pending.generation);
        continue;
      }
      if (cached !== undefined && this.cachedPrePullImageDigest(cached) === digest) continue;
      ppiWrites.push(d);
    }
    for (const [key, p] of cachedPPIs) {
      if (isManaged(p) && !desired.images.has(key) && p.metadata.deletionTimestamp === undefined && !this.deleting.has(key) && !keptAsCached(key, p)) {
        ppiDeletes.push(p);
      }
    }

    // 1b. Refreshes, persisted before planning raises any round from them.
    computed();
    this.refreshDueAt = await this.recordRefreshes(cachedPPIs, this.o.now().getTime(), attempt, signal);
    resume();
    const roundOf = (key: string): number => {
      const p = cachedPPIs.get(key);
      return p === undefined ? 0 : wantedRound(this.statusOf(key, p)?.refresh);
    };

    // 2. Targets: derived images as desired now (not as cached), plus hand-written ones.
    const targetsRaw: { target: Omit<ImageTarget, 'pullSecrets'>; secretRefs: string[] }[] = [];
    for (const [key, d] of desired.images) {
      const cached = cachedPPIs.get(key);
      // A derived one being deleted is purged (below) or simply goes; it is derived again once it is gone.
      if (cached !== undefined && (!isManaged(cached) || cached.metadata.deletionTimestamp !== undefined)) continue;
      targetsRaw.push({
        target: {
          key, namespace: d.namespace, name: d.name, image: d.spec.image, imageDigest: undefined,
          nodeNames: undefined, nodeSelector: d.spec.nodes.selector, placement: d.placement, targeting: this.targetingOf(d.spec.nodes),
          retry: d.spec.retry, timeout: d.spec.timeout, round: roundOf(key),
        },
        secretRefs: d.spec.imagePullSecrets.map((r) => secretKey(d.namespace, r.name)),
      });
    }
    for (const [key, p] of cachedPPIs) {
      const deleting = p.metadata.deletionTimestamp !== undefined;
      // Removal: state Absent, or deleted while holding the purge finalizer (derived ones too).
      const purge = deleting ? hasPurgeFinalizer(p) : !isManaged(p) && p.spec.state === 'Absent';
      if (!purge && !keptAsCached(key, p) && (isManaged(p) || deleting)) continue;
      const ns = p.metadata.namespace ?? '';
      targetsRaw.push({
        target: {
          key, namespace: ns, name: p.metadata.name ?? '', image: p.spec.image, imageDigest: p.spec.imageDigest,
          nodeNames: p.spec.nodes.names, nodeSelector: p.spec.nodes.selector, placement: undefined, targeting: this.targetingOf(p.spec.nodes),
          retry: p.spec.retry, timeout: p.spec.timeout, round: roundOf(key),
          ...(purge ? { purge: true } : {}),
        },
        // Nothing is pulled for a purge: its secrets need no copies.
        secretRefs: purge ? [] : (p.spec.imagePullSecrets ?? []).map((r) => secretKey(ns, r.name)),
      });
    }
    // The purge finalizer on hand-written PrePullImages, under a field manager of its own (derived ones
    // carry it in their applied object).
    const finalizerWrites: { p: PrePullImage; add: boolean }[] = [];
    for (const p of cachedPPIs.values()) {
      if (isManaged(p) || p.metadata.deletionTimestamp !== undefined) continue;
      const has = hasPurgeFinalizer(p);
      if (p.spec.purgeOnDelete !== has) finalizerWrites.push({ p, add: p.spec.purgeOnDelete });
    }

    // 3. Pull secret copies.
    const copies = new Map<string, SecretView>();
    for (const c of this.secretCopies.values()) {
      const v = this.copyView(c.name);
      if (v !== undefined) copies.set(c.name, v);
    }
    for (const [name, v] of this.copyOverlay) if (v !== 'deleted' && !copies.has(name)) copies.set(name, v);
    const secretPlan = planSecretCopies(targetsRaw.flatMap((t) => t.secretRefs), (k) => this.sourceSecret(k), copies);
    const targets: ImageTarget[] = targetsRaw.map(({ target, secretRefs }) => ({
      ...target,
      pullSecrets: secretRefs.flatMap((r) => secretPlan.copyNames.get(r) ?? []),
    }));

    // 4. Per-node plans within the budget.
    const current = new Map<string, NodeImageSetView>();
    for (const name of new Set([...this.nodeImageSets.values()].map((v) => v.name).concat([...this.nisOverlay.keys()]))) {
      const v = this.nodeImageSetView(name);
      if (v !== undefined) current.set(name, v);
    }
    const plan = planNodeImageSets({
      targets,
      nodes: this.nodes.values(),
      current,
      maxConcurrentPulls: this.o.maxConcurrentPulls,
      maxPullsPerNode: this.o.maxPullsPerNode,
      memo: this.planMemo,
    });
    const nisWrites: PlannedNodeImageSet[] = [];
    for (const [name, p] of plan.nodeImageSets) {
      const cur = current.get(name);
      if (cur === undefined || cur.specDigest !== p.digest) nisWrites.push(p);
    }

    // 5. Writes, in the order the agents need them: secrets, then PrePullImages, then NodeImageSets.
    computed();
    const limit = this.o.writeConcurrency;
    await eachLimited(secretPlan.apply, limit, async (c) => {
      const body = await attempt(`secret ${c.name}`, () => client.apply(paths.secret(namespace, c.name), secretCopyBody(namespace, c), CONTROLLER_FIELD_MANAGER, signal));
      if (body !== undefined) {
        const written = decodeSecret(body);
        if (written !== undefined) this.copyOverlay.set(c.name, written);
      }
    });
    await eachLimited(ppiWrites, limit, async (d) => {
      const key = prePullImageKey(d.namespace, d.name);
      const body = await attempt(`prepullimage ${key}`, () => client.apply(paths.prePullImage(d.namespace, d.name), prePullImageApplyBody(d), CONTROLLER_FIELD_MANAGER, signal));
      if (body !== undefined) {
        const { generation } = responseMeta(body);
        this.ppiOverlay.set(key, { generation, digest: this.desiredPrePullImageDigest(d) });
        generationOf.set(key, generation);
      }
    });
    await eachLimited(finalizerWrites, limit, async ({ p, add }) => {
      const ns = p.metadata.namespace ?? '';
      const name = p.metadata.name ?? '';
      await attempt(`prepullimage finalizer ${ns}/${name}`, () => add
        ? client.apply(paths.prePullImage(ns, name), finalizerApplyBody(ns, name), PURGE_FIELD_MANAGER, signal)
        : client.patch(paths.prePullImage(ns, name), 'json', finalizerRemovalPatch(p), signal));
    });
    await eachLimited(nisWrites, limit, async (p) => {
      const body = await attempt(`nodeimageset ${p.node}`, () => client.apply(paths.nodeImageSet(p.node), nodeImageSetApplyBody(p), CONTROLLER_FIELD_MANAGER, signal));
      if (body !== undefined) {
        const { generation } = responseMeta(body);
        const cur = current.get(p.node);
        this.nisOverlay.set(p.node, {
          generation,
          view: {
            name: p.node, generation, ownerUid: p.nodeUid, specDigest: p.digest, released: p.released, status: cur?.status ?? new Map(),
            ...(cur?.removals !== undefined ? { removals: cur.removals } : {}),
          },
        });
      }
    });

    // 6. Status back up, and Events on transitions.
    resume();
    const phases: Record<PrePullImagePhase, number> = { Pending: 0, InProgress: 0, Completed: 0, Failed: 0 };
    const phaseOf = new Map<string, PrePullImagePhase | undefined>();
    const statusWrites: { key: string; p: PrePullImage; status: PrePullImageStatus; digest: string; events: StatusEvent[] }[] = [];
    const targetByKey = new Map(targets.map((t) => [t.key, t]));
    const secretRefsByKey = new Map(targetsRaw.map((t) => [t.target.key, t.secretRefs]));
    // A status depends on its target nodes' planned specs and cached NodeImageSets: one token per node list
    // (targets of one group share the list), so an image none of whose nodes changed is not rolled up again.
    const nodesTokens = new Map<readonly string[], string>();
    const nodesToken = (nodes: readonly string[]): string => {
      let token = nodesTokens.get(nodes);
      if (token === undefined) {
        const parts = nodes.map((n) => `${plan.nodeImageSets.get(n)?.digest ?? ''}/${this.ids.of(current.get(n))}`);
        nodesTokens.set(nodes, (token = `${this.ids.of(nodes)}:${digest(parts.join('\n'))}`));
      }
      return token;
    };
    const rolledUp = new Map<string, RolledUpStatus>();
    const nowMs = this.o.now().getTime();
    let progressDueAt: number | undefined;
    for (const [key, p] of cachedPPIs) {
      const t = targetByKey.get(key);
      if (t === undefined || p.metadata.deletionTimestamp !== undefined || t.purge === true) continue;
      const previous = this.statusOf(key, p);
      const refs = secretRefsByKey.get(key) ?? [];
      const problems = refs.flatMap((r) => {
        const pr = secretPlan.problems.get(r);
        return pr === undefined ? [] : [`${r}: ${pr.reason}: ${pr.message}`];
      });
      const generation = generationOf.get(key) ?? p.metadata.generation ?? 0;
      const nodes = plan.targetNodes.get(key) ?? [];
      // `now` is left out: with the same inputs (previous status included) the rollup moves no timestamp.
      const fingerprint = JSON.stringify([generation, t.image, t.round, this.ids.of(previous), nodesToken(nodes), refs.length, problems]);
      let r = this.rolledUp.get(key);
      if (r?.fingerprint !== fingerprint) {
        const { status, events } = prePullImageStatus({
          generation, image: t.image, round: t.round, nodes, planned: plan.nodeImageSets, current, previous, secrets: { referenced: refs.length, problems }, now,
        });
        const digest = canonicalDigest(status);
        r = { fingerprint, status, events, digest, changed: digest !== canonicalDigest(previous ?? {}) };
      }
      rolledUp.set(key, r);
      phaseOf.set(key, r.status.phase);
      if (r.status.phase !== undefined) phases[r.status.phase]++;
      if (!r.changed) continue;
      const last = this.statusWrittenAt.get(key);
      const dueAt = last === undefined ? nowMs : last + this.o.statusProgressIntervalMs;
      if (dueAt > nowMs && statusShape(r.status) === statusShape(previous)) {
        progressDueAt = Math.min(progressDueAt ?? dueAt, dueAt);
        continue;
      }
      statusWrites.push({ key, p, status: r.status, digest: r.digest, events: r.events });
    }
    this.rolledUp = rolledUp;

    // Purges: the agents' answers up to status.purge; once every node of a deleted one has answered, its
    // finalizer goes (after the status and the Purged Event that record it).
    const finalizerRemovals: PrePullImage[] = [];
    for (const [key, p] of cachedPPIs) {
      const t = targetByKey.get(key);
      if (t?.purge !== true) continue;
      const previous = this.statusOf(key, p);
      const deletedAt = p.metadata.deletionTimestamp === undefined ? undefined : Date.parse(p.metadata.deletionTimestamp);
      // A deletion never waits forever: nodes that have not answered within the timeout count as failed.
      const giveUpAtMs = deletedAt === undefined ? undefined : deletedAt + (durationMilliseconds(t.timeout) ?? 600_000);
      const rollup = purgeRollup({ image: t.image, nodes: plan.targetNodes.get(key) ?? [], planned: plan.nodeImageSets, current, giveUpAtMs, nowMs });
      if (!rollup.done && giveUpAtMs !== undefined) progressDueAt = Math.min(progressDueAt ?? giveUpAtMs, giveUpAtMs);
      const { status, purged } = purgingStatus({ generation: p.metadata.generation ?? 0, image: t.image, rollup, previous, now });
      const events: StatusEvent[] = purged
        ? [{ type: rollup.purge.failed > 0 ? 'Warning' : 'Normal', reason: 'Purged', message: purgeSummary(t.image, rollup.purge) }]
        : [];
      const digest = canonicalDigest(status);
      if (digest !== canonicalDigest(previous ?? {})) statusWrites.push({ key, p, status, digest, events });
      if (deletedAt !== undefined && rollup.done) finalizerRemovals.push(p);
    }
    this.progressDueAt = progressDueAt;
    for (const key of this.statusWrittenAt.keys()) if (!cachedPPIs.has(key)) this.statusWrittenAt.delete(key);
    for (const key of this.refreshOverlay.keys()) if (!cachedPPIs.has(key)) this.refreshOverlay.delete(key);
    computed();
    // Statuses not written: a finalizer is removed only after the status that records the purge.
    const unwritten = new Set<string>();
    await eachLimited(statusWrites, limit, async (w) => {
      const ns = w.p.metadata.namespace ?? '';
      const name = w.p.metadata.name ?? '';
      const body = await attempt(`prepullimage status ${w.key}`, () => client.apply(paths.prePullImageStatus(ns, name), prePullImageStatusBody(ns, name, w.status), CONTROLLER_FIELD_MANAGER, signal));
      if (body === undefined) {
        unwritten.add(w.key);
        return;
      }
      this.statusWrittenAt.set(w.key, nowMs);
      this.ppiStatusOverlay.set(w.key, { rvBefore: w.p.metadata.resourceVersion, status: w.status, digest: w.digest });
      // Events only after the status that records the transition: a retried pass never repeats them (a crash
      // between the two writes loses one Event rather than duplicating it).
      for (const ev of w.events) {
        await attempt(`event ${w.key} ${ev.reason}`, () => client.create(paths.events(ns), eventBody({ namespace: ns, name, uid: w.p.metadata.uid ?? '' }, ev, now, this.o.identity), signal));
      }
    });
    const releasable = finalizerRemovals.filter((p) => !unwritten.has(prePullImageKey(p.metadata.namespace ?? '', p.metadata.name ?? '')));
    await eachLimited(releasable, limit, async (p) => {
      const ns = p.metadata.namespace ?? '';
      const name = p.metadata.name ?? '';
      await attempt(`prepullimage finalizer ${ns}/${name}`, () => client.patch(paths.prePullImage(ns, name), 'json', finalizerRemovalPatch(p), signal));
    });

    resume();
    const policyWrites: { name: string; status: PrePullPolicyStatus; rv: string | undefined; digest: string }[] = [];
    const namedBefore: string[] = [];
    metrics.watchedDeployments.reset();
    metrics.watchedWorkloads.reset();
    for (const policy of this.policies.values()) {
      const name = policy.metadata.name ?? '';
      const ev = desired.policies.get(name);
      if (ev === undefined) continue;
      const listedEv: ListedEvaluation | undefined = listed.policies.get(name);
      // Until its ConfigMaps are listed, a policy's status would only say so: wait for the list, unless it fails.
      if (listedEv?.configMaps.kind === 'pending' && listedEv.configMaps.error === undefined) continue;
      metrics.watchedDeployments.set({ policy: name }, ev.watchedByKind.Deployment);
      for (const [kind, n] of Object.entries(ev.watchedByKind)) metrics.watchedWorkloads.set({ policy: name, kind }, n);
      const overlay = this.policyStatusOverlay.get(name);
      if (overlay !== undefined && overlay.rvBefore !== policy.metadata.resourceVersion) this.policyStatusOverlay.delete(name);
      const previous = this.policyStatusOverlay.get(name)?.status ?? policy.status;
      const named = previous?.conditions?.find((c) => c.type === prePullPolicyConditionTypes.ConfigMapsValid)?.message;
      if (named !== undefined) namedBefore.push(named);
      const status = prePullPolicyStatus({
        generation: policy.metadata.generation ?? 0,
        evaluation: ev,
        ...(listedEv === undefined ? {} : { listed: listedEv }),
        imagePhases: [...ev.images, ...(listedEv?.staticImages ?? []), ...(listedEv?.configMapImages ?? [])].map((k) => phaseOf.get(k)),
        previous,
        now,
        argo: { named: policy.spec.workloadKinds.filter(isArgoKind), served: this.argo.served },
      });
      const digest = canonicalDigest(status);
      if (digest !== canonicalDigest(previous ?? {})) policyWrites.push({ name, status, rv: policy.metadata.resourceVersion, digest });
    }
    computed();
    await eachLimited(policyWrites, limit, async (w) => {
      const body = await attempt(`prepullpolicy status ${w.name}`, () => client.apply(paths.policyStatus(w.name), prePullPolicyStatusBody(w.name, w.status), CONTROLLER_FIELD_MANAGER, signal));
      if (body !== undefined) this.policyStatusOverlay.set(w.name, { rvBefore: w.rv, status: w.status, digest: w.digest });
    });
    // Only once the conditions naming them are written, so a failed pass does not send them early.
    if (!writeFailed()) await this.reportConfigMapProblems([...listed.policies.values()], namedBefore, now, signal, attempt);

    // 7. Deletions last: nothing still needs them.
    await eachLimited(ppiDeletes, limit, async (p) => {
      const key = prePullImageKey(p.metadata.namespace ?? '', p.metadata.name ?? '');
      this.deleting.add(key);
      await attempt(`delete prepullimage ${key}`, () => client.delete(paths.prePullImage(p.metadata.namespace ?? '', p.metadata.name ?? ''), signal));
    });
    for (const key of this.deleting) if (!cachedPPIs.has(key)) this.deleting.delete(key);
    await eachLimited(secretPlan.remove, limit, async (name) => {
      await attempt(`delete secret ${name}`, () => client.delete(paths.secret(namespace, name), signal));
      this.copyOverlay.set(name, 'deleted');
    });

    metrics.planDuration.observe(computeMs / 1000);
    metrics.setPhases(phases);
    metrics.unfinishedPulls.set(plan.unfinished);
    metrics.heldPulls.set(plan.held);
    const writes = secretPlan.apply.length + ppiWrites.length + finalizerWrites.length + nisWrites.length + statusWrites.length + policyWrites.length + ppiDeletes.length +
      secretPlan.remove.length + finalizerRemovals.length;
    if (writes > 0) {
      log.debug('reconciled', {
        secrets: secretPlan.apply.length, prePullImages: ppiWrites.length, nodeImageSets: nisWrites.length, statuses: statusWrites.length,
        policies: policyWrites.length, deleted: ppiDeletes.length + secretPlan.remove.length, unfinished: plan.unfinished, held: plan.held,
        computeMs: Math.round(computeMs),
      });
    }
    return !failed;
  }
}
