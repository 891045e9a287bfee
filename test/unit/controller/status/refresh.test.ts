import { expect } from 'chai';
import type { PrePullImageStatus } from '../../../../api/v1alpha1/index.ts';
import {
  intervalDueAt,
  isMutableImage,
  MAX_REQUESTED_LENGTH,
  nextLastTime,
  refreshDecision,
  requestedValue,
  wantedRound,
  type RefreshInput,
} from '../../../../controller/status/refresh.ts';

const IMAGE = 'r.example/app:v1';
const CREATED = '2024-05-01T10:00:00Z';
const at = (iso: string): number => Date.parse(iso);
const MINUTE = 60_000;

function status(over: Partial<PrePullImageStatus> = {}): PrePullImageStatus {
  return { observedGeneration: 1, phase: 'Completed', completionTime: '2024-05-01T10:02:00Z', ...over };
}

function failed(over: Partial<PrePullImageStatus> = {}): PrePullImageStatus {
  return { observedGeneration: 1, phase: 'Failed', ...over };
}

function input(over: Partial<RefreshInput> = {}): RefreshInput {
  return {
    image: IMAGE,
    imageDigest: undefined,
    annotation: undefined,
    refreshInterval: undefined,
    generation: 1,
    creationTimestamp: CREATED,
    status: status(),
    nowMs: at('2024-05-01T10:05:00Z'),
    ...over,
  };
}

