import { expect } from 'chai';
import { nodeImageSetSpecSchema, type NodeImageSetSpec } from '../../../../api/v1alpha1/index.ts';
import { decode } from '../../../../api/schema.ts';
import { leanSpec, nodeImageSetApplyBody } from '../../../../controller/write/api-objects.ts';
import { nodeImageSetDigest } from '../../../../controller/plan/node-image-set-digest.ts';

function decoded(value: unknown): NodeImageSetSpec {
  const r = decode(nodeImageSetSpecSchema, value);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

describe('controller/write/api-objects: the NodeImageSet spec as applied', () => {
  const spec: NodeImageSetSpec = decoded({
    maxConcurrentPulls: 2,
    images: [
      { image: 'registry.example/a:1', sources: [{ namespace: 'team', name: 'deployment.a.app' }] },
      {
        image: 'registry.example/b:1', imageDigest: `sha256:${'b'.repeat(64)}`, pullSecrets: ['kwarm-team-regcred'], timeout: '90s',
        retry: { maxAttempts: 5, backoffSeconds: 30 }, round: 3, sources: [{ namespace: 'team', name: 'b' }], gatesNode: true,
      },
      { image: 'registry.example/c:1', retry: { maxAttempts: 3, backoffSeconds: 5 } },
    ],
    gatingImages: 1,
    removals: [],
  });

  it('leaves out every entry field whose value is the CRD default, and nothing else', () => {
    expect(leanSpec(spec)).to.deep.equal({
      maxConcurrentPulls: 2,
      images: [
        { image: 'registry.example/a:1', sources: [{ namespace: 'team', name: 'deployment.a.app' }] },
        {
          image: 'registry.example/b:1', imageDigest: `sha256:${'b'.repeat(64)}`, pullSecrets: ['kwarm-team-regcred'], timeout: '90s',
          retry: { maxAttempts: 5 }, round: 3, sources: [{ namespace: 'team', name: 'b' }], gatesNode: true,
        },
        { image: 'registry.example/c:1', retry: { backoffSeconds: 5 } },
      ],
      gatingImages: 1,
      removals: [],
    });
  });

  it('reads back, with the defaults the API server fills in, as the planned spec and with its digest', () => {
    const back = decoded(leanSpec(spec));
    expect(back).to.deep.equal(spec);
    expect(nodeImageSetDigest('uid-1', back)).to.equal(nodeImageSetDigest('uid-1', spec));
    const other = decoded({ maxConcurrentPulls: 4, images: [], removals: [{ image: 'registry.example/old:1' }] });
    expect(leanSpec(other)).to.deep.equal({ maxConcurrentPulls: 4, images: [], removals: [{ image: 'registry.example/old:1', sources: [] }] });
    expect(decoded(leanSpec(other))).to.deep.equal(other);
  });

  // Server-side apply drops a spec holding no value the applier owns (an empty list owns none), and the API server
  // then refuses the NodeImageSet with "spec: Required value": an emptied NodeImageSet must still be written.
  it('keeps the top-level fields, so a NodeImageSet emptied of images and removals still has a spec the applier owns', () => {
    const empty = decoded({});
    expect(leanSpec(empty)).to.deep.equal({ maxConcurrentPulls: 2, images: [], removals: [] });
  });

  it('is what the apply body carries', () => {
    const body = nodeImageSetApplyBody({ node: 'n1', nodeUid: 'uid-1', spec, digest: 'd', released: new Map() }) as { spec: unknown };
    expect(body.spec).to.deep.equal(leanSpec(spec));
  });
});
