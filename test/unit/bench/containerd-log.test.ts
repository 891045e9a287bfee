import { expect } from 'chai';
import { firstPullEvent, parseTimestamp, pullLogEvents } from '../../../bench/containerd-log.ts';

const BASE = Date.UTC(2026, 10, 21, 23, 42, 22);

describe('bench/containerd-log', () => {
  describe('parseTimestamp', () => {
    it('keeps sub-millisecond digits of a UTC timestamp', () => {
      expect(parseTimestamp('2026-11-21T23:42:22.687031923Z')).to.be.closeTo(BASE + 687.031923, 1e-6);
      expect(parseTimestamp('2026-11-21T23:42:22.5Z')).to.equal(BASE + 500);
    });

    it('reads whole seconds and numeric offsets', () => {
      expect(parseTimestamp('2026-11-21T23:42:22Z')).to.equal(BASE);
      // 01:42:22 at +02:00 is 23:42:22 UTC.
      expect(parseTimestamp('2026-11-22T01:42:22.25+02:00')).to.equal(BASE + 250);
      expect(parseTimestamp('2026-11-21T20:42:22-03:00')).to.equal(BASE);
    });

    it('refuses text that is not an RFC 3339 timestamp', () => {
      expect(() => parseTimestamp('yesterday')).to.throw(/not an RFC 3339 timestamp: yesterday/);
      expect(() => parseTimestamp('2026-11-21T23:42:22')).to.throw(/not an RFC 3339/);
    });
  });

  describe('pullLogEvents', () => {
    const log = [
      'time="2026-11-21T23:42:22.100Z" level=info msg="starting cri plugin"',
      'time="2026-11-21T23:42:22.200Z" level=info msg="PullImage \\"127.0.0.1:5000/demo/app:v1\\""',
      'time="2026-11-21T23:42:22.300Z" level=info msg="ImageCreate event name:\\"127.0.0.1:5000/demo/app:v1\\""',
      'time="2026-11-21T23:42:23.400Z" level=info msg="PullImage \\"127.0.0.1:5000/demo/app:v1\\" returns image reference \\"sha256:abc\\""',
      'time="2026-11-21T23:42:23.500Z" level=info msg="PullImage \\"127.0.0.1:5000/demo/missing:v9\\""',
      'time="2026-11-21T23:42:23.600Z" level=error msg="PullImage \\"127.0.0.1:5000/demo/missing:v9\\" failed" error="not found"',
      'PullImage "not a containerd line"',
      '',
    ].join('\n');

    it('finds the start, return and failure of each PullImage call, with its image and time', () => {
      expect(pullLogEvents(log)).to.deep.equal([
        { kind: 'start', image: '127.0.0.1:5000/demo/app:v1', at: BASE + 200 },
        { kind: 'return', image: '127.0.0.1:5000/demo/app:v1', at: BASE + 1400 },
        { kind: 'start', image: '127.0.0.1:5000/demo/missing:v9', at: BASE + 1500 },
        { kind: 'failed', image: '127.0.0.1:5000/demo/missing:v9', at: BASE + 1600 },
      ]);
    });

    it('finds nothing in a log without PullImage calls', () => {
      expect(pullLogEvents('time="2026-11-21T23:42:22Z" level=info msg="PullImageSomethingElse"\n')).to.deep.equal([]);
      expect(pullLogEvents('')).to.deep.equal([]);
    });
  });

  describe('firstPullEvent', () => {
    const events = [
      { kind: 'start' as const, image: 'a', at: 100 },
      { kind: 'return' as const, image: 'a', at: 200 },
      { kind: 'start' as const, image: 'b', at: 250 },
      { kind: 'start' as const, image: 'a', at: 300 },
      { kind: 'return' as const, image: 'a', at: 400 },
    ];

    it('picks the first event of the kind for the image at or after `since`', () => {
      expect(firstPullEvent(events, 'a', 'start', 0)?.at).to.equal(100);
      expect(firstPullEvent(events, 'a', 'start', 101)?.at).to.equal(300);
      expect(firstPullEvent(events, 'a', 'start', 300)?.at).to.equal(300);
      expect(firstPullEvent(events, 'a', 'return', 250)?.at).to.equal(400);
      expect(firstPullEvent(events, 'b', 'start', 0)?.at).to.equal(250);
    });

    it('gives undefined when nothing matches', () => {
      expect(firstPullEvent(events, 'a', 'start', 301)).to.equal(undefined);
      expect(firstPullEvent(events, 'b', 'return', 0)).to.equal(undefined);
      expect(firstPullEvent(events, 'c', 'start', 0)).to.equal(undefined);
    });
  });
});
