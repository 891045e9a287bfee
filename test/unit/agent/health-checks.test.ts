import { expect } from 'chai';
import { runtimeLiveness, runtimeReadiness } from '../../../agent/health-checks.ts';

describe('agent/health-checks', () => {
  describe('runtimeLiveness', () => {
    const base = { answeredAtMs: 1_000_000, limitMs: 120_000, lastError: undefined };

    it('stays live while the runtime answered within the limit, even when it is unreachable now', () => {
      expect(runtimeLiveness({ ...base, nowMs: 1_000_000 })).to.deep.equal({ ok: true });
      expect(runtimeLiveness({ ...base, nowMs: 1_120_000, lastError: 'connect ECONNREFUSED' })).to.deep.equal({ ok: true });
    });

    it('fails once the runtime has been silent longer than the limit, naming the time, the flag and the error', () => {
      const r = runtimeLiveness({ ...base, nowMs: 1_125_000, lastError: '14 UNAVAILABLE: No connection established' });
      expect(r.ok).to.equal(false);
      expect(r.ok ? '' : r.reason).to.equal(
        'container runtime has not answered for 125s (--runtime-unreachable-timeout 120s): 14 UNAVAILABLE: No connection established',
      );
    });

    it('never fails with the limit 0', () => {
      expect(runtimeLiveness({ ...base, limitMs: 0, nowMs: 9_000_000_000 })).to.deep.equal({ ok: true });
    });
  });

  describe('runtimeReadiness', () => {
    it('is ready only when the runtime answers', () => {
      expect(runtimeReadiness({ kind: 'ok' })).to.deep.equal({ ok: true });
      expect(runtimeReadiness({ kind: 'connecting', lastError: undefined })).to.deep.equal({ ok: false, reason: 'container runtime not connected yet' });
      expect(runtimeReadiness({ kind: 'connecting', lastError: 'no CRI socket' })).to.deep.equal({ ok: false, reason: 'container runtime not connected yet: no CRI socket' });
      expect(runtimeReadiness({ kind: 'unreachable', error: 'gone' })).to.deep.equal({ ok: false, reason: 'container runtime unreachable: gone' });
    });
  });
});
