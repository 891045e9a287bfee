import { expect } from 'chai';
import { PURGE_FINALIZER } from '../../../../api/v1alpha1/index.ts';
import { cachedPrePullImageDigest, desiredPrePullImageDigest, prePullImageApplyBody } from '../../../../controller/write/api-objects.ts';
import { desiredPrePullImages, prePullImageKey } from '../../../../controller/derive/desired-images.ts';
import { decodePrePullImage } from '../../../../controller/sources/decode.ts';
import { policy, workload } from '../planning-fixtures.ts';

function derive(purgeOnDelete: boolean) {
  const p = policy('web', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, purgeOnDelete });
  const w = workload({ name: 'shop', podSpec: { containers: [{ name: 'app', image: 'r.example/app:1' }] } });
  const d = desiredPrePullImages([p], [w], new Map()).images.get(prePullImageKey('shop', 'deployment.shop.app'));
  if (d === undefined) throw new Error(`not derived: ${JSON.stringify([...desiredPrePullImages([p], [w], new Map()).images.keys()])}`);
  return d;
}

/** The object as the API server would return it after the apply. */
function stored(body: unknown) {
  const b = JSON.parse(JSON.stringify(body)) as { metadata: Record<string, unknown> };
  b.metadata.generation = 1;
  const ppi = decodePrePullImage(b);
  if (ppi === undefined) throw new Error('apply body does not decode');
  return ppi;
}

describe('controller: derived PrePullImages and purgeOnDelete', () => {
  it('carries the policy\'s purgeOnDelete and the purge finalizer in the applied object', () => {
    const body = prePullImageApplyBody(derive(true)) as { metadata: { finalizers?: string[] }; spec: { purgeOnDelete?: boolean } };
    expect(body.metadata.finalizers).to.deep.equal([PURGE_FINALIZER]);
    expect(body.spec.purgeOnDelete).to.equal(true);
    const plain = prePullImageApplyBody(derive(false)) as { metadata: { finalizers?: string[] }; spec: { purgeOnDelete?: boolean } };
    expect(plain.metadata.finalizers).to.equal(undefined);
    expect(plain.spec.purgeOnDelete).to.equal(undefined);
  });

  it('digests the stored object like the desired one (no rewrite), and notices a missing finalizer', () => {
    for (const purge of [true, false]) {
      const d = derive(purge);
      const ppi = stored(prePullImageApplyBody(d));
      expect(cachedPrePullImageDigest(ppi)).to.equal(desiredPrePullImageDigest(d));
    }
    const d = derive(true);
    const ppi = stored(prePullImageApplyBody(d));
    ppi.metadata.finalizers = [];
    expect(cachedPrePullImageDigest(ppi)).to.not.equal(desiredPrePullImageDigest(d));
    expect(desiredPrePullImageDigest(derive(true))).to.not.equal(desiredPrePullImageDigest(derive(false)));
  });
});
