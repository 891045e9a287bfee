import { expect } from 'chai';
import { cachedPrePullImageDigest, desiredPrePullImageDigest, prePullImageApplyBody } from '../../../../controller/write/api-objects.ts';
import { desiredPrePullImages, prePullImageKey } from '../../../../controller/derive/desired-images.ts';
import { decodePrePullImage } from '../../../../controller/sources/decode.ts';
import { policy, workload } from '../planning-fixtures.ts';

function derive(gateNewNodes: boolean | undefined) {
  const p = policy('web', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, ...(gateNewNodes !== undefined ? { gateNewNodes } : {}) });
  const w = workload({ name: 'shop', podSpec: { containers: [{ name: 'app', image: 'r.example/app:1' }] } });
  const d = desiredPrePullImages([p], [w], new Map()).images.get(prePullImageKey('shop', 'deployment.shop.app'));
  if (d === undefined) throw new Error('not derived');
  return d;
}

/** The object as the API server would return it after the apply (with the CRD's defaults). */
function stored(body: unknown) {
  const b = JSON.parse(JSON.stringify(body)) as { metadata: Record<string, unknown> };
  b.metadata.generation = 1;
  const ppi = decodePrePullImage(b);
  if (ppi === undefined) throw new Error('apply body does not decode');
  return ppi;
}

describe('controller: derived PrePullImages and gateNewNodes', () => {
  it('carries the policy\'s gateNewNodes into the applied spec only when true', () => {
    expect((prePullImageApplyBody(derive(true)) as { spec: Record<string, unknown> }).spec.gateNewNodes).to.equal(true);
    expect(prePullImageApplyBody(derive(false))).to.have.nested.property('spec').that.not.has.property('gateNewNodes');
    expect(derive(true).spec.gateNewNodes).to.equal(true);
    expect(derive(false).spec).to.not.have.property('gateNewNodes');
  });

  it('digests the stored object like the desired one, and leaves digests of non-gating images as they were', () => {
    for (const gate of [true, false]) {
      const d = derive(gate);
      expect(cachedPrePullImageDigest(stored(prePullImageApplyBody(d)))).to.equal(desiredPrePullImageDigest(d));
    }
    expect(desiredPrePullImageDigest(derive(false))).to.equal(desiredPrePullImageDigest(derive(undefined)));
    expect(desiredPrePullImageDigest(derive(true))).to.not.equal(desiredPrePullImageDigest(derive(false)));
  });
});
