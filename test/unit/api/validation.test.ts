import { expect } from 'chai';
import { decode, type AnySchema } from '../../../api/schema.ts';
import {
  durationMilliseconds,
  isImageDigest,
  isImageReference,
  nodeImageSetSchema,
  prePullImageSchema,
  prePullPolicySchema,
} from '../../../api/v1alpha1/index.ts';
import {
  invalidCases,
  invalidImageReferences,
  validImage,
  validImageReferences,
  validNodeImageSet,
  validPolicy,
  type KindName,
} from './validation-cases.ts';

const schemas: Record<KindName, AnySchema> = {
  PrePullPolicy: prePullPolicySchema,
  PrePullImage: prePullImageSchema,
  NodeImageSet: nodeImageSetSchema,
};

const DIGEST = `sha256:${'a1'.repeat(32)}`;

describe('api/v1alpha1 image references', () => {
  for (const ref of validImageReferences) it(`accepts ${ref.length > 60 ? `${ref.slice(0, 40)}… (${ref.length} chars)` : ref}`, () => { expect(isImageReference(ref)).to.equal(true); });
  for (const ref of invalidImageReferences) it(`rejects ${JSON.stringify(ref.length > 60 ? `${ref.slice(0, 40)}…` : ref)}`, () => { expect(isImageReference(ref)).to.equal(false); });

  it('accepts only sha256 digests of 64 lowercase hex digits', () => {
    expect(isImageDigest(DIGEST)).to.equal(true);
    expect(isImageDigest(DIGEST.toUpperCase())).to.equal(false);
    expect(isImageDigest(`${DIGEST}0`)).to.equal(false);
    expect(isImageDigest(`sha512:${'a'.repeat(64)}`)).to.equal(false);
  });
});

describe('api/v1alpha1 durations', () => {
  it('converts Go durations to milliseconds', () => {
    expect(durationMilliseconds('10m')).to.equal(600_000);
    expect(durationMilliseconds('1h30m')).to.equal(5_400_000);
    expect(durationMilliseconds('1.5s')).to.equal(1500);
    expect(durationMilliseconds('250ms')).to.equal(250);
    expect(durationMilliseconds('1h0m0s')).to.equal(3_600_000);
  });

  it('rejects what is not one', () => {
    for (const bad of ['', '10', 'ten minutes', '10 m', '-1s', '1d', 'm', '1h1m1s1ms', '123456s']) {
      expect(durationMilliseconds(bad), bad).to.equal(undefined);
    }
  });
});

describe('api/v1alpha1 decoding of invalid objects', () => {
  it('accepts the valid objects the cases start from', () => {
    for (const [kind, object] of [['PrePullPolicy', validPolicy()], ['PrePullImage', validImage()], ['NodeImageSet', validNodeImageSet()]] as const) {
      const r = decode(schemas[kind], object);
      expect(r.ok ? [] : r.errors, kind).to.deep.equal([]);
    }
  });

  for (const c of invalidCases) {
    it(`rejects ${c.title}, naming ${c.field}`, () => {
      const r = decode(schemas[c.kind], c.object);
      const errors = r.ok ? [] : r.errors;
      expect(errors.some((e) => e.startsWith(`${c.field}: `) && e.includes(c.decoder)), errors.join('\n')).to.equal(true);
    });
  }
});
