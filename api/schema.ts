// A small typed schema builder: each node knows its TypeScript type, emits its OpenAPI v3 structural
// schema fragment for a CRD, and decodes untrusted values at the API edge. The CRDs, the types and the
// decoders all come from the same nodes, so they cannot disagree.

import { isDeepStrictEqual } from 'node:util';

/** A JSON value as it appears in a CRD or on the wire. */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
export interface JsonObject { [key: string]: Json }

/** How a property sits in its parent object: must be there, may be absent, or is filled in by the API server. */
export type Presence = 'required' | 'optional' | 'defaulted';

export type RuleReason = 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';

/** A CEL rule emitted as `x-kubernetes-validations`. */
export interface ValidationRule<T> {
  rule: string;
  message: string;
  /** Relative to the node carrying the rule, e.g. `.imageDigest`. */
  fieldPath?: string;
  reason?: RuleReason;
  /**
   * The same check in TypeScript, so `decode` reports it too. Optional: transition rules and rules
   * that need CEL libraries stay server-side only.
   */
  check?: (value: T) => boolean;
}

export type ListType = 'atomic' | 'set' | { map: readonly [string, ...string[]] };

interface StringDef { kind: 'string'; minLength?: number; maxLength?: number; pattern?: string; format?: 'date-time'; values?: readonly string[] }
interface IntegerDef { kind: 'integer'; minimum?: number; maximum?: number; format?: 'int32' | 'int64' }
interface BooleanDef { kind: 'boolean' }
interface IntOrStringDef { kind: 'int-or-string'; pattern?: string; maxLength?: number }
interface ArrayDef { kind: 'array'; items: AnySchema; minItems?: number; maxItems?: number; listType: ListType }
interface MapDef { kind: 'map'; values: AnySchema; minProperties?: number; maxProperties?: number }
interface ObjectDef { kind: 'object'; shape: Shape; preserveUnknownFields: boolean; mapType?: 'granular' | 'atomic' }

export type Def = StringDef | IntegerDef | BooleanDef | IntOrStringDef | ArrayDef | MapDef | ObjectDef;

interface Common {
  description?: string;
  defaultValue?: Json;
  nullable: boolean;
  // Rules are checked against the decoded value; the element type is erased here and restored by the builders.
  rules: readonly ValidationRule<never>[];
  presence: Presence;
}

/**
 * One schema node. `Out` is the decoded type (what the API server returns, defaults filled in), `In`
 * the type a writer may send (defaulted fields optional), `P` how the node sits in its parent object.
 */
export class Schema<Out, In = Out, P extends Presence = 'required'> {
  declare readonly _out: Out;
  declare readonly _in: In;
  declare readonly _presence: P;
  readonly def: Def;
  readonly common: Common;

  constructor(def: Def, common: Common) {
    this.def = def;
    this.common = common;
  }

  describe(description: string): Schema<Out, In, P> {
    return new Schema(this.def, { ...this.common, description });
  }

  /** The property may be absent; the decoded type marks it optional. */
  optional(): Schema<Out, In, 'optional'> {
    return new Schema(this.def, { ...this.common, presence: 'optional' });
  }

  /** The API server fills the property in when absent (and so does `decode`). */
  default(value: In & Json): Schema<Out, In, 'defaulted'> {
    return new Schema(this.def, { ...this.common, presence: 'defaulted', defaultValue: value });
  }

  /** Explicit `null` is kept instead of being pruned like an absent field. */
  nullable(): Schema<Out | null, In | null, P> {
    return new Schema(this.def, { ...this.common, nullable: true });
  }

  validate(...rules: ValidationRule<Out>[]): Schema<Out, In, P> {
    return new Schema(this.def, { ...this.common, rules: [...this.common.rules, ...(rules as ValidationRule<never>[])] });
  }
}

// Method parameters are bivariant, so every concrete schema is assignable to this.
export type AnySchema = Schema<unknown, unknown, Presence>;
export type Shape = Readonly<Record<string, AnySchema>>;

