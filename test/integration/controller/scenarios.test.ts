// Controller behaviour on a real API server, the test playing the agents: node targeting, the cluster-wide
// budget across a restart, failover between two replicas, and no write ever reaching a Deployment.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { CONTROLLER_USER, ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import {
  auditWrites,
  createNode,
  deleteNodes,
  deployment,
  getPrePullImage,
  listNodeImageSets,
  reportImages,
  specImages,
} from '../../../local-cluster/cluster-fixtures.ts';

function policyYaml(name: string, suite: string, extra = ''): string {
  return `apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata: {name: ${name}}
spec:
  selector: {matchLabels: {kwarm-test/suite: ${suite}}}
${extra}`;
}

/** deployment() selected by the suite's policy instead of kwarm.io/enabled. */
function suiteDeployment(ns: string, name: string, image: string, suite: string, extra: { tolerations?: unknown[] } = {}): unknown {
  const d = deployment(ns, name, image, { pool: suite, ...extra }) as { metadata: { labels: Record<string, string> } };
  d.metadata.labels = { app: name, 'kwarm-test/suite': suite };
  return d;
}

describe('controller: scenarios on a real API server', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let kubeconfig: string;
  const ac = new AbortController();
  const signal = ac.signal;
  const nodes: string[] = [];
  const running: ControllerProcess[] = [];

  async function nodesOf(suite: string, specs: { name: string; labels?: Record<string, string>; taints?: { key: string; value?: string; effect: string }[]; unschedulable?: boolean }[]): Promise<void> {
    for (const s of specs) {
      await createNode(admin, { ...s, labels: { 'kwarm-test/pool': suite, ...s.labels } }, signal);
      nodes.push(s.name);
    }
  }

  async function start(name: string, args: string[], leaderElect = false): Promise<ControllerProcess> {
    const c = await ControllerProcess.start({ kubeconfig, name, args, leaderElect });
    running.push(c);
    return c;
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    kubeconfig = await controllerKubeconfig(cp);
  });

  afterEach(async () => {
    for (const c of running.splice(0)) await c.stop();
    // The budget is cluster-wide: a scenario's unfinished pairs must not weigh on the next one.
    await deleteNodes(admin, nodes.splice(0), signal);
  });

  after(async () => {
    for (const s of ['targeting', 'budget', 'failover']) {
      await cp.kubectl(['delete', 'namespace', s, '--wait=false'], { allowFailure: true });
      await cp.kubectl(['delete', 'prepullpolicy', s], { allowFailure: true });
    }
    ac.abort();
    admin.close();
  });

  it('targets only eligible nodes: not outside the nodeSelector, not tainted, not cordoned; a node added later gets the image', async () => {
    const suite = 'targeting';
    await nodesOf(suite, [
      { name: 'tg-ok-1', labels: { zone: 'a' } },
      { name: 'tg-ok-2', labels: { zone: 'a' } },
      { name: 'tg-outside', labels: { zone: 'b' } },
      { name: 'tg-tainted', labels: { zone: 'a' }, taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] },
      { name: 'tg-cordoned', labels: { zone: 'a' }, unschedulable: true },
    ]);
    await start('controller-targeting', []);
    await cp.kubectl(['apply', '-f', '-'], { input: policyYaml(suite, suite, '  nodeSelector: {matchLabels: {zone: a}}\n') });
    await cp.kubectl(['create', 'namespace', suite]);
    const image = 'r.example/targeting:v1';
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(suiteDeployment(suite, 'web', image, suite)) });

    await waitFor(async () => (await getPrePullImage(admin, suite, 'deployment.web.app', signal))?.status?.summary?.total === 2, { what: 'the PrePullImage to count 2 target nodes' });
    for (const n of ['tg-ok-1', 'tg-ok-2']) await waitFor(async () => (await specImages(admin, n, signal)).includes(image), { what: `${n} to want the image` });
    for (const n of ['tg-outside', 'tg-tainted', 'tg-cordoned']) expect(await specImages(admin, n, signal), n).to.deep.equal([]);

    await nodesOf(suite, [{ name: 'tg-late', labels: { zone: 'a' } }]);
    await waitFor(async () => (await specImages(admin, 'tg-late', signal)).includes(image), { what: 'the node added later to want the image' });
    const ppi = await waitFor(async () => {
      const p = await getPrePullImage(admin, suite, 'deployment.web.app', signal);
      return p?.status?.summary?.total === 3 ? p : undefined;
    }, { what: 'the PrePullImage to count the new node' });
    expect(ppi.status?.ready).to.equal('0/3');

    // Cordoning a node takes it out of the targets, but its NodeImageSet keeps the entry (finding 12 of the
    // expert review: a drain must not cancel its pulls nor drop the image's "Wanted" protection); the others
    // are untouched.
    await cp.kubectl(['cordon', 'tg-ok-2']);
    await waitFor(async () => (await getPrePullImage(admin, suite, 'deployment.web.app', signal))?.status?.summary?.total === 2, { what: 'the cordoned node out of the targets' });
    expect(await specImages(admin, 'tg-ok-2', signal)).to.deep.equal([image]);
    expect(await specImages(admin, 'tg-ok-1', signal)).to.include(image);
    for (const n of ['tg-outside', 'tg-tainted', 'tg-cordoned']) expect(await specImages(admin, n, signal), n).to.deep.equal([]);
  });

  it('never has more unfinished pulls than --max-concurrent-pulls=1, also across a controller restart', async () => {
    const suite = 'budget';
    const names = ['bg-1', 'bg-2', 'bg-3'];
    await nodesOf(suite, names.map((name) => ({ name })));
    await cp.kubectl(['apply', '-f', '-'], { input: policyYaml(suite, suite) });
    await cp.kubectl(['create', 'namespace', suite]);
    let controller = await start('controller-budget-1', ['--max-concurrent-pulls=1']);
    for (const d of ['a', 'b']) {
      await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(suiteDeployment(suite, d, `r.example/budget-${d}:v1`, suite)) });
    }
    let maxUnfinished = 0;
    let completed = 0;
    let restarted = false;
    const deadline = Date.now() + 120_000;
    while (completed < 6) {
      if (Date.now() > deadline) throw new Error(`budget rollout stuck at ${completed}/6 completed\n${controller.tail()}`);
      // One consistent list: every released, unfinished pair of this suite's nodes.
      const sets = (await listNodeImageSets(admin, signal)).filter((s) => names.includes(s.metadata.name ?? ''));
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
      expect(unfinished.length, JSON.stringify(unfinished)).to.be.at.most(1);
      if (completed === 2 && !restarted) {
        // Restart with one pair released and unfinished: the new process must count it.
        restarted = true;
        await controller.stop();
        controller = await start('controller-budget-2', ['--max-concurrent-pulls=1']);
        await new Promise((r) => setTimeout(r, 1500));
        continue;
      }
      // Play the agents: finish what is released, a moment later.
      await new Promise((r) => setTimeout(r, 300));
      for (const [node, image] of unfinished) await reportImages(admin, node, { [image]: 'Completed' }, signal);
    }
    expect(restarted).to.equal(true);
    expect(maxUnfinished).to.equal(1);
    for (const d of ['a', 'b']) {
      await waitFor(async () => (await getPrePullImage(admin, suite, `deployment.${d}.app`, signal))?.status?.phase === 'Completed', { what: `budget-${d} to complete` });
    }
    expect(await controller.metric('kwarm_held_pulls')).to.equal(0);
  });

  it('fails over to the standby replica with nothing lost and no duplicate writes, never writing a Deployment', async () => {
    const suite = 'failover';
    const names = ['fo-1', 'fo-2', 'fo-3'];
    await nodesOf(suite, names.map((name) => ({ name })));
    await cp.kubectl(['apply', '-f', '-'], { input: policyYaml(suite, suite) });
    await cp.kubectl(['create', 'namespace', suite]);
    const election = ['--max-concurrent-pulls=1', '--leader-elect-lease-duration=4s', '--leader-elect-renew-deadline=3s', '--leader-elect-retry-period=500ms', '--leader-election-id=kwarm-failover-test'];
    const a = await start('controller-failover-a', election, true);
    await waitFor(async () => (await a.metric('kwarm_controller_leader')) === 1, { what: 'replica a to lead' });
    const b = await start('controller-failover-b', election, true);
    expect(await b.metric('kwarm_controller_leader')).to.equal(0);

    const image = 'r.example/failover:v1';
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(suiteDeployment(suite, 'api', image, suite)) });
    const released = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const n of names) if ((await specImages(admin, n, signal)).includes(image)) out.push(n);
      return out;
    };
    const first = await waitFor(async () => ((await released()).length === 1 ? (await released())[0] : undefined), { what: 'the first pair to be released' });
    await reportImages(admin, first, { [image]: 'Completed' }, signal);
    const second = await waitFor(async () => {
      const r = await released();
      return r.length === 2 ? r.find((n) => n !== first) : undefined;
    }, { what: 'the second pair to be released' });

    // Events follow the status write they describe; let a finish the pass that released the second pair.
    await waitFor(async () => {
      const ev = await cp.kubectl(['-n', suite, 'get', 'events', '--field-selector', 'involvedObject.name=deployment.api.app', '-o', 'jsonpath={.items[*].reason}']);
      return ev.stdout.includes('PullStarted');
    }, { what: 'the PullStarted event from replica a' });
    // The leader dies mid-rollout, without releasing the Lease.
    await a.kill();
    await waitFor(async () => (await b.metric('kwarm_controller_leader')) === 1, { what: 'replica b to take over', timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    // The second pair is still unfinished: b must not release the third yet.
    expect((await released()).length).to.equal(2);
    await reportImages(admin, second, { [image]: 'Completed' }, signal);
    const third = await waitFor(async () => {
      const r = await released();
      return r.length === 3 ? r.find((n) => n !== first && n !== second) : undefined;
    }, { what: 'the third pair to be released by b' });
    await reportImages(admin, third, { [image]: 'Completed' }, signal);
    await waitFor(async () => (await getPrePullImage(admin, suite, 'deployment.api.app', signal))?.status?.phase === 'Completed', { what: 'the rollout to complete under b' });
    await cp.kubectl(['-n', suite, 'wait', '--for=condition=Ready', 'prepullimage/deployment.api.app', '--timeout=30s']);

    const writes = auditWrites(readFileSync(cp.auditLogPath, 'utf8')).filter((w) => w.user === CONTROLLER_USER());
    // Each NodeImageSet spec was written exactly once (created with the image), by one replica or the other.
    for (const n of names) {
      const specWrites = writes.filter((w) => w.resource === 'nodeimagesets' && w.name === n && w.subresource === undefined);
      expect(specWrites, `spec writes of ${n}: ${JSON.stringify(specWrites)}`).to.have.length(1);
    }
    // The PrePullImage was created once; its Events were not repeated by the new leader.
    expect(writes.filter((w) => w.resource === 'prepullimages' && w.namespace === suite && w.subresource === undefined)).to.have.length(1);
    const events = await cp.kubectl(['-n', suite, 'get', 'events', '--field-selector', 'involvedObject.name=deployment.api.app', '-o', 'jsonpath={.items[*].reason}']);
    const reasons = events.stdout.split(' ').filter((r) => r !== '');
    expect(reasons.filter((r) => r === 'PullStarted')).to.have.length(1);
    expect(reasons.filter((r) => r === 'PullCompleted')).to.have.length(1);
    // And never, in any scenario of this file, a write to a Deployment (or any workload).
    const workloadWrites = writes.filter((w) => ['deployments', 'statefulsets', 'daemonsets', 'jobs', 'cronjobs', 'pods'].includes(w.resource));
    expect(workloadWrites).to.deep.equal([]);
  });
});
