// Stage B of a pass, pure: from the desired PrePullImages, the cached ones and the caches as last written
// (overlays), what to write of specs: derived PrePullImages, the purge finalizer of hand-written ones, pull
// secret copies and NodeImageSets within the pull budget. Also what later stages read of it: the targets,
// their secrets and the node plan. And the deletes that run last (stage D).
import type { PrePullImage } from '../../api/v1alpha1/index.ts';
import { formatFullyQualified, parseImageRef } from '../../lib/image-ref.ts';
import type { DesiredPrePullImage } from '../derive/desired-images.ts';
import { planSecretCopies, secretKey, type SecretPlan, type SecretView, type SourceSecret } from '../derive/pull-secrets.ts';
import { cachedPrePullImageDigest, desiredPrePullImageDigest, hasPurgeFinalizer, isManaged } from '../write/api-objects.ts';
import type { Overlays } from '../write/overlays.ts';
import type { Write, WritePlan } from '../write/writes.ts';
import { compileNodeTargeting, type NodeTargeting, type NodeTargetingSpec, type NodeView } from './node-eligibility.ts';
import { PlanMemo, planNodeImageSets, type ImageTarget, type NodePlan } from './node-plan.ts';
import type { NodeImageSetView } from './node-image-set-view.ts';
import type { NamespaceLimits } from './namespace-limits.ts';
import { sameItems } from '../../lib/same-items.ts';

/** A cache as the stages read it: by key, and all values. */
export interface CacheView<T> {
  get(key: string): T | undefined;
  values(): Iterable<T>;
}

/**
 * What planning remembers between passes so a quiet pass does little: digests of objects the caches keep
 * unchanged, compiled node targeting, the node planner's memo. Only caches: a plan is the same without them.
 */
export class SpecMemos {
  readonly plan = new PlanMemo();
  private readonly cachedDigests = new WeakMap<PrePullImage, string>();
  private readonly desiredDigests = new WeakMap<DesiredPrePullImage, string>();
  private readonly targetings = new WeakMap<NodeTargetingSpec, NodeTargeting | undefined>();

  /** Cached PrePullImages are replaced, never changed, when they change: their digest is computed once. */
  cachedDigest(p: PrePullImage): string {
    let d = this.cachedDigests.get(p);
    if (d === undefined) this.cachedDigests.set(p, (d = cachedPrePullImageDigest(p)));
    return d;
  }

  /** Unchanged workloads derive the same objects (DesiredImagesMemo): their digest is computed once. */
  desiredDigest(p: DesiredPrePullImage): string {
    let d = this.desiredDigests.get(p);
    if (d === undefined) this.desiredDigests.set(p, (d = desiredPrePullImageDigest(p)));
    return d;
  }

  private references = new Map<string, string>();
  private referencesBefore = new Map<string, string>();

  /** planningReference, remembered for the references seen in this pass and the one before. */
  reference(image: string): string {
    let r = this.references.get(image) ?? this.referencesBefore.get(image);
    if (r === undefined) r = planningReference(image);
    this.references.set(image, r);
    return r;
  }

  /**
   * Ends a pass (called once, after its targets are made): forgets references no target used since the last
   * call, and keeps this pass's targets for the next one to compare with.
   */
  endPass(): void {
    this.referencesBefore = this.references;
    this.references = new Map();
    this.targets = this.targetsNow;
    this.targetsNow = new Map();
  }

  private targets = new Map<string, { readonly raw: RawTarget['target']; readonly target: ImageTarget }>();
  private targetsNow = new Map<string, { readonly raw: RawTarget['target']; readonly target: ImageTarget }>();

  /**
   * `raw` with its pull secrets, as the same object as last pass when nothing in it changed: a PrePullImage whose
   * planning inputs did not change keeps its target object, by which the node planner finds what it planned from
   * it before (PlanMemo). Keeps only this pass's targets (see endPass).
   */
  target(raw: RawTarget['target'], pullSecrets: readonly string[]): ImageTarget {
    const before = this.targets.get(raw.key);
    let kept: ImageTarget;
    if (before !== undefined && before.raw === raw && sameItems(before.target.pullSecrets, pullSecrets)) kept = before.target;
    else {
      const t = { ...raw, pullSecrets };
      kept = before !== undefined && sameTarget(before.target, t) ? before.target : t;
    }
    this.targetsNow.set(raw.key, { raw, target: kept });
    return kept;
  }