/** The decoded type of a schema: what `decode` returns and the API server serves. */
export type Infer<S extends AnySchema> = S['_out'];
/** The type a writer may send: fields the API server defaults are optional. */
export type Input<S extends AnySchema> = S['_in'];

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type KeysWith<S extends Shape, P extends Presence> = { [K in keyof S]: S[K]['_presence'] extends P ? K : never }[keyof S];

export type ObjectOut<S extends Shape> = Simplify<
  { [K in Exclude<keyof S, KeysWith<S, 'optional'>>]: S[K]['_out'] } & { [K in KeysWith<S, 'optional'>]?: S[K]['_out'] }
>;
export type ObjectIn<S extends Shape> = Simplify<
  { [K in KeysWith<S, 'required'>]: S[K]['_in'] } & { [K in Exclude<keyof S, KeysWith<S, 'required'>>]?: S[K]['_in'] }
>;

function common(description: string | undefined): Common {
  return description === undefined ? { nullable: false, rules: [], presence: 'required' } : { description, nullable: false, rules: [], presence: 'required' };
}

// Builders. Options objects keep each constraint next to the node it bounds.

export interface StringOptions { description?: string; minLength?: number; maxLength?: number; pattern?: string }

export function string(opts: StringOptions = {}): Schema<string> {
  const { description, ...def } = opts;
  return new Schema({ kind: 'string', ...def }, common(description));
}

/** An RFC 3339 timestamp, as metav1.Time serialises. */
export function dateTime(opts: { description?: string } = {}): Schema<string> {
  return new Schema({ kind: 'string', format: 'date-time' }, common(opts.description));
}

export function enumeration<const V extends readonly [string, ...string[]]>(values: V, opts: { description?: string } = {}): Schema<V[number]> {
  return new Schema({ kind: 'string', values }, common(opts.description));
}

export interface IntegerOptions { description?: string; minimum?: number; maximum?: number; format?: 'int32' | 'int64' }

export function integer(opts: IntegerOptions = {}): Schema<number> {
  const { description, ...def } = opts;
  return new Schema({ kind: 'integer', ...def }, common(description));
}

export function boolean(opts: { description?: string } = {}): Schema<boolean> {
  return new Schema({ kind: 'boolean' }, common(opts.description));
}

/** An integer or a string, like resource.Quantity (`x-kubernetes-int-or-string`). */
export function intOrString(opts: { description?: string; pattern?: string; maxLength?: number } = {}): Schema<number | string> {
  const { description, ...def } = opts;
  return new Schema({ kind: 'int-or-string', ...def }, common(description));
}

export interface ArrayOptions { description?: string; minItems?: number; maxItems?: number; listType?: ListType }

export function array<I extends AnySchema>(items: I, opts: ArrayOptions = {}): Schema<Infer<I>[], Input<I>[]> {
  const { description, listType, ...def } = opts;
  return new Schema({ kind: 'array', items, listType: listType ?? 'atomic', ...def }, common(description));
}

export interface MapOptions { description?: string; minProperties?: number; maxProperties?: number }

/** An object with arbitrary keys and uniform values (`additionalProperties`). */
export function map<V extends AnySchema>(values: V, opts: MapOptions = {}): Schema<Record<string, Infer<V>>, Record<string, Input<V>>> {
  const { description, ...def } = opts;
  return new Schema({ kind: 'map', values, ...def }, common(description));
}

export interface ObjectOptions { description?: string; preserveUnknownFields?: boolean; mapType?: 'granular' | 'atomic' }

export function object<S extends Shape>(shape: S, opts: ObjectOptions = {}): Schema<ObjectOut<S>, ObjectIn<S>> {
  const def: ObjectDef = { kind: 'object', shape, preserveUnknownFields: opts.preserveUnknownFields ?? false };
  if (opts.mapType !== undefined) def.mapType = opts.mapType;
  return new Schema(def, common(opts.description));
}

// ---------------------------------------------------------------------------------------------
// OpenAPI v3 emission (structural schema, as apiextensions.k8s.io/v1 expects it).

function listTypeFields(listType: ListType): JsonObject {
  if (listType === 'atomic') return { 'x-kubernetes-list-type': 'atomic' };
  if (listType === 'set') return { 'x-kubernetes-list-type': 'set' };
  return { 'x-kubernetes-list-map-keys': [...listType.map], 'x-kubernetes-list-type': 'map' };
}

