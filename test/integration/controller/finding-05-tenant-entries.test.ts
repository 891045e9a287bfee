// Finding 5 of the expert review: PrePullImages of different namespaces wanting the same image were merged into
// one NodeImageSet entry taking the first digest pin, the longest timeout, the most attempts, the shortest
// back-off and the first 16 secrets by name, so one namespace could fail, slow down or lock out every other
// team's pulls of that image. Here, on a real API server with the controller process, team B tries each of
// those against team A's PrePullImages, and the entries stay A's; B is told why in its Ready condition.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { getNodeImageSet, getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';
import type { NodeImage } from '../../../api/v1alpha1/index.ts';

const NODE = 'f05-node';
const POOL = 'finding-05';
const KWARM_NS = 'kwarm-system';
const TEAM_A = 'f05-team-a';
const TEAM_B = 'f05-team-b';
const SHARED = 'registry.invalid/f05/python:3.12';
const PINNED = 'registry.invalid/f05/base:1';
const GOOD = `sha256:${'a'.repeat(64)}`;
const BAD = `sha256:${'0'.repeat(64)}`;

describe('finding 05: one namespace cannot change the outcome of another\'s pulls of the same image', function () {
  this.timeout(120_000);
  const bed = new ControllerTestbed({ nodes: [{ name: NODE, labels: { 'kwarm-test/pool': POOL } }], namespaces: [TEAM_A, TEAM_B] });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await bed.startController({ namespace: KWARM_NS, name: 'controller-f05' });
  });

  after(() => bed.tearDown());

  async function apply(ns: string, name: string, spec: Record<string, unknown>): Promise<void> {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name, namespace: ns },
        spec: { nodes: { selector: { matchLabels: { 'kwarm-test/pool': POOL } } }, ...spec },
      }),
    });
  }

  async function entry(image: string): Promise<NodeImage | undefined> {
    return (await getNodeImageSet(admin, NODE, signal))?.spec.images.find((e) => e.image === image);
  }

  async function ready(ns: string, name: string): Promise<{ status?: string; reason?: string; message?: string; phase?: string }> {
    const p = await getPrePullImage(admin, ns, name, signal);
    const c = p?.status?.conditions?.find((x) => x.type === 'Ready');
    return { ...(c !== undefined ? { status: c.status, reason: c.reason, message: c.message } : {}), ...(p?.status?.phase !== undefined ? { phase: p.status.phase } : {}) };
  }

  it('a pin, a 24h timeout, 100 attempts and no back-off from team B do not reach team A\'s entry', async () => {
    await apply(TEAM_A, 'python', { image: SHARED });
    await waitFor(async () => (await entry(SHARED)) !== undefined, { what: 'team A\'s entry', timeoutMs: 30_000 });
    await apply(TEAM_B, 'python', { image: SHARED, imageDigest: BAD, timeout: '24h', retry: { maxAttempts: 100, backoffSeconds: 0 } });
    await waitFor(async () => (await entry(SHARED))?.sources.length === 2, { what: 'both teams behind the entry', timeoutMs: 30_000 });
    const e = await entry(SHARED);
    expect(e?.imageDigest, 'digest pin of the shared entry').to.equal(undefined);
    expect(e?.timeout).to.equal('10m');
    expect(e?.retry).to.deep.equal({ maxAttempts: 3, backoffSeconds: 30 });
    await waitFor(async () => (await ready(TEAM_B, 'python')).reason === 'DigestConflict', { what: 'team B told its pin is not checked', timeoutMs: 30_000 });
    expect((await ready(TEAM_B, 'python')).message).to.contain(`${TEAM_A}/python`);
    expect((await ready(TEAM_A, 'python')).reason).to.not.equal('DigestConflict');
  });

  it('conflicting pins never merge: the later PrePullImage is refused, the earlier keeps its digest', async () => {
    await apply(TEAM_A, 'base', { image: PINNED, imageDigest: GOOD });
    await waitFor(async () => (await entry(PINNED))?.imageDigest === GOOD, { what: 'team A\'s pinned entry', timeoutMs: 30_000 });
    // creationTimestamp has whole seconds: B must be created in a later second to be the later one.
    await new Promise((r) => setTimeout(r, 1100));
    await apply(TEAM_B, 'base', { image: PINNED, imageDigest: BAD });
    await waitFor(async () => (await ready(TEAM_B, 'base')).reason === 'DigestConflict', { what: 'team B refused', timeoutMs: 30_000 });
    const b = await ready(TEAM_B, 'base');
    expect(b).to.include({ status: 'False', phase: 'Failed' });
    expect(b.message).to.contain(`${TEAM_A}/base`);
    const e = await entry(PINNED);
    expect(e?.imageDigest).to.equal(GOOD);
    expect(e?.sources).to.deep.equal([{ namespace: TEAM_A, name: 'base' }]);
  });
});
