import { expect } from 'chai';
import { broughtIn, withoutPulled, withPulled } from '../../../agent/pulled-images.ts';

describe('agent/pulled-images', () => {
  it('counts a pull as bringing the image in only when the runtime had other content (or none) under the reference', () => {
    expect(broughtIn(undefined, 'sha256:a')).to.equal(true);
    expect(broughtIn('sha256:old', 'sha256:a')).to.equal(true);
    expect(broughtIn('sha256:a', 'sha256:a')).to.equal(false);
  });

  it('keeps ids once, newest last, and forgets the oldest beyond the limit', () => {
    expect(withPulled(['a', 'b'], 'a')).to.deep.equal(['b', 'a']);
    expect(withPulled(['a', 'b', 'c'], 'd', 3)).to.deep.equal(['b', 'c', 'd']);
    expect(withoutPulled(['a', 'b'], 'a')).to.deep.equal(['b']);
  });
});
