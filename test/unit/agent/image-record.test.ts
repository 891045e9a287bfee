import { expect } from 'chai';
import type { NodeImage } from '../../../api/v1alpha1/nodeimageset.ts';
import type { ImageInfo } from '../../../agent/cri/runtime.ts';
import {
  classifySpecChange,
  digestProblem,
  needsPull,
  recordStatus,
  reportedRepoDigest,
  rfc3339,
} from '../../../agent/image-record.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function entry(image: string, extra: Partial<NodeImage> = {}): NodeImage {
  return { image, pullSecrets: [], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: 0, sources: [], ...extra };
}

function info(repoDigests: string[], id = `sha256:${'c'.repeat(64)}`): ImageInfo {
  return { id, repoTags: [], repoDigests, sizeBytes: 100, pinned: false, username: '' };
}

describe('agent/image-record', () => {
  describe('needsPull', () => {
    const present = info([`registry.example.com/team/app@${D1}`]);
    const ctx = (e: NodeImage, over: { force?: boolean; resolvedThisRound?: boolean } = {}) => ({ entry: e, force: false, resolvedThisRound: false, ...over });

    it('pulls what the runtime does not have, and nothing else for a fixed tag (IfNotPresent)', () => {
      expect(needsPull(undefined, ctx(entry('registry.example.com/team/app:v1')))).to.equal(true);
      expect(needsPull(present, ctx(entry('registry.example.com/team/app:v1')))).to.equal(false);
    });

    it('pulls again when the round was raised, even if present', () => {
      expect(needsPull(present, ctx(entry('registry.example.com/team/app:v1'), { force: true }))).to.equal(true);
    });

    it('re-resolves :latest and untagged references once per round', () => {
      for (const image of ['registry.example.com/team/app', 'registry.example.com/team/app:latest', 'nginx']) {
        expect(needsPull(present, ctx(entry(image))), image).to.equal(true);
        expect(needsPull(present, ctx(entry(image), { resolvedThisRound: true })), image).to.equal(false);
      }
    });

    it('pulls when a pinned imageDigest does not match what the runtime has for that repository', () => {
      expect(needsPull(present, ctx(entry('registry.example.com/team/app:v1', { imageDigest: D1 })))).to.equal(false);
      expect(needsPull(present, ctx(entry('registry.example.com/team/app:v1', { imageDigest: D2 })))).to.equal(true);
      // The same digest under another repository does not count.
      const elsewhere = info([`registry.example.com/other/app@${D1}`]);
      expect(needsPull(elsewhere, ctx(entry('registry.example.com/team/app:v1', { imageDigest: D1 })))).to.equal(true);
    });
  });

  it('digestProblem names the wanted and reported digests', () => {
    expect(digestProblem(info([`r.example.com/a@${D1}`]), entry('r.example.com/a:v1', { imageDigest: D1 }))).to.equal(undefined);
    expect(digestProblem(info([`r.example.com/a@${D1}`]), entry('r.example.com/a:v1'))).to.equal(undefined);
    const p = digestProblem(info([`r.example.com/a@${D1}`]), entry('r.example.com/a:v1', { imageDigest: D2 }));
    expect(p).to.include(D2).and.to.include(D1);
    expect(digestProblem(info([]), entry('r.example.com/a:v1', { imageDigest: D2 }))).to.include('no repo digest');
  });

  it('reports the repo digest of the image\'s own repository, Docker Hub names normalised', () => {
    const i = info([`docker.io/library/other@${D2}`, `docker.io/library/nginx@${D1}`]);
    expect(reportedRepoDigest(i, 'nginx:1.27')).to.equal(`docker.io/library/nginx@${D1}`);
    expect(reportedRepoDigest(i, 'quay.io/x/y:1')).to.equal(`docker.io/library/other@${D2}`);
    expect(reportedRepoDigest(info([]), 'nginx')).to.equal(undefined);
  });

  describe('classifySpecChange', () => {
    it('tells a raised round from changed settings from nothing relevant', () => {
      const e = entry('a.example.com/x:v1', { pullSecrets: ['s1', 's2'] });
      expect(classifySpecChange(e, { ...e, sources: [{ namespace: 'n', name: 'p' }] }).kind).to.equal('unchanged');
      expect(classifySpecChange(e, { ...e, pullSecrets: ['s2', 's1'] }).kind).to.equal('unchanged');
      expect(classifySpecChange(e, { ...e, round: 1 }).kind).to.equal('new-round');
      expect(classifySpecChange(e, { ...e, pullSecrets: ['s3'] }).kind).to.equal('settings');
      expect(classifySpecChange(e, { ...e, timeout: '1m' }).kind).to.equal('settings');
      expect(classifySpecChange(e, { ...e, retry: { maxAttempts: 5, backoffSeconds: 30 } }).kind).to.equal('settings');
      expect(classifySpecChange(e, { ...e, imageDigest: D1 }).kind).to.equal('settings');
    });
  });

  describe('recordStatus', () => {
    it('writes times with second precision and bounds reason and message to the schema', () => {
      const s = recordStatus({
        image: 'a', phase: 'Failed', round: 2, attempts: 3, reason: 'R'.repeat(300), message: 'é'.repeat(2000),
        startedAt: Date.UTC(2025, 0, 2, 3, 4, 5, 678), finishedAt: Date.UTC(2025, 0, 2, 3, 4, 6, 1),
      });
      expect(s.startedAt).to.equal('2025-01-02T03:04:05Z');
      expect(s.finishedAt).to.equal('2025-01-02T03:04:06Z');
      expect(s.reason).to.have.length(128);
      expect(Array.from(s.message ?? '')).to.have.length(1024);
      expect(s).to.include({ image: 'a', phase: 'Failed', round: 2, attempts: 3 });
      expect(s).to.not.have.property('imageId');
    });

    it('rfc3339 drops the milliseconds', () => {
      expect(rfc3339(Date.UTC(2030, 5, 6, 7, 8, 9, 999))).to.equal('2030-06-06T07:08:09Z');
    });
  });
});