/** The schema fragment of a node, keys in a fixed order so the generated YAML is stable. */
export function toOpenAPI(schema: AnySchema): JsonObject {
  const { def } = schema;
  const c = schema.common;
  const out: JsonObject = {};
  if (c.description !== undefined) out.description = c.description;
  switch (def.kind) {
    case 'string':
      out.type = 'string';
      if (def.format !== undefined) out.format = def.format;
      if (def.values !== undefined) out.enum = [...def.values];
      break;
    case 'integer':
      out.type = 'integer';
      if (def.format !== undefined) out.format = def.format;
      break;
    case 'boolean':
      out.type = 'boolean';
      break;
    case 'int-or-string':
      out.anyOf = [{ type: 'integer' }, { type: 'string' }];
      break;
    case 'array':
    case 'map':
    case 'object':
      out.type = def.kind === 'array' ? 'array' : 'object';
      break;
    default:
      return assertNever(def);
  }
  if (c.defaultValue !== undefined) out.default = c.defaultValue;
  if (c.nullable) out.nullable = true;
  switch (def.kind) {
    case 'string':
      if (def.minLength !== undefined) out.minLength = def.minLength;
      if (def.maxLength !== undefined) out.maxLength = def.maxLength;
      if (def.pattern !== undefined) out.pattern = def.pattern;
      break;
    case 'integer':
      if (def.minimum !== undefined) out.minimum = def.minimum;
      if (def.maximum !== undefined) out.maximum = def.maximum;
      break;
    case 'int-or-string':
      if (def.maxLength !== undefined) out.maxLength = def.maxLength;
      if (def.pattern !== undefined) out.pattern = def.pattern;
      out['x-kubernetes-int-or-string'] = true;
      break;
    case 'array':
      if (def.minItems !== undefined) out.minItems = def.minItems;
      if (def.maxItems !== undefined) out.maxItems = def.maxItems;
      out.items = toOpenAPI(def.items);
      Object.assign(out, listTypeFields(def.listType));
      break;
    case 'map':
      if (def.minProperties !== undefined) out.minProperties = def.minProperties;
      if (def.maxProperties !== undefined) out.maxProperties = def.maxProperties;
      out.additionalProperties = toOpenAPI(def.values);
      break;
    case 'object': {
      const properties: JsonObject = {};
      const required: string[] = [];
      for (const [key, child] of Object.entries(def.shape)) {
        properties[key] = toOpenAPI(child);
        if (child.common.presence === 'required') required.push(key);
      }
      out.properties = properties;
      if (required.length > 0) out.required = required;
      if (def.mapType !== undefined) out['x-kubernetes-map-type'] = def.mapType;
      if (def.preserveUnknownFields) out['x-kubernetes-preserve-unknown-fields'] = true;
      break;
    }
    case 'boolean':
      break;
    default:
      return assertNever(def);
  }
  if (c.rules.length > 0) {
    out['x-kubernetes-validations'] = c.rules.map((r) => {
      const rule: JsonObject = { rule: r.rule, message: r.message };
      if (r.fieldPath !== undefined) rule.fieldPath = r.fieldPath;
      if (r.reason !== undefined) rule.reason = r.reason;
      return rule;
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding: check an untrusted value against a schema once, at the edge.

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

/**
 * Checks types, required fields, enums, bounds, list uniqueness and the rules that carry a TypeScript
 * `check`; fills in defaults and drops unknown fields, as the API server does. Errors name the JSON path.
 */
export function decode<S extends AnySchema>(schema: S, value: unknown): DecodeResult<Infer<S>> {
  const errors: string[] = [];
  const decoded = decodeNode(schema, value, '', errors);
  // decodeNode has checked every constraint the type expresses; an error-free result has type Infer<S>.
  return errors.length === 0 ? { ok: true, value: decoded as Infer<S> } : { ok: false, errors };
}

/**
 * The inverse of defaulting: `value` (as `decode` returns it) without the properties that equal what the API
 * server would fill in for them, inner objects and list items first, so a writer need not own them. Decoding
 * the result gives `value` back. Only for objects this schema describes; other values come back unchanged.
 */
export function withoutDefaults(schema: AnySchema, value: unknown): unknown {
  const def = schema.def;
  if (def.kind === 'array' && Array.isArray(value)) return value.map((x) => withoutDefaults(def.items, x));
  if (def.kind !== 'object' || !isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const prop = def.shape[key];
    const lean = prop === undefined ? v : withoutDefaults(prop, v);
    const fallback = prop?.common.defaultValue;
    if (prop?.common.presence === 'defaulted' && fallback !== undefined && isDeepStrictEqual(lean, withoutDefaults(prop, fallback))) continue;
    out[key] = lean;
  }
  return out;
}

function at(path: string): string {
  return path === '' ? '<root>' : path;
}

const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function child(path: string, key: string): string {
  if (SIMPLE_KEY.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

/** A rule's fieldPath (`.spec.x`, `['a.b']`) appended to the path of the node carrying the rule. */
function joinFieldPath(path: string, fieldPath: string | undefined): string {
  if (fieldPath === undefined) return path;
  return path === '' ? fieldPath.replace(/^[.]/u, '') : path + fieldPath;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Runes, not UTF-16 units, as Kubernetes counts string length. */
function runeLength(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

const patternCache = new Map<string, RegExp>();
function compiled(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, 'u');
    patternCache.set(pattern, re);
  }
  return re;
}

function checkString(def: { minLength?: number; maxLength?: number; pattern?: string }, value: string, path: string, errors: string[]): void {
  const length = runeLength(value);
  if (def.minLength !== undefined && length < def.minLength) {
    errors.push(`${at(path)}: must be at least ${def.minLength} characters long`);
  }
  if (def.maxLength !== undefined && length > def.maxLength) {
    errors.push(`${at(path)}: must be at most ${def.maxLength} characters long, got ${length}`);
  }
  if (def.pattern !== undefined && !compiled(def.pattern).test(value)) {
    errors.push(`${at(path)}: must match ${def.pattern}`);
  }
}

function decodeNode(schema: AnySchema, value: unknown, path: string, errors: string[]): unknown {
  if (value === null && schema.common.nullable) return null;
  const before = errors.length;
  const decoded = decodeValue(schema.def, value, path, errors);
  if (errors.length === before) {
    for (const rule of schema.common.rules) {
      const check = rule.check as ((v: unknown) => boolean) | undefined;
      if (check !== undefined && !check(decoded)) errors.push(`${at(joinFieldPath(path, rule.fieldPath))}: ${rule.message}`);
    }
  }
  return decoded;
}

function decodeValue(def: Def, value: unknown, path: string, errors: string[]): unknown {
  switch (def.kind) {
    case 'string': {
      if (typeof value !== 'string') {
        errors.push(`${at(path)}: must be a string, got ${describeValue(value)}`);
        return value;
      }
      if (def.values !== undefined && !def.values.includes(value)) {
        errors.push(`${at(path)}: must be one of ${def.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(value)}`);
      }
      if (def.format === 'date-time' && !RFC3339.test(value)) {
        errors.push(`${at(path)}: must be an RFC 3339 date-time, got ${JSON.stringify(value)}`);
      }
      checkString(def, value, path, errors);
      return value;
    }
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        errors.push(`${at(path)}: must be an integer, got ${describeValue(value)}`);
        return value;
      }
      if (def.minimum !== undefined && value < def.minimum) errors.push(`${at(path)}: must be at least ${def.minimum}, got ${value}`);
      if (def.maximum !== undefined && value > def.maximum) errors.push(`${at(path)}: must be at most ${def.maximum}, got ${value}`);
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(`${at(path)}: must be a boolean, got ${describeValue(value)}`);
      return value;
    case 'int-or-string':
      if (typeof value === 'number' && Number.isInteger(value)) return value;
      if (typeof value === 'string') {
        checkString(def, value, path, errors);
        return value;
      }
      errors.push(`${at(path)}: must be an integer or a string, got ${describeValue(value)}`);
      return value;
    case 'array':
      return decodeArray(def, value, path, errors);
    case 'map': {
      if (!isRecord(value)) {
        errors.push(`${at(path)}: must be an object, got ${describeValue(value)}`);
        return value;
      }
      const keys = Object.keys(value);
      if (def.minProperties !== undefined && keys.length < def.minProperties) {
        errors.push(`${at(path)}: must have at least ${def.minProperties} entries`);
      }
      if (def.maxProperties !== undefined && keys.length > def.maxProperties) {
        errors.push(`${at(path)}: must have at most ${def.maxProperties} entries, got ${keys.length}`);
        return value;
      }
      const out: Record<string, unknown> = {};
      for (const key of keys) {
        const v = value[key];
        if (v === null && !def.values.common.nullable) continue;
        out[key] = decodeNode(def.values, v, child(path, key), errors);
      }
      return out;
    }
    case 'object':
      return decodeObject(def, value, path, errors);
    default:
      return assertNever(def);
  }
}

function decodeArray(def: ArrayDef, value: unknown, path: string, errors: string[]): unknown {
  if (!Array.isArray(value)) {
    errors.push(`${at(path)}: must be an array, got ${describeValue(value)}`);
    return value;
  }
  const items: readonly unknown[] = value;
  if (def.minItems !== undefined && items.length < def.minItems) {
    errors.push(`${at(path)}: must have at least ${def.minItems} items, got ${items.length}`);
  }
  if (def.maxItems !== undefined && items.length > def.maxItems) {
    // Decoding thousands of items only to report them all is wasted work; the bound is the error.
    errors.push(`${at(path)}: must have at most ${def.maxItems} items, got ${items.length}`);
    return value;
  }
  const out = items.map((item, i) => decodeNode(def.items, item, `${path}[${i}]`, errors));
  const { listType } = def;
  if (listType === 'atomic') return out;
  const seen = new Map<string, number>();
  out.forEach((item, i) => {
    let identity: string;
    let shown: string;
    if (listType === 'set') {
      identity = JSON.stringify(item);
      shown = identity;
    } else {
      if (!isRecord(item)) return;
      const parts = listType.map.map((k) => [k, item[k]] as const);
      identity = JSON.stringify(parts);
      shown = parts.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
    }
    const first = seen.get(identity);
    if (first === undefined) seen.set(identity, i);
    else errors.push(`${path}[${i}]: duplicate of ${path}[${first}] (${shown})`);
  });
  return out;
}

function decodeObject(def: ObjectDef, value: unknown, path: string, errors: string[]): unknown {
  if (!isRecord(value)) {
    errors.push(`${at(path)}: must be an object, got ${describeValue(value)}`);
    return value;
  }
  // Unknown fields survive only where the schema preserves them; known ones are decoded below.
  const out: Record<string, unknown> = def.preserveUnknownFields
    ? Object.fromEntries(Object.entries(value).filter(([key]) => !Object.hasOwn(def.shape, key)))
    : {};
  for (const [key, field] of Object.entries(def.shape)) {
    let v = value[key];
    // The API server prunes null from fields that are not nullable, then defaults them.
    if (v === null && !field.common.nullable) v = undefined;
    if (v === undefined) {
      const { presence, defaultValue } = field.common;
      if (presence === 'required') {
        errors.push(`${child(path, key)}: required`);
        continue;
      }
      if (presence === 'optional' || defaultValue === undefined) continue;
      v = structuredClone(defaultValue);
    }
    out[key] = decodeNode(field, v, child(path, key), errors);
  }
  return out;
}

function assertNever(value: never): never {
  throw new Error(`unhandled schema node ${JSON.stringify(value)}`);
}

/** Every node of a schema tree with its path, parents first (for generators and tests). */
export function* walk(schema: AnySchema, path = ''): Generator<{ path: string; schema: AnySchema }> {
  yield { path, schema };
  const { def } = schema;
  switch (def.kind) {
    case 'array':
      yield* walk(def.items, `${path}[]`);
      break;
    case 'map':
      yield* walk(def.values, `${path}[*]`);
      break;
    case 'object':
      for (const [key, field] of Object.entries(def.shape)) yield* walk(field, path === '' ? key : `${path}.${key}`);
      break;
    case 'string':
    case 'integer':
    case 'boolean':
    case 'int-or-string':
      break;
    default:
      assertNever(def);
  }
}
