// Refresh on a real API server with the controller and three agents, each with its own containerd, pulling
// from a real registry: a tag re-pushed with new content reaches every target node after
// `kubectl annotate ppi X kwarm.io/refresh=... --overwrite` (the new digest in every NodeImageSet status),
// a Failed image is retried by a refresh once its tag exists, and a policy's refreshInterval (1m, its
// minimum) re-resolves a derived PrePullImage's tag on its own. The interval's minute runs while the other
// tests do, so the file stays well under two minutes.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import type { NodeImageSet, PrePullImage } from '../../../api/v1alpha1/index.ts';
import { agentKubeconfig, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, deployment, getNodeImageSet, getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';
import { errorText } from '../../../lib/errors.ts';

const NODES = ['rf-node-1', 'rf-node-2', 'rf-node-3'];
const POOL = 'refresh';
const KWARM_NS = 'kwarm-system';
const NS = 'refresh';
const POLICY = 'refresh-interval';
const TICK_PPI = 'deployment.tick.app';

function prePullImageYaml(name: string, image: string): string {
  return `apiVersion: kwarm.io/v1alpha1
kind: PrePullImage
metadata: {name: ${name}, namespace: ${NS}}
spec:
  image: ${image}
  nodes: {selector: {matchLabels: {kwarm-test/pool: ${POOL}}}}
  retry: {maxAttempts: 1, backoffSeconds: 0}
`;
}

describe('controller: refresh with agents, containerd and a registry', function () {
  this.timeout(150_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let registry: TestRegistry | undefined;
  const runtimes: TestContainerd[] = [];
  const cris: GrpcImageRuntime[] = [];
  const agents: AgentProcess[] = [];
  let controller: ControllerProcess | undefined;
  /** The interval test's image: v1 at first, re-pushed (tickB) once the derived PrePullImage completed. */
  let tickA: PushedImage;
  let tickB: PushedImage;
  const ac = new AbortController();
  const signal = ac.signal;

  async function ppi(name: string): Promise<PrePullImage | undefined> {
    return getPrePullImage(admin, NS, name, signal);
  }

  async function phaseIs(name: string, phase: string, timeoutMs = 60_000): Promise<PrePullImage> {
    return waitFor(async () => {
      const p = await ppi(name);
      return p?.status?.phase === phase && p.status.observedGeneration === p.metadata.generation ? p : undefined;
    }, { what: `PrePullImage ${name} to be ${phase}`, timeoutMs }).catch(async (err: unknown) => {
      throw new Error(`${errorText(err)}\nstatus: ${JSON.stringify((await ppi(name))?.status)}\n${controller?.tail(30) ?? ''}`);
    });
  }

  /** Every node's NodeImageSet status for `ref`: Completed in the spec's round, with this repo digest. */
  async function digestsOnNodes(ref: string): Promise<{ node: string; round: number; statusRound: number | undefined; phase: string | undefined; repoDigest: string | undefined }[]> {
    const out = [];
    for (const node of NODES) {
      const nis: NodeImageSet | undefined = await getNodeImageSet(admin, node, signal);
      const entry = nis?.spec.images.find((e) => e.image === ref);
      const st = nis?.status?.images?.find((s) => s.image === ref);
      out.push({ node, round: entry?.round ?? -1, statusRound: st?.round, phase: st?.phase, repoDigest: st?.repoDigest });
    }
    return out;
  }

  async function newDigestEverywhere(ref: string, pushed: PushedImage, what: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => (await digestsOnNodes(ref)).every((d) => d.phase === 'Completed' && d.statusRound === d.round && d.round > 0 && d.repoDigest === pushed.digestReference),
      { what, timeoutMs }).catch(async (err: unknown) => {
      throw new Error(`${errorText(err)}\nwant ${pushed.digestReference}\n${JSON.stringify(await digestsOnNodes(ref), null, 1)}\n${controller?.tail(30) ?? ''}`);
    });
  }

  async function eventsOf(name: string): Promise<{ reason: string; message: string }[]> {
    const list = await admin.list(`/api/v1/namespaces/${NS}/events`, { fieldSelector: `involvedObject.name=${name}` }, signal);
    return list.items.map((e) => {
      const ev = e as { reason?: string; message?: string };
      return { reason: ev.reason ?? '', message: ev.message ?? '' };
    });
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    registry = await startRegistry({ name: 'refresh' });
    for (const name of NODES) {
      const rt = await startContainerd({ name, registries: [registry] });
      runtimes.push(rt);
      cris.push(new GrpcImageRuntime({ endpoint: rt.socket }));
      await createNode(admin, { name, labels: { 'kwarm-test/pool': POOL } }, signal);
      agents.push(await startAgentProcess({
        nodeName: name, kubeconfig: await agentKubeconfig(cp, { namespace: KWARM_NS, nodeName: name }), criSocket: rt.socket, namespace: KWARM_NS, verifyInterval: '5m',
      }));
    }
    for (const a of agents) await a.waitReady();
    await cp.kubectl(['create', 'namespace', NS]);
    // A budget below the number of pairs: refreshed pairs wait for it like new pulls.
    controller = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp, KWARM_NS), namespace: KWARM_NS, name: 'controller-refresh', args: ['--max-concurrent-pulls=2'] });

    // The interval case starts first, so its minute passes during the other tests.
    tickA = await buildAndPushImage(registry, { repository: 'refresh/tick', tag: 'v1', layers: [64 * 1024] });
    await cp.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata: {name: ${POLICY}}
spec:
  selector: {matchLabels: {kwarm-test/suite: ${POLICY}}}
  refreshInterval: 1m
`,
    });
    const d = deployment(NS, 'tick', tickA.reference, { pool: POOL }) as { metadata: { labels: Record<string, string> } };
    d.metadata.labels = { app: 'tick', 'kwarm-test/suite': POLICY };
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });
    const done = await phaseIs(TICK_PPI, 'Completed');
    expect(done.spec.refreshInterval).to.equal('1m');
    expect(done.status?.refresh).to.equal(undefined);
    for (const s of await digestsOnNodes(tickA.reference)) expect(s.repoDigest, s.node).to.equal(tickA.digestReference);
    // Re-pushed well within the minute: the first interval refresh must find the new content.
    tickB = await buildAndPushImage(registry, { repository: 'refresh/tick', tag: 'v1', layers: [64 * 1024] });
    expect(tickB.manifestDigest).to.not.equal(tickA.manifestDigest);
  });

  after(async () => {
    await controller?.stop();
    for (const a of agents) await a.dispose();
    for (const c of cris) c.close();
    for (const rt of runtimes) await rt.dispose();
    await registry?.dispose();
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await cp.kubectl(['delete', 'prepullpolicy', POLICY], { allowFailure: true });
    await deleteNodes(admin, NODES, signal);
    ac.abort();
    admin.close();
  });

  it('lands a re-pushed tag\'s new digest on every target node after kubectl annotate kwarm.io/refresh', async () => {
    const a = await buildAndPushImage(registry!, { repository: 'refresh/app', tag: 'v1', layers: [128 * 1024] });
    await cp.kubectl(['apply', '-f', '-'], { input: prePullImageYaml('app', a.reference) });
    await phaseIs('app', 'Completed');
    for (const s of await digestsOnNodes(a.reference)) expect(s, s.node).to.deep.include({ round: 0, repoDigest: a.digestReference });

    const b = await buildAndPushImage(registry!, { repository: 'refresh/app', tag: 'v1', layers: [128 * 1024] });
    expect(b.manifestDigest).to.not.equal(a.manifestDigest);
    // Without a refresh nothing moves: the tag was resolved in this round.
    expect((await ppi('app'))?.status?.refresh).to.equal(undefined);

    await cp.kubectl(['-n', NS, 'annotate', 'prepullimage', 'app', 'kwarm.io/refresh=first', '--overwrite']);
    const recorded = await waitFor(async () => (await ppi('app'))?.status?.refresh, { what: 'status.refresh to record the annotation' });
    expect(recorded.requested).to.equal('first');
    const round = Math.floor(Date.parse(recorded.lastTime) / 1000);
    await newDigestEverywhere(a.reference, b, 'every node to report the re-pushed digest');
    for (const s of await digestsOnNodes(a.reference)) expect(s.round, s.node).to.equal(round);
    const done = await phaseIs('app', 'Completed');
    expect(done.status?.ready).to.equal('3/3');
    expect(done.status?.refresh).to.deep.equal(recorded);
    for (const [i, cri] of cris.entries()) {
      const info = await cri.imageStatus(a.reference, { signal: AbortSignal.timeout(10_000) });
      expect(info?.id, NODES[i]).to.equal(b.configDigest);
    }
    const events = await eventsOf('app');
    expect(events.filter((e) => e.reason === 'RefreshRequested').map((e) => e.message)).to.have.length(1).and.satisfy((m: string[]) => m[0]?.includes('kwarm.io/refresh=first'));

    // The same value again is no new refresh; the rounds stay where they are.
    await cp.kubectl(['-n', NS, 'annotate', 'prepullimage', 'app', 'kwarm.io/refresh=first', '--overwrite']);
    await cp.kubectl(['-n', NS, 'label', 'prepullimage', 'app', 'poke=1']);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await ppi('app'))?.status?.refresh).to.deep.equal(recorded);
    for (const s of await digestsOnNodes(a.reference)) expect(s.round, s.node).to.equal(round);
  });

  it('retries a Failed image with a refresh once its tag exists', async () => {
    const ref = `${registry!.host}/refresh/late:v1`;
    await cp.kubectl(['apply', '-f', '-'], { input: prePullImageYaml('late', ref) });
    const failed = await phaseIs('late', 'Failed');
    expect(failed.status?.summary?.failed).to.equal(3);

    const pushed = await buildAndPushImage(registry!, { repository: 'refresh/late', tag: 'v1', layers: [64 * 1024] });
    // Failed stays Failed until asked: the agents do not retry a finished round on their own.
    await new Promise((r) => setTimeout(r, 1000));
    expect((await ppi('late'))?.status?.phase).to.equal('Failed');

    await cp.kubectl(['-n', NS, 'annotate', 'prepullimage', 'late', `kwarm.io/refresh=${Date.now()}`, '--overwrite']);
    await newDigestEverywhere(ref, pushed, 'the refreshed image on every node');
    const done = await phaseIs('late', 'Completed');
    expect(done.status?.summary).to.deep.equal({ total: 3, pending: 0, pulling: 0, completed: 3, failed: 0 });
    expect(await controller!.metric('kwarm_refreshes_total', { trigger: 'Annotation' })).to.equal(2);
  });

  it('re-resolves a derived PrePullImage\'s tag every refreshInterval (1m) on its own', async () => {
    await newDigestEverywhere(tickA.reference, tickB, 'the interval refresh to land the re-pushed tick:v1', 100_000);
    const p = await phaseIs(TICK_PPI, 'Completed');
    expect(p.status?.refresh?.requested).to.equal(undefined);
    expect(p.status?.refresh?.lastTime).to.be.a('string');
    const events = await eventsOf(TICK_PPI);
    expect(events.some((e) => e.reason === 'RefreshRequested' && e.message.includes('refreshInterval 1m'))).to.equal(true);
    expect(await controller!.metric('kwarm_refreshes_total', { trigger: 'Interval' })).to.be.at.least(1);
  });
});
