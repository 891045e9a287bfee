// The kubelet's own image garbage collection can be made to run on a real node (RealNode.collectImages): it
// removes an image no container uses and keeps the one a running pod uses. Slow by nature (the kubelet collects
// every 5 minutes), so one test covers the helper that kwarm's re-pull-after-GC tests build on.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';

const NS = 'nodes-image-gc';

describe('real nodes: the kubelet\'s image garbage collection', function () {
  this.timeout(600_000);
  let cluster: RealCluster;

  before(async () => {
    cluster = await sharedRealCluster();
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
  });

  it('removes an image no container uses and keeps the image of a running pod', async () => {
    const node = cluster.nodes[cluster.nodes.length - 1];
    if (node === undefined) throw new Error('no nodes');
    const unused = cluster.nodeImage((await pushSleeperImage(cluster.registry, 'kwarm/gc-unused', '1')).reference);
    const used = cluster.nodeImage((await pushSleeperImage(cluster.registry, 'kwarm/gc-used', '1')).reference);
    await cluster.kubectl(['create', 'namespace', NS]);
    await cluster.controlPlane.apply(JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'user', namespace: NS },
      spec: { nodeName: node.name, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: used }] },
    }));
    await cluster.controlPlane.waitFor('pod/user', 'condition=Ready', { namespace: NS, timeoutSeconds: 120 });
    const cri = new GrpcImageRuntime({ endpoint: node.containerd.socket });
    try {
      await cri.pullImage(unused, undefined, { signal: AbortSignal.timeout(60_000) });
      const present = async (ref: string): Promise<boolean> => (await cri.imageStatus(ref, { signal: AbortSignal.timeout(10_000) })) !== undefined;
      expect(await present(unused)).to.equal(true);

      const started = Date.now();
      await node.collectImages(async () => !(await present(unused)));
      console.log(`    kubelet image GC on ${node.name} took ${Math.round((Date.now() - started) / 1000)} s`);
      expect(await present(unused)).to.equal(false);
      expect(await present(used)).to.equal(true);
      const { stdout } = await cluster.kubectl(['get', 'pod', 'user', '-n', NS, '-o', 'jsonpath={.status.phase}']);
      expect(stdout).to.equal('Running');
    } finally {
      cri.close();
    }
  });
});
