// The rollout gate against the real API server, with the chart's controller RBAC and admission policy
// (rolloutGate.enabled) and the controller's own token: the real kwarm-controller process derives the
// PrePullImages of gated Deployments, the /mutate-pods handler decides with the same lookups it makes behind the
// webhook, and the release loop (in this process, controller token) removes the gate once the images are warm
// or at the policy's timeout. There is no scheduler here, so pods stay unscheduled and only kwarm touches gates.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import winston from 'winston';
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import { ROLLOUT_GATE_NAME } from '../../../api/v1alpha1/index.ts';
import { mutatePodsHandler, type AdmissionOutcome } from '../../../controller/gate/admission.ts';
import { apiLookups, CachedAdmissionLookups } from '../../../controller/gate/admission-lookups.ts';
import { ReleaseLoop, releaseAllGates } from '../../../controller/gate/release-loop.ts';
import { KubeApiError, KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess } from '../../../local-cluster/controller-process.ts';
import { createNode, deleteNodes, getPrePullImage, reportImages } from '../../../local-cluster/cluster-fixtures.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { helm } from '../../../local-cluster/helm.ts';
import { agentKubeconfig, installKwarmAccess } from '../../../local-cluster/kwarm-access.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const KWARM_NS = 'kwarm-gate-it';
const NS = 'gate-it';
const POOL = 'gate-it';
const NODES = ['gate-n1', 'gate-n2'];
const IMG_A = '127.0.0.1:5999/gate/a:v1';
const IMG_B = '127.0.0.1:5999/gate/b:v1';
const IMG_C = '127.0.0.1:5999/gate/c:v1';
const SA = 'kwarm-controller';
const run = promisify(execFile);
const ACCESS_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);

interface Doc { kind: string; metadata: { name: string }; roleRef?: { name: string }; spec?: { policyName?: string } }
interface RawPod { metadata: { name: string; uid: string }; spec: { schedulingGates?: { name: string }[] } }
interface RawEvent { reason: string; type: string; message: string; involvedObject: { name: string } }

/** The chart's access objects with rolloutGate.enabled, for a namespace of their own (cluster-scoped names suffixed). */
async function gateAccess(cp: ControlPlane): Promise<void> {
  const { stdout } = await helm(['template', 'kwarm', 'charts/kwarm', '--namespace', KWARM_NS, '--set', 'rolloutGate.enabled=true']);
  const docs = (loadAllYaml(stdout) as (Doc | null)[]).filter((d): d is Doc => d !== null && ACCESS_KINDS.has(d.kind));
  for (const d of docs) {
    if (d.kind.startsWith('Cluster') || d.kind.startsWith('ValidatingAdmissionPolicy')) d.metadata.name += `-${KWARM_NS}`;
    if (d.kind === 'ClusterRoleBinding' && d.roleRef !== undefined) d.roleRef.name += `-${KWARM_NS}`;
    if (d.kind === 'ValidatingAdmissionPolicyBinding' && d.spec?.policyName !== undefined) d.spec.policyName += `-${KWARM_NS}`;
  }
  expect(docs.map((d) => d.metadata.name)).to.include(`kwarm-controller-pod-gate-only-${KWARM_NS}`);
  await cp.apply([`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${KWARM_NS}\n`, ...docs.map((d) => dumpYaml(d))].join('---\n'));
}

function policy(name: string, tier: string, timeout: string): string {
  return JSON.stringify({
    apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name },
    spec: { selector: { matchLabels: { 'gate-it/tier': tier }, namespaces: [NS] }, rolloutGate: { enabled: true, timeout } },
  });
}

function podBody(rs: { name: string; uid: string }, image: string): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { generateName: `${rs.name}-`, namespace: NS, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.name, uid: rs.uid, controller: true }] },
    spec: { nodeSelector: { 'kwarm-test/pool': POOL }, containers: [{ name: 'app', image }] },
  };
}

function review(pod: unknown, namespace = NS): unknown {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'req-1', operation: 'CREATE', namespace, object: pod } };
}

interface Answer { response: { uid: string; allowed: boolean; patch?: string } }

function patchOf(answer: unknown): unknown[] | undefined {
  const p = (answer as Answer).response.patch;
  return p === undefined ? undefined : JSON.parse(Buffer.from(p, 'base64').toString()) as unknown[];
}

