// What the benchmarks' simulated agents write: a status entry as a real agent reports a pulled image, so the
// NodeImageSets they write have their real size. Pure.
import { createHash } from 'node:crypto';

/** status.images[] for `image`, Completed in `round` at `now` (a metav1.Time), with id, digest and size. */
export function completedImageStatus(image: string, round: number, now: string): Record<string, unknown> {
  const hex = createHash('sha256').update(image).digest('hex');
  return {
    image, phase: 'Completed', round, attempts: 1, startedAt: now, finishedAt: now, lastVerifiedAt: now,
    imageId: `sha256:${hex}`, repoDigest: `${image.replace(/:[^:/]*$/u, '')}@sha256:${hex}`, sizeBytes: 28_000_000,
  };
}
