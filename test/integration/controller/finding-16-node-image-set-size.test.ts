// Finding 16 of the expert review: a NodeImageSet was bounded by a count (512 entries), not by bytes. Heavy
// entries (long image names, 16 pull secrets with long names) come to several KB each with their
// managedFields, and a few hundred of them went past etcd's 1.5 MiB: the apply was refused on every pass
// and the node got nothing at all. Here 300 heavy PrePullImages target one node: the controller writes the
// node's NodeImageSet trimmed to what fits its byte cap, no write is refused, the stored object stays well
// under etcd's limit, and the images left out are reported.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { getNodeImageSet } from '../../../local-cluster/cluster-fixtures.ts';
import { entriesBytes, MAX_NODE_IMAGE_SET_SPEC_BYTES } from '../../../controller/plan/size-bound.ts';

const KWARM_NS = 'kwarm-f16';
const NS = 'f16';
const NODE = 'f16-node';
const IMAGES = 300;
const SECRETS = 16;
const ETCD_LIMIT = 1.5 * 1024 * 1024;

function secretName(i: number): string {
  // kwarm-pull.f16.<name> must stay within 253 characters.
  return `s${String(i).padStart(2, '0')}-${'x'.repeat(230)}`;
}

function image(i: number): string {
  return `127.0.0.1:5999/f16/${'a'.repeat(200)}-${String(i).padStart(3, '0')}:v1`;
}

describe('finding 16: a NodeImageSet is bounded by bytes, not only by count', function () {
  this.timeout(300_000);
  const bed = new ControllerTestbed({ nodes: [{ name: NODE, labels: { 'kwarm-test/pool': 'f16' } }], namespaces: [NS] });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    const auth = Buffer.from(JSON.stringify({ auths: { '127.0.0.1:5999': { auth: Buffer.from('u:p').toString('base64') } } })).toString('base64');
    const objects: unknown[] = Array.from({ length: SECRETS }, (_, i) => ({
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', metadata: { namespace: NS, name: secretName(i) }, data: { '.dockerconfigjson': auth },
    }));
    for (let i = 0; i < IMAGES; i++) {
      objects.push({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { namespace: NS, name: `heavy-${String(i).padStart(3, '0')}` },
        spec: { image: image(i), nodes: { names: [NODE] }, imagePullSecrets: Array.from({ length: SECRETS }, (_, j) => ({ name: secretName(j) })) },
      });
    }
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
    await bed.startController({ namespace: KWARM_NS, name: 'controller-f16', args: ['--max-concurrent-pulls=0'] });
  });

  after(() => bed.tearDown());

  it('writes the NodeImageSet trimmed to its byte cap instead of failing, and reports the images left out', async () => {
    const nis = await waitFor(async () => {
      const n = await getNodeImageSet(admin, NODE, signal);
      return n !== undefined && n.spec.images.length > 0 ? n : undefined;
    }, { what: 'the node\'s NodeImageSet', timeoutMs: 90_000 }).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nrefused writes: ${String(await bed.controller?.metric('kwarm_api_write_errors_total'))}\n${bed.controller?.tail(20) ?? ''}`);
    });
    const written = nis.spec.images.length;
    const estimate = entriesBytes(nis.spec.images);
    const { stdout } = await cp.kubectl(['get', 'nodeimageset', NODE, '-o', 'json', '--show-managed-fields']);
    const stored = Buffer.byteLength(stdout);
    console.log(`      [figures] ${written} of ${IMAGES} heavy entries written; estimate ${estimate} B (cap ${MAX_NODE_IMAGE_SET_SPEC_BYTES} B); stored object with managedFields ${stored} B`);
    expect(written).to.be.below(IMAGES);
    expect(estimate).to.be.at.most(MAX_NODE_IMAGE_SET_SPEC_BYTES);
    expect(stored).to.be.below(ETCD_LIMIT * 0.75);
    // The estimate does not undercount what the API server stores for the spec.
    expect(estimate).to.be.above(stored * 0.75);
    for (const e of nis.spec.images) expect(e.sources.length).to.be.at.most(4);
    // Nothing was refused: before, the apply failed on every pass.
    expect((await bed.controller!.metric('kwarm_api_write_errors_total')) ?? 0, bed.controller!.tail(30)).to.equal(0);
    // The images left out are reported as held (waiting for room), and named in a Warning Event.
    expect(await bed.controller!.metric('kwarm_held_pulls')).to.equal(IMAGES - written);
    const events = await waitFor(async () => {
      const { stdout: out } = await cp.kubectl(['-n', NS, 'get', 'events', '--field-selector', 'reason=NodeImageSetFull', '-o', 'json']);
      const items = (JSON.parse(out) as { items: { involvedObject: { name: string }; message: string }[] }).items;
      return items.length > 0 ? items : undefined;
    }, { what: 'NodeImageSetFull Events', timeoutMs: 60_000 });
    expect(events[0]?.message).to.contain(NODE);
  });
});
