// Finding 20 of the expert review: entries were keyed by the raw image string, so `nginx`, `nginx:latest` and
// `docker.io/library/nginx:latest` were three entries on a node, each using budget and each re-resolved. Here, on
// a real API server with the controller process, three PrePullImages with those spellings give one entry, under
// the fully qualified reference (which the runtime pulls exactly as it pulls `nginx`), with all three behind it.
// Nothing is pulled: no agent runs, so no registry is contacted.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { getNodeImageSet } from '../../../local-cluster/cluster-fixtures.ts';

const NODE = 'f20-node';
const POOL = 'finding-20';
const KWARM_NS = 'kwarm-system';
const NS = 'finding-20';
const SPELLINGS = { short: 'nginx', tagged: 'nginx:latest', full: 'docker.io/library/nginx:latest' };

describe('finding 20: image references are normalised for planning', function () {
  this.timeout(120_000);
  const bed = new ControllerTestbed({ nodes: [{ name: NODE, labels: { 'kwarm-test/pool': POOL } }], namespaces: [NS] });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await bed.startController({ namespace: KWARM_NS, name: 'controller-f20' });
  });

  after(() => bed.tearDown());

  it('plans nginx, nginx:latest and docker.io/library/nginx:latest as one entry with three sources', async () => {
    for (const [name, image] of Object.entries(SPELLINGS)) {
      await cp.kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name, namespace: NS },
          spec: { image, nodes: { selector: { matchLabels: { 'kwarm-test/pool': POOL } } } },
        }),
      });
    }
    const sourceCount = async (): Promise<number> => (await getNodeImageSet(admin, NODE, signal))?.spec.images.reduce((n, e) => n + e.sources.length, 0) ?? 0;
    await waitFor(async () => (await sourceCount()) === 3, { what: 'all three PrePullImages planned', timeoutMs: 30_000 });
    const images = (await getNodeImageSet(admin, NODE, signal))?.spec.images ?? [];
    expect(images.map((e) => e.image)).to.deep.equal(['docker.io/library/nginx:latest']);
    expect(images[0]?.sources.map((s) => s.name).sort()).to.deep.equal(['full', 'short', 'tagged']);
  });
});
