// How references are treated, against real containerd: a pinned imageDigest is verified against
// what the runtime reports; a mutable tag (:latest) is re-resolved once per round, also across an
// agent restart; a Failed round stays Failed across a restart instead of hammering the registry.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { allIn, applySpec, imageStatus, readNodeImageSet, waitForStatus } from './node-image-sets.ts';

const NODE = 'agent-references-node';

describe('agent: digests, mutable tags and restarts', function () {
  this.timeout(180_000);
  let admin: KubeClient;
  let kubeconfigFor: (nodeName: string) => Promise<string>;
  let registry: TestRegistry | undefined;
  let containerd: TestContainerd | undefined;
  let cri: GrpcImageRuntime | undefined;
  let agent: AgentProcess | undefined;

  const stopped: AgentProcess[] = [];
  const restartAgent = async (): Promise<AgentProcess> => {
    const logFile = agent?.logFile;
    await agent?.stop();
    if (agent !== undefined) stopped.push(agent);
    agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: containerd!.socket, verifyInterval: '5m', ...(logFile !== undefined ? { logFile } : {}) });
    await agent.waitReady();
    return agent;
  };

  before(async () => {
    const cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    kubeconfigFor = (nodeName) => agentKubeconfig(cp, { namespace: 'kwarm-system', nodeName });
    registry = await startRegistry();
    containerd = await startContainerd({ name: NODE, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: containerd.socket });
    await restartAgent();
  });

  after(async () => {
    await agent?.dispose();
    // The first agent's temp dir holds the shared log; removed last.
    for (const a of stopped) await a.dispose();
    cri?.close();
    await containerd?.dispose();
    await registry?.dispose();
    admin.close();
  });

  it('verifies a pinned imageDigest: a match completes, a mismatch fails with DigestMismatch', async () => {
    const good = await buildAndPushImage(registry!, { repository: 'refs/pinned', tag: 'v1', layers: [4096] });
    const other = await buildAndPushImage(registry!, { repository: 'refs/moved', tag: 'v1', layers: [4096] });
    const decoy = await buildAndPushImage(registry!, { repository: 'refs/decoy', tag: 'v1', layers: [4096] });
    await applySpec(admin, NODE, {
      images: [
        { image: good.reference, imageDigest: good.manifestDigest },
        { image: other.reference, imageDigest: decoy.manifestDigest, retry: { maxAttempts: 3, backoffSeconds: 1 } },
      ],
    });
    const obj = await waitForStatus(admin, NODE, (o) => allIn('Completed', [good.reference])(o) && imageStatus(o, other.reference)?.phase === 'Failed', {
      what: 'the pinned image Completed and the mismatched one Failed',
    });
    expect(imageStatus(obj, good.reference)).to.include({ repoDigest: good.digestReference });
    const bad = imageStatus(obj, other.reference)!;
    expect(bad).to.include({ reason: 'DigestMismatch', attempts: 1 });
    expect(bad.message).to.include(decoy.manifestDigest).and.include(other.manifestDigest);
  });

  it('re-resolves :latest once per round, not on every look', async () => {
    const ref = `${registry!.host}/refs/moving:latest`;
    const v1 = await buildAndPushImage(registry!, { repository: 'refs/moving', tag: 'latest', layers: [4096] });
    await applySpec(admin, NODE, { images: [{ image: ref }] });
    const first = await waitForStatus(admin, NODE, allIn('Completed', [ref]), { what: ':latest Completed' });
    expect(imageStatus(first, ref)?.imageId).to.equal(v1.configDigest);

    const v2 = await buildAndPushImage(registry!, { repository: 'refs/moving', tag: 'latest', layers: [4096] });
    // Same round after a restart: the tag was resolved in this round already, nothing is pulled.
    const restarted = await restartAgent();
    await waitForStatus(admin, NODE, (o) => allIn('Completed', [ref])(o) && o.status?.heartbeatTime !== first.status?.heartbeatTime, { what: 'status from the new agent' });
    expect(imageStatus(await readNodeImageSet(admin, NODE), ref)?.imageId).to.equal(v1.configDigest);
    expect(await restarted.metric('kwarm_pulls_total')).to.equal(undefined);

    await applySpec(admin, NODE, { images: [{ image: ref, round: 1 }] });
    const second = await waitForStatus(admin, NODE, (o) => allIn('Completed', [ref])(o) && imageStatus(o, ref)?.round === 1, { what: ':latest Completed in round 1' });
    expect(imageStatus(second, ref)?.imageId).to.equal(v2.configDigest);
    expect((await cri!.imageStatus(ref, { signal: AbortSignal.timeout(10_000) }))?.id).to.equal(v2.configDigest);
  });

  it('keeps a Failed round Failed across a restart, and does not pull it again', async () => {
    const missing = `${registry!.host}/refs/absent:v1`;
    await applySpec(admin, NODE, { images: [{ image: missing, retry: { maxAttempts: 1, backoffSeconds: 1 } }] });
    const failed = await waitForStatus(admin, NODE, (o) => imageStatus(o, missing)?.phase === 'Failed', { what: 'the absent image Failed' });
    const restarted = await restartAgent();
    await sleep(2000);
    const after = imageStatus(await readNodeImageSet(admin, NODE), missing);
    expect(after).to.include({ phase: 'Failed', reason: 'NotFound', attempts: 1 });
    expect(after?.finishedAt).to.equal(imageStatus(failed, missing)?.finishedAt);
    expect(await restarted.metric('kwarm_pulls_total')).to.equal(undefined);
  });
});