describe('controller/refresh', () => {
  describe('wantedRound', () => {
    it('is 0 when never refreshed, else lastTime as Unix seconds', () => {
      expect(wantedRound(undefined)).to.equal(0);
      expect(wantedRound({ lastTime: '2024-05-01T10:00:00Z' })).to.equal(at('2024-05-01T10:00:00Z') / 1000);
      expect(wantedRound({ lastTime: 'garbage' })).to.equal(0);
    });
  });

  describe('nextLastTime', () => {
    it('is now in whole seconds, and always at least one second after the previous refresh', () => {
      expect(nextLastTime(undefined, at('2024-05-01T10:05:00.750Z'))).to.equal('2024-05-01T10:05:00Z');
      expect(nextLastTime({ lastTime: '2024-05-01T10:04:00Z' }, at('2024-05-01T10:05:00Z'))).to.equal('2024-05-01T10:05:00Z');
      // Two refreshes in one second, or a clock behind the last record: still a higher round.
      expect(nextLastTime({ lastTime: '2024-05-01T10:05:00Z' }, at('2024-05-01T10:05:00.300Z'))).to.equal('2024-05-01T10:05:01Z');
      expect(nextLastTime({ lastTime: '2024-05-01T11:00:00Z' }, at('2024-05-01T10:05:00Z'))).to.equal('2024-05-01T11:00:01Z');
    });
  });

  it('isMutableImage: a tag without a pinned digest', () => {
    expect(isMutableImage('r.example/app:v1', undefined)).to.equal(true);
    expect(isMutableImage('r.example/app', undefined)).to.equal(true);
    expect(isMutableImage(`r.example/app@sha256:${'a'.repeat(64)}`, undefined)).to.equal(false);
    expect(isMutableImage('r.example/app:v1', `sha256:${'a'.repeat(64)}`)).to.equal(false);
  });

  it('requestedValue keeps values the CRD can hold and digests longer ones (stable, so no refresh loop)', () => {
    expect(requestedValue('1716543210')).to.equal('1716543210');
    const long = 'x'.repeat(MAX_REQUESTED_LENGTH + 1);
    expect(requestedValue(long)).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(requestedValue(long)).to.equal(requestedValue(long));
    expect(requestedValue(long)).to.not.equal(requestedValue(`${long}y`));
  });

  describe('on demand (annotation kwarm.io/refresh)', () => {
    it('records a new annotation value with lastTime = now and a RefreshRequested event', () => {
      const d = refreshDecision(input({ annotation: '1714557900' }));
      expect(d.kind).to.equal('refresh');
      if (d.kind !== 'refresh') return;
      expect(d.trigger).to.equal('Annotation');
      expect(d.refresh).to.deep.equal({ requested: '1714557900', lastTime: '2024-05-01T10:05:00Z' });
      expect(d.event).to.include({ type: 'Normal', reason: 'RefreshRequested' });
      expect(d.event.message).to.contain('kwarm.io/refresh=1714557900').and.contain(IMAGE);
    });

    it('acts on a value once: the same value again is nothing, a new one is a new refresh with a higher round', () => {
      const first = refreshDecision(input({ annotation: 'a' }));
      if (first.kind !== 'refresh') throw new Error('expected a refresh');
      const after = input({ annotation: 'a', status: status({ refresh: first.refresh }), nowMs: at('2024-05-01T10:05:00Z') });
      expect(refreshDecision(after)).to.deep.equal({ kind: 'none', dueAtMs: undefined });
      const second = refreshDecision({ ...after, annotation: 'b' });
      if (second.kind !== 'refresh') throw new Error('expected a refresh');
      expect(wantedRound(second.refresh)).to.be.above(wantedRound(first.refresh));
    });

    it('retries a Failed image and refreshes pinned digests too (only the interval is for mutable tags)', () => {
      const retried = refreshDecision(input({ annotation: 'x', status: failed() }));
      expect(retried.kind).to.equal('refresh');
      const pinned = refreshDecision(input({ annotation: 'x', imageDigest: `sha256:${'b'.repeat(64)}` }));
      expect(pinned.kind).to.equal('refresh');
    });

    it('does nothing when the annotation is removed', () => {
      const d = refreshDecision(input({ annotation: undefined, status: status({ refresh: { requested: 'a', lastTime: '2024-05-01T10:03:00Z' } }) }));
      expect(d).to.deep.equal({ kind: 'none', dueAtMs: undefined });
    });
  });

  describe('refreshInterval (fake clock)', () => {
    const hourly = { refreshInterval: '1h' };

    it('is due one interval after the image became Completed when never refreshed, and not before', () => {
      const i = input(hourly);
      expect(intervalDueAt(i)).to.equal(at('2024-05-01T11:02:00Z'));
      expect(refreshDecision({ ...i, nowMs: at('2024-05-01T11:01:59Z') })).to.deep.equal({ kind: 'none', dueAtMs: at('2024-05-01T11:02:00Z') });
      const d = refreshDecision({ ...i, nowMs: at('2024-05-01T11:02:00Z') });
      expect(d.kind).to.equal('refresh');
      if (d.kind !== 'refresh') return;
      expect(d.trigger).to.equal('Interval');
      expect(d.refresh).to.deep.equal({ lastTime: '2024-05-01T11:02:00Z' });
      expect(d.event.message).to.contain('refreshInterval 1h');
    });

    it('counts from the later of the last refresh and the last completion, keeping the last annotation value', () => {
      const refreshed = status({ refresh: { requested: 'a', lastTime: '2024-05-01T12:00:00Z' }, completionTime: '2024-05-01T12:03:00Z' });
      expect(intervalDueAt(input({ ...hourly, status: refreshed }))).to.equal(at('2024-05-01T13:03:00Z'));
      const slowRollup = status({ refresh: { requested: 'a', lastTime: '2024-05-01T12:00:00Z' }, completionTime: '2024-05-01T11:00:00Z' });
      expect(intervalDueAt(input({ ...hourly, status: slowRollup }))).to.equal(at('2024-05-01T13:00:00Z'));
      const d = refreshDecision(input({ ...hourly, annotation: 'a', status: refreshed, nowMs: at('2024-05-01T14:00:00Z') }));
      if (d.kind !== 'refresh') throw new Error('expected a refresh');
      expect(d.refresh).to.deep.equal({ requested: 'a', lastTime: '2024-05-01T14:00:00Z' });
    });

    it('retries a Failed mutable tag once per interval, counted from creation when it never completed', () => {
      expect(intervalDueAt(input({ ...hourly, status: failed() }))).to.equal(at('2024-05-01T11:00:00Z'));
      const again = failed({ refresh: { lastTime: '2024-05-01T11:00:00Z' } });
      expect(intervalDueAt(input({ ...hourly, status: again }))).to.equal(at('2024-05-01T12:00:00Z'));
    });

    it('never interrupts a round under way, and waits for a status of the current generation', () => {
      for (const phase of ['Pending', 'InProgress'] as const) {
        const d = refreshDecision(input({ ...hourly, status: status({ phase }), nowMs: at('2024-06-01T00:00:00Z') }));
        expect(d, phase).to.deep.equal({ kind: 'none', dueAtMs: undefined });
      }
      expect(intervalDueAt(input({ ...hourly, generation: 2 }))).to.equal(undefined);
      expect(intervalDueAt(input({ ...hourly, status: undefined }))).to.equal(undefined);
    });

    it('leaves pinned digests and images without an interval alone', () => {
      expect(intervalDueAt(input({ ...hourly, image: `r.example/app@sha256:${'c'.repeat(64)}` }))).to.equal(undefined);
      expect(intervalDueAt(input({ ...hourly, imageDigest: `sha256:${'c'.repeat(64)}` }))).to.equal(undefined);
      expect(intervalDueAt(input({}))).to.equal(undefined);
    });

    it('handles the 1m minimum: a minute after the last refresh, and once per minute when driven by the clock', () => {
      let s = status({ completionTime: '2024-05-01T10:00:30Z' });
      let now = at('2024-05-01T10:00:30Z');
      const refreshes: string[] = [];
      // Ten minutes in 5 s steps, the rollout completing 10 s after each refresh.
      for (let step = 0; step < 120; step++) {
        now += 5000;
        const d = refreshDecision(input({ refreshInterval: '1m', status: s, nowMs: now }));
        if (d.kind === 'refresh') {
          refreshes.push(d.refresh.lastTime);
          s = status({ refresh: d.refresh, completionTime: new Date(now + 10_000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
        } else if (d.dueAtMs !== undefined) {
          expect(d.dueAtMs).to.be.above(now);
        }
      }
      expect(refreshes).to.have.length.within(8, 9);
      for (let i = 1; i < refreshes.length; i++) expect(at(refreshes[i]!) - at(refreshes[i - 1]!)).to.be.at.least(MINUTE);
    });
  });
});
