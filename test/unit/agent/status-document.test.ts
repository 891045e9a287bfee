import { expect } from 'chai';
import { decode } from '../../../api/schema.ts';
import { nodeImageSetStatusSchema } from '../../../api/v1alpha1/nodeimageset.ts';
import { buildStatus, statusKey, statusMergePatch } from '../../../agent/status-document.ts';
import type { ImageRecord } from '../../../agent/image-record.ts';

const T = Date.UTC(2025, 4, 6, 7, 8, 9);

const records: ImageRecord[] = [
  { image: 'r.example.com/a:v1', phase: 'Completed', round: 0, attempts: 1, imageId: 'sha256:aa', repoDigest: 'r.example.com/a@sha256:bb', sizeBytes: 10, startedAt: T, finishedAt: T + 1000 },
  { image: 'r.example.com/b:v1', phase: 'Pulling', round: 1, attempts: 2, startedAt: T },
  { image: 'r.example.com/c:v1', phase: 'Failed', round: 0, attempts: 1, reason: 'NotFound', message: 'not found' },
  { image: 'r.example.com/d:v1', phase: 'Pending', round: 0, attempts: 0 },
];

describe('agent/status-document', () => {
  it('builds a status that the CRD schema accepts, with counts by phase', () => {
    const status = buildStatus({
      records,
      observedGeneration: 4,
      runtime: { name: 'containerd', version: 'v1.6.20' },
      heartbeatAt: T,
      imageFs: { usedBytes: 5, capacityBytes: 100, usedPercent: 5, pullsPaused: false },
    });
    const decoded = decode(nodeImageSetStatusSchema, JSON.parse(JSON.stringify(status)));
    expect(decoded.ok, decoded.ok ? '' : decoded.errors.join('\n')).to.equal(true);
    expect(status).to.include({ desired: 4, ready: 1, pulling: 1, failed: 1, observedGeneration: 4, heartbeatTime: '2025-05-06T07:08:09Z' });
    expect(status.images?.map((i) => i.phase)).to.deep.equal(['Completed', 'Pulling', 'Failed', 'Pending']);
  });

  it('the merge patch clears what the document leaves out and replaces the image list whole', () => {
    const patch = statusMergePatch(buildStatus({ records: records.slice(3), observedGeneration: undefined, runtime: undefined, heartbeatAt: undefined, imageFs: { usedBytes: 1 } }));
    expect(patch.status.observedGeneration).to.equal(null);
    expect(patch.status.runtime).to.equal(null);
    expect(patch.status.heartbeatTime).to.equal(null);
    expect(patch.status.imageFs).to.deep.equal({ usedBytes: 1, capacityBytes: null, usedPercent: null, pullsPaused: null });
    expect(patch.status.images).to.have.length(1);
    expect(patch.status.desired).to.equal(1);
  });

  it('given the status last written, sends only the fields that changed: a heartbeat at 512 images is a few bytes', () => {
    const many: ImageRecord[] = Array.from({ length: 512 }, (_, i) => ({
      image: `registry.example.com/team/app-${i}:v1`, phase: 'Completed', round: 0, attempts: 1, imageId: `sha256:${String(i).padStart(64, '0')}`,
      repoDigest: `registry.example.com/team/app-${i}@sha256:${String(i).padStart(64, 'f')}`, sizeBytes: 1_000_000 + i, startedAt: T, finishedAt: T + 1000, lastVerifiedAt: T + 1000,
    }));
    const input = { records: many, observedGeneration: 3, runtime: { name: 'containerd', version: '1.7' }, heartbeatAt: T, imageFs: { usedBytes: 5, capacityBytes: 100 } };
    const written = buildStatus(input);
    const full = JSON.stringify(statusMergePatch(written)).length;
    const beat = statusMergePatch(buildStatus({ ...input, heartbeatAt: T + 300_000, imageFs: { usedBytes: 6, capacityBytes: 100 } }), written);
    expect(beat.status).to.deep.equal({ heartbeatTime: '2025-05-06T07:13:09Z', imageFs: { usedBytes: 6, capacityBytes: 100, usedPercent: null, pullsPaused: null } });
    expect(JSON.stringify(beat).length).to.be.below(200);
    expect(full).to.be.above(150_000);
    // One image finishing sends the list (a merge patch replaces lists whole) and the counts, nothing else.
    const changed = statusMergePatch(buildStatus({ ...input, records: many.map((r, i) => (i === 7 ? { ...r, phase: 'Failed' as const } : r)) }), written);
    expect(Object.keys(changed.status).sort()).to.deep.equal(['failed', 'images', 'ready']);
    // A field that went away is cleared.
    expect(statusMergePatch(buildStatus({ ...input, runtime: undefined }), written).status).to.deep.equal({ runtime: null });
  });

  it('gives equal keys for equal content and different keys for any change', () => {
    const input = { records, observedGeneration: 1, runtime: undefined, heartbeatAt: T, imageFs: undefined };
    expect(statusKey(buildStatus(input))).to.equal(statusKey(buildStatus({ ...input, records: records.map((r) => ({ ...r })) })));
    expect(statusKey(buildStatus(input))).to.not.equal(statusKey(buildStatus({ ...input, heartbeatAt: T + 1000 })));
    // Sub-second changes are not content: times have second precision.
    expect(statusKey(buildStatus(input))).to.equal(statusKey(buildStatus({ ...input, heartbeatAt: T + 400 })));
  });
});
