// Readers for raw JSON from the API server or a file, before it is decoded into a type: one home for the
// object guard and the field walkers every decoder uses. Each returns undefined (or empty) on a shape it
// does not expect, so a decoder states its own defaults.

export type RawObject = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export function isRecord(v: unknown): v is RawObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value at `path` inside nested objects, or undefined. */
export function field(v: unknown, ...path: string[]): unknown {
  let cur = v;
  for (const p of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The string-valued entries of an object (labels, annotations, Secret or ConfigMap data). */
export function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** The items of an array that `item` decodes; not an array gives []. */
export function list<T>(v: unknown, item: (x: unknown) => T | undefined): T[] {
  if (!Array.isArray(v)) return [];
  const out: T[] = [];
  for (const x of v as unknown[]) {
    const d = item(x);
    if (d !== undefined) out.push(d);
  }
  return out;
}

/** The strings of an array; undefined when not an array. */
export function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? (v as unknown[]).filter((x): x is string => typeof x === 'string') : undefined;
}

/**
 * The entries of `o` that are not undefined: optional fields of a decoded object, which
 * exactOptionalPropertyTypes forbids setting to undefined explicitly.
 */
export function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** Decoded projections are built in a fixed key order, so equal projections serialise equally. */
export function sameProjection(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
