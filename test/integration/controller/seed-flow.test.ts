// The seed's flow against a real API server, with the test playing the three agents: the basic policy and a
// labelled Deployment; changing its image moves the PrePullImage and every eligible NodeImageSet to the new
// image; agent status rolls up to READY 3/3, Completed, and `kubectl wait --for=condition=Ready` returns.
import { join } from 'node:path';
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { deployment, getPolicy, getPrePullImage, reportImages, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const SAMPLES = join(import.meta.dirname, '..', '..', '..', 'deploy', 'samples');
const NS = 'seed-flow';
const POOL = 'seed-flow';
const NODES = ['seed-1', 'seed-2', 'seed-3'];
const PPI = 'deployment.my-app.app';
/** NodeImageSets name an image fully qualified (finding 20): one entry however the workloads spell it. */
const onNodes = (image: string): string => `docker.io/${image}`;

describe('controller: the seed flow on a real API server', function () {
  this.timeout(240_000);
  const bed = new ControllerTestbed({ nodes: NODES.map((name) => ({ name, labels: { 'kwarm-test/pool': POOL } })), namespaces: [NS], cleanup: [['delete', '-f', join(SAMPLES, 'prepullpolicy_basic.yaml')]] });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await bed.startController({ name: 'controller-seed', args: ['--resync-period=2s'] });
  });

  after(() => bed.tearDown());

  it('follows a Deployment image change to the NodeImageSets and rolls agent status up to Ready', async () => {
    await cp.kubectl(['apply', '-f', join(SAMPLES, 'prepullpolicy_basic.yaml')]);
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment(NS, 'my-app', 'my-registry/my-app:v2', { pool: POOL })) });

    const v2 = await waitFor(async () => {
      const p = await getPrePullImage(admin, NS, PPI, signal);
      return p?.spec.image === 'my-registry/my-app:v2' ? p : undefined;
    }, { what: 'the PrePullImage for my-app', timeoutMs: 30_000 });
    expect(v2.metadata.ownerReferences?.[0]).to.include({ kind: 'Deployment', name: 'my-app', controller: true });
    expect(v2.spec.retry).to.deep.equal({ maxAttempts: 3, backoffSeconds: 30 });
    for (const n of NODES) {
      await waitFor(async () => (await specImages(admin, n, signal)).includes(onNodes('my-registry/my-app:v2')), { what: `${n} to want v2` });
    }

    // The rollout: a new tag.
    await cp.kubectl(['-n', NS, 'set', 'image', 'deployment/my-app', 'app=my-registry/my-app:v3']);
    await waitFor(async () => (await getPrePullImage(admin, NS, PPI, signal))?.spec.image === 'my-registry/my-app:v3', { what: 'the PrePullImage to follow v3' });
    for (const n of NODES) {
      await waitFor(async () => {
        const images = await specImages(admin, n, signal);
        return images.length === 1 && images[0] === onNodes('my-registry/my-app:v3');
      }, { what: `${n} to want only v3` });
    }
    const nis = await admin.get('/apis/kwarm.io/v1alpha1/nodeimagesets/seed-1', signal) as { metadata: { ownerReferences: { kind: string; name: string }[] }; spec: { maxConcurrentPulls: number } };
    expect(nis.metadata.ownerReferences[0]).to.include({ kind: 'Node', name: 'seed-1' });
    expect(nis.spec.maxConcurrentPulls).to.equal(2);

    // The agents pull: one starts, then all complete.
    await reportImages(admin, 'seed-1', { [onNodes('my-registry/my-app:v3')]: 'Pulling' }, signal);
    await waitFor(async () => (await getPrePullImage(admin, NS, PPI, signal))?.status?.phase === 'InProgress', { what: 'phase InProgress' });
    for (const n of NODES) await reportImages(admin, n, { [onNodes('my-registry/my-app:v3')]: 'Completed' }, signal);
    const done = await waitFor(async () => {
      const p = await getPrePullImage(admin, NS, PPI, signal);
      return p?.status?.phase === 'Completed' ? p : undefined;
    }, { what: 'phase Completed' });
    expect(done.status?.ready).to.equal('3/3');
    expect(done.status?.summary).to.deep.equal({ total: 3, pending: 0, pulling: 0, completed: 3, failed: 0 });
    expect(done.status?.startTime).to.be.a('string');
    expect(done.status?.completionTime).to.be.a('string');

    const wait = await cp.kubectl(['-n', NS, 'wait', '--for=condition=Ready', `prepullimage/${PPI}`, '--timeout=30s']);
    expect(wait.stdout).to.contain('condition met');
    const table = await cp.kubectl(['-n', NS, 'get', 'prepullimages']);
    expect(table.stdout).to.match(/deployment\.my-app\.app\s+my-registry\/my-app:v3\s+3\/3\s+Completed/);

    const events = await cp.kubectl(['-n', NS, 'get', 'events', '--field-selector', `involvedObject.name=${PPI}`, '-o', 'jsonpath={.items[*].reason}']);
    expect(events.stdout.split(' ')).to.include.members(['PullStarted', 'PullCompleted']);

    const policy = await waitFor(async () => {
      const p = await getPolicy(admin, 'default', signal);
      return p?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? p : undefined;
    }, { what: 'the policy to be Ready' });
    expect(policy.status?.watchedWorkloads).to.be.at.least(1);
    expect(policy.status?.conditions?.find((c) => c.type === 'ResourcesIgnored')).to.include({ status: 'True', reason: 'NoPullJobs' });

    const metrics = await bed.controller!.metrics();
    expect(metrics).to.match(/kwarm_watched_deployments\{policy="default"\} [1-9]/);
    expect(metrics).to.match(/kwarm_prepullimages_by_phase\{phase="Completed"\} [1-9]/);
    expect(metrics).to.contain('kwarm_reconcile_duration_seconds_count');
  });

  it('writes nothing during idle resyncs', async () => {
    // Let in-flight work settle, then watch two full resync periods.
    await new Promise((r) => setTimeout(r, 3000));
    const before = await bed.controller!.writes();
    const passes = (await bed.controller!.metric('kwarm_reconcile_duration_seconds_count'))!;
    await new Promise((r) => setTimeout(r, 5000));
    expect(await bed.controller!.metric('kwarm_reconcile_duration_seconds_count')).to.be.above(passes + 1);
    expect(await bed.controller!.writes()).to.equal(before);
  });

  it('drops the PrePullImage and the image when the Deployment leaves the policy, without touching the Deployment', async () => {
    await cp.kubectl(['-n', NS, 'label', 'deployment/my-app', 'kwarm.io/enabled-']);
    await waitFor(async () => (await getPrePullImage(admin, NS, PPI, signal)) === undefined, { what: 'the PrePullImage to be deleted' });
    for (const n of NODES) await waitFor(async () => (await specImages(admin, n, signal)).length === 0, { what: `${n} to want nothing` });
  });
});
