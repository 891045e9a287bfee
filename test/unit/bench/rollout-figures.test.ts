import { expect } from 'chai';
import { gateHold, goDurationMs, histogramTotals, imageWait, meanBetweenMs, type KubeletEvent } from '../../../bench/rollout-figures.ts';

const IMAGE = '127.0.0.1:5001/bench/rollout:kwarm-3';

function pulled(pod: string, message: string): KubeletEvent {
  return { reason: 'Pulled', message, involvedObject: { kind: 'Pod', name: pod } };
}

describe('bench/rollout-figures', () => {
  describe('goDurationMs', () => {
    it('reads the duration texts the kubelet prints', () => {
      expect(goDurationMs('7.123s')).to.equal(7123);
      expect(goDurationMs('850ms')).to.equal(850);
      expect(goDurationMs('1m2.5s')).to.equal(62_500);
      expect(goDurationMs('12µs')).to.be.closeTo(0.012, 1e-9);
    });

    it('refuses text that is not a duration', () => {
      expect(goDurationMs('')).to.equal(undefined);
      expect(goDurationMs('7.1 s')).to.equal(undefined);
      expect(goDurationMs('soon')).to.equal(undefined);
    });
  });

  describe('imageWait', () => {
    it('takes the time including waiting from a Pulled event', () => {
      const events = [pulled('a', `Successfully pulled image "${IMAGE}" in 3.2s (8.514s including waiting). Image size: 209715200 bytes.`)];
      expect(imageWait(events, 'a', IMAGE)).to.deep.equal({ kind: 'pulled', ms: 8514 });
    });

    it('falls back to the pull time when the kubelet gives no waiting time', () => {
      expect(imageWait([pulled('a', `Successfully pulled image "${IMAGE}" in 2.5s`)], 'a', IMAGE)).to.deep.equal({ kind: 'pulled', ms: 2500 });
    });

    it('an image already present is no wait', () => {
      const events = [pulled('a', `Container image "${IMAGE}" already present on machine and can be accessed by the pod`)];
      expect(imageWait(events, 'a', IMAGE)).to.deep.equal({ kind: 'present' });
    });

    it('only that pod\'s events about that image count', () => {
      const events = [
        pulled('b', `Successfully pulled image "${IMAGE}" in 3s (3s including waiting)`),
        pulled('a', 'Successfully pulled image "other:v1" in 3s (3s including waiting)'),
        { reason: 'Pulling', message: `Pulling image "${IMAGE}"`, involvedObject: { kind: 'Pod', name: 'a' } },
      ];
      expect(imageWait(events, 'a', IMAGE)).to.deep.equal({ kind: 'unknown' });
    });
  });

  describe('gateHold', () => {
    const released = (pod: string, reason: string, at: string): KubeletEvent => ({ reason, message: 'Removed scheduling gate kwarm.io/images-warm', involvedObject: { kind: 'Pod', name: pod }, firstTimestamp: at });

    it('is pod creation to kwarm\'s release Event', () => {
      const events = [released('a', 'RolloutGateReleased', '2026-12-06T12:00:14Z')];
      expect(gateHold(events, 'a', '2026-12-06T12:00:03Z')).to.deep.equal({ kind: 'held', ms: 11_000, timedOut: false });
    });

    it('says when the gate came off at the timeout', () => {
      const events = [released('a', 'RolloutGateTimedOut', '2026-12-06T12:05:03Z')];
      expect(gateHold(events, 'a', '2026-12-06T12:00:03Z')).to.deep.equal({ kind: 'held', ms: 300_000, timedOut: true });
    });

    it('a pod with no release Event of its own was never gated', () => {
      const events = [released('b', 'RolloutGateReleased', '2026-12-06T12:00:14Z'), pulled('a', `Container image "${IMAGE}" already present on machine`)];
      expect(gateHold(events, 'a', '2026-12-06T12:00:03Z')).to.deep.equal({ kind: 'never' });
    });

    it('refuses an Event without a time rather than guess', () => {
      const events: KubeletEvent[] = [{ reason: 'RolloutGateReleased', involvedObject: { kind: 'Pod', name: 'a' } }];
      expect(() => gateHold(events, 'a', '2026-12-06T12:00:03Z')).to.throw(/not a time/);
    });
  });

  describe('pod start histograms', () => {
    const metrics = (sum1: number, count1: number, sum2: number, count2: number): string => `# HELP kubelet_pod_start_total_duration_seconds [ALPHA] Duration
# TYPE kubelet_pod_start_total_duration_seconds histogram
kubelet_pod_start_total_duration_seconds_bucket{le="0.5"} 0
kubelet_pod_start_total_duration_seconds_sum{kind="a"} ${sum1}
kubelet_pod_start_total_duration_seconds_count{kind="a"} ${count1}
kubelet_pod_start_total_duration_seconds_sum{kind="b"} ${sum2}
kubelet_pod_start_total_duration_seconds_count{kind="b"} ${count2}
kubelet_pod_start_sli_duration_seconds_sum 99
kubelet_pod_start_sli_duration_seconds_count 9
`;

    it('sums one histogram over its label sets and ignores the others', () => {
      expect(histogramTotals(metrics(10, 2, 5, 1), 'kubelet_pod_start_total_duration_seconds')).to.deep.equal({ sum: 15, count: 3 });
      expect(histogramTotals(metrics(10, 2, 5, 1), 'kubelet_pod_start_sli_duration_seconds')).to.deep.equal({ sum: 99, count: 9 });
      expect(histogramTotals('', 'kubelet_pod_start_sli_duration_seconds')).to.deep.equal({ sum: 0, count: 0 });
    });

    it('the mean of the observations between two readings, in ms', () => {
      const before = histogramTotals(metrics(10, 2, 5, 1), 'kubelet_pod_start_total_duration_seconds');
      const after = histogramTotals(metrics(22, 4, 9, 2), 'kubelet_pod_start_total_duration_seconds');
      expect(meanBetweenMs(before, after)).to.equal(((31 - 15) / 3) * 1000);
      expect(meanBetweenMs(before, before)).to.equal(undefined);
    });
  });
});
