// The vertical slice: kwarm-agent as a real process, with the agent's least-privilege RBAC, watches
// its NodeImageSet on a real API server and pulls the entries into a real containerd from a real
// registry; status reaches Completed with what the runtime reports, written only to the status
// subresource, coalesced, and only when something changed.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentInClusterCredentials, agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { allIn, applySpec, imageStatus, readNodeImageSet, waitForStatus } from './node-image-sets.ts';

const NODE = 'agent-slice-node';
const NAMESPACE = 'kwarm-system';

interface AuditEntry {
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; name?: string; apiGroup?: string; namespace?: string };
  requestReceivedTimestamp: string;
}

function auditEntries(cp: ControlPlane, username: string): AuditEntry[] {
  return readFileSync(cp.auditLogPath, 'utf8').split('\n').filter((l) => l.includes(username))
    .map((l) => JSON.parse(l) as AuditEntry).filter((e) => e.user.username === username);
}

describe('agent: pulls its NodeImageSet into containerd (vertical slice)', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  let node: TestContainerd | undefined;
  let cri: GrpcImageRuntime;
  let agent: AgentProcess | undefined;
  let images: PushedImage[];
  const agentUser = `system:serviceaccount:${NAMESPACE}:kwarm-agent`;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry();
    node = await startContainerd({ name: NODE, registries: [registry] });
    cri = new GrpcImageRuntime({ endpoint: node.socket });
    images = await Promise.all(['a', 'b', 'c', 'd'].map((n, i) =>
      buildAndPushImage(registry!, { repository: `slice/${n}`, tag: 'v1', layers: [256 * 1024 * (i + 1), 4096] })));
    const kubeconfigFor = (nodeName: string): Promise<string> => agentKubeconfig(cp!, { namespace: NAMESPACE, nodeName });
    agent = await startAgentProcess({ nodeName: NODE, kubeconfig: await kubeconfigFor(NODE), criSocket: node.socket, verifyInterval: '5m' });
    await agent.waitReady();
  });

  after(async () => {
    await agent?.dispose();
    cri.close();
    await node?.dispose();
    await registry?.dispose();
    admin.close();
  });

  it('pulls every entry and reports Completed with the image id, repo digest and size', async () => {
    const [a, b, c] = images as [PushedImage, PushedImage, PushedImage];
    const wanted = [a.reference, b.digestReference, c.reference];
    const started = Date.now();
    await applySpec(admin, NODE, { maxConcurrentPulls: 2, images: wanted.map((image) => ({ image })) });
    const obj = await waitForStatus(admin, NODE, allIn('Completed', wanted), { what: 'all three images Completed' });
    console.log(`      [figures] 3 small images Completed in status ${Date.now() - started} ms after the spec was written`);

    for (const [img, ref] of [[a, a.reference], [b, b.digestReference], [c, c.reference]] as const) {
      const s = imageStatus(obj, ref)!;
      expect(s.imageId, ref).to.equal(img.configDigest);
      expect(s.repoDigest, ref).to.equal(img.digestReference);
      expect(s.sizeBytes, ref).to.be.greaterThan(0);
      expect(s.attempts, ref).to.equal(1);
      expect(s.round, ref).to.equal(0);
      expect(s.reason, ref).to.equal(undefined);
      expect(Date.parse(s.finishedAt!)).to.be.at.least(Date.parse(s.startedAt!));
      // Visible through CRI, the way the kubelet will find it.
      expect((await cri.imageStatus(ref, { signal: AbortSignal.timeout(10_000) }))?.id, ref).to.equal(img.configDigest);
    }
    expect(obj.status).to.include({ desired: 3, ready: 3, pulling: 0, failed: 0, observedGeneration: obj.generation });
    expect(obj.status?.runtime?.name).to.equal('containerd');
    expect(obj.status?.heartbeatTime).to.be.a('string');
    expect(obj.status?.imageFs?.capacityBytes).to.be.greaterThan(0);

    expect(await agent!.metric('kwarm_pulls_total', { status: 'succeeded' })).to.equal(3);
    expect(await agent!.metric('kwarm_pulled_bytes_total')).to.be.greaterThan(256 * 1024 * 6);
    expect(await agent!.metric('kwarm_active_pulls')).to.equal(0);
    expect(await agent!.metric('kwarm_pull_duration_seconds_count', { status: 'succeeded' })).to.equal(3);
  });

  it('follows spec changes: a new entry is pulled, a removed one leaves status (the image stays on the node)', async () => {
    const [a, b, c, d] = images as [PushedImage, PushedImage, PushedImage, PushedImage];
    await applySpec(admin, NODE, { maxConcurrentPulls: 2, images: [b.digestReference, c.reference, d.reference].map((image) => ({ image })) });
    const obj = await waitForStatus(admin, NODE, allIn('Completed', [b.digestReference, c.reference, d.reference]), { what: 'd Completed' });
    expect(obj.status?.images?.map((i) => i.image)).to.deep.equal([b.digestReference, c.reference, d.reference]);
    expect(imageStatus(obj, d.reference)?.imageId).to.equal(d.configDigest);
    expect(obj.status?.desired).to.equal(3);
    expect(await cri.imageStatus(a.reference, { signal: AbortSignal.timeout(10_000) })).to.not.equal(undefined);
    expect(await agent!.metric('kwarm_pulls_total', { status: 'succeeded' })).to.equal(4);
  });

  it('does not pull an image the runtime already has (IfNotPresent)', async () => {
    const [a, , , d] = images as [PushedImage, PushedImage, PushedImage, PushedImage];
    await applySpec(admin, NODE, { maxConcurrentPulls: 2, images: [a.reference, d.reference].map((image) => ({ image })) });
    const obj = await waitForStatus(admin, NODE, allIn('Completed', [a.reference, d.reference]), { what: 'a Completed again' });
    expect(imageStatus(obj, a.reference)?.attempts).to.equal(0);
    expect(await agent!.metric('kwarm_pulls_total', { status: 'succeeded' })).to.equal(4);
  });

  it('writes only nodeimagesets/status, as its ServiceAccount, with merge patches at most about once per second (an image finishing: after 100 ms)', () => {
    // Agents of other test files share the ServiceAccount: all of them write only status.
    const all = auditEntries(cp, agentUser);
    for (const e of all) {
      expect([e.verb, e.objectRef?.apiGroup, e.objectRef?.resource, e.objectRef?.subresource]).to.deep.equal(['patch', 'kwarm.io', 'nodeimagesets', 'status']);
    }
    const entries = all.filter((e) => e.objectRef?.name === NODE);
    expect(entries.length).to.be.greaterThan(0);
    const times = entries.map((e) => Date.parse(e.requestReceivedTimestamp)).sort((x, y) => x - y);
    const tightest = Math.min(...times.slice(1).map((t, i) => t - times[i]!));
    const early = times.slice(1).filter((t, i) => t - times[i]! < 900).length;
    console.log(`      [figures] ${entries.length} status patches so far; tightest gap ${tightest} ms; ${early} within 900 ms of the previous one`);
    // Progress waits out the 1 s window; only a patch that finishes an image may come sooner (100 ms). The
    // specs above finish at most 8 (spec, image) pairs: 3 + 3 + 2 entries.
    expect(tightest).to.be.at.least(50);
    expect(early).to.be.at.most(8);
  });

  it('runs in a pod\'s way: in-cluster ServiceAccount token and CA, no kubeconfig', async () => {
    const inCluster = await startAgentProcess({
      nodeName: `${NODE}-in-cluster`,
      inCluster: await agentInClusterCredentials(cp, { namespace: NAMESPACE, nodeName: `${NODE}-in-cluster` }),
      criSocket: node!.socket,
      verifyInterval: '5m',
    });
    try {
      await inCluster.waitReady();
      const [a, , , d] = images as [PushedImage, PushedImage, PushedImage, PushedImage];
      await applySpec(admin, `${NODE}-in-cluster`, { images: [a.reference, d.reference].map((image) => ({ image })) });
      const obj = await waitForStatus(admin, `${NODE}-in-cluster`, allIn('Completed', [a.reference, d.reference]), { what: 'Completed by the in-cluster agent' });
      expect(imageStatus(obj, d.reference)?.imageId).to.equal(d.configDigest);
      // Authenticated as the ServiceAccount through the mounted token.
      expect(auditEntries(cp, agentUser).some((e) => e.objectRef?.name === `${NODE}-in-cluster`)).to.equal(true);
    } finally {
      await inCluster.dispose();
    }
  });

  it('writes nothing while nothing changes', async () => {
    const writes = (): number => auditEntries(cp, agentUser).filter((e) => e.objectRef?.name === NODE).length;
    const before = writes();
    const obj = await readNodeImageSet(admin, NODE);
    await sleep(3000);
    expect(writes()).to.equal(before);
    expect((await readNodeImageSet(admin, NODE))?.status).to.deep.equal(obj?.status);
    expect((await agent!.readyz()).status).to.equal(200);
  });
});
