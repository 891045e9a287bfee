import { expect } from 'chai';
import {
  configMapImages,
  labelSelectorQuery,
  MAX_CONFIGMAP_IMAGES,
  parseImageList,
  type ConfigMapView,
} from '../../../../controller/derive/configmap-image-lists.ts';

function cm(data: Record<string, string>): ConfigMapView {
  return { namespace: 'shop', name: 'images', uid: 'uid-images', resourceVersion: '7', data };
}

describe('controller/configmap-image-lists', () => {
  describe('parseImageList', () => {
    it('reads a JSON array of strings, as image-cache-daemon writes it', () => {
      expect(parseImageList('["alpine", "debian:12", "reg.example:5000/team/app@sha256:' + 'a'.repeat(64) + '"]')).to.deep.equal({
        images: ['alpine', 'debian:12', `reg.example:5000/team/app@sha256:${'a'.repeat(64)}`],
        errors: [],
      });
      expect(parseImageList('  \n ["alpine"]\n')).to.deep.equal({ images: ['alpine'], errors: [] });
      expect(parseImageList('[]')).to.deep.equal({ images: [], errors: [] });
    });

    it('reads one reference per line, skipping blank lines and # comments, trimming spaces', () => {
      const text = '# base images\nalpine:3.20\n\n   debian:12  \r\n# gone: busybox\nreg.example/team/app:v1\n';
      expect(parseImageList(text)).to.deep.equal({ images: ['alpine:3.20', 'debian:12', 'reg.example/team/app:v1'], errors: [] });
      expect(parseImageList('')).to.deep.equal({ images: [], errors: [] });
    });

    it('reports bad JSON and lists nothing from it', () => {
      const r = parseImageList('["alpine", ');
      expect(r.images).to.deep.equal([]);
      expect(r.errors).to.have.length(1);
      expect(r.errors[0]).to.match(/^not a valid JSON array: /);
    });

    it('reports a non-string item and keeps the valid ones', () => {
      const r = parseImageList('["alpine", 3, null, ["x"], {"a": 1}]');
      expect(r.images).to.deep.equal(['alpine']);
      expect(r.errors).to.deep.equal([
        'item 2 is not a string but number',
        'item 3 is not a string but null',
        'item 4 is not a string but an array',
        'item 5 is not a string but object',
      ]);
    });

    it('checks every reference with the CRD rule, naming the line or item', () => {
      expect(parseImageList('alpine\nNot/Valid\ndebian tag\n').errors).to.deep.equal([
        'line 2 "Not/Valid" is not an image reference',
        'line 3 "debian tag" is not an image reference',
      ]);
      expect(parseImageList('alpine\nNot/Valid\n').images).to.deep.equal(['alpine']);
      expect(parseImageList('["UPPER:1"]').errors).to.deep.equal(['item 1 "UPPER:1" is not an image reference']);
      expect(parseImageList(`["a:${'x'.repeat(129)}"]`).errors).to.have.length(1);
    });
  });

  describe('configMapImages', () => {
    it('lists the images of every key once, with the keys naming each', () => {
      const r = configMapImages(cm({ b: 'alpine\ndebian', a: '["alpine", "busybox"]' }));
      expect([...r.images]).to.deep.equal([['alpine', ['a', 'b']], ['busybox', ['a']], ['debian', ['b']]]);
      expect(r.problems).to.deep.equal([]);
    });

    it('reports each bad key by name and keeps the good keys', () => {
      const r = configMapImages(cm({ good: 'alpine', bad: '["alpine",', mixed: 'debian\nNOT OK' }));
      expect([...r.images.keys()]).to.deep.equal(['alpine', 'debian']);
      expect(r.problems.map((p) => p.key)).to.deep.equal(['bad', 'mixed']);
      expect(r.problems[1]!.message).to.equal('line 2 "NOT OK" is not an image reference');
    });

    it('says how many more errors a key has beyond the first three', () => {
      const r = configMapImages(cm({ k: 'A\nB\nC\nD\nE' }));
      expect(r.problems[0]!.message).to.match(/\(and 2 more\)$/);
    });

    it('bounds the images of one ConfigMap', () => {
      const lines = Array.from({ length: MAX_CONFIGMAP_IMAGES + 5 }, (_, i) => `reg.example/app${i}:1`).join('\n');
      const r = configMapImages(cm({ many: lines }));
      expect(r.images.size).to.equal(MAX_CONFIGMAP_IMAGES);
      expect(r.problems).to.deep.equal([{ key: '*', message: `more than ${MAX_CONFIGMAP_IMAGES} images; 5 ignored` }]);
    });
  });

  describe('labelSelectorQuery', () => {
    it('writes matchLabels and matchExpressions in the API server\'s selector syntax, in a fixed order', () => {
      const q = labelSelectorQuery({
        matchLabels: { 'kwarm.io/images': 'true' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['web', 'batch'] },
          { key: 'env', operator: 'NotIn', values: ['dev'] },
          { key: 'team', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      });
      expect(q).to.deep.equal({ ok: true, value: '!legacy,env notin (dev),kwarm.io/images=true,team,tier in (batch,web)' });
    });

    it('gives equal text for equal selectors written differently', () => {
      const a = labelSelectorQuery({ matchLabels: { a: '1', b: '2' } });
      const b = labelSelectorQuery({ matchExpressions: [{ key: 'b', operator: 'In', values: ['2'] }], matchLabels: { a: '1' } });
      expect(a).to.deep.equal(b);
    });

    it('is empty for the empty selector (every ConfigMap) and refuses invalid ones', () => {
      expect(labelSelectorQuery({})).to.deep.equal({ ok: true, value: '' });
      expect(labelSelectorQuery({ matchLabels: { 'bad key!': 'x' } }).ok).to.equal(false);
      expect(labelSelectorQuery({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }).ok).to.equal(false);
    });
  });
});