describe('controller: the rollout gate on the real API server (chart RBAC and admission policy, controller token)', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let kwarm: KubeClient;
  let controller: ControllerProcess | undefined;
  const log = winston.createLogger({ silent: true });
  const ac = new AbortController();
  const signal = ac.signal;
  const rs = new Map<string, { name: string; uid: string }>();

  /** A labelled Deployment (its policy selects it) and a ReplicaSet it controls, as kube-controller-manager would make. */
  async function workload(name: string, tier: string, image: string): Promise<void> {
    const dep = await admin.create(`/apis/apps/v1/namespaces/${NS}/deployments`, {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, labels: { app: name, 'gate-it/tier': tier } },
      spec: {
        replicas: 1, selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { nodeSelector: { 'kwarm-test/pool': POOL }, containers: [{ name: 'app', image }] } },
      },
    }, signal) as RawPod;
    const set = await admin.create(`/apis/apps/v1/namespaces/${NS}/replicasets`, {
      apiVersion: 'apps/v1', kind: 'ReplicaSet',
      metadata: { name: `${name}-1`, labels: { app: name }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: dep.metadata.uid, controller: true }] },
      spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } } },
    }, signal) as RawPod;
    rs.set(name, { name: set.metadata.name, uid: set.metadata.uid });
    await waitFor(async () => (await getPrePullImage(admin, NS, `deployment.${name}.app`, signal))?.status?.summary?.total === NODES.length,
      { what: `PrePullImage deployment.${name}.app with both nodes as targets`, timeoutMs: 60_000 });
  }

  /** Creates the pod as the API server would after the webhook: with the handler's patch applied. */
  async function admit(name: string, image: string): Promise<{ pod: RawPod; gated: boolean }> {
    const body = podBody(rs.get(name) ?? { name: '', uid: '' }, image);
    const answer = await mutatePodsHandler({ lookups: apiLookups(kwarm), log, namespace: KWARM_NS })(review(body));
    expect((answer as Answer).response).to.include({ uid: 'req-1', allowed: true });
    const patch = patchOf(answer);
    if (patch !== undefined) {
      expect(patch).to.deep.equal([{ op: 'add', path: '/spec/schedulingGates', value: [{ name: ROLLOUT_GATE_NAME }] }]);
      (body.spec as Record<string, unknown>).schedulingGates = [{ name: ROLLOUT_GATE_NAME }];
    }
    return { pod: await admin.create(`/api/v1/namespaces/${NS}/pods`, body, signal) as RawPod, gated: patch !== undefined };
  }

  const gates = async (pod: string): Promise<string[]> =>
    ((await admin.get(`/api/v1/namespaces/${NS}/pods/${pod}`, signal) as RawPod).spec.schedulingGates ?? []).map((g) => g.name);
  const events = async (pod: string): Promise<RawEvent[]> =>
    ((await admin.list(`/api/v1/namespaces/${NS}/events`, { fieldSelector: `involvedObject.name=${pod}` }, signal)).items as RawEvent[]);

  async function agentSays(node: string, phase: 'Pulling' | 'Completed', image: string): Promise<void> {
    const agent = new KubeClient(cp.kubeConfig(await agentKubeconfig(cp, node, KWARM_NS)));
    try {
      await reportImages(agent, node, { [image]: phase }, signal);
      await agent.patch(`/apis/kwarm.io/v1alpha1/nodeimagesets/${node}/status`, 'merge', { status: { heartbeatTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') } }, signal);
    } finally {
      agent.close();
    }
  }

  /** A release loop with the controller's token; `gatedPods` gets what it reports after each pass (the metric). */
  function startLoop(gatedPods: number[] = []): { stop: () => Promise<void> } {
    const stop = new AbortController();
    const running = new ReleaseLoop({ client: kwarm, log, instance: 'gate-it', now: Date.now, onGatedPods: (n) => gatedPods.push(n) }).run(AbortSignal.any([signal, stop.signal]));
    return { stop: async () => { stop.abort(); await running; } };
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    // The default access first (agentKubeconfig applies it once per namespace), then the same objects with
    // rolloutGate.enabled over it, so nothing later takes the gate's rules away.
    await installKwarmAccess(cp, KWARM_NS);
    await gateAccess(cp);
    kwarm = new KubeClient(cp.kubeConfig(await cp.serviceAccountKubeconfig(KWARM_NS, SA)));
    await cp.kubectl(['create', 'namespace', NS]);
    for (const n of NODES) await createNode(admin, { name: n, labels: { 'kwarm-test/pool': POOL } }, signal);
    await cp.kubectl(['apply', '-f', '-'], { input: policy('gate-it-long', 'long', '10m') });
    await cp.kubectl(['apply', '-f', '-'], { input: policy('gate-it-short', 'short', '10s') });
    controller = await ControllerProcess.start({
      kubeconfig: await cp.serviceAccountKubeconfig(KWARM_NS, SA), namespace: KWARM_NS, name: 'controller-rollout-gate', args: ['--resync-period=2s'],
    });
  });

  after(async () => {
    await controller?.stop();
    await cp.kubectl(['delete', 'prepullpolicy', 'gate-it-long', 'gate-it-short', '--ignore-not-found'], { allowFailure: true });
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await deleteNodes(admin, NODES, new AbortController().signal).catch(() => undefined);
    ac.abort();
    kwarm.close();
    admin.close();
  });

  it('gates a new pod while its image pulls, keeps it while a reporting node still pulls, and releases it once warm', async () => {
    await workload('web', 'long', IMG_A);
    const { pod, gated } = await admit('web', IMG_A);
    expect(gated, 'nothing pulled yet: the pod is created gated').to.equal(true);
    const gatedPods: number[] = [];
    const loop = startLoop(gatedPods);
    try {
      // n2's agent reports (a heartbeat) before n1 finishes: a node whose agent never reported would not hold the gate.
      await agentSays('gate-n2', 'Pulling', IMG_A);
      await agentSays('gate-n1', 'Completed', IMG_A);
      await waitFor(async () => (await getPrePullImage(admin, NS, 'deployment.web.app', signal))?.status?.summary?.completed === 1,
        { what: 'the PrePullImage to count one node Completed' });
      // The loop has seen that status (it decides on every PrePullImage change); the pulling node holds the gate.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await gates(pod.metadata.name)).to.deep.equal([ROLLOUT_GATE_NAME]);

      await agentSays('gate-n2', 'Completed', IMG_A);
      await waitFor(async () => (await gates(pod.metadata.name)).length === 0, { what: 'the gate to come off once both nodes have the image' });
      const ev = await waitFor(async () => (await events(pod.metadata.name)).find((e) => e.reason === 'RolloutGateReleased'), { what: 'the release Event' });
      expect(ev.type).to.equal('Normal');
      expect(ev.message).to.contain('ImagesWarm');
      expect(gatedPods[0], 'pods gated at the first pass').to.equal(1);
      await waitFor(() => gatedPods.at(-1) === 0, { what: 'the loop to count no gated pod once it saw its release' });
    } finally {
      await loop.stop();
    }
    // Warm now: the next pod is created without the gate.
    expect((await admit('web', IMG_A)).gated).to.equal(false);
  });

  it('releases at the policy\'s timeout, also when no controller ran while the pod was gated (a new leader)', async () => {
    await workload('slow', 'short', IMG_B);
    const { pod, gated } = await admit('slow', IMG_B);
    expect(gated).to.equal(true);
    const created = Date.now();
    // No release loop for now (controller down); the next one must release what is due from the pod alone.
    await new Promise((r) => setTimeout(r, 10_500 - (Date.now() - created)));
    expect(await gates(pod.metadata.name)).to.deep.equal([ROLLOUT_GATE_NAME]);
    const loop = startLoop();
    try {
      await waitFor(async () => (await gates(pod.metadata.name)).length === 0, { what: 'the timed-out gate to come off', timeoutMs: 30_000 });
    } finally {
      await loop.stop();
    }
    const ev = await waitFor(async () => (await events(pod.metadata.name)).find((e) => e.reason === 'RolloutGateTimedOut'), { what: 'the timeout Event' });
    expect(ev.type).to.equal('Warning');
    expect(ev.message).to.contain('gate-it-short');
  });

  it('admits ungated whatever fails or does not apply: lookups refused, kube-system, a DaemonSet\'s pod', async () => {
    const body = podBody(rs.get('slow') ?? { name: '', uid: '' }, 'r.example/never:v1');
    const outcomes: string[] = [];
    // The agent's token may not list PrePullPolicies: every lookup fails, and the pod goes through ungated.
    const agent = new KubeClient(cp.kubeConfig(await agentKubeconfig(cp, 'gate-n1', KWARM_NS)));
    try {
      const refused = mutatePodsHandler({ lookups: apiLookups(agent), log, namespace: KWARM_NS, onDecision: (o) => outcomes.push(o) });
      expect(patchOf(await refused(review(body)))).to.equal(undefined);
    } finally {
      agent.close();
    }
    const handler = mutatePodsHandler({ lookups: apiLookups(kwarm), log, namespace: KWARM_NS, onDecision: (o) => outcomes.push(o) });
    expect(patchOf(await handler(review(body)))).to.not.equal(undefined);
    const system = { ...body, metadata: { ...(body.metadata as Record<string, unknown>), namespace: 'kube-system' } };
    expect(patchOf(await handler(review(system, 'kube-system')))).to.equal(undefined);
    const ds = { ...body, metadata: { generateName: 'ds-', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ds', uid: 'x', controller: true }] } };
    expect(patchOf(await handler(review(ds)))).to.equal(undefined);
    expect(outcomes).to.deep.equal(['error', 'gated', 'skipped', 'skipped']);
  });

  it('admission from caches: API lookups until the caches sync, then none per pod (ReplicaSet owner read once); the caches follow the pulls', async () => {
    await workload('cached', 'long', IMG_C);
    const requests: string[] = [];
    const token = await cp.serviceAccountKubeconfig(KWARM_NS, SA);
    const client = new KubeClient(cp.kubeConfig(token), { observe: (method, path) => { if (method === 'GET') requests.push(path); } });
    const lookups = new CachedAdmissionLookups({ client, log });
    const outcomes: AdmissionOutcome[] = [];
    const handler = mutatePodsHandler({ lookups, log, namespace: KWARM_NS, onDecision: (o) => outcomes.push(o) });
    const body = podBody(rs.get('cached') ?? { name: '', uid: '' }, IMG_C);
    const stop = new AbortController();
    let running: Promise<void> | undefined;
    try {
      // Not in sync (not even started): the lookups go to the API server, and decide the same.
      let started = performance.now();
      expect(patchOf(await handler(review(body)))).to.not.equal(undefined);
      const apiMs = performance.now() - started;
      expect(requests.filter((p) => p.includes('/prepullpolicies')), requests.join(', ')).to.have.length(1);
      expect(requests.filter((p) => p.includes(`/namespaces/${NS}/prepullimages`)), requests.join(', ')).to.have.length(1);
      expect(requests.filter((p) => p.includes('/replicasets/')), requests.join(', ')).to.have.length(1);

      running = lookups.run(AbortSignal.any([signal, stop.signal]));
      await waitFor(() => lookups.synced, { what: 'the admission caches in sync' });
      requests.length = 0;
      started = performance.now();
      for (let i = 0; i < 20; i++) expect(patchOf(await handler(review(body)))).to.not.equal(undefined);
      console.log(`    admission: ${apiMs.toFixed(1)} ms with API lookups, ${((performance.now() - started) / 20).toFixed(2)} ms each from the caches (20)`);
      // Only the caches' own list-watch requests (made as they synced, before the reset) and none per pod.
      expect(requests, 'API requests during 20 cached admissions').to.deep.equal([]);

      await agentSays('gate-n1', 'Completed', IMG_C);
      await agentSays('gate-n2', 'Completed', IMG_C);
      await waitFor(async () => patchOf(await handler(review(body))) === undefined, { what: 'a cached admission to see the image warm' });
      expect(requests, 'API requests while the caches followed the pulls').to.deep.equal([]);
      expect(outcomes[0]).to.equal('gated');
      expect(outcomes.at(-1)).to.equal('warm');
    } finally {
      stop.abort();
      await running;
      client.close();
    }
  });

  it('refuses every other pod write with the controller\'s token, allows removing kwarm\'s gate, and releases all for uninstall', async () => {
    const body = podBody(rs.get('web') ?? { name: '', uid: '' }, IMG_A);
    (body.spec as Record<string, unknown>).schedulingGates = [{ name: 'example.com/other' }, { name: ROLLOUT_GATE_NAME }];
    const pod = await admin.create(`/api/v1/namespaces/${NS}/pods`, body, signal) as RawPod;
    const path = `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}`;
    // 403 from RBAC or the admission policy; 422 where the API server's own pod validation refuses first.
    const refused = async (what: string, write: () => Promise<unknown>, statuses = [403]): Promise<void> => {
      const err = await write().then(() => undefined, (e: unknown) => e);
      expect(err, what).to.be.instanceOf(KubeApiError);
      expect((err as KubeApiError).status, `${what}: ${(err as Error).message}`).to.be.oneOf(statuses);
    };
    await refused('a label', () => kwarm.patch(path, 'merge', { metadata: { labels: { x: 'y' } } }, signal));
    await refused('an annotation', () => kwarm.patch(path, 'merge', { metadata: { annotations: { x: 'y' } } }, signal));
    await refused('the image', () => kwarm.patch(path, 'json', [{ op: 'replace', path: '/spec/containers/0/image', value: IMG_B }], signal));
    await refused('a toleration', () => kwarm.patch(path, 'json', [{ op: 'add', path: '/spec/tolerations/-', value: { operator: 'Exists' } }], signal));
    await refused('another gate removed', () => kwarm.patch(path, 'json', [{ op: 'remove', path: '/spec/schedulingGates/0' }], signal));
    await refused('both gates removed', () => kwarm.patch(path, 'json', [{ op: 'replace', path: '/spec/schedulingGates', value: [] }], signal));
    await refused('the status', () => kwarm.patch(`${path}/status`, 'merge', { status: { message: 'x' } }, signal));
    await refused('delete', () => kwarm.delete(path, signal));
    await refused('create', () => kwarm.create(`/api/v1/namespaces/${NS}/pods`, podBody(rs.get('web') ?? { name: '', uid: '' }, IMG_A), signal));
    expect(await gates(pod.metadata.name)).to.deep.equal(['example.com/other', ROLLOUT_GATE_NAME]);

    // A pod gated by kwarm alone, which a gate added on top of would make a forbidden write too.
    const solo = await admin.create(`/api/v1/namespaces/${NS}/pods`, { ...podBody(rs.get('web') ?? { name: '', uid: '' }, IMG_A), spec: { containers: [{ name: 'app', image: IMG_A }], schedulingGates: [{ name: ROLLOUT_GATE_NAME }] } }, signal) as RawPod;
    await refused('a gate added', () => kwarm.patch(`/api/v1/namespaces/${NS}/pods/${solo.metadata.name}`, 'json', [{ op: 'add', path: '/spec/schedulingGates/-', value: { name: 'example.com/more' } }], signal), [403, 422]);

    // The binary's one-shot, as the chart's pre-delete hook runs it, with the controller's token.
    const { stdout, stderr } = await run(process.execPath, ['controller/main.ts', `--kubeconfig=${await cp.serviceAccountKubeconfig(KWARM_NS, SA)}`,
      `--namespace=${KWARM_NS}`, '--release-rollout-gates', '--metrics-bind-address=0', '--health-probe-bind-address=0', '--log-format=json']);
    const done = `${stdout}\n${stderr}`.split('\n').filter((l) => l.includes('released every rollout gate')).map((l) => JSON.parse(l) as { pods: number });
    expect(done[0]?.pods).to.be.at.least(2);
    expect(await releaseAllGates(kwarm, log, 'gate-it', Date.now, signal), 'nothing left for a second run').to.equal(0);
    expect(await gates(pod.metadata.name)).to.deep.equal(['example.com/other']);
    expect(await gates(solo.metadata.name)).to.deep.equal([]);
    const ev = await waitFor(async () => (await events(solo.metadata.name)).find((e) => e.reason === 'RolloutGateReleased'), { what: 'the uninstall Event' });
    expect(ev.message).to.contain('Uninstalled');
    const left = (await admin.list('/api/v1/pods', { fieldSelector: 'spec.nodeName=' }, signal)).items as RawPod[];
    expect(left.filter((p) => p.spec.schedulingGates?.some((g) => g.name === ROLLOUT_GATE_NAME))).to.deep.equal([]);
  });
});
