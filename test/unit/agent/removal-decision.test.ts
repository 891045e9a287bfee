import { expect } from 'chai';
import { decode } from '../../../api/schema.ts';
import { nodeImageSetStatusSchema } from '../../../api/v1alpha1/index.ts';
import type { ContainerInfo, ImageInfo } from '../../../agent/cri/runtime.ts';
import { afterRemoval, containerUses, firstStep, removalStatus, secondStep } from '../../../agent/removal-decision.ts';

const IMAGE = 'registry.example/team/app:1';
const info: ImageInfo = {
  id: 'sha256:aaaa', repoTags: [IMAGE], repoDigests: ['registry.example/team/app@sha256:dddd'], sizeBytes: 10, pinned: false, username: '',
};

/** The agent pulled `info` itself; no sandbox image known. */
const OURS = { pulledImageIds: ['sha256:aaaa'], sandboxImageIds: [] };

function container(extra: Partial<ContainerInfo>): ContainerInfo {
  return {
    id: '0123456789abcdef0123', podSandboxId: 'sb', name: 'web', attempt: 0, image: 'sha256:other', imageRef: 'sha256:other', imageId: '',
    state: 'running', createdAt: new Date(0), labels: {}, ...extra,
  };
}

describe('agent/removal-decision', () => {
  it('keeps an image spec.images also lists, without asking the runtime', () => {
    expect(firstStep(IMAGE, [{ image: IMAGE, phase: 'Completed' }])).to.deep.equal({
      kind: 'answer', answer: { result: 'Kept', reason: 'Wanted', message: 'spec.images of this NodeImageSet also lists it' },
    });
  });

  it('waits while an image of the same repository is being pulled (a removal never races a pull)', () => {
    expect(firstStep(IMAGE, [{ image: 'registry.example/team/app:2', phase: 'Pulling' }]).kind).to.equal('wait');
    expect(firstStep(IMAGE, [{ image: 'registry.example/team/app:2', phase: 'Pending' }]).kind).to.equal('wait');
    expect(firstStep(IMAGE, [{ image: 'registry.example/team/app:2', phase: 'Completed', imageId: 'sha256:bbbb' }]).kind).to.equal('look-up');
    expect(firstStep(IMAGE, [{ image: 'registry.example/other:1', phase: 'Pulling' }]).kind).to.equal('look-up');
  });

  it('answers NotPresent when the runtime does not have it', () => {
    expect(secondStep(IMAGE, undefined, [], [], OURS)).to.deep.equal({ kind: 'answer', answer: { result: 'NotPresent' } });
  });

  it('keeps an image wanted under another name (the runtime would remove every name of it)', () => {
    const s = secondStep(IMAGE, info, [{ image: 'registry.example/team/app@sha256:dddd', phase: 'Completed', imageId: 'sha256:aaaa' }], [], OURS);
    expect(s).to.deep.include({ kind: 'answer' });
    expect(s.kind === 'answer' && s.answer).to.include({ result: 'Kept', reason: 'Wanted' });
  });

  it('keeps an image a created, running or unknown container uses, naming them; exited ones do not count', () => {
    const users = [
      container({ name: 'web', imageId: 'sha256:aaaa' }),
      container({ name: 'init', id: 'ffffffffffffffffffff', state: 'created', imageRef: 'registry.example/team/app@sha256:dddd' }),
      container({ name: 'old', state: 'exited', imageId: 'sha256:aaaa' }),
      container({ name: 'other' }),
    ];
    const s = secondStep(IMAGE, info, [], users, OURS);
    if (s.kind !== 'answer' || s.answer.result !== 'Kept') throw new Error(`expected Kept, got ${JSON.stringify(s)}`);
    expect(s.answer.reason).to.equal('InUse');
    expect(s.answer.message).to.equal('used by containers web (0123456789abc, running), init (fffffffffffff, created)');
    expect(secondStep(IMAGE, info, [], [users[2]!, users[3]!], OURS)).to.deep.equal({ kind: 'remove', imageId: 'sha256:aaaa' });
  });

  it('removes only what kwarm brought in: never an image it did not pull, a pinned one or the sandbox image', () => {
    const keptFor = (i: ImageInfo, protect: { pulledImageIds: string[]; sandboxImageIds: string[] }): string => {
      const s = secondStep(IMAGE, i, [], [], protect);
      return s.kind === 'answer' && s.answer.result === 'Kept' ? s.answer.reason : s.kind;
    };
    expect(keptFor(info, OURS)).to.equal('remove');
    expect(keptFor(info, { pulledImageIds: ['sha256:other'], sandboxImageIds: [] })).to.equal('NotPulledByKwarm');
    expect(keptFor({ ...info, pinned: true }, OURS)).to.equal('Pinned');
    expect(keptFor(info, { pulledImageIds: ['sha256:aaaa'], sandboxImageIds: ['sha256:aaaa'] })).to.equal('SandboxImage');
  });

  it('matches containers by image id, image ref, tag or digest reference', () => {
    expect(containerUses(container({ imageId: 'sha256:aaaa' }), info, IMAGE)).to.equal(true);
    expect(containerUses(container({ imageRef: 'sha256:aaaa' }), info, IMAGE)).to.equal(true);
    expect(containerUses(container({ image: IMAGE }), info, IMAGE)).to.equal(true);
    expect(containerUses(container({ imageRef: 'registry.example/team/app@sha256:dddd' }), info, IMAGE)).to.equal(true);
    expect(containerUses(container({}), info, IMAGE)).to.equal(false);
  });

  it('verifies the removal, and builds status entries the CRD accepts', () => {
    expect(afterRemoval(undefined)).to.deep.equal({ result: 'Removed' });
    const failed = afterRemoval(info);
    expect(failed).to.include({ result: 'Failed', reason: 'StillPresent' });
    const entries = [
      removalStatus(IMAGE, { result: 'Removed' }, Date.UTC(2026, 0, 1, 0, 0, 0, 900)),
      removalStatus('registry.example/b:1', failed, 0),
      removalStatus('registry.example/c:1', { result: 'Kept', reason: 'InUse', message: 'x'.repeat(5000) }, 0),
    ];
    expect(entries[0]).to.deep.equal({ image: IMAGE, result: 'Removed', time: '2026-01-01T00:00:00Z' });
    const r = decode(nodeImageSetStatusSchema, { removals: entries });
    if (!r.ok) throw new Error(r.errors.join('; '));
    expect(entries[2]?.message).to.have.length(1024);
  });
});
