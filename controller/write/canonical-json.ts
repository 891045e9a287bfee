// Stable JSON text for comparing what the controller wants with what the API server holds: object keys
// sorted, undefined dropped, so two equal values always give the same text whatever order they were built in.
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v: unknown) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** A short digest of canonical text; what caches keep instead of whole objects. */
export function digest(text: string): string {
  return createHash('sha1').update(text).digest('base64');
}

export function canonicalDigest(value: unknown): string {
  return digest(canonicalJson(value));
}
