// Leader election on a real Lease: one leader at a time, fast hand-over on release, takeover after expiry.
import { expect } from 'chai';
import winston from 'winston';
import { KubeClient } from '../../../lib/kube-client.ts';
import { LeaderElector } from '../../../lib/leader-election.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

describe('lib: leader election on a real Lease', function () {
  this.timeout(120_000);
  const log = winston.createLogger({ silent: true });
  let client: KubeClient;

  before(async () => {
    const cp = await sharedControlPlane();
    client = new KubeClient(cp.kubeConfig());
    await client.create('/api/v1/namespaces', { metadata: { name: 'le-test' } }, AbortSignal.timeout(10_000)).catch(() => undefined);
  });
  after(() => { client.close(); });

  const elector = (identity: string, name: string): LeaderElector => new LeaderElector({
    client, namespace: 'le-test', name, identity, log, leaseDurationSeconds: 3, renewDeadlineMs: 2000, retryPeriodMs: 250,
  });

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
});
