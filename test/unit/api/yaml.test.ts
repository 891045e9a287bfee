import { expect } from 'chai';
import { loadYaml } from '@kubernetes/client-node';
import type { Json } from '../../../api/schema.ts';
import { toYaml } from '../../../api/yaml.ts';

// Wrapped under one key: loadYaml passes objects without apiVersion/kind through unchanged.
function roundTrip(value: Json): unknown {
  const parsed = loadYaml<unknown>(toYaml({ doc: value }));
  return typeof parsed === 'object' && parsed !== null && 'doc' in parsed ? parsed.doc : undefined;
}

describe('api/yaml', () => {
  it('writes nested maps and lists in block style, keys in insertion order', () => {
    expect(toYaml({ b: 1, a: { list: [{ x: 1, w: [true] }, 'z'], empty: {}, none: [] } })).to.equal([
      'b: 1',
      'a:',
      '  list:',
      '  - x: 1',
      '    w:',
      '    - true',
      '  - z',
      '  empty: {}',
      '  none: []',
      '',
    ].join('\n'));
  });

  it('quotes strings a YAML 1.1 reader would take for something else', () => {
    const tricky = ['true', 'False', 'yes', 'no', 'on', 'off', 'y', 'N', 'null', '~', '10m', '3', '1e3', '0x10', '.5', '-1',
      '1:30', '017', '0o17', '+1', '1_000', '.inf', '.NaN', '<<', 'Yes', 'OFF',
      '', ' lead', 'trail ', 'a: b', 'a #b', '#x', '- x', '[x]', '{x}', '*x', '&x', '!x', '|x', '>x', '%x', '@x', '`x', '"x"', "it's",
      'line\nbreak', 'tab\there', "self.matches('^[a-z]+$')", '2024-01-01'];
    for (const s of tricky) expect(roundTrip(s), JSON.stringify(s)).to.equal(s);
    expect(toYaml({ k: 'True' })).to.equal("k: 'True'\n");
    // YAML 1.1 words, sexagesimal and octal forms are quoted, not only read back right by a YAML 1.2 reader.
    for (const s of ['yes', 'on', 'y', 'N', '1:30', '017']) expect(toYaml({ k: s })).to.equal(`k: '${s}'\n`);
  });

  it('leaves plain words and paths unquoted', () => {
    expect(toYaml({ kind: 'CustomResourceDefinition', group: 'kwarm.io', path: 'a/b-c_d', text: 'two words' }))
      .to.equal('kind: CustomResourceDefinition\ngroup: kwarm.io\npath: a/b-c_d\ntext: two words\n');
  });

  it('round-trips numbers, booleans, null and nested structures exactly', () => {
    const value: Json = { n: 0, f: 1.5, neg: -3, t: true, nil: null, deep: [[1, 2], [], [{}], { 'kwarm.io/key': 'v' }] };
    expect(roundTrip(value)).to.deep.equal(value);
  });
});