  private readonly rawTargets = new WeakMap<DesiredPrePullImage, { readonly cached: PrePullImage | undefined; readonly round: number; readonly raw: RawTarget }>();

  /** The target derived from `d` in an earlier pass, while its cached object and wanted round are the same. */
  rawTarget(d: DesiredPrePullImage, cached: PrePullImage | undefined, round: number, make: () => RawTarget): RawTarget {
    const known = this.rawTargets.get(d);
    if (known !== undefined && known.cached === cached && known.round === round) {
      // Keeps its reference remembered for the next pass (see endPass).
      this.reference(d.spec.image);
      return known.raw;
    }
    const raw = make();
    this.rawTargets.set(d, { cached, round, raw });
    return raw;
  }

  /** Compiled spec.nodes targeting, by the spec.nodes object. */
  targeting(nodes: NodeTargetingSpec): NodeTargeting | undefined {
    if (this.targetings.has(nodes)) return this.targetings.get(nodes);
    const t = compileNodeTargeting(nodes);
    this.targetings.set(nodes, t);
    return t;
  }
}

/** Whether two targets plan alike: the same values, the same lists of pull secrets, the same spec objects. */
function sameTarget(a: ImageTarget, b: ImageTarget): boolean {
  const keys = Object.keys(a) as (keyof ImageTarget)[];
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => (k === 'pullSecrets' ? sameItems(a.pullSecrets, b.pullSecrets) : a[k] === b[k]));
}

/** The PrePullImages of a pass: desired (derived now) and cached, by `namespace/name`. */
export interface PrePullImageSets {
  readonly desired: ReadonlyMap<string, DesiredPrePullImage>;
  readonly cached: ReadonlyMap<string, PrePullImage>;
  /**
   * A derived one whose source is not known yet (its ConfigMaps not listed, its Argo kind not discovered): it
   * is unknown, not unwanted, so it is neither written nor removed, and planned as cached.
   */
  readonly keptAsCached: (key: string, p: PrePullImage) => boolean;
}

export interface SpecInput extends PrePullImageSets {
  readonly overlays: Overlays;
  readonly memos: SpecMemos;
  /** The round each PrePullImage wants, from its status as last written (refreshes of this pass included). */
  readonly roundOf: (key: string) => number;
  /** Nodes as the planner sees them (without kwarm's warm-up taint, see warmup/decode.ts withoutWarmupTaint). */
  readonly nodes: Iterable<NodeView>;
  /** Nodes carrying the warm-up taint: they get a NodeImageSet even with nothing to pull. */
  readonly warming?: ReadonlySet<string>;
  /**
   * Some source a policy names (a workload kind, its ConfigMaps, an Argo kind) has not listed yet, so images
   * may be missing from this pass. A warming node is then not told that nothing gates it: a NodeImageSet
   * without gating images would have the barrier lift the node before those images are known.
   */
  readonly sourcesListing?: boolean;
  readonly nodeImageSets: CacheView<NodeImageSetView>;
  /** Pull secret copies in kwarm's namespace, by name. */
  readonly secretCopies: CacheView<SecretView>;
  /** A source Secret by `namespace/name`; 'unknown' while its namespace is not listed (its copy is kept). */
  readonly sourceSecret: (key: string) => SourceSecret;
  /** Cluster-wide released-but-unfinished (node, image) pairs; 0 = unlimited (--max-concurrent-pulls). */
  readonly clusterPullBudget: number;
  /** Pulls each agent runs at once (--max-pulls-per-node), written into every NodeImageSet. */
  readonly maxPullsPerNode: number;
  /** --max-images-per-namespace (0 or absent: no cap), and the namespace exempt from it (kwarm's own). */
  readonly maxImagesPerNamespace?: number;
  readonly uncappedNamespace?: string;
  /** --namespace-pull-share and --namespace-node-images-per-node (namespace-limits.ts). */
  readonly namespaceLimits?: NamespaceLimits;
  /** Now and --agent-stale-after: pairs on nodes without a working agent do not hold the budget. */
  readonly agents?: { readonly nowMs: number; readonly staleMs: number };
  /** Now, for PURGE_SETTLE_MS; absent: a purge starts at once (unit tests that are not about it). */
  readonly nowMs?: number;
}

