// The benchmarks' `--name=value` flags. Pure apart from reading process.argv.

/** `--name=N` as a positive integer, or `fallback` when absent; anything else is refused. */
export function positiveIntArg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const n = hit === undefined ? fallback : Number(hit.slice(name.length + 3));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
}
