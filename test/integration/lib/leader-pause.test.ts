// Two controller replicas, and something frozen for longer than a lease (SIGSTOP, then SIGCONT): the
// kube-apiserver process of this file's own control plane, or the leading controller itself (a GC pause, a
// frozen VM). Checked throughout a rollout that the test plays the agents for: the cluster-wide budget
// (--max-concurrent-pulls, counted in the NodeImageSets) is never exceeded, and the audit log shows no write by
// one replica after the other replica's first one.
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

/** Non-lease writes per replica since `since`, and whether the first replica's writes all end before the second's begin. */
function checkOneWriterAtATime(auditLog: string, since: number): { first: number; second: number; gapMs: number } {
  const writes = controllerWrites(auditLog).filter((w) => w.received >= since);
  const byReplica = new Map<string, typeof writes>();
  for (const w of writes) byReplica.set(w.credential, [...(byReplica.get(w.credential) ?? []), w]);
  expect(byReplica.has('unknown'), 'every write carries its token\'s credential id').to.equal(false);
  expect(byReplica.size, 'both replicas wrote').to.equal(2);
  const [first, second] = [...byReplica.values()].sort((x, y) => (x[0]?.received ?? 0) - (y[0]?.received ?? 0));
  const lastOfFirst = Math.max(...(first ?? []).map((w) => w.completed));
  const firstOfSecond = Math.min(...(second ?? []).map((w) => w.received));
  const late = (first ?? []).filter((w) => w.completed >= firstOfSecond).map((w) => `${w.what} at ${new Date(w.received).toISOString()}`);
  expect(late, `writes of the first replica once the second had started writing (${new Date(firstOfSecond).toISOString()})`).to.deep.equal([]);
  return { first: first?.length ?? 0, second: second?.length ?? 0, gapMs: firstOfSecond - lastOfFirst };
}

/**
 * Plays the agents of `nodes` until every released pair is Completed: finishes one unfinished pair at a time,
 * checking before each that no more than `budget` are unfinished. `freeze` runs once, after 3 completions.
 */
async function rollout(admin: KubeClient, nodes: string[], total: number, budget: number, freeze: () => Promise<void>, signal: AbortSignal, logs: () => string): Promise<number> {
  let maxUnfinished = 0;
  let completed = 0;
  let frozen = false;
  const deadline = Date.now() + 180_000;
  while (completed < total) {
    if (Date.now() > deadline) throw new Error(`rollout stuck at ${completed}/${total}\n${logs()}`);
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
    if (completed >= 3 && !frozen) {
      frozen = true;
      await freeze();
      continue;
    }
    // Play the agents: finish one released pair at a time, so the rollout spans the freeze.
    await new Promise((r) => setTimeout(r, 400));
    const next = unfinished[0];
    if (next !== undefined) await reportImages(admin, next[0], { [next[1]]: 'Completed' }, signal);
  }
  expect(frozen).to.equal(true);
  return maxUnfinished;
}

