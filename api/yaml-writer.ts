// A deterministic YAML writer for JSON values (the generated CRDs). Keys keep insertion order; strings
// are quoted whenever a YAML 1.1 reader (go-yaml, as kubectl uses) could take them for anything else.
import type { Json } from './schema.ts';

// Words YAML 1.1 reads as booleans or null; go-yaml still honours them.
const RESERVED = new Set(['true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null', '~']);
const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./-]*(?: [A-Za-z0-9_./-]+)*$/;

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function scalar(value: string | number | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (PLAIN.test(value) && !RESERVED.has(value.toLowerCase())) return value;
  // Single quotes need no backslash escapes, which keeps regular expressions in CEL rules readable.
  if (!hasControlCharacter(value)) return `'${value.replaceAll("'", "''")}'`;
  return JSON.stringify(value);
}

function isObject(value: Json): value is { readonly [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isArray(value: Json): value is readonly Json[] {
  return Array.isArray(value);
}

function emptyCollection(value: Json): string | undefined {
  if (isArray(value) && value.length === 0) return '[]';
  if (isObject(value) && Object.keys(value).length === 0) return '{}';
  return undefined;
}

function block(value: Json, indent: string, lines: string[]): void {
  if (isArray(value)) {
    for (const item of value) {
      const empty = emptyCollection(item);
      if (empty !== undefined) {
        lines.push(`${indent}- ${empty}`);
      } else if (isObject(item)) {
        // The first key shares the dash's line; the rest align under it.
        const inner: string[] = [];
        block(item, `${indent}  `, inner);
        const first = inner[0] ?? '';
        lines.push(`${indent}- ${first.slice(indent.length + 2)}`, ...inner.slice(1));
      } else if (isArray(item)) {
        lines.push(`${indent}-`);
        block(item, `${indent}  `, lines);
      } else {
        lines.push(`${indent}- ${scalar(item)}`);
      }
    }
    return;
  }
  if (isObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      const k = scalar(key);
      const empty = emptyCollection(v);
      if (empty !== undefined) lines.push(`${indent}${k}: ${empty}`);
      else if (isArray(v)) {
        lines.push(`${indent}${k}:`);
        block(v, indent, lines);
      } else if (isObject(v)) {
        lines.push(`${indent}${k}:`);
        block(v, `${indent}  `, lines);
      } else {
        lines.push(`${indent}${k}: ${scalar(v)}`);
      }
    }
    return;
  }
  lines.push(`${indent}${scalar(value)}`);
}

/** One YAML document (no leading `---`), ending with a newline. */
export function toYaml(value: Json): string {
  const empty = emptyCollection(value);
  if (empty !== undefined) return `${empty}\n`;
  const lines: string[] = [];
  block(value, '', lines);
  return `${lines.join('\n')}\n`;
}
