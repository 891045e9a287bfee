// Two controller replicas against an API server that stops answering for longer than a lease (SIGSTOP of the
// kube-apiserver process of this file's own control plane) and then resumes. Checked throughout a rollout that
// the test plays the agents for: the cluster-wide budget (--max-concurrent-pulls, counted in the NodeImageSets)
// is never exceeded, and the audit log shows no write by one replica after the other replica's first one.
import { readFileSync, readdirSync } from 'node:fs';
import { expect } from 'chai';
import { KubeClient } from '../../../lib/kube-client.ts';
import { startControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { createNode, deployment, listNodeImageSets, reportImages } from '../../../local-cluster/cluster-fixtures.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

/** The pid of this control plane's kube-apiserver: the one whose --cert-dir lies in its directory. */
function apiServerPid(cp: ControlPlane): number {
  const certDir = `--cert-dir=${cp.dir}/pki`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try { args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if ((args[0] ?? '').endsWith('kube-apiserver') && args.includes(certDir)) return Number(entry);
  }
  throw new Error(`no kube-apiserver process with ${certDir}`);
}

interface AuditEntry {
  stage?: string;
  verb?: string;
  user?: { username?: string; extra?: Record<string, string[]> };
  objectRef?: { resource?: string; name?: string };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
}

/** Non-lease writes of the controller's ServiceAccount, each with the token it used (one per replica). */
function controllerWrites(auditLog: string): { credential: string; received: number; completed: number; what: string }[] {
  return auditLog.split('\n').flatMap((line) => {
    if (line.trim() === '') return [];
    const e = JSON.parse(line) as AuditEntry;
    if (e.stage !== 'ResponseComplete' || e.user?.username !== 'system:serviceaccount:kwarm-system:kwarm-controller') return [];
    if (e.objectRef?.resource === 'leases') return [];
    const credential = e.user.extra?.['authentication.kubernetes.io/credential-id']?.[0] ?? 'unknown';
    return [{
      credential,
      received: Date.parse(e.requestReceivedTimestamp ?? ''),
      completed: Date.parse(e.stageTimestamp ?? ''),
      what: `${e.verb ?? ''} ${e.objectRef?.resource ?? ''}/${e.objectRef?.name ?? ''}`,
    }];
  });
}

describe('lib: two controllers and an API server paused longer than a lease', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let pid = 0;
  const running: ControllerProcess[] = [];

  before(async () => {
    cp = await startControlPlane();
    pid = apiServerPid(cp);
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
  });

  after(async () => {
    // Never leave a stopped server behind, whatever failed.
    if (pid !== 0) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } }
    for (const c of running.splice(0)) await c.stop();
    admin.close();
    await cp.stop();
  });

  it('never exceeds --max-concurrent-pulls and never has two replicas writing', async () => {
    const signal = AbortSignal.timeout(240_000);
    const budget = 2;
    const nodes = ['pz-1', 'pz-2', 'pz-3'];
    for (const name of nodes) await createNode(admin, { name, labels: { 'kwarm-test/pool': 'pause' } }, signal);
    await cp.kubectl(['create', 'namespace', 'pause']);
    const images = ['a', 'b', 'c'].map((x) => `r.example/pause-${x}:v1`);
    for (const [i, image] of images.entries()) {
      await admin.create('/apis/apps/v1/namespaces/pause/deployments', deployment('pause', `app-${i}`, image, { pool: 'pause' }), signal);
    }
    await cp.kubectl(['apply', '-f', '-'], { input: 'apiVersion: kwarm.io/v1alpha1\nkind: PrePullPolicy\nmetadata: {name: pause}\nspec:\n  selector: {matchLabels: {kwarm.io/enabled: "true"}}\n' });
    const election = [`--max-concurrent-pulls=${budget}`, '--leader-elect-lease-duration=4s', '--leader-elect-renew-deadline=3s',
      '--leader-elect-retry-period=500ms', '--leader-election-id=kwarm-pause-test'];
    // One token each: the audit log tells the replicas apart by the token's credential id.
    const a = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp), name: 'controller-pause-a', args: election, leaderElect: true });
    running.push(a);
    await waitFor(async () => (await a.metric('kwarm_controller_leader')) === 1, { what: 'replica a to lead' });
    const b = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp), name: 'controller-pause-b', args: election, leaderElect: true });
    running.push(b);

    let maxUnfinished = 0;
    let completed = 0;
    let paused = false;
    const total = nodes.length * images.length;
    const deadline = Date.now() + 180_000;
    while (completed < total) {
      if (Date.now() > deadline) throw new Error(`rollout stuck at ${completed}/${total}\n--- a ---\n${a.tail()}\n--- b ---\n${b.tail()}`);
      // One consistent list: every released, unfinished pair.
      const sets = (await listNodeImageSets(admin, signal)).filter((s) => nodes.includes(s.metadata.name ?? ''));
      const unfinished: [string, string][] = [];
      completed = 0;
      for (const s of sets) {
        for (const e of s.spec.images) {
          const st = s.status?.images?.find((x) => x.image === e.image);
          if (st?.phase === 'Completed' && st.round === e.round) completed++;
          else unfinished.push([s.metadata.name ?? '', e.image]);
        }
      }
      maxUnfinished = Math.max(maxUnfinished, unfinished.length);
      expect(unfinished.length, JSON.stringify(unfinished)).to.be.at.most(budget);
      if (completed >= 3 && !paused) {
        // Longer than the 4 s lease: a's renew deadline passes while nothing answers.
        paused = true;
        process.kill(pid, 'SIGSTOP');
        await new Promise((r) => setTimeout(r, 6000));
        process.kill(pid, 'SIGCONT');
        continue;
      }
      // Play the agents: finish one released pair at a time, so the rollout spans the pause.
      await new Promise((r) => setTimeout(r, 400));
      const next = unfinished[0];
      if (next !== undefined) await reportImages(admin, next[0], { [next[1]]: 'Completed' }, signal);
    }
    expect(paused).to.equal(true);
    expect(maxUnfinished).to.equal(budget);

    // a lost the lease while the server was stopped, stopped acting, and exited for the Deployment to restart it.
    expect(await a.process.wait()).to.equal(1);
    expect(readFileSync(a.process.logFile, 'utf8')).to.match(/lost leadership/);
    expect(await b.metric('kwarm_controller_leader')).to.equal(1);

    const writes = controllerWrites(readFileSync(cp.auditLogPath, 'utf8'));
    const byReplica = new Map<string, typeof writes>();
    for (const w of writes) byReplica.set(w.credential, [...(byReplica.get(w.credential) ?? []), w]);
    expect(byReplica.has('unknown'), 'every write carries its token\'s credential id').to.equal(false);
    expect(byReplica.size, 'both replicas wrote, one after the other').to.equal(2);
    const [first, second] = [...byReplica.values()].sort((x, y) => (x[0]?.received ?? 0) - (y[0]?.received ?? 0));
    const lastOfFirst = Math.max(...(first ?? []).map((w) => w.completed));
    const firstOfSecond = Math.min(...(second ?? []).map((w) => w.received));
    expect(lastOfFirst, `the first replica's last write (${new Date(lastOfFirst).toISOString()}) ends before the second's first (${new Date(firstOfSecond).toISOString()})`)
      .to.be.lessThan(firstOfSecond);
  });
});
