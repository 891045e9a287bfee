import { expect } from 'chai';
import * as s from '../../../api/schema.ts';
import { decode, toOpenAPI, withoutDefaults, type Infer, type Input } from '../../../api/schema.ts';

const widget = s.object({
  name: s.string({ minLength: 1, maxLength: 8, pattern: '^[a-z]+$' }),
  size: s.integer({ minimum: 1, maximum: 10 }).default(3),
  color: s.enumeration(['red', 'blue']).optional(),
  settings: s.object({
    enabled: s.boolean().default(true),
    limit: s.integer().default(5),
  }).default({}),
  tags: s.array(s.string({ maxLength: 10 }), { maxItems: 3, listType: 'set' }).default([]),
  parts: s.array(s.object({ id: s.string(), count: s.integer().optional() }), { maxItems: 5, listType: { map: ['id'] } }).optional(),
  labels: s.map(s.string(), { maxProperties: 2 }).optional(),
  quantity: s.intOrString({ pattern: '^[0-9]+(Mi)?$' }).optional(),
  note: s.string().nullable().optional(),
}).validate({
  rule: "!has(self.color) || self.color != 'red' || self.size < 5",
  message: 'red widgets are small',
  fieldPath: '.size',
  check: (w) => w.color !== 'red' || w.size < 5,
});

type Widget = Infer<typeof widget>;
type WidgetInput = Input<typeof widget>;

function errorsOf(value: unknown): string[] {
  const r = decode(widget, value);
  return r.ok ? [] : r.errors;
}

describe('api/schema decode', () => {
  it('fills defaults, nested ones included, and keeps absent optional fields absent', () => {
    const r = decode(widget, { name: 'a' });
    expect(r).to.deep.equal({
      ok: true,
      value: { name: 'a', size: 3, settings: { enabled: true, limit: 5 }, tags: [] },
    });
  });

  it('types decoded defaulted fields as present and optional ones as optional', () => {
    const r = decode(widget, { name: 'a', color: 'blue' });
    if (!r.ok) throw new Error(r.errors.join('; '));
    const w: Widget = r.value;
    const size: number = w.settings.limit + w.size;
    const color: 'red' | 'blue' | undefined = w.color;
    expect([size, color]).to.deep.equal([8, 'blue']);
    // A writer may leave out everything the API server defaults.
    const input: WidgetInput = { name: 'b' };
    expect(decode(widget, input).ok).to.equal(true);
  });

  it('names the path of a missing required field', () => {
    expect(errorsOf({})).to.deep.equal(['name: required']);
    expect(errorsOf({ name: 'a', parts: [{ count: 1 }] })).to.deep.equal(['parts[0].id: required']);
  });

  it('rejects wrong types with the JSON path', () => {
    expect(errorsOf({ name: 'a', size: '3' })).to.deep.equal(['size: must be an integer, got string']);
    expect(errorsOf({ name: 'a', size: 2.5 })).to.deep.equal(['size: must be an integer, got number']);
    expect(errorsOf({ name: 'a', settings: [] })).to.deep.equal(['settings: must be an object, got array']);
    expect(errorsOf({ name: 'a', settings: { enabled: 'yes' } })).to.deep.equal(['settings.enabled: must be a boolean, got string']);
    expect(errorsOf({ name: 'a', tags: 'x' })).to.deep.equal(['tags: must be an array, got string']);
    expect(errorsOf('widget')).to.deep.equal(['<root>: must be an object, got string']);
  });

  it('rejects values outside an enum', () => {
    expect(errorsOf({ name: 'a', color: 'green' })).to.deep.equal(['color: must be one of "red", "blue", got "green"']);
  });

  it('checks string, number, list and map bounds', () => {
    expect(errorsOf({ name: '' })).to.deep.equal(['name: must be at least 1 characters long', 'name: must match ^[a-z]+$']);
    expect(errorsOf({ name: 'abcdefghi' })).to.deep.equal(['name: must be at most 8 characters long, got 9']);
    expect(errorsOf({ name: 'A' })).to.deep.equal(['name: must match ^[a-z]+$']);
    expect(errorsOf({ name: 'a', size: 0 })).to.deep.equal(['size: must be at least 1, got 0']);
    expect(errorsOf({ name: 'a', size: 11 })).to.deep.equal(['size: must be at most 10, got 11']);
    expect(errorsOf({ name: 'a', tags: ['a', 'b', 'c', 'd'] })).to.deep.equal(['tags: must have at most 3 items, got 4']);
    expect(errorsOf({ name: 'a', labels: { a: 'x', b: 'y', c: 'z' } })).to.deep.equal(['labels: must have at most 2 entries, got 3']);
  });

  it('counts string length in characters, not UTF-16 units', () => {
    const emoji = s.string({ maxLength: 2 });
    expect(decode(emoji, '😀😀').ok).to.equal(true);
    expect(decode(emoji, '😀😀😀').ok).to.equal(false);
  });

  it('rejects duplicates in sets and in map-type lists', () => {
    expect(errorsOf({ name: 'a', tags: ['x', 'x'] })).to.deep.equal(['tags[1]: duplicate of tags[0] ("x")']);
    expect(errorsOf({ name: 'a', parts: [{ id: 'p' }, { id: 'q' }, { id: 'p', count: 2 }] }))
      .to.deep.equal(['parts[2]: duplicate of parts[0] (id="p")']);
  });

  it('quotes map keys that are not identifiers', () => {
    const labels = s.object({ labels: s.map(s.integer()) });
    const r = decode(labels, { labels: { 'kwarm.io/enabled': 'true' } });
    expect(r).to.deep.equal({ ok: false, errors: ['labels["kwarm.io/enabled"]: must be an integer, got string'] });
  });

  it('runs the TypeScript side of validation rules at their fieldPath', () => {
    expect(errorsOf({ name: 'a', color: 'red', size: 7 })).to.deep.equal(['size: red widgets are small']);
    expect(errorsOf({ name: 'a', color: 'red', size: 2 })).to.deep.equal([]);
  });

  it('skips rules of a node whose value is already invalid', () => {
    expect(errorsOf({ name: 'a', color: 'red', size: 70 })).to.deep.equal(['size: must be at most 10, got 70']);
  });

  it('prunes unknown fields and nulls of non-nullable fields, as the API server does', () => {
    const r = decode(widget, { name: 'a', extra: 1, size: null, settings: { enabled: false, other: 'x' }, note: null });
    expect(r).to.deep.equal({
      ok: true,
      value: { name: 'a', size: 3, settings: { enabled: false, limit: 5 }, tags: [], note: null },
    });
  });

  it('keeps unknown fields where the schema preserves them', () => {
    const open = s.object({ known: s.string().optional() }, { preserveUnknownFields: true });
    expect(decode(open, { known: 'k', other: { deep: 1 } })).to.deep.equal({ ok: true, value: { known: 'k', other: { deep: 1 } } });
  });

  it('accepts integers and patterned strings for int-or-string', () => {
    expect(decode(widget, { name: 'a', quantity: 64 }).ok).to.equal(true);
    expect(decode(widget, { name: 'a', quantity: '64Mi' }).ok).to.equal(true);
    expect(errorsOf({ name: 'a', quantity: '64 MB' })).to.deep.equal(['quantity: must match ^[0-9]+(Mi)?$']);
    expect(errorsOf({ name: 'a', quantity: true })).to.deep.equal(['quantity: must be an integer or a string, got boolean']);
  });

  it('checks RFC 3339 date-times', () => {
    const t = s.dateTime();
    expect(decode(t, '2024-05-01T10:00:00Z').ok).to.equal(true);
    expect(decode(t, '2024-05-01T10:00:00.123+02:00').ok).to.equal(true);
    expect(decode(t, 'yesterday').ok).to.equal(false);
  });

  it('does not share default objects between decoded values', () => {
    const a = decode(widget, { name: 'a' });
    const b = decode(widget, { name: 'b' });
    if (!a.ok || !b.ok) throw new Error('decode failed');
    a.value.tags.push('x');
    expect(b.value.tags).to.deep.equal([]);
    expect(widget.def.kind === 'object' && widget.def.shape.tags?.common.defaultValue).to.deep.equal([]);
  });
});

