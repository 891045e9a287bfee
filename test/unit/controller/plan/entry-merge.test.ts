// Finding 5 of the review: PrePullImages of different namespaces that want the same image share one entry per
// node; none of them may change the outcome of another's pulls.
import { expect } from 'chai';
import { planNodeImageSets, type ImageTarget } from '../../../../controller/plan/node-plan.ts';
import { mergeRetry, mergeTimeout, roundRobinSecrets } from '../../../../controller/plan/entry-merge.ts';
import { planningReference, successorKey } from '../../../../controller/plan/spec-plan.ts';
import { node } from '../planning-fixtures.ts';

const GOOD = `sha256:${'a'.repeat(64)}`;
const BAD = `sha256:${'0'.repeat(64)}`;

function target(ns: string, name: string, extra: Partial<ImageTarget> = {}): ImageTarget {
  return {
    key: `${ns}/${name}`, namespace: ns, name, image: 'docker.io/library/python:3.12', imageDigest: undefined,
    nodeNames: undefined, nodeSelector: undefined, placement: undefined, targeting: undefined, pullSecrets: [],
    retry: { maxAttempts: 3, backoffSeconds: 30 }, timeout: '10m', round: 0, ...extra,
  };
}

function plan(targets: ImageTarget[]) {
  return planNodeImageSets({ targets, nodes: [node({ name: 'n1' }), node({ name: 'n2' })], current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2 });
}

describe('controller/plan entry merging between tenants (finding 5)', () => {
  it('never merges conflicting pins: the later PrePullImage is refused with DigestConflict naming the earlier one', () => {
    const p = plan([
      target('team-a', 'py', { imageDigest: GOOD, createdAt: '2026-01-01T00:00:00Z' }),
      target('team-b', 'py', { imageDigest: BAD, createdAt: '2026-01-02T00:00:00Z' }),
    ]);
    const entry = p.nodeImageSets.get('n1')!.spec.images[0]!;
    expect(entry.imageDigest).to.equal(GOOD);
    expect(entry.sources).to.deep.equal([{ namespace: 'team-a', name: 'py' }]);
    expect(p.targetNodes.has('team-b/py')).to.equal(false);
    const r = p.refused.get('team-b/py');
    expect(r).to.include({ reason: 'DigestConflict', excluded: true });
    expect(r?.message).to.contain('team-a/py');
    expect(p.refused.has('team-a/py')).to.equal(false);
  });

  it('orders conflicting pins by creation time before name, so a later-created pin cannot displace an earlier one', () => {
    const p = plan([
      target('a-first-by-name', 'py', { imageDigest: BAD, createdAt: '2026-01-02T00:00:00Z' }),
      target('z-last-by-name', 'py', { imageDigest: GOOD, createdAt: '2026-01-01T00:00:00Z' }),
    ]);
    expect(p.nodeImageSets.get('n1')!.spec.images[0]!.imageDigest).to.equal(GOOD);
    expect(p.refused.get('a-first-by-name/py')?.reason).to.equal('DigestConflict');
  });

  it('a pin never reaches an entry another source wants unpinned: the pinned one is told its pin is not checked', () => {
    const p = plan([
      target('team-a', 'derived', { createdAt: '2026-01-02T00:00:00Z' }),
      target('team-b', 'py', { imageDigest: BAD, createdAt: '2026-01-01T00:00:00Z' }),
    ]);
    const entry = p.nodeImageSets.get('n1')!.spec.images[0]!;
    expect(entry).to.not.have.property('imageDigest');
    expect(entry.sources).to.have.length(2);
    expect(p.refused.get('team-b/py')).to.include({ reason: 'DigestConflict', excluded: false });
    expect(p.refused.has('team-a/derived')).to.equal(false);
  });

  it('keeps the pin where every source pins the same digest', () => {
    const p = plan([target('team-a', 'py', { imageDigest: GOOD }), target('team-b', 'py', { imageDigest: GOOD })]);
    expect(p.nodeImageSets.get('n1')!.spec.images[0]!.imageDigest).to.equal(GOOD);
    expect(p.refused.size).to.equal(0);
  });

  it('does not let one source force 24h timeouts, 100 attempts or no back-off onto everyone, nor cut them short', () => {
    const p = plan([
      target('team-a', 'py'),
      target('team-b', 'greedy', { timeout: '24h', retry: { maxAttempts: 100, backoffSeconds: 0 } }),
    ]);
    expect(p.nodeImageSets.get('n1')!.spec.images[0]).to.deep.include({ timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 } });
    const hurried = plan([target('team-a', 'slow', { timeout: '1h' }), target('team-b', 'hurried', { timeout: '1s', retry: { maxAttempts: 1, backoffSeconds: 0 } })]);
    expect(hurried.nodeImageSets.get('n1')!.spec.images[0]).to.deep.include({ timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 } });
    // Sources that agree get what they ask for.
    expect(mergeTimeout(['2m', '90s'])).to.equal('2m');
    expect(mergeRetry([{ maxAttempts: 8, backoffSeconds: 5 }, { maxAttempts: 6, backoffSeconds: 10 }])).to.deep.equal({ maxAttempts: 6, backoffSeconds: 10 });
  });

  it('lists a PrePullImage once in sources when it and its successor (finding 14) want the image on a node', () => {
    const p = plan([target('shop', 'app'), target('shop', 'app', { key: successorKey('shop/app') }), target('team-b', 'py')]);
    expect(p.nodeImageSets.get('n1')!.spec.images[0]!.sources).to.deep.equal([{ namespace: 'shop', name: 'app' }, { namespace: 'team-b', name: 'py' }]);
  });

  it('keeps each source\'s secrets: 16 dummy secrets sorting first do not push out another team\'s real one', () => {
    const dummies = Array.from({ length: 16 }, (_, i) => `kwarm-pull.a${String(i).padStart(2, '0')}`);
    const p = plan([target('team-a', 'py', { pullSecrets: ['kwarm-pull.zz-real'] }), target('team-b', 'py', { pullSecrets: dummies })]);
    const secrets = p.nodeImageSets.get('n1')!.spec.images[0]!.pullSecrets;
    expect(secrets).to.have.length(16);
    expect(secrets).to.include('kwarm-pull.zz-real');
    expect(roundRobinSecrets([['a1', 'a2'], ['b1'], ['a1', 'c2']], 16)).to.deep.equal(['a1', 'b1', 'a2', 'c2']);
  });
});