/**
 * How long a deleted PrePullImage holding the purge finalizer stays wanted before its purge starts. A workload
 * re-created at once (`kubectl replace --force`) is gone for a moment, and the controller's watches need not show
 * the new one before the old PrePullImage's deletion: without this wait, its image was removed from the nodes and
 * pulled again under the new pods (finding 14, seen under load). A purge is never urgent; a re-pull can be.
 */
export const PURGE_SETTLE_MS = 10_000;

export interface SpecPlan {
  /** Secrets, then PrePullImages and their finalizers, then NodeImageSets: the order the agents need them in. */
  readonly writes: WritePlan;
  /** Derived PrePullImages whose write is pending in the overlay with the same content: its generation. */
  readonly pendingGenerations: ReadonlyMap<string, number>;
  /** Hand-written PrePullImages that have the name kwarm would derive (left alone). */
  readonly shadowed: readonly string[];
  readonly targets: readonly ImageTarget[];
  /** Source Secret keys each target names. */
  readonly secretRefs: ReadonlyMap<string, readonly string[]>;
  readonly secrets: SecretPlan;
  /** NodeImageSets as last written, which the node plan was made against. */
  readonly current: ReadonlyMap<string, NodeImageSetView>;
  readonly nodePlan: NodePlan;
  /** When the first purge held by PURGE_SETTLE_MS may start: the pass is due then. */
  readonly purgeDueAtMs: number | undefined;
}

function prePullImageWrites(input: SpecInput): { writes: Write[]; pending: Map<string, number>; shadowed: string[] } {
  const { desired, cached, overlays, memos } = input;
  const writes: Write[] = [];
  const pending = new Map<string, number>();
  const shadowed: string[] = [];
  for (const [key, d] of desired) {
    const c = cached.get(key);
    if (c !== undefined && !isManaged(c)) {
      shadowed.push(key);
      continue;
    }
    // Being deleted: an apply would only change what is going away. The successor is a target meanwhile
    // (targetsOf) and is written under this name once the old one is gone.
    if (c?.metadata.deletionTimestamp !== undefined) continue;
    const digest = memos.desiredDigest(d);
    const written = overlays.prePullImages.unshown(key, c);
    if (written?.digest === digest) {
      pending.set(key, written.generation);
      continue;
    }
    if (c !== undefined && memos.cachedDigest(c) === digest) continue;
    writes.push({ kind: 'prePullImage', key, desired: d, digest });
  }
  return { writes, pending, shadowed };
}

/** The planner's key of a desired PrePullImage whose name is still taken by the one being deleted. */
export function successorKey(key: string): string {
  return `${key} (successor)`;
}

/**
 * The reference an image is planned under (finding 20 of the review): fully qualified, `:latest` when neither tag
 * nor digest is given, so `nginx`, `nginx:latest` and `docker.io/library/nginx:latest` are one entry per node. The
 * runtime pulls the same thing from it as from the user's spelling. A reference that does not parse (the CRD's rule
 * should have refused it) is planned as written, so the agent reports why it fails.
 */
export function planningReference(image: string): string {
  const r = parseImageRef(image);
  if (!r.ok) return image;
  return formatFullyQualified(r.ref.tag === undefined && r.ref.digest === undefined ? { ...r.ref, tag: 'latest' } : r.ref);
}

type RawTarget = { readonly target: Omit<ImageTarget, 'pullSecrets'>; readonly secretRefs: string[] };