describe('api/schema toOpenAPI', () => {
  const emitted = toOpenAPI(widget);

  it('lists only fields without default or optional marker as required', () => {
    expect(emitted.required).to.deep.equal(['name']);
    expect(emitted.type).to.equal('object');
  });

  it('emits bounds, defaults, list types and validations', () => {
    const props = emitted.properties as Record<string, Record<string, unknown>>;
    expect(props.name).to.deep.equal({ type: 'string', minLength: 1, maxLength: 8, pattern: '^[a-z]+$' });
    expect(props.size).to.deep.equal({ type: 'integer', default: 3, minimum: 1, maximum: 10 });
    expect(props.color).to.deep.equal({ type: 'string', enum: ['red', 'blue'] });
    expect(props.tags).to.deep.equal({
      type: 'array', default: [], maxItems: 3, items: { type: 'string', maxLength: 10 }, 'x-kubernetes-list-type': 'set',
    });
    expect(props.parts?.['x-kubernetes-list-type']).to.equal('map');
    expect(props.parts?.['x-kubernetes-list-map-keys']).to.deep.equal(['id']);
    expect(props.labels).to.deep.equal({ type: 'object', maxProperties: 2, additionalProperties: { type: 'string' } });
    expect(props.quantity).to.deep.equal({
      anyOf: [{ type: 'integer' }, { type: 'string' }], pattern: '^[0-9]+(Mi)?$', 'x-kubernetes-int-or-string': true,
    });
    expect(props.note).to.deep.equal({ type: 'string', nullable: true });
    expect(emitted['x-kubernetes-validations']).to.deep.equal([
      { rule: "!has(self.color) || self.color != 'red' || self.size < 5", message: 'red widgets are small', fieldPath: '.size' },
    ]);
  });

  it('keeps descriptions given with describe() without changing the original node', () => {
    const base = s.string();
    const described = base.describe('A name.');
    expect(toOpenAPI(described)).to.deep.equal({ description: 'A name.', type: 'string' });
    expect(toOpenAPI(base)).to.deep.equal({ type: 'string' });
  });

  describe('withoutDefaults', () => {
    const decoded = (value: unknown): Widget => {
      const r = decode(widget, value);
      if (!r.ok) throw new Error(r.errors.join('; '));
      return r.value;
    };

    it('leaves out what defaulting would fill in, inner objects included, and decodes back to the same value', () => {
      const all = decoded({ name: 'a', parts: [{ id: 'x' }] });
      expect(withoutDefaults(widget, all)).to.deep.equal({ name: 'a', parts: [{ id: 'x' }] });
      expect(decoded(withoutDefaults(widget, all))).to.deep.equal(all);
    });

    it('keeps values that differ from the default, only the default parts of an inner object going', () => {
      const some = decoded({ name: 'a', size: 4, settings: { limit: 7 }, tags: ['t'], color: 'blue', note: null });
      expect(withoutDefaults(widget, some)).to.deep.equal({ name: 'a', size: 4, settings: { limit: 7 }, tags: ['t'], color: 'blue', note: null });
      expect(decoded(withoutDefaults(widget, some))).to.deep.equal(some);
    });
  });
});
