// Finding 6 of the expert review: the budget was released in image-name order, so a namespace whose images sort
// first took every slot; and a PrePullImage without tolerations went to every node, control-plane ones included.
// Here, on a real API server with the controller process (--max-concurrent-pulls=2, no agent, so nothing
// finishes): a namespace with four images named to sort first and another with one image share the two slots,
// and a tainted control-plane node gets only the image that tolerates its taint. With
// --max-images-per-namespace=5, a namespace's sixth image is refused in its status and not planned.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { getPrePullImage, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const WORKER = 'f06-worker';
const CONTROL_PLANE = 'f06-control-plane';
const POOL = 'finding-06';
const KWARM_NS = 'kwarm-system';
const GREEDY = 'f06-aaa';
const MODEST = 'f06-zzz';
const CP_TAINT = { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' };

describe('finding 06: the budget is shared between namespaces, and tainted nodes get only what tolerates them', function () {
  this.timeout(120_000);
  const bed = new ControllerTestbed({
    nodes: [
      { name: WORKER, labels: { 'kwarm-test/pool': POOL } },
      { name: CONTROL_PLANE, labels: { 'kwarm-test/pool': POOL, 'node-role.kubernetes.io/control-plane': '' }, taints: [CP_TAINT] },
    ],
    namespaces: [GREEDY, MODEST],
  });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await bed.startController({ namespace: KWARM_NS, name: 'controller-f06', args: ['--max-concurrent-pulls=2', '--max-images-per-namespace=5'] });
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

  it('leaves the control-plane node out of an image without tolerations, and shares the two slots between the namespaces', async () => {
    // Applied in one go, so the first pass sees them all.
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1', kind: 'List',
        items: [
          ...['a', 'b', 'c', 'd'].map((x) => ({
            apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: `first-${x}`, namespace: GREEDY },
            spec: { image: `0.registry.invalid/f06/${x}:1`, nodes: { names: [WORKER] } },
          })),
          { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'app', namespace: MODEST }, spec: { image: 'registry.invalid/f06/app:1', nodes: { names: [WORKER] } } },
        ],
      }),
    });
    await waitFor(async () => (await specImages(admin, WORKER, signal)).length === 2, { what: 'two pulls released on the worker', timeoutMs: 30_000 });
    // A further pass changes nothing: the budget is full.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await specImages(admin, WORKER, signal)).to.deep.equal(['0.registry.invalid/f06/a:1', 'registry.invalid/f06/app:1']);

    // The control plane: with the budget full, nothing is released anyway; targets show in the status.
    await apply(MODEST, 'plain', { image: 'registry.invalid/f06/plain:1' });
    await apply(MODEST, 'tolerant', { image: 'registry.invalid/f06/tolerant:1', nodes: { selector: { matchLabels: { 'kwarm-test/pool': POOL } }, tolerations: [{ ...CP_TAINT, operator: 'Exists' }] } });
    const total = async (name: string): Promise<number | undefined> => (await getPrePullImage(admin, MODEST, name, signal))?.status?.summary?.total;
    await waitFor(async () => (await total('plain')) !== undefined && (await total('tolerant')) !== undefined, { what: 'both statuses', timeoutMs: 30_000 });
    expect(await total('plain'), 'nodes of the image without tolerations').to.equal(1);
    expect(await total('tolerant'), 'nodes of the image tolerating the control-plane taint').to.equal(2);
  });

  it('refuses a namespace\'s images past --max-images-per-namespace in their status, and plans none of them', async () => {
    // GREEDY has four images; a fifth is within the cap, the sixth is not (created a second later, so it is the later one).
    await apply(GREEDY, 'fifth', { image: '0.registry.invalid/f06/e:1', nodes: { names: [WORKER] } });
    await new Promise((r) => setTimeout(r, 1100));
    await apply(GREEDY, 'sixth', { image: '0.registry.invalid/f06/f:1', nodes: { names: [WORKER] } });
    const ready = async (name: string) => (await getPrePullImage(admin, GREEDY, name, signal))?.status?.conditions?.find((c) => c.type === 'Ready');
    await waitFor(async () => (await ready('sixth'))?.reason === 'NamespaceImageLimit', { what: 'the sixth image refused', timeoutMs: 30_000 });
    expect((await getPrePullImage(admin, GREEDY, 'sixth', signal))?.status?.phase).to.equal('Failed');
    expect((await getPrePullImage(admin, GREEDY, 'sixth', signal))?.status?.summary?.total).to.equal(0);
    expect((await ready('fifth'))?.reason).to.not.equal('NamespaceImageLimit');
    // Another namespace is not affected by GREEDY's cap.
    expect((await getPrePullImage(admin, MODEST, 'app', signal))?.status?.summary?.total).to.equal(1);
  });
});
