import { expect } from 'chai';
import { WorkSchedule } from '../../../lib/work-schedule.ts';

describe('lib/work-schedule', () => {
  it('takes the marked keys and those due by now; the rest stay for later', () => {
    const s = new WorkSchedule();
    s.mark('a');
    s.dueAt('b', 100);
    s.dueAt('c', 200);
    expect([...s.take(150)].sort()).to.deep.equal(['a', 'b']);
    expect([...s.take(150)]).to.deep.equal([]);
    expect([...s.take(200)]).to.deep.equal(['c']);
  });

  it('dueAt replaces the time, dueBy keeps the sooner one, forget drops it', () => {
    const s = new WorkSchedule();
    s.dueAt('a', 100);
    s.dueAt('a', 300);
    expect([...s.take(200)]).to.deep.equal([]);
    s.dueBy('a', 500);
    s.dueBy('b', 50);
    expect([...s.take(300)].sort()).to.deep.equal(['a', 'b']);
    s.dueAt('c', 10);
    s.forget('c');
    expect([...s.take(1000)]).to.deep.equal([]);
  });

  it('wait returns at once with work pending, sleeps until the earliest due time, and wakes on a mark or abort', async () => {
    const s = new WorkSchedule();
    const ac = new AbortController();
    s.mark('a');
    await s.wait(0, ac.signal);
    expect(s.marked).to.equal(true);
    s.take(0);
    await s.wait(0, ac.signal, true);
    s.dueAt('b', 0);
    await s.wait(5, ac.signal);
    s.take(5);

    s.dueAt('c', 30);
    let t = performance.now();
    await s.wait(0, ac.signal);
    expect(performance.now() - t).to.be.at.least(25);
    s.take(30);

    // Nothing due: only a mark (or abort) ends the wait.
    t = performance.now();
    const woken = s.wait(0, ac.signal);
    setTimeout(() => { s.mark('d'); }, 20);
    await woken;
    expect(performance.now() - t).to.be.within(15, 5_000);
    expect([...s.take(0)]).to.deep.equal(['d']);
    const aborted = s.wait(0, ac.signal);
    ac.abort();
    await aborted;
  });
});