async function scenario(cp: ControlPlane, admin: KubeClient, name: string, signal: AbortSignal): Promise<{ nodes: string[]; total: number }> {
  const nodes = [1, 2, 3].map((i) => `${name}-${i}`);
  for (const n of nodes) await createNode(admin, { name: n, labels: { 'kwarm-test/pool': name } }, signal);
  await cp.kubectl(['create', 'namespace', name]);
  const images = ['a', 'b', 'c'].map((x) => `r.example/${name}-${x}:v1`);
  for (const [i, image] of images.entries()) {
    await admin.create(`/apis/apps/v1/namespaces/${name}/deployments`, deployment(name, `app-${i}`, image, { pool: name }), signal);
  }
  await cp.kubectl(['apply', '-f', '-'], { input: `apiVersion: kwarm.io/v1alpha1\nkind: PrePullPolicy\nmetadata: {name: ${name}}\nspec:\n  selector: {matchLabels: {kwarm.io/enabled: "true"}, namespaces: [${name}]}\n` });
  return { nodes, total: nodes.length * images.length };
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
    for (const c of running.splice(0)) {
      if (c.process.pid !== undefined) { try { process.kill(c.process.pid, 'SIGCONT'); } catch { /* gone */ } }
      await c.stop();
    }
    admin.close();
    await cp.stop();
  });

  afterEach(async () => {
    for (const c of running.splice(0)) await c.stop();
  });

  const election = (id: string, budget: number): string[] => [`--max-concurrent-pulls=${budget}`, '--leader-elect-lease-duration=4s',
    '--leader-elect-renew-deadline=3s', '--leader-elect-retry-period=500ms', `--leader-election-id=${id}`];

  /** Replica a leads, b stands by; one token each, so the audit log tells them apart by the token's credential id. */
  async function replicas(id: string, budget: number): Promise<[ControllerProcess, ControllerProcess]> {
    const a = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp), name: `${id}-a`, args: election(id, budget), leaderElect: true });
    running.push(a);
    await waitFor(async () => (await a.metric('kwarm_controller_leader')) === 1, { what: 'replica a to lead' });
    const b = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp), name: `${id}-b`, args: election(id, budget), leaderElect: true });
    running.push(b);
    return [a, b];
  }

  it('API server paused: never exceeds --max-concurrent-pulls and never has two replicas writing', async () => {
    const signal = AbortSignal.timeout(240_000);
    const since = Date.now();
    const budget = 2;
    const { nodes, total } = await scenario(cp, admin, 'pause', signal);
    const [a, b] = await replicas('pause', budget);
    const maxUnfinished = await rollout(admin, nodes, total, budget, async () => {
      // Longer than the 4 s lease: a's renew deadline passes while nothing answers.
      process.kill(pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 6000));
      process.kill(pid, 'SIGCONT');
    }, signal, () => `--- a ---\n${a.tail()}\n--- b ---\n${b.tail()}`);
    expect(maxUnfinished).to.equal(budget);

    // a lost the lease while the server was stopped, stopped acting, and exited for the Deployment to restart it.
    expect(await a.process.wait()).to.equal(1);
    expect(readFileSync(a.process.logFile, 'utf8')).to.match(/lost leadership/);
    expect(await b.metric('kwarm_controller_leader')).to.equal(1);
    checkOneWriterAtATime(readFileSync(cp.auditLogPath, 'utf8'), since);
  });

  it('leader frozen longer than its lease: on waking it writes nothing, the standby has taken over', async () => {
    const signal = AbortSignal.timeout(240_000);
    const since = Date.now();
    const budget = 2;
    const { nodes, total } = await scenario(cp, admin, 'stall', signal);
    const [a, b] = await replicas('stall', budget);
    const aPid = a.process.pid ?? 0;
    const maxUnfinished = await rollout(admin, nodes, total, budget, async () => {
      process.kill(aPid, 'SIGSTOP');
      try {
        // b takes the lease once it has not changed for 4 s, and goes on releasing pairs as they finish.
        await waitFor(async () => (await b.metric('kwarm_controller_leader')) === 1, { what: 'b to lead while a is frozen', timeoutMs: 30_000 });
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, 700));
          const sets = (await listNodeImageSets(admin, signal)).filter((s) => nodes.includes(s.metadata.name ?? ''));
          for (const s of sets) {
            const open = s.spec.images.find((e) => s.status?.images?.find((x) => x.image === e.image && x.round === e.round)?.phase !== 'Completed');
            if (open !== undefined) {
              await reportImages(admin, s.metadata.name ?? '', { [open.image]: 'Completed' }, signal);
              break;
            }
          }
        }
      } finally {
        // a wakes with a backlog of watch events that each ask for a pass, and a deadline long past.
        process.kill(aPid, 'SIGCONT');
      }
    }, signal, () => `--- a ---\n${a.tail()}\n--- b ---\n${b.tail()}`);
    expect(maxUnfinished).to.be.at.most(budget);
    expect(await a.process.wait()).to.equal(1);
    expect(await b.metric('kwarm_controller_leader')).to.equal(1);
    checkOneWriterAtATime(readFileSync(cp.auditLogPath, 'utf8'), since);
  });
});
