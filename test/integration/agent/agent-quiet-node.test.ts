// A quiet node's status traffic: once its images are Completed, verify passes (here every second) find
// them unchanged and write only the heartbeat, a patch of a few hundred bytes, never the image entries.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { allIn, applySpec, readNodeImageSet, recordVersions, waitForStatus } from './node-image-sets.ts';

const NODE = 'agent-quiet-node';
const NAMESPACE = 'kwarm-system';
const IMAGES = 24;

describe('agent: status writes of a quiet node', function () {
  this.timeout(180_000);
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let containerd: TestContainerd | undefined;
  let agent: AgentProcess | undefined;

  before(async () => {
    const cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry();
    containerd = await startContainerd({ name: NODE, registries: [registry] });
    const kubeconfig = await agentKubeconfig(cp, { namespace: NAMESPACE, nodeName: NODE });
    agent = await startAgentProcess({ nodeName: NODE, kubeconfig, criSocket: containerd.socket, verifyInterval: '1s' });
    await agent.waitReady();
  });

  after(async () => {
    await agent?.dispose();
    await containerd?.dispose();
    await registry?.dispose();
    admin.close();
  });

  it('verify passes rewrite no image entry and send only small heartbeat patches', async () => {
    const pushed = await Promise.all(Array.from({ length: IMAGES }, (_, i) =>
      buildAndPushImage(registry!, { repository: `quiet/img-${i}`, tag: 'v1', layers: [4096] })));
    const refs = pushed.map((p) => p.reference);
    await applySpec(admin, NODE, { images: refs.map((image) => ({ image })) });
    await waitForStatus(admin, NODE, allIn('Completed', refs), { what: `all ${IMAGES} Completed` });
    await sleep(2500);

    const fullBytes = JSON.stringify((await readNodeImageSet(admin, NODE))?.status).length;
    const writes0 = (await agent!.metric('kwarm_status_writes_total', { result: 'written' })) ?? 0;
    const bytes0 = (await agent!.metric('kwarm_status_write_bytes_total')) ?? 0;
    const recorder = await recordVersions(admin, NODE);
    await sleep(6000);
    await recorder.stop();
    const writes = ((await agent!.metric('kwarm_status_writes_total', { result: 'written' })) ?? 0) - writes0;
    const bytes = ((await agent!.metric('kwarm_status_write_bytes_total')) ?? 0) - bytes0;
    console.log(`      [figures] ${IMAGES} images, 6 s of 1 s verify passes: ${writes} status writes, ${bytes} bytes in all (the whole status is ${fullBytes} bytes)`);

    // A heartbeat per pass at most (times have second precision).
    expect(writes).to.be.at.least(1).and.at.most(7);
    expect(bytes / writes).to.be.below(400);
    expect(fullBytes).to.be.above(IMAGES * 250);
    // Every version seen carries the very same image entries.
    const images = recorder.versions.map((v) => JSON.stringify(v.status?.images));
    expect(recorder.versions.length).to.be.at.least(2);
    expect(new Set(images).size).to.equal(1);
  });
});
