import { expect } from 'chai';
import { decode } from '../../../api/schema.ts';
import { nodeImageSetStatusSchema } from '../../../api/v1alpha1/nodeimageset.ts';
import {
  EMPTY_LEDGER,
  classifyStart,
  countStarts,
  entryOf,
  ledgerFromStatus,
  observeRecords,
  type ContainerView,
  type RecordView,
  type StartLedger,
} from '../../../agent/container-starts.ts';
import { buildStatus } from '../../../agent/status-document.ts';
import type { ImageRecord } from '../../../agent/image-record.ts';

const T = Date.UTC(2026, 0, 2, 3, 4, 5);
const A = 'r.example.com/a:v1';
const B = 'r.example.com/b:v1';

const container = (id: string, createdAt: number, imageId: string, image = imageId): ContainerView => ({ id, createdAt, image, imageRef: imageId, imageId });

/** A ledger that has looked once (watermark T) and followed `records` at `at`. */
function looked(records: RecordView[], at = T): StartLedger {
  const first = countStarts(EMPTY_LEDGER, [], records, T);
  return observeRecords(first.ledger, records, at).ledger;
}

describe('agent/container-starts', () => {
  describe('observeRecords', () => {
    it('stamps wantedSince on new entries, readySince and warmSince on kwarm\'s pull, and a time to warm once', () => {
      const o1 = observeRecords(EMPTY_LEDGER, [{ image: A, phase: 'Pending' }], T);
      expect(o1.ledger.entries.get(A)).to.deep.include({ wantedSince: T, warmStarts: 0, coldStarts: 0, savedMs: 0 });
      expect(o1.warmed).to.deep.equal([]);
      const o2 = observeRecords(o1.ledger, [{ image: A, phase: 'Completed', imageId: 'sha256:a', pulledAt: T + 5000, pullMs: 4000 }], T + 6000);
      expect(o2.ledger.entries.get(A)).to.deep.include({ wantedSince: T, readySince: T + 5000, warmSince: T + 5000, pullMs: 4000, timeToWarmMs: 5000 });
      expect(o2.warmed).to.deep.equal([5000]);
      const o3 = observeRecords(o2.ledger, [{ image: A, phase: 'Completed', imageId: 'sha256:a', pulledAt: T + 5000, pullMs: 4000 }], T + 9000);
      expect(o3.warmed).to.deep.equal([]);
    });

    it('an image found present gets readySince but no warmSince', () => {
      const o = observeRecords(observeRecords(EMPTY_LEDGER, [{ image: A, phase: 'Pending' }], T).ledger, [{ image: A, phase: 'Completed', imageId: 'sha256:a' }], T + 1000);
      const e = o.ledger.entries.get(A);
      expect(e?.readySince).to.equal(T + 1000);
      expect(e?.warmSince).to.equal(undefined);
    });

    it('an image found gone loses readySince and warmSince; one waiting for its survey keeps them', () => {
      const warm = observeRecords(EMPTY_LEDGER, [{ image: A, phase: 'Completed', pulledAt: T, pullMs: 10 }], T).ledger;
      expect(observeRecords(warm, [{ image: A, phase: 'Pending' }], T + 1).ledger.entries.get(A)?.warmSince).to.equal(T);
      const gone = observeRecords(warm, [{ image: A, phase: 'Pending', reason: 'RemovedFromRuntime' }], T + 1).ledger.entries.get(A);
      expect(gone?.warmSince).to.equal(undefined);
      expect(gone?.readySince).to.equal(undefined);
      expect(observeRecords(warm, [{ image: A, phase: 'Pulling' }], T + 1).ledger.entries.get(A)?.readySince).to.equal(undefined);
      // A refresh round re-pulling an image the node has: starts meanwhile still find it.
      expect(observeRecords(warm, [{ image: A, phase: 'Pulling', presentBefore: true }], T + 1).ledger.entries.get(A)?.warmSince).to.equal(T);
    });

    it('drops entries that left the spec', () => {
      const l = observeRecords(EMPTY_LEDGER, [{ image: A, phase: 'Pending' }, { image: B, phase: 'Pending' }], T).ledger;
      expect([...observeRecords(l, [{ image: B, phase: 'Pending' }], T).ledger.entries.keys()]).to.deep.equal([B]);
    });
  });

  describe('classifyStart', () => {
    const base = { wantedSince: T, warmStarts: 0, coldStarts: 0, savedMs: 0 };
    it('warm after kwarm\'s pull, cold before kwarm had it, neither when kwarm only found it', () => {
      expect(classifyStart({ ...base, readySince: T + 10, warmSince: T + 10 }, T + 10)).to.equal('warm');
      expect(classifyStart({ ...base, readySince: T + 10, warmSince: T + 10 }, T + 9)).to.equal('cold');
      expect(classifyStart(base, T + 9)).to.equal('cold');
      expect(classifyStart({ ...base, readySince: T + 10 }, T + 20)).to.equal('neither');
      expect(classifyStart({ ...base, readySince: T + 10 }, T + 5)).to.equal('cold');
    });
  });

  describe('entryOf', () => {
    const images = [{ image: A, imageId: 'sha256:a' }, { image: B, imageId: 'sha256:a' }, { image: 'r.example.com/c:v1' }];
    it('prefers the entry named as in the container spec, else the first with the container\'s image id', () => {
      expect(entryOf(container('1', T, 'sha256:a', B), images)).to.equal(B);
      expect(entryOf(container('1', T, 'sha256:a'), images)).to.equal(A);
      expect(entryOf(container('1', T, 'sha256:z'), images)).to.equal(undefined);
    });
  });

  describe('countStarts', () => {
    const pulled: RecordView[] = [{ image: A, phase: 'Completed', imageId: 'sha256:a', pulledAt: T + 1000, pullMs: 2500 }];

    it('the first look only sets the watermark: what ran before is not counted', () => {
      const r = countStarts(EMPTY_LEDGER, [container('old', T + 50_000, 'sha256:a')], pulled, T);
      expect(r.ledger.countedUntil).to.equal(T + 50_000);
      expect(r.warm + r.cold).to.equal(0);
    });

    it('credits the pull time once, at the first warm start, and never counts a container twice', () => {
      const l = looked(pulled);
      const c1 = container('c1', T + 2000, 'sha256:a');
      const c2 = container('c2', T + 3000, 'sha256:a');
      const r1 = countStarts(l, [c1, c2], pulled, T + 4000);
      expect(r1).to.deep.include({ warm: 2, cold: 0, savedMs: 2500 });
      expect(r1.ledger.countedUntil).to.equal(T + 3000);
      expect(r1.ledger.entries.get(A)).to.deep.include({ warmStarts: 2, savedMs: 2500, pullCredited: true });
      const r2 = countStarts(r1.ledger, [c1, c2], pulled, T + 5000);
      expect(r2.ledger).to.equal(r1.ledger);
      expect(r2.warm + r2.cold).to.equal(0);
    });

    it('counts cold the starts before kwarm had the image, and those created before the entry appeared not at all', () => {
      const pending: RecordView[] = [{ image: A, phase: 'Pending', imageId: 'sha256:a' }];
      const l = looked(pending, T + 1000);
      const r = countStarts(l, [container('before', T + 500, 'sha256:a'), container('late', T + 2000, 'sha256:a')], pending, T + 3000);
      expect(r).to.deep.include({ warm: 0, cold: 1, savedMs: 0 });
      // Once kwarm finds it present (the kubelet pulled it), later starts are neither.
      const found = observeRecords(r.ledger, [{ image: A, phase: 'Completed', imageId: 'sha256:a' }], T + 4000).ledger;
      const r2 = countStarts(found, [container('after', T + 5000, 'sha256:a')], pending, T + 6000);
      expect(r2.warm + r2.cold).to.equal(0);
      expect(r2.ledger.countedUntil).to.equal(T + 5000);
    });

    it('ignores containers of images the NodeImageSet does not list, without moving the watermark', () => {
      const l = looked(pulled);
      const r = countStarts(l, [container('x', T + 2000, 'sha256:other')], pulled, T + 3000);
      expect(r.ledger).to.equal(l);
    });
  });

  describe('in status', () => {
    it('survives a round trip through NodeImageSet status, which the CRD schema accepts', () => {
      const l = countStarts(looked(pulled()), [container('c1', T + 2000, 'sha256:a')], pulled(), T + 3000).ledger;
      const records: ImageRecord[] = [{ image: A, phase: 'Completed', round: 0, attempts: 1, imageId: 'sha256:a' }];
      const status = buildStatus({ records, observedGeneration: 1, runtime: undefined, heartbeatAt: undefined, imageFs: undefined, starts: l });
      const decoded = decode(nodeImageSetStatusSchema, JSON.parse(JSON.stringify(status)));
      expect(decoded.ok, decoded.ok ? '' : decoded.errors.join('\n')).to.equal(true);
      expect(status.images?.[0]).to.include({ warmStarts: 1, pullMillisecondsSaved: 2500, pullCredited: true, warmSince: '2026-01-02T03:04:06.000Z' });
      expect(status.startsCountedUntil).to.equal('2026-01-02T03:04:07.000Z');
      const back = ledgerFromStatus(status);
      expect(back.countedUntil).to.equal(l.countedUntil);
      expect(back.entries.get(A)).to.deep.equal(l.entries.get(A));
    });

    function pulled(): RecordView[] {
      return [{ image: A, phase: 'Completed', imageId: 'sha256:a', pulledAt: T + 1000, pullMs: 2500 }];
    }
  });
});