describe('controller/plan planningReference (finding 20)', () => {
  it('plans every spelling of one image under its fully qualified reference, tag and digest kept', () => {
    for (const spelling of ['nginx', 'nginx:latest', 'docker.io/library/nginx', 'index.docker.io/library/nginx:latest', 'docker.io/library/nginx:latest']) {
      expect(planningReference(spelling), spelling).to.equal('docker.io/library/nginx:latest');
    }
    expect(planningReference('127.0.0.1:5000/team/app')).to.equal('127.0.0.1:5000/team/app:latest');
    expect(planningReference(`ghcr.io/org/app@${GOOD}`)).to.equal(`ghcr.io/org/app@${GOOD}`);
    expect(planningReference(`bitnami/redis:7@${GOOD}`)).to.equal(`docker.io/bitnami/redis:7@${GOOD}`);
    expect(planningReference('Not A Reference')).to.equal('Not A Reference');
  });
});

describe('controller/plan per-namespace image cap (finding 6)', () => {
  function capped(targets: ImageTarget[], max: number) {
    return planNodeImageSets({ targets, nodes: [node({ name: 'n1' })], current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2, maxImagesPerNamespace: max, uncappedNamespace: 'kwarm-system' });
  }
  const img = (n: number): string => `r.example/img-${n}:1`;

  it('plans at most the cap of distinct images per namespace, the earliest created first, and refuses the rest', () => {
    const p = capped([
      target('greedy', 'c', { image: img(3), createdAt: '2026-01-03T00:00:00Z' }),
      target('greedy', 'a', { image: img(1), createdAt: '2026-01-01T00:00:00Z' }),
      target('greedy', 'a-again', { image: img(1), createdAt: '2026-01-04T00:00:00Z' }),
      target('greedy', 'b', { image: img(2), createdAt: '2026-01-02T00:00:00Z' }),
      target('other', 'x', { image: img(3) }),
      target('kwarm-system', 's1', { image: img(4) }), target('kwarm-system', 's2', { image: img(5) }), target('kwarm-system', 's3', { image: img(6) }),
    ], 2);
    const images = p.nodeImageSets.get('n1')!.spec.images;
    // greedy: img-1 (twice, one image) and img-2; img-3 only through `other`; kwarm's namespace is not capped.
    expect(images.map((e) => e.image)).to.deep.equal([1, 2, 3, 4, 5, 6].map(img));
    expect(images.find((e) => e.image === img(3))?.sources).to.deep.equal([{ namespace: 'other', name: 'x' }]);
    expect(p.refused.get('greedy/c')).to.include({ reason: 'NamespaceImageLimit', excluded: true });
    expect([...p.refused.keys()]).to.deep.equal(['greedy/c']);
  });

  it('does not cap with 0', () => {
    const p = capped([1, 2, 3].map((n) => target('greedy', `p${n}`, { image: img(n) })), 0);
    expect(p.nodeImageSets.get('n1')!.spec.images).to.have.length(3);
    expect(p.refused.size).to.equal(0);
  });
});