/** Derived images as desired now (not as cached), plus hand-written ones, those kept as cached, and purges. */
function targetsOf(input: SpecInput): { raw: RawTarget[]; purgeDueAtMs: number | undefined } {
  const { desired, cached, memos, roundOf, keptAsCached } = input;
  const out: RawTarget[] = [];
  let purgeDueAtMs: number | undefined;
  for (const [key, d] of desired) {
    const c = cached.get(key);
    if (c !== undefined && !isManaged(c)) continue;
    // A derived one being deleted is purged (below) or simply goes, and it is written again once it is gone. Its
    // successor (the workload re-created: `kubectl replace --force`, helm uninstall + install) is wanted now, so
    // it is a target already, under a key of its own: its image stays in spec.images and the agents answer the
    // old one's removal with Kept/Wanted instead of removing the image under the new pods (finding 14).
    const successor = c !== undefined && c.metadata.deletionTimestamp !== undefined;
    const round = roundOf(key);
    out.push(memos.rawTarget(d, c, round, () => ({
      target: {
        key: successor ? successorKey(key) : key, namespace: d.namespace, name: d.name, image: memos.reference(d.spec.image), imageDigest: undefined,
        nodeNames: undefined, nodeSelector: d.spec.nodes.selector, placement: d.placement, targeting: memos.targeting(d.spec.nodes),
        retry: d.spec.retry, timeout: d.spec.timeout, round,
        ...(d.spec.gateNewNodes === true ? { gatesNodes: true } : {}),
        ...(c?.metadata.creationTimestamp !== undefined ? { createdAt: c.metadata.creationTimestamp } : {}),
      },
      secretRefs: d.spec.imagePullSecrets.map((r) => secretKey(d.namespace, r.name)),
    })));
  }
  for (const [key, p] of cached) {
    const deleting = p.metadata.deletionTimestamp !== undefined;
    const settleEnd = deleting && hasPurgeFinalizer(p) ? purgeStartMs(p, input.nowMs) : undefined;
    if (settleEnd !== undefined) purgeDueAtMs = Math.min(purgeDueAtMs ?? settleEnd, settleEnd);
    // Removal: state Absent, or deleted while holding the purge finalizer (derived ones too) and settled.
    const purge = deleting ? hasPurgeFinalizer(p) && settleEnd === undefined : !isManaged(p) && p.spec.state === 'Absent';
    if (!purge && settleEnd === undefined && !keptAsCached(key, p) && (isManaged(p) || deleting)) continue;
    const ns = p.metadata.namespace ?? '';
    out.push({
      target: {
        key, namespace: ns, name: p.metadata.name ?? '', image: memos.reference(p.spec.image), imageDigest: p.spec.imageDigest,
        nodeNames: p.spec.nodes.names, nodeSelector: p.spec.nodes.selector, placement: undefined, targeting: memos.targeting(p.spec.nodes),
        retry: p.spec.retry, timeout: p.spec.timeout, round: roundOf(key),
        ...(purge ? { purge: true } : p.spec.gateNewNodes ? { gatesNodes: true } : {}),
        ...(p.metadata.creationTimestamp !== undefined ? { createdAt: p.metadata.creationTimestamp } : {}),
      },
      // Nothing is pulled for a purge: its secrets need no copies.
      secretRefs: purge ? [] : (p.spec.imagePullSecrets ?? []).map((r) => secretKey(ns, r.name)),
    });
  }
  return { raw: out, purgeDueAtMs };
}

/** While a deleted PrePullImage settles (PURGE_SETTLE_MS), when its purge may start; undefined once it may. */
function purgeStartMs(p: PrePullImage, nowMs: number | undefined): number | undefined {
  const deletedAt = Date.parse(p.metadata.deletionTimestamp ?? '');
  if (nowMs === undefined || Number.isNaN(deletedAt)) return undefined;
  const start = deletedAt + PURGE_SETTLE_MS;
  return nowMs < start ? start : undefined;
}

/** The purge finalizer on hand-written PrePullImages (derived ones carry it in their applied object). */
function purgeFinalizerWrites(cached: ReadonlyMap<string, PrePullImage>): Write[] {
  const out: Write[] = [];
  for (const p of cached.values()) {
    if (isManaged(p) || p.metadata.deletionTimestamp !== undefined) continue;
    const has = hasPurgeFinalizer(p);
    if (p.spec.purgeOnDelete !== has) out.push({ kind: 'purgeFinalizer', ppi: p, add: p.spec.purgeOnDelete });
  }
  return out;
}

