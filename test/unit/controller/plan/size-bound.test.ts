// Finding 16: a NodeImageSet is bounded by the estimated bytes of its entries, not only by their count.
import { expect } from 'chai';
import { MAX_IMAGE_SOURCES, MAX_NODE_IMAGES, type NodeImage } from '../../../../api/v1alpha1/index.ts';
import { entriesBytes, entryBytes, fitsNodeImageSet, MAX_NODE_IMAGE_SET_SPEC_BYTES } from '../../../../controller/plan/size-bound.ts';
import { leftOutForSize } from '../../../../controller/status/size-limit-events.ts';
import { planNodeImageSets, type ImageTarget } from '../../../../controller/plan/node-plan.ts';
import { node, nodeImageSetView } from '../planning-fixtures.ts';

const ETCD_LIMIT = 1.5 * 1024 * 1024;

/** As heavy as the CRD allows: a 255-character name with a tag, 16 secret copies of 253 characters. */
function heavyTarget(i: number, source = 0): ImageTarget {
  const name = `heavy-${String(i).padStart(3, '0')}-${String(source).padStart(2, '0')}`;
  return {
    key: `shop/${name}`, namespace: 'shop', name,
    image: `registry.example.com/${'a'.repeat(220)}-${String(i).padStart(4, '0')}:v1`,
    imageDigest: undefined, nodeNames: ['n1'], nodeSelector: undefined, placement: undefined, targeting: undefined,
    pullSecrets: Array.from({ length: 16 }, (_, j) => `kwarm-pull.shop.s${String(j).padStart(2, '0')}-${'x'.repeat(236)}`),
    retry: { maxAttempts: 3, backoffSeconds: 30 }, timeout: '10m', round: 0,
  };
}

function lightTarget(i: number): ImageTarget {
  const name = `app-${i}`;
  return {
    key: `shop/${name}`, namespace: 'shop', name, image: `registry.example.com/team/app-${i}:v1.2.3`,
    imageDigest: undefined, nodeNames: ['n1'], nodeSelector: undefined, placement: undefined, targeting: undefined,
    pullSecrets: ['kwarm-pull.shop.regcred'], retry: { maxAttempts: 3, backoffSeconds: 30 }, timeout: '10m', round: 0,
  };
}

describe('controller/plan/size-bound', () => {
  it('512 heavy entries, each wanted by 6 PrePullImages: the NodeImageSet stops at the byte cap, far under etcd\'s limit', () => {
    const targets = Array.from({ length: 512 }, (_, i) => Array.from({ length: 6 }, (_, s) => heavyTarget(i, s))).flat();
    const p = planNodeImageSets({ targets, nodes: [node({ name: 'n1' })], current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2 });
    const images = p.nodeImageSets.get('n1')!.spec.images;
    const bytes = entriesBytes(images);
    expect(images.length).to.be.above(0).and.below(512);
    expect(bytes).to.be.at.most(MAX_NODE_IMAGE_SET_SPEC_BYTES);
    // The spec as JSON is about half the estimate (the other half stands for managedFields).
    expect(Buffer.byteLength(JSON.stringify(p.nodeImageSets.get('n1')!.spec))).to.be.below(ETCD_LIMIT / 2);
    for (const e of images) expect(e.sources).to.have.length(MAX_IMAGE_SOURCES);
    expect(p.held).to.equal(512 - images.length);
    // Before: the count alone let all 512 through, about 5 MiB with managedFields.
    const all = entriesBytes(images) / images.length * 512;
    expect(all).to.be.above(ETCD_LIMIT);
  });

  it('keeps entries already released, and releases nothing new while the set is full', () => {
    const targets = Array.from({ length: 200 }, (_, i) => heavyTarget(i));
    const first = planNodeImageSets({ targets, nodes: [node({ name: 'n1' })], current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2 });
    const written = first.nodeImageSets.get('n1')!.spec.images.map((e) => e.image);
    // Same plan again with the first in place, and new lighter images ahead of them by name: the set keeps what it has.
    const again = planNodeImageSets({
      targets: [...targets, lightTarget(1)],
      nodes: [node({ name: 'n1' })],
      current: new Map([['n1', nodeImageSetView('n1', Object.fromEntries(first.nodeImageSets.get('n1')!.released))]]),
      clusterPullBudget: 0, maxPullsPerNode: 2,
    });
    const images = again.nodeImageSets.get('n1')!.spec.images.map((e) => e.image);
    for (const w of written) expect(images).to.include(w);
    expect(entriesBytes(again.nodeImageSets.get('n1')!.spec.images)).to.be.at.most(MAX_NODE_IMAGE_SET_SPEC_BYTES + entryBytes(again.nodeImageSets.get('n1')!.spec.images[0]!));
  });

  it('512 typical entries all fit', () => {
    const targets = Array.from({ length: 512 }, (_, i) => lightTarget(i));
    const p = planNodeImageSets({ targets, nodes: [node({ name: 'n1' })], current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2 });
    expect(p.nodeImageSets.get('n1')!.spec.images).to.have.length(MAX_NODE_IMAGES);
    expect(p.held).to.equal(0);
  });

  it('fitsNodeImageSet: counts and bytes, with a running total that follows additions', () => {
    const e = (i: number): NodeImage => ({ image: `r.example/${'b'.repeat(400)}-${i}:1`, pullSecrets: [], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: 0, sources: [] });
    const keep = new Map<string, NodeImage>();
    let i = 0;
    while (fitsNodeImageSet(keep, e(i))) {
      keep.set(e(i).image, e(i));
      i++;
    }
    expect(entriesBytes(keep.values())).to.be.at.most(MAX_NODE_IMAGE_SET_SPEC_BYTES);
    expect(entriesBytes(keep.values()) + entryBytes(e(i))).to.be.above(MAX_NODE_IMAGE_SET_SPEC_BYTES);
    expect(keep.size).to.be.below(MAX_NODE_IMAGES);
  });
});

describe('controller/plan/size-bound: reporting', () => {
  it('names the PrePullImages left out of a full NodeImageSet, and not those waiting for the budget', () => {
    const heavy = Array.from({ length: 100 }, (_, i) => heavyTarget(i));
    const full = planNodeImageSets({ targets: heavy, nodes: [node({ name: 'n1' })], current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2 });
    const released = full.nodeImageSets.get('n1')!.spec.images.length;
    const left = leftOutForSize(full, heavy);
    expect(left.size).to.equal(100 - released);
    for (const nodes of left.values()) expect(nodes).to.deep.equal(['n1']);
    const budgeted = planNodeImageSets({ targets: heavy, nodes: [node({ name: 'n1' })], current: new Map(), clusterPullBudget: 5, maxPullsPerNode: 2 });
    expect(budgeted.held).to.equal(95);
    expect(leftOutForSize(budgeted, heavy).size).to.equal(0);
  });
});
