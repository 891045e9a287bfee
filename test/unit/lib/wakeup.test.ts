import { expect } from 'chai';
import { Wakeup } from '../../../lib/wakeup.ts';

describe('lib/wakeup', () => {
  it('ends a wait on wake(), on the timeout, or on abort, whichever comes first', async () => {
    const w = new Wakeup();
    const ac = new AbortController();
    const woken = w.wait(10_000, ac.signal);
    w.wake();
    expect(await woken).to.equal('woken');
    expect(await w.wait(5, ac.signal)).to.equal('timeout');
    const aborted = w.wait(undefined, ac.signal);
    ac.abort();
    expect(await aborted).to.equal('aborted');
    expect(await w.wait(10_000, ac.signal)).to.equal('aborted');
  });

  it('does not remember a wake() while nobody waits', async () => {
    const w = new Wakeup();
    w.wake();
    expect(await w.wait(5, new AbortController().signal)).to.equal('timeout');
  });
});