/** Pull secret copies as last written, by name. */
function copiesAsWritten(input: SpecInput): Map<string, SecretView> {
  const copies = new Map<string, SecretView>();
  for (const c of input.secretCopies.values()) {
    const v = input.overlays.secretCopy(c.name, c);
    if (v !== undefined) copies.set(c.name, v);
  }
  for (const [name, v] of input.overlays.secretCopies.entries()) if (v !== 'deleted' && !copies.has(name)) copies.set(name, v);
  return copies;
}

/** NodeImageSets as last written, by name. */
export function nodeImageSetsAsWritten(cache: CacheView<NodeImageSetView>, overlays: Overlays): Map<string, NodeImageSetView> {
  const current = new Map<string, NodeImageSetView>();
  const names = new Set<string>();
  for (const v of cache.values()) names.add(v.name);
  for (const name of overlays.nodeImageSets.keys()) names.add(name);
  for (const name of names) {
    const v = overlays.nodeImageSet(name, cache.get(name));
    if (v !== undefined) current.set(name, v);
  }
  return current;
}

export function planSpecs(input: SpecInput): SpecPlan {
  const ppis = prePullImageWrites(input);
  const { raw, purgeDueAtMs } = targetsOf(input);
  const secrets = planSecretCopies(raw.flatMap((t) => t.secretRefs), input.sourceSecret, copiesAsWritten(input));
  const targets: ImageTarget[] = raw.map(({ target, secretRefs }) => input.memos.target(target, secretRefs.flatMap((r) => secrets.copyNames.get(r) ?? [])));
  input.memos.endPass();
  const current = nodeImageSetsAsWritten(input.nodeImageSets, input.overlays);
  const nodePlan = planNodeImageSets({
    targets,
    nodes: input.nodes,
    ...(input.warming !== undefined ? { warming: input.warming } : {}),
    current,
    clusterPullBudget: input.clusterPullBudget,
    maxPullsPerNode: input.maxPullsPerNode,
    ...(input.maxImagesPerNamespace !== undefined ? { maxImagesPerNamespace: input.maxImagesPerNamespace } : {}),
    ...(input.uncappedNamespace !== undefined ? { uncappedNamespace: input.uncappedNamespace } : {}),
    ...(input.namespaceLimits !== undefined ? { namespaceLimits: input.namespaceLimits } : {}),
    memo: input.memos.plan,
    ...(input.agents !== undefined ? { agents: input.agents } : {}),
  });
  const nodeImageSets: Write[] = [];
  for (const [name, planned] of nodePlan.nodeImageSets) {
    if (input.sourcesListing === true && input.warming?.has(name) === true && planned.spec.gatingImages === undefined) continue;
    const cur = current.get(name);
    if (cur === undefined || cur.specDigest !== planned.digest) nodeImageSets.push({ kind: 'nodeImageSet', planned, current: cur });
  }
  return {
    writes: [
      { writes: secrets.apply.map((copy): Write => ({ kind: 'secretCopy', copy })) },
      { writes: ppis.writes },
      { writes: purgeFinalizerWrites(input.cached) },
      { writes: nodeImageSets },
    ],
    pendingGenerations: ppis.pending,
    shadowed: ppis.shadowed,
    targets,
    secretRefs: new Map(raw.map((t) => [t.target.key, t.secretRefs])),
    secrets,
    current,
    nodePlan,
    purgeDueAtMs,
  };
}

/**
 * Stage D: derived PrePullImages nothing wants any more, then pull secret copies nothing references. Last,
 * so nothing written before still needs them.
 */
export function planDeletes(sets: PrePullImageSets, overlays: Overlays, secrets: SecretPlan): WritePlan {
  const deletes: Write[] = [];
  for (const [key, p] of sets.cached) {
    if (!isManaged(p) || sets.desired.has(key) || p.metadata.deletionTimestamp !== undefined) continue;
    if (overlays.deletions.unshown(key, p) !== undefined || sets.keptAsCached(key, p)) continue;
    deletes.push({ kind: 'deletePrePullImage', key, ppi: p });
  }
  return [
    { writes: deletes },
    { writes: secrets.remove.map((name): Write => ({ kind: 'deleteSecretCopy', name })) },
  ];
}
