// Leader election on a real Lease: one leader at a time, fast hand-over on release, takeover after expiry, a
// leader cut off from the API server (through a proxy that goes silent) stepping down before anyone can take
// over, and a leader stepping down at once when the Lease names another holder.
import { expect } from 'chai';
import winston from 'winston';
import { KubeClient } from '../../../lib/kube-client.ts';
import { LeaderElector } from '../../../lib/leader-election.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { startHalfOpenProxy } from './half-open-proxy.ts';

describe('lib: leader election on a real Lease', function () {
  this.timeout(120_000);
  const log = winston.createLogger({ silent: true });
  let client: KubeClient;
  let cp: ControlPlane;

  before(async () => {
    cp = await sharedControlPlane();
    client = new KubeClient(cp.kubeConfig());
    await client.create('/api/v1/namespaces', { metadata: { name: 'le-test' } }, AbortSignal.timeout(10_000)).catch(() => undefined);
  });
  after(() => { client.close(); });

  const elector = (identity: string, name: string, via = client, retryPeriodMs = 250): LeaderElector => new LeaderElector({
    client: via, namespace: 'le-test', name, identity, log, leaseDurationSeconds: 3, renewDeadlineMs: 2000, retryPeriodMs,
  });

  /** A leader's work that notes (monotonic time) when it started and when its signal aborted. */
  const timedWork = (times: { startedAt?: number; abortedAt?: number }) => (s: AbortSignal): Promise<void> => {
    times.startedAt = performance.now();
    return new Promise<void>((resolve) => {
      s.addEventListener('abort', () => { times.abortedAt = performance.now(); resolve(); }, { once: true });
    });
  };

  it('lets one replica lead, and hands over on release', async () => {
    const a = elector('a', 'handover');
    const b = elector('b', 'handover');
    const acA = new AbortController();
    const acB = new AbortController();
    const leaders: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const lead = (who: string) => async (s: AbortSignal): Promise<void> => {
      leaders.push(who);
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise<void>((resolve) => { s.addEventListener('abort', () => { resolve(); }, { once: true }); });
      concurrent--;
    };
    const runA = a.run(acA.signal, lead('a'));
    await waitFor(() => a.isLeader, { what: 'a to lead' });
    const runB = b.run(acB.signal, lead('b'));
    await new Promise((r) => setTimeout(r, 1500));
    expect(b.isLeader).to.equal(false);
    const released = Date.now();
    acA.abort();
    expect(await runA).to.equal('stopped');
    await waitFor(() => b.isLeader, { what: 'b to take over', timeoutMs: 10_000 });
    // Released leases are taken at the next retry, well before the 3 s lease would have expired.
    expect(Date.now() - released).to.be.lessThan(2500);
    acB.abort();
    await runB;
    expect(leaders).to.deep.equal(['a', 'b']);
    expect(maxConcurrent).to.equal(1);
  });

  it('takes over a lease whose holder stopped renewing, only after it expires', async () => {
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    await client.create('/apis/coordination.k8s.io/v1/namespaces/le-test/leases', {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'stale' },
      spec: { holderIdentity: 'crashed', leaseDurationSeconds: 3, renewTime: now, acquireTime: now },
    }, AbortSignal.timeout(10_000));
    const c = elector('c', 'stale');
    const ac = new AbortController();
    const start = Date.now();
    const run = c.run(ac.signal, (s) => new Promise<void>((resolve) => { s.addEventListener('abort', () => { resolve(); }, { once: true }); }));
    await waitFor(() => c.isLeader, { what: 'c to take the stale lease', timeoutMs: 15_000 });
    expect(Date.now() - start).to.be.greaterThanOrEqual(2900);
    const lease = await client.get('/apis/coordination.k8s.io/v1/namespaces/le-test/leases/stale', AbortSignal.timeout(5000)) as { spec: { holderIdentity: string; leaseTransitions: number } };
    expect(lease.spec.holderIdentity).to.equal('c');
    expect(lease.spec.leaseTransitions).to.equal(1);
    ac.abort();
    await run;
  });

  it('steps a leader cut off from the API server down before the standby can take the lease', async () => {
    const dir = makeTempDir('le-cutoff');
    const proxy = await startHalfOpenProxy(new URL(cp.server));
    const cutOff = new KubeClient(cp.kubeConfig(proxy.kubeconfig(cp.adminKubeconfig, dir)));
    try {
      for (let round = 0; round < 3; round++) {
        const name = `cutoff-${round}`;
        // 500 ms retries: an attempt may take up to 1 s, as long as half the margin between deadline and lease.
        const a = elector('a', name, cutOff, 500);
        const b = elector('b', name, client, 500);
        const acA = new AbortController();
        const acB = new AbortController();
        const ta: { startedAt?: number; abortedAt?: number } = {};
        const tb: { startedAt?: number; abortedAt?: number } = {};
        const runA = a.run(acA.signal, timedWork(ta));
        await waitFor(() => a.isLeader, { what: 'a to lead' });
        const runB = b.run(acB.signal, timedWork(tb));
        // Cut a off at a different point of its renewal cycle each round.
        await new Promise((r) => setTimeout(r, 1200 + round * 170));
        proxy.freeze();
        const frozenAt = performance.now();
        await waitFor(() => tb.startedAt !== undefined, { what: 'b to take over', timeoutMs: 15_000 });
        expect(await runA).to.equal('lost');
        const story = `round ${round}: a stopped ${Math.round((ta.abortedAt ?? NaN) - frozenAt)} ms after the cut, b led ${Math.round((tb.startedAt ?? NaN) - frozenAt)} ms after it`;
        expect(ta.abortedAt, story).to.be.a('number');
        expect(ta.abortedAt ?? Infinity, story).to.be.lessThan(tb.startedAt ?? -Infinity);
        // The renew deadline (2 s) counts from the last renewal sent, which was before the cut; 400 ms for a timer
        // that fires late on a loaded machine.
        expect((ta.abortedAt ?? Infinity) - frozenAt, story).to.be.lessThan(2400);
        acB.abort();
        await runB;
        proxy.thaw();
        acA.abort();
      }
    } finally {
      cutOff.close();
      await proxy.stop();
      removeDir(dir);
    }
  });

  it('stops leading at once when the Lease shows another holder', async () => {
    const a = elector('a', 'intruded');
    const ac = new AbortController();
    const t: { startedAt?: number; abortedAt?: number } = {};
    const run = a.run(ac.signal, timedWork(t));
    await waitFor(() => a.isLeader, { what: 'a to lead' });
    const path = '/apis/coordination.k8s.io/v1/namespaces/le-test/leases/intruded';
    const lease = await client.get(path, AbortSignal.timeout(5000)) as { metadata: unknown; spec: Record<string, unknown> };
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    await client.request({
      method: 'PUT', path, signal: AbortSignal.timeout(5000),
      body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: lease.metadata, spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: now } },
    });
    const overwrittenAt = performance.now();
    expect(await run).to.equal('lost');
    // Its next attempt (within a retry period and a round trip) sees the other holder; the deadline was 2 s away.
    expect((t.abortedAt ?? Infinity) - overwrittenAt).to.be.lessThan(1000);
    const after = await client.get(path, AbortSignal.timeout(5000)) as { spec: { holderIdentity: string } };
    expect(after.spec.holderIdentity, 'a lost lease is not released over the new holder').to.equal('intruder');
  });
});
