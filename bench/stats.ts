// Summary statistics of benchmark samples. Pure: no I/O, no clock.

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** Nearest-rank 90th and 99th percentiles; with fewer than 100 samples p99 is the maximum. */
  p90: number;
  p99: number;
  mean: number;
}

function sorted(xs: readonly number[]): number[] {
  if (xs.length === 0) throw new Error('no samples');
  return [...xs].sort((a, b) => a - b);
}

export function median(xs: readonly number[]): number {
  const s = sorted(xs);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100): the smallest sample with at least p % of samples at or below it. */
export function percentile(xs: readonly number[], p: number): number {
  const s = sorted(xs);
  const rank = Math.max(1, Math.ceil((p * s.length) / 100));
  return s[Math.min(rank, s.length) - 1]!;
}

export function summarize(xs: readonly number[]): Summary {
  const s = sorted(xs);
  return {
    n: s.length,
    median: median(s),
    min: s[0]!,
    max: s[s.length - 1]!,
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** Pairwise differences a[i] - b[i] of two equally long series (e.g. two paths measured in the same run). */
export function pairedDifferences(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new Error(`paired series differ in length: ${a.length} vs ${b.length}`);
  return a.map((x, i) => x - b[i]!);
}
