import { expect } from 'chai';
import {
  compileLabelSelector,
  compiledSelectorMatches,
  isValidLabelKey,
  isValidLabelValue,
  labelSelectorOperators,
  matchesLabelSelector,
  nodeSelectorOperators,
  parseInt64,
  parseRequirement,
  requirementMatches,
  type LabelSelector,
  type LabelSet,
} from '../../../../controller/plan/label-selector.ts';

function requirement(key: string, operator: string, values?: string[]) {
  const parsed = parseRequirement(key, operator, values, nodeSelectorOperators);
  if (!parsed.ok) throw new Error(`fixture requirement is invalid: ${parsed.error}`);
  return parsed.value;
}

describe('controller/label-selector', () => {
  describe('requirementMatches', () => {
    const cases: { name: string; op: string; values?: string[]; labels: LabelSet; want: boolean }[] = [
      { name: 'In: value in set', op: 'In', values: ['a', 'b'], labels: { k: 'b' }, want: true },
      { name: 'In: value not in set', op: 'In', values: ['a', 'b'], labels: { k: 'c' }, want: false },
      { name: 'In: label missing', op: 'In', values: ['a'], labels: {}, want: false },
      { name: 'In: empty value needs the label present', op: 'In', values: [''], labels: { k: '' }, want: true },
      { name: 'In: empty value, label missing', op: 'In', values: [''], labels: {}, want: false },
      { name: 'NotIn: value not in set', op: 'NotIn', values: ['a'], labels: { k: 'b' }, want: true },
      { name: 'NotIn: value in set', op: 'NotIn', values: ['a', 'b'], labels: { k: 'a' }, want: false },
      { name: 'NotIn: label missing matches', op: 'NotIn', values: ['a'], labels: {}, want: true },
      { name: 'Exists: present', op: 'Exists', labels: { k: '' }, want: true },
      { name: 'Exists: missing', op: 'Exists', labels: { other: 'x' }, want: false },
      { name: 'DoesNotExist: missing', op: 'DoesNotExist', labels: { other: 'x' }, want: true },
      { name: 'DoesNotExist: present', op: 'DoesNotExist', labels: { k: 'x' }, want: false },
      { name: 'Gt: greater', op: 'Gt', values: ['4'], labels: { k: '5' }, want: true },
      { name: 'Gt: equal is not greater', op: 'Gt', values: ['5'], labels: { k: '5' }, want: false },
      { name: 'Gt: smaller', op: 'Gt', values: ['5'], labels: { k: '4' }, want: false },
      { name: 'Gt: leading zeros parse as decimal', op: 'Gt', values: ['6'], labels: { k: '007' }, want: true },
      { name: 'Gt: label missing', op: 'Gt', values: ['1'], labels: {}, want: false },
      { name: 'Gt: decimal label is not an integer', op: 'Gt', values: ['1'], labels: { k: '1.5' }, want: false },
      { name: 'Gt: word label is not an integer', op: 'Gt', values: ['1'], labels: { k: 'ten' }, want: false },
      { name: 'Gt: empty label is not an integer', op: 'Gt', values: ['0'], labels: { k: '' }, want: false },
      { name: 'Gt: hex label is not decimal', op: 'Gt', values: ['1'], labels: { k: '0x10' }, want: false },
      { name: 'Gt: beyond int64 is not an integer', op: 'Gt', values: ['1'], labels: { k: '9223372036854775808' }, want: false },
      { name: 'Gt: int64 max', op: 'Gt', values: ['1'], labels: { k: '9223372036854775807' }, want: true },
      // 2^53 + 1 vs 2^53: equal as JavaScript numbers, so this fails if compared as doubles.
      { name: 'Gt: exact above 2^53', op: 'Gt', values: ['9007199254740992'], labels: { k: '9007199254740993' }, want: true },
      { name: 'Lt: smaller', op: 'Lt', values: ['10'], labels: { k: '9' }, want: true },
      { name: 'Lt: equal is not smaller', op: 'Lt', values: ['10'], labels: { k: '10' }, want: false },
      { name: 'Lt: greater', op: 'Lt', values: ['10'], labels: { k: '11' }, want: false },
      { name: 'Lt: non-integer label', op: 'Lt', values: ['10'], labels: { k: '1e1' }, want: false },
      { name: 'Lt: label missing', op: 'Lt', values: ['10'], labels: {}, want: false },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(requirementMatches(requirement('k', c.op, c.values), c.labels)).to.equal(c.want);
      });
    }

    it('reads only own labels, not Object.prototype members', () => {
      expect(requirementMatches(requirement('constructor', 'Exists'), {})).to.equal(false);
      expect(requirementMatches(requirement('toString', 'DoesNotExist'), {})).to.equal(true);
    });
  });

  describe('parseRequirement', () => {
    const invalid: { name: string; key: string; op: string; values?: string[]; allowed?: typeof labelSelectorOperators }[] = [
      { name: 'In without values', key: 'k', op: 'In', values: [] },
      { name: 'NotIn with values omitted', key: 'k', op: 'NotIn' },
      { name: 'Exists with values', key: 'k', op: 'Exists', values: ['a'] },
      { name: 'DoesNotExist with values', key: 'k', op: 'DoesNotExist', values: ['a'] },
      { name: 'Gt with two values', key: 'k', op: 'Gt', values: ['1', '2'] },
      { name: 'Gt without a value', key: 'k', op: 'Gt', values: [] },
      { name: 'Gt with a decimal', key: 'k', op: 'Gt', values: ['1.5'] },
      { name: 'Lt with a word', key: 'k', op: 'Lt', values: ['five'] },
      // A label value must start with an alphanumeric, so negative bounds are invalid, as in Kubernetes.
      { name: 'Lt with a negative bound', key: 'k', op: 'Lt', values: ['-1'] },
      { name: 'unknown operator', key: 'k', op: 'Equals', values: ['a'] },
      { name: 'lower-case operator', key: 'k', op: 'in', values: ['a'] },
      { name: 'Gt in a plain label selector', key: 'k', op: 'Gt', values: ['1'], allowed: labelSelectorOperators },
      { name: 'invalid key', key: 'bad key', op: 'Exists' },
      { name: 'invalid value', key: 'k', op: 'In', values: ['no spaces'] },
    ];
    for (const c of invalid) {
      it(`rejects ${c.name}`, () => {
        const parsed = parseRequirement(c.key, c.op, c.values, c.allowed ?? nodeSelectorOperators);
        expect(parsed.ok).to.equal(false);
        if (!parsed.ok) expect(parsed.error).to.include(JSON.stringify(c.key));
      });
    }

    it('accepts every node selector operator in its valid form', () => {
      const ok = [
        parseRequirement('k', 'In', ['a'], nodeSelectorOperators),
        parseRequirement('k', 'NotIn', ['a', 'b'], nodeSelectorOperators),
        parseRequirement('k', 'Exists', undefined, nodeSelectorOperators),
        parseRequirement('k', 'DoesNotExist', [], nodeSelectorOperators),
        parseRequirement('k', 'Gt', ['0'], nodeSelectorOperators),
        parseRequirement('k', 'Lt', ['42'], nodeSelectorOperators),
      ];
      expect(ok.map((p) => p.ok)).to.deep.equal([true, true, true, true, true, true]);
    });
  });

  describe('label syntax', () => {
    const keys: [string, boolean][] = [
      ['app', true],
      ['kubernetes.io/os', true],
      ['node-role.kubernetes.io/control-plane', true],
      ['a_b.c-d', true],
      ['x'.repeat(63), true],
      ['x'.repeat(64), false],
      ['', false],
      ['/name', false],
      ['a/b/c', false],
      ['Upper.Case/name', false],
      ['-leading', false],
      ['trailing-', false],
      ['has space', false],
    ];
    for (const [key, valid] of keys) {
      it(`label key ${JSON.stringify(key.length > 20 ? `${key.slice(0, 10)}…(${key.length})` : key)} is ${valid ? 'valid' : 'invalid'}`, () => {
        expect(isValidLabelKey(key)).to.equal(valid);
      });
    }
    it('label values: empty and alphanumeric-bounded are valid, others not', () => {
      expect(['', 'a', 'a.b-c_d', 'v'.repeat(63)].map(isValidLabelValue)).to.deep.equal([true, true, true, true]);
      expect(['-a', 'a-', 'a b', 'v'.repeat(64)].map(isValidLabelValue)).to.deep.equal([false, false, false, false]);
    });
    it('parseInt64 follows strconv.ParseInt base 10', () => {
      expect(parseInt64('+12')).to.equal(12n);
      expect(parseInt64('-9223372036854775808')).to.equal(-(2n ** 63n));
      expect(parseInt64('-9223372036854775809')).to.equal(undefined);
      expect(parseInt64(' 1')).to.equal(undefined);
      expect(parseInt64('')).to.equal(undefined);
    });
  });

  describe('compileLabelSelector / matchesLabelSelector', () => {
    const cases: { name: string; selector: LabelSelector; labels: LabelSet | undefined; want: boolean }[] = [
      { name: 'empty selector matches any labels', selector: {}, labels: { a: 'b' }, want: true },
      { name: 'empty selector matches an object without labels', selector: {}, labels: undefined, want: true },
      { name: 'empty matchLabels and matchExpressions match everything', selector: { matchLabels: {}, matchExpressions: [] }, labels: {}, want: true },
      { name: 'matchLabels equal', selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, labels: { 'kwarm.io/enabled': 'true', x: 'y' }, want: true },
      { name: 'matchLabels different value', selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, labels: { 'kwarm.io/enabled': 'false' }, want: false },
      { name: 'matchLabels missing label', selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, labels: {}, want: false },
      { name: 'matchLabels empty value needs the label', selector: { matchLabels: { flag: '' } }, labels: {}, want: false },
      { name: 'matchLabels entries are ANDed', selector: { matchLabels: { a: '1', b: '2' } }, labels: { a: '1', b: '3' }, want: false },
      {
        name: 'matchLabels and matchExpressions are ANDed (both hold)',
        selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['fe', 'be'] }] },
        labels: { app: 'web', tier: 'be' },
        want: true,
      },
      {
        name: 'matchLabels and matchExpressions are ANDed (expression fails)',
        selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['be'] }] },
        labels: { app: 'web', tier: 'be' },
        want: false,
      },
      {
        name: 'Exists and DoesNotExist together',
        selector: { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'b', operator: 'DoesNotExist' }] },
        labels: { a: '' },
        want: true,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const compiled = compileLabelSelector(c.selector);
        if (!compiled.ok) throw new Error(compiled.error);
        expect(compiledSelectorMatches(compiled.value, c.labels)).to.equal(c.want);
        expect(matchesLabelSelector(c.selector, c.labels, 'matchesNothing')).to.equal(c.want);
      });
    }

    it('an absent selector means what the caller says', () => {
      expect(matchesLabelSelector(undefined, { a: 'b' }, 'matchesEverything')).to.equal(true);
      expect(matchesLabelSelector(undefined, { a: 'b' }, 'matchesNothing')).to.equal(false);
    });

    it('an invalid selector is reported by compile and matches nothing', () => {
      const selector: LabelSelector = { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] };
      const compiled = compileLabelSelector(selector);
      expect(compiled.ok).to.equal(false);
      if (!compiled.ok) expect(compiled.error).to.match(/^matchExpressions: .*values must be empty/);
      // Without the bad values this selector would match an object without labels.
      expect(matchesLabelSelector(selector, {}, 'matchesEverything')).to.equal(false);
    });

    it('rejects Gt/Lt, which only node selectors allow', () => {
      const compiled = compileLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] });
      expect(compiled.ok).to.equal(false);
    });

    it('rejects an invalid matchLabels value', () => {
      const compiled = compileLabelSelector({ matchLabels: { a: 'not valid' } });
      expect(compiled.ok).to.equal(false);
      if (!compiled.ok) expect(compiled.error).to.match(/^matchLabels: /);
    });
  });
});
