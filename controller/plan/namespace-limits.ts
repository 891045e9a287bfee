// Finding 6 of the review: what one namespace can put on the nodes is bounded. A namespace's PrePullImages
// (hand-written or derived from its workloads and ConfigMaps) may want at most `max` distinct images; the
// images past the cap, latest created first, are not planned and their PrePullImages say so. kwarm's own
// namespace (where the policies' static images live, written by whoever may write policies) is not capped.
// Pure: no I/O, no clock.
import { compareAge, type SourceRefusal } from './entry-merge.ts';
import type { ImageTarget } from './target-groups.ts';

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
