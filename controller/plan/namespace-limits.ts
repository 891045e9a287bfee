// Finding 6 of the review: what one namespace can put on the nodes is bounded. A namespace's PrePullImages
// (hand-written or derived from its workloads and ConfigMaps) may want at most `max` distinct images; the
// images past the cap, latest created first, are not planned and their PrePullImages say so. kwarm's own
// namespace (where the policies' static images live, written by whoever may write policies) is not capped.
// Pure: no I/O, no clock.
import { compareAge, type SourceRefusal } from './entry-merge.ts';
import type { ImageTarget } from './target-groups.ts';

/** The per-namespace limits beyond --max-images-per-namespace (docs/decisions/0017). */
export interface NamespaceLimits {
  /**
   * --namespace-pull-share: the percentage of --max-concurrent-pulls one namespace may hold, however free the rest
   * is (rounded up, at least one pull); 100 or absent = all of it.
   */
  readonly pullSharePercent?: number;
  /**
   * --namespace-node-images-per-node: (node, image) pairs one namespace may want, as a multiple of the Ready nodes
   * (32: 32 images on every node, or 128 on a quarter of them); 0 or absent = no cap.
   */
  readonly nodeImagesPerNode?: number;
}

/** The most pulls one namespace may hold under `budget` (0 = unlimited). */
export function namespacePullCap(budget: number, limits: NamespaceLimits | undefined): number {
  const percent = limits?.pullSharePercent ?? 100;
  if (budget <= 0 || percent >= 100) return Number.POSITIVE_INFINITY;
  return Math.max(1, Math.ceil((budget * percent) / 100));
}

export function capImagesPerNamespace(
  targets: readonly ImageTarget[], max: number, exempt: string | undefined,
): { kept: ImageTarget[]; refused: Map<string, SourceRefusal> } {
  const refused = new Map<string, SourceRefusal>();
  if (max <= 0) return { kept: [...targets], refused };
  // Per namespace, its images in the order their first PrePullImage was created.
  const byNamespace = new Map<string, ImageTarget[]>();
  for (const t of targets) {
    if (t.purge === true || t.namespace === exempt) continue;
    const list = byNamespace.get(t.namespace);
    if (list === undefined) byNamespace.set(t.namespace, [t]);
    else list.push(t);
  }
  const over = new Set<string>();
  for (const [ns, list] of byNamespace) {
    const images = new Set<string>();
    for (const t of list.sort(compareAge)) {
      if (images.has(t.image)) continue;
      if (images.size < max) images.add(t.image);
      else over.add(`${ns}\n${t.image}`);
    }
  }
  if (over.size === 0) return { kept: [...targets], refused };
  const kept: ImageTarget[] = [];
  for (const t of targets) {
    if (t.purge !== true && over.has(`${t.namespace}\n${t.image}`)) {
      refused.set(t.key, {
        reason: 'NamespaceImageLimit',
        message: `namespace ${t.namespace} already wants ${max} other images (--max-images-per-namespace); ${t.image} is not planned until some of them go or an administrator raises the limit`,
        excluded: true,
      });
      continue;
    }
    kept.push(t);
  }
  return { kept, refused };
}

/**
 * --namespace-node-images-per-node: what one namespace puts on the nodes, counted as (node, image) pairs, is at most
 * `perNode` × the Ready nodes. Its images are taken in the order their first PrePullImage was created; from the
 * first one that would take it past the cap, its images are not planned (the latest created go first, as for
 * --max-images-per-namespace), and their PrePullImages say so. kwarm's own namespace is not capped.
 */
export function capNodeImagesPerNamespace(
  groups: readonly { readonly names: readonly string[]; readonly targets: readonly ImageTarget[] }[],
  perNode: number, readyNodes: number, exempt: string | undefined,
): Map<string, SourceRefusal> {
  const refused = new Map<string, SourceRefusal>();
  if (perNode <= 0) return refused;
  const cap = perNode * readyNodes;
  // namespace → its targets with the nodes each selects.
  const byNamespace = new Map<string, { t: ImageTarget; names: readonly string[] }[]>();
  for (const g of groups) {
    for (const t of g.targets) {
      if (t.purge === true || t.namespace === exempt) continue;
      const list = byNamespace.get(t.namespace);
      if (list === undefined) byNamespace.set(t.namespace, [{ t, names: g.names }]);
      else list.push({ t, names: g.names });
    }
  }
  for (const [ns, list] of byNamespace) {
    // image → the nodes any of the namespace's PrePullImages wants it on, in the order of the images' first source.
    const images = new Map<string, Set<string>>();
    for (const { t, names } of list.sort((a, b) => compareAge(a.t, b.t))) {
      let set = images.get(t.image);
      if (set === undefined) images.set(t.image, (set = new Set<string>()));
      for (const n of names) set.add(n);
    }
    let total = 0;
    const over = new Map<string, number>();
    for (const [image, set] of images) {
      if (over.size === 0 && total + set.size <= cap) total += set.size;
      else over.set(image, set.size);
    }
    if (over.size === 0) continue;
    for (const { t } of list) {
      const pairs = over.get(t.image);
      if (pairs === undefined) continue;
      refused.set(t.key, {
        reason: 'NamespaceNodeImageLimit',
        message: `namespace ${ns} already wants ${total} (node, image) pairs, and ${t.image} on ${pairs} more nodes would pass its cap of ${cap} (--namespace-node-images-per-node=${perNode} × ${readyNodes} Ready nodes); it is not planned until some of the namespace's images go, target fewer nodes, or an administrator raises the limit`,
        excluded: true,
      });
    }
  }
  return refused;
}
