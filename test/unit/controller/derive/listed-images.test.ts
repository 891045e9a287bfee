import { expect } from 'chai';
import type { PrePullPolicy } from '../../../../api/v1alpha1/index.ts';
import type { ConfigMapView } from '../../../../controller/derive/configmap-image-lists.ts';
import {
  configMapWatchOf,
  configMapWatchScope,
  desiredListedImages,
  listedImageName,
  ListedImagesMemo,
  type ListedImagesInput,
} from '../../../../controller/derive/listed-images.ts';
import { policy } from '../planning-fixtures.ts';

const SELECTOR = { matchLabels: { 'kwarm.io/enabled': 'true' } };

function withUid(p: PrePullPolicy): PrePullPolicy {
  return { ...p, metadata: { ...p.metadata, uid: `uid-${p.metadata.name ?? ''}` } };
}

function cm(namespace: string, name: string, data: Record<string, string>, resourceVersion = '1'): ConfigMapView {
  return { namespace, name, uid: `uid-${namespace}-${name}`, resourceVersion, data };
}

function listed(input: Partial<ListedImagesInput> & Pick<ListedImagesInput, 'policies'>) {
  return desiredListedImages({ configMaps: new Map(), namespace: 'kwarm-system', ...input });
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/u;

describe('controller/listed-images', () => {
  describe('listedImageName', () => {
    it('is <prefix>.<owner>.<hash>, deterministic, distinct per image', () => {
      const a = listedImageName('static', 'warm', 'alpine:3.20');
      expect(a).to.match(/^static\.warm\.[0-9a-f]{10}$/u);
      expect(listedImageName('static', 'warm', 'alpine:3.20')).to.equal(a);
      expect(listedImageName('static', 'warm', 'alpine:3.21')).to.not.equal(a);
      expect(listedImageName('static', 'cold', 'alpine:3.20')).to.not.equal(a);
    });

    it('stays a DNS subdomain of at most 63 characters for long owner names, and keeps them apart', () => {
      const long = `${'a'.repeat(44)}.-b${'c'.repeat(200)}`;
      const x = listedImageName('configmap', long, 'alpine');
      const y = listedImageName('configmap', `${long}x`, 'alpine');
      for (const n of [x, y, listedImageName('configmap', `${'a'.repeat(40)}-----`, 'alpine')]) {
        expect(n.length).to.be.at.most(63);
        expect(n).to.match(DNS_SUBDOMAIN);
      }
      expect(x).to.not.equal(y);
    });
  });

  describe('static lists', () => {
    it('derives one PrePullImage per image in kwarm\'s namespace, owned by the policy, with its settings and node targeting', () => {
      const p = withUid(policy('warm', {
        selector: SELECTOR,
        images: ['alpine:3.20', 'reg.example/team/tool:v1'],
        nodeSelector: { matchLabels: { pool: 'gpu' }, matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] },
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] }] } } },
        tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
        retry: { maxAttempts: 5 },
        timeout: '20m',
        imagePullSecrets: { additional: [{ name: 'regcred' }] },
      }));
      const { images, policies } = listed({ policies: [p] });
      const name = listedImageName('static', 'warm', 'alpine:3.20');
      const d = images.get(`kwarm-system/${name}`);
      expect(d).to.not.equal(undefined);
      expect(d!.namespace).to.equal('kwarm-system');
      expect(d!.policy).to.equal('warm');
      expect(d!.owner).to.deep.equal({ apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', name: 'warm', uid: 'uid-warm' });
      expect(d!.annotations).to.deep.equal({ 'kwarm.io/source': 'static' });
      expect(d!.placement).to.equal(undefined);
      expect(d!.spec).to.deep.equal({
        image: 'alpine:3.20',
        nodes: {
          selector: { matchLabels: { pool: 'gpu' }, matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] },
          affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] }] } } },
          tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
        },
        imagePullSecrets: [{ name: 'regcred' }],
        retry: { maxAttempts: 5, backoffSeconds: 30 },
        timeout: '20m',
      });
      expect(policies.get('warm')).to.deep.include({ staticImages: [...images.keys()], configMapImages: [], configMaps: { kind: 'unset' } });
      expect(images.size).to.equal(2);
    });

    it('carries the policy\'s purgeOnDelete and refreshInterval, as workload images do', () => {
      const p = withUid(policy('warm', { selector: SELECTOR, images: ['alpine'], configMaps: { selector: { matchLabels: { l: 'x' } } }, purgeOnDelete: true, refreshInterval: '24h' }));
      const { images } = listed({ policies: [p], configMaps: new Map([['/l=x', [cm('shop', 'list', { a: 'debian' })]]]) });
      expect([...images.values()].map((d) => [d.spec.image, d.spec.purgeOnDelete, d.spec.refreshInterval]).sort())
        .to.deep.equal([['alpine', true, '24h'], ['debian', true, '24h']]);
      const plain = listed({ policies: [withUid(policy('warm', { selector: SELECTOR, images: ['alpine'] }))] });
      expect([...plain.images.values()][0]!.spec).to.not.have.any.keys('purgeOnDelete', 'refreshInterval');
    });

    it('leaves spec.nodes empty when the policy targets every node', () => {
      const { images } = listed({ policies: [withUid(policy('warm', { selector: SELECTOR, images: ['alpine'] }))] });
      expect([...images.values()][0]!.spec.nodes).to.deep.equal({});
    });

    it('drops an image removed from the list, and everything of a policy being deleted', () => {
      const before = listed({ policies: [withUid(policy('warm', { selector: SELECTOR, images: ['alpine', 'debian'] }))] });
      const after = listed({ policies: [withUid(policy('warm', { selector: SELECTOR, images: ['debian'] }))] });
      expect([...after.images.values()].map((d) => d.spec.image)).to.deep.equal(['debian']);
      expect(after.images.has([...before.images.keys()].find((k) => before.images.get(k)!.spec.image === 'debian')!)).to.equal(true);
      const deleting = withUid(policy('warm', { selector: SELECTOR, images: ['debian'] }));
      const gone = listed({ policies: [{ ...deleting, metadata: { ...deleting.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } }] });
      expect(gone.images.size).to.equal(0);
    });

    it('gives two policies listing one image a PrePullImage each (the planner merges them per node)', () => {
      const { images } = listed({ policies: [withUid(policy('a', { selector: SELECTOR, images: ['alpine'] })), withUid(policy('b', { selector: SELECTOR, images: ['alpine'] }))] });
      expect([...images.values()].map((d) => d.policy).sort()).to.deep.equal(['a', 'b']);
    });
  });

  describe('ConfigMaps', () => {
    const source = { selector: { matchLabels: { 'kwarm.io/images': 'true' } } };
    const selectorQuery = 'kwarm.io/images=true';
    /** The key of the cluster-wide list-watch for the selector. */
    const query = `/${selectorQuery}`;

    it('maps a policy to the list-watches it needs: cluster-wide, or one per namespace it names (finding 15)', () => {
      expect(configMapWatchOf(policy('p', { selector: SELECTOR }))).to.deep.equal({ kind: 'none' });
      expect(configMapWatchOf(policy('p', { selector: SELECTOR, configMaps: source }))).to.deep.equal({ kind: 'selector', query: selectorQuery, keys: [query] });
      expect(configMapWatchOf(policy('p', { selector: SELECTOR, configMaps: { selector: {} } }))).to.deep.equal({ kind: 'selector', query: '', keys: ['/'] });
      const scoped = configMapWatchOf(policy('p', { selector: SELECTOR, configMaps: { ...source, namespaces: ['shop', 'ci'] } }));
      expect(scoped).to.deep.equal({ kind: 'selector', query: selectorQuery, keys: [`ci/${selectorQuery}`, `shop/${selectorQuery}`] });
      expect(configMapWatchScope(`ci/${selectorQuery}`)).to.deep.equal({ namespace: 'ci', query: selectorQuery });
      expect(configMapWatchScope('/a/b=c')).to.deep.equal({ namespace: '', query: 'a/b=c' });
    });

    it('derives one PrePullImage per image of a selected ConfigMap, in its namespace, owned by it, with the policy settings', () => {
      const p = withUid(policy('cms', { selector: SELECTOR, configMaps: source, timeout: '3m', imagePullSecrets: { additional: [{ name: 'regcred' }] } }));
      const { images, policies } = listed({ policies: [p], configMaps: new Map([[query, [cm('shop', 'images', { a: '["alpine", "debian"]', b: 'alpine' })]]]) });
      expect(images.size).to.equal(2);
      const alpine = images.get(`shop/${listedImageName('configmap', 'images', 'alpine')}`)!;
      expect(alpine.owner).to.deep.equal({ apiVersion: 'v1', kind: 'ConfigMap', name: 'images', uid: 'uid-shop-images' });
      expect(alpine.annotations).to.deep.equal({ 'kwarm.io/source': 'configmap', 'kwarm.io/configmap-keys': 'a,b' });
      expect(alpine.spec).to.deep.include({ image: 'alpine', timeout: '3m', imagePullSecrets: [{ name: 'regcred' }] });
      expect(policies.get('cms')!.configMaps).to.deep.equal({ kind: 'watched', configMaps: 1, problems: [] });
      expect(policies.get('cms')!.configMapImages).to.have.length(2);
    });

    it('reads only the namespaces the policy names, from their own list-watches, pending until each has listed', () => {
      const p = withUid(policy('cms', { selector: SELECTOR, configMaps: { ...source, namespaces: ['shop', 'ci'] } }));
      const shop = [cm('shop', 'a', { k: 'alpine' })];
      const ci = [cm('ci', 'c', { k: 'busybox' })];
      const half = listed({ policies: [p], configMaps: new Map([[`shop/${selectorQuery}`, shop], [query, [cm('other', 'b', { k: 'debian' })]]]) });
      expect(half.policies.get('cms')!.configMaps).to.deep.equal({ kind: 'pending', error: undefined });
      const both = listed({ policies: [p], configMaps: new Map([[`shop/${selectorQuery}`, shop], [`ci/${selectorQuery}`, ci], [query, [cm('other', 'b', { k: 'debian' })]]]) });
      expect([...both.images.values()].map((d) => d.namespace).sort()).to.deep.equal(['ci', 'shop']);
      expect(both.policies.get('cms')!.configMaps).to.include({ configMaps: 2 });
    });

    it('reports malformed keys with ConfigMap, key and version, and keeps the good keys working', () => {
      const p = withUid(policy('cms', { selector: SELECTOR, configMaps: source }));
      const { images, policies } = listed({
        policies: [p],
        configMaps: new Map([[query, [cm('shop', 'images', { good: 'alpine', bad: '[oops' }, '42'), cm('shop', 'more', { k: 'debian' })]]]),
      });
      expect([...images.values()].map((d) => d.spec.image).sort()).to.deep.equal(['alpine', 'debian']);
      const state = policies.get('cms')!.configMaps;
      if (state.kind !== 'watched') throw new Error(`state is ${state.kind}`);
      expect(state.problems).to.have.length(1);
      expect(state.problems[0]).to.include({ namespace: 'shop', name: 'images', uid: 'uid-shop-images', resourceVersion: '42', key: 'bad' });
    });

    it('says pending while the selector\'s ConfigMaps are not listed, and invalidSelector for a bad selector', () => {
      const p = withUid(policy('cms', { selector: SELECTOR, configMaps: source }));
      expect(listed({ policies: [p] }).policies.get('cms')!.configMaps).to.deep.equal({ kind: 'pending', error: undefined });
      const failing = listed({ policies: [p], listErrors: new Map([[query, 'configmaps is forbidden']]) });
      expect(failing.policies.get('cms')!.configMaps).to.deep.equal({ kind: 'pending', error: 'configmaps is forbidden' });
      expect(failing.images.size).to.equal(0);
      const bad = withUid(policy('bad', { selector: SELECTOR, configMaps: { selector: { matchLabels: { 'no spaces allowed': 'x' } } } }));
      const r = listed({ policies: [bad] }).policies.get('bad')!.configMaps;
      expect(r.kind).to.equal('invalidSelector');
    });

    it('gives a ConfigMap selected by two policies to the first by name', () => {
      const a = withUid(policy('a', { selector: SELECTOR, configMaps: source, timeout: '1m' }));
      const b = withUid(policy('b', { selector: SELECTOR, configMaps: source, timeout: '2m' }));
      const { images, policies } = listed({ policies: [b, a], configMaps: new Map([[query, [cm('shop', 'images', { k: 'alpine' })]]]) });
      expect([...images.values()].map((d) => [d.policy, d.spec.timeout])).to.deep.equal([['a', '1m']]);
      expect(policies.get('b')!.configMapImages).to.deep.equal([]);
      expect(policies.get('b')!.configMaps).to.include({ configMaps: 1 });
    });

    it('yields the very same objects for an unchanged policy and ConfigMap, sharing one spec.nodes per policy', () => {
      const p = withUid(policy('cms', { selector: SELECTOR, images: ['busybox', 'debian'], configMaps: source, tolerations: [] }));
      const memo = new ListedImagesMemo();
      const cms = new Map([[query, [cm('shop', 'images', { k: 'alpine\nnginx' })]]]);
      const first = listed({ policies: [p], configMaps: cms, memo });
      const again = listed({ policies: [p], configMaps: cms, memo });
      expect(first.images.size).to.equal(4);
      for (const [key, d] of first.images) expect(again.images.get(key)).to.equal(d);
      expect(new Set([...first.images.values()].map((d) => d.spec.nodes)).size).to.equal(2);
      const changed = withUid(policy('cms', { selector: SELECTOR, images: ['busybox', 'debian'], configMaps: source, timeout: '1m' }));
      const after = listed({ policies: [changed], configMaps: cms, memo });
      for (const d of after.images.values()) expect(d.spec.timeout).to.equal('1m');
    });

    it('parses an unchanged ConfigMap object once (memo), and follows a new one', () => {
      const p = withUid(policy('cms', { selector: SELECTOR, configMaps: source }));
      const memo = new ListedImagesMemo();
      const v1 = cm('shop', 'images', { k: 'alpine\ndebian' });
      listed({ policies: [p], configMaps: new Map([[query, [v1]]]), memo });
      const parsed = memo.parsed.get(v1);
      expect(parsed?.images.size).to.equal(2);
      listed({ policies: [p], configMaps: new Map([[query, [v1]]]), memo });
      expect(memo.parsed.get(v1)).to.equal(parsed);
      const v2 = cm('shop', 'images', { k: 'alpine' }, '2');
      const { images } = listed({ policies: [p], configMaps: new Map([[query, [v2]]]), memo });
      expect([...images.values()].map((d) => d.spec.image)).to.deep.equal(['alpine']);
    });
  });
});
