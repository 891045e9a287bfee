// Finding 6 of the expert review: nothing bounded what one namespace could take of the cluster-wide pull budget
// when nobody else was waiting yet (a newcomer then waited for all of its pulls), nor what it could put on the
// nodes beyond a count of images. Here, on an API server of its own (the Ready nodes and the namespaces are the
// test's alone) with the controller process and no agent (nothing finishes):
// --max-concurrent-pulls=4 --namespace-pull-share=50 gives a namespace alone 2 of the 4 slots and a newcomer the
// other 2 at once; --namespace-node-images-per-node=2 on 2 Ready nodes lets a namespace want 4 (node, image) pairs,
// and its image that would pass that is refused in its status and not planned.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { getPrePullImage, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const NODES = ['f06l-node-1', 'f06l-node-2'];
const KWARM_NS = 'kwarm-system';
const ALONE = 'f06l-alone';
const LATER = 'f06l-later';
const WIDE = 'f06l-wide';

describe('finding 06: per-namespace share of the budget and cap on (node, image) pairs', function () {
  this.timeout(120_000);
  const bed = new ControllerTestbed({ nodes: NODES.map((name) => ({ name })), namespaces: [KWARM_NS, ALONE, LATER, WIDE], ownControlPlane: true });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await bed.startController({
      namespace: KWARM_NS, name: 'controller-f06l', args: ['--max-concurrent-pulls=4', '--namespace-pull-share=50', '--namespace-node-images-per-node=2'],
    });
  });

  after(() => bed.tearDown());

  function prePullImage(ns: string, name: string, image: string, nodes: readonly string[]): unknown {
    return { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name, namespace: ns }, spec: { image, nodes: { names: nodes } } };
  }

  async function apply(items: unknown[]): Promise<void> {
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
  }

  it('a namespace alone holds half the budget; a newcomer gets the other half at once', async () => {
    const first = NODES[0]!;
    await apply(['a', 'b', 'c', 'd'].map((x) => prePullImage(ALONE, x, `registry.invalid/f06l/${x}:1`, [first])));
    await waitFor(async () => (await specImages(admin, first, signal)).length === 2, { what: 'two of the four images released', timeoutMs: 30_000 });
    // A further pass changes nothing: two slots are free, but not for this namespace.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await specImages(admin, first, signal)).to.deep.equal(['registry.invalid/f06l/a:1', 'registry.invalid/f06l/b:1']);

    await apply(['x', 'y', 'z'].map((x) => prePullImage(LATER, x, `registry.invalid/f06l/later-${x}:1`, [first])));
    await waitFor(async () => (await specImages(admin, first, signal)).length === 4, { what: 'the newcomer\'s two pulls released', timeoutMs: 30_000 });
    expect(await specImages(admin, first, signal)).to.deep.equal([
      'registry.invalid/f06l/a:1', 'registry.invalid/f06l/b:1', 'registry.invalid/f06l/later-x:1', 'registry.invalid/f06l/later-y:1',
    ]);
  });

  it('refuses the image that would take a namespace past 2 × 2 Ready nodes (node, image) pairs, in its status', async () => {
    // Created a second apart, so the order is certain: one and two want 4 pairs, three would make 6.
    for (const x of ['one', 'two', 'three']) {
      await apply([prePullImage(WIDE, x, `registry.invalid/f06l/wide-${x}:1`, NODES)]);
      await new Promise((r) => setTimeout(r, 1100));
    }
    const ready = async (name: string) => (await getPrePullImage(admin, WIDE, name, signal))?.status?.conditions?.find((c) => c.type === 'Ready');
    await waitFor(async () => (await ready('three'))?.reason === 'NamespaceNodeImageLimit', { what: 'the third image refused', timeoutMs: 30_000 });
    const three = await getPrePullImage(admin, WIDE, 'three', signal);
    expect(three?.status?.phase).to.equal('Failed');
    expect(three?.status?.summary?.total).to.equal(0);
    expect((await ready('three'))?.message).to.contain('--namespace-node-images-per-node=2 × 2 Ready nodes');
    for (const x of ['one', 'two']) {
      expect((await ready(x))?.reason).to.not.equal('NamespaceNodeImageLimit');
      expect((await getPrePullImage(admin, WIDE, x, signal))?.status?.summary?.total).to.equal(2);
    }
    // The other namespaces are not affected by WIDE's cap (4 pairs each at most here).
    expect((await getPrePullImage(admin, ALONE, 'd', signal))?.status?.summary?.total).to.equal(1);
  });
});
