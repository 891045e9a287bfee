import { expect } from 'chai';
import type { RequestOptions } from 'node:https';
import { NodeImageSetTimeline } from '../../../bench/status-timeline.ts';
import { KubeClient } from '../../../lib/kube-client.ts';

// Only what runs without the API server: the timeline is never started, and any request it made would
// fail (the watch itself is exercised by the benchmarks against a real kube-apiserver).
function idleTimeline(): NodeImageSetTimeline {
  const access = {
    getCurrentCluster: () => ({ server: 'https://127.0.0.1:1' }),
    applyToHTTPSOptions: (_opts: RequestOptions): Promise<void> => Promise.reject(new Error('no API server in a unit test')),
  };
  return new NodeImageSetTimeline(new KubeClient(access));
}

describe('bench/status-timeline', () => {
  it('knows no times before its watch has delivered anything', () => {
    const t = idleTimeline();
    expect(t.specAt('node-1', 'app:v1')).to.equal(undefined);
    expect(t.statusAt('node-1', 'app:v1', 'Completed')).to.equal(undefined);
    expect(t.statusAt('node-1', 'app:v1', 'Pulling', 2)).to.equal(undefined);
  });

  it('waitFor returns the probe\'s first defined value', async () => {
    let calls = 0;
    const v = await idleTimeline().waitFor('the third probe', () => (++calls < 3 ? undefined : calls * 10), 5000);
    expect(v).to.equal(30);
    expect(calls).to.equal(3);
  });

  it('waitFor gives up after its timeout, saying what it waited for', async () => {
    const started = Date.now();
    let error: unknown;
    try {
      await idleTimeline().waitFor('node-1 to pull app:v1', () => undefined, 50);
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.equal('timed out after 50 ms waiting for node-1 to pull app:v1');
    expect(Date.now() - started).to.be.at.least(50);
  });
});
