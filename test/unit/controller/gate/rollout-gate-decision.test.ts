import { expect } from 'chai';
import {
  addGatePatch,
  agentReportsAt,
  decideRelease,
  imageWarmth,
  neverGated,
  podWarmth,
  podWorkload,
  releaseEvent,
  removeGatePatch,
  type GateContext,
} from '../../../../controller/gate/gate-decision.ts';
import { admissionResponse, decodeAdmissionRequest } from '../../../../controller/gate/admission-review.ts';
import { decodeGateImage, decodeGatePod, decodeGatePolicy, hasRolloutGate, imagesByNamespace, keepUnchanged, type GateImageView, type GatePodView, type GatePolicyView } from '../../../../controller/gate/views.ts';

const GATE = 'kwarm.io/images-warm';
const A1 = 'r.example/a:v1';
const A2 = 'r.example/a:v2';
const B1 = 'r.example/b:v1';
const CREATED = '2026-01-01T10:00:00Z';
const T0 = Date.parse(CREATED);
const MINUTE = 60_000;

function pod(over: Partial<GatePodView> = {}): GatePodView {
  return {
    namespace: 'shop', name: 'web-abc-1', uid: 'u1', createdAt: CREATED, nodeName: undefined,
    owner: { kind: 'ReplicaSet', name: 'web-abc' },
    containers: [{ name: 'app', image: A1 }, { name: 'side', image: B1 }],
    gates: undefined,
    ...over,
  };
}

function ppi(container: string, image: string, over: Partial<GateImageView> = {}): GateImageView {
  return {
    namespace: 'shop', name: `deployment-web-${container}`, policy: 'web', workload: 'Deployment/web', container, image,
    generation: 2, observedGeneration: 2,
    summary: { total: 3, pending: 0, pulling: 0, completed: 3, failed: 0 },
    unfinished: [],
    ...over,
  };
}

const POLICY: GatePolicyView = { name: 'web', enabled: true, timeoutMs: 5 * MINUTE };
const WEB = { kind: 'Deployment', name: 'web' } as const;

function ctx(images: GateImageView[], over: Partial<GateContext> = {}): GateContext {
  return { images, policies: new Map([['web', POLICY]]), agentReports: () => true, ...over };
}

describe('rollout gate: which pods', () => {
  it('never gates pods in kwarm\'s namespace or kube-system', () => {
    expect(neverGated('kwarm-system', 'kwarm-system')).to.equal(true);
    expect(neverGated('kube-system', 'kwarm-system')).to.equal(true);
    expect(neverGated('shop', 'kwarm-system')).to.equal(false);
  });

  it('follows ReplicaSet -> Deployment and StatefulSet; other owners are not gated', () => {
    expect(podWorkload(pod(), { kind: 'Deployment', name: 'web' })).to.deep.equal(WEB);
    expect(podWorkload(pod({ owner: { kind: 'StatefulSet', name: 'db' } }), undefined)).to.deep.equal({ kind: 'StatefulSet', name: 'db' });
    expect(podWorkload(pod(), undefined), 'bare ReplicaSet').to.equal(undefined);
    expect(podWorkload(pod({ owner: { kind: 'DaemonSet', name: 'x' } }), undefined)).to.equal(undefined);
    expect(podWorkload(pod({ owner: { kind: 'Job', name: 'x' } }), undefined)).to.equal(undefined);
    expect(podWorkload(pod({ owner: undefined }), undefined)).to.equal(undefined);
  });
});

describe('rollout gate: warm enough', () => {
  it('is warm when every target node has the image', () => {
    expect(imageWarmth(ppi('app', A1), A1, () => true)).to.deep.equal({ warm: true });
  });

  it('is cold while the PrePullImage still pre-pulls the old image (the controller has not caught up with the rollout)', () => {
    const w = imageWarmth(ppi('app', A1), A2, () => true);
    expect(w.warm).to.equal(false);
    expect(w.warm ? '' : w.waiting).to.contain('does not pre-pull r.example/a:v2');
  });

  it('is cold while the status describes an older generation, or there is none', () => {
    expect(imageWarmth(ppi('app', A1, { observedGeneration: 1 }), A1, () => true).warm).to.equal(false);
    expect(imageWarmth(ppi('app', A1, { summary: undefined }), A1, () => true).warm).to.equal(false);
  });

  it('is cold on no node at all, even when every node failed or none is targeted', () => {
    expect(imageWarmth(ppi('app', A1, { summary: { total: 2, pending: 0, pulling: 0, completed: 0, failed: 2 } }), A1, () => true).warm).to.equal(false);
    expect(imageWarmth(ppi('app', A1, { summary: { total: 0, pending: 0, pulling: 0, completed: 0, failed: 0 } }), A1, () => true).warm).to.equal(false);
  });

  it('lets failed nodes not hold the gate once one node has the image', () => {
    const p = ppi('app', A1, { summary: { total: 3, pending: 0, pulling: 0, completed: 2, failed: 1 }, unfinished: [{ node: 'n3', phase: 'Failed' }] });
    expect(imageWarmth(p, A1, () => true)).to.deep.equal({ warm: true });
  });

  it('is held by a node still pulling whose agent reports, not by one whose agent does not', () => {
    const p = ppi('app', A1, { summary: { total: 3, pending: 1, pulling: 0, completed: 2, failed: 0 }, unfinished: [{ node: 'n3', phase: 'Pending' }] });
    const held = imageWarmth(p, A1, () => true);
    expect(held.warm).to.equal(false);
    expect(held.warm ? '' : held.waiting).to.equal('r.example/a:v1 is on 2 of 3 target nodes');
    expect(imageWarmth(p, A1, (n) => n !== 'n3')).to.deep.equal({ warm: true });
  });

  it('is held by unfinished nodes the bounded status does not name', () => {
    const p = ppi('app', A1, { summary: { total: 30, pending: 25, pulling: 0, completed: 5, failed: 0 }, unfinished: [{ node: 'n1', phase: 'Pending' }] });
    expect(imageWarmth(p, A1, () => false).warm).to.equal(false);
  });

  it('counts only containers whose image a gate-enabled policy pre-pulls for this workload', () => {
    // side has no PrePullImage: only app counts.
    expect(podWarmth(pod(), WEB, ctx([ppi('app', A1)])).kind).to.equal('Warm');
    const cold = podWarmth(pod(), WEB, ctx([ppi('app', A1), ppi('side', 'r.example/b:v0')]));
    expect(cold.kind).to.equal('Cold');
    expect(cold.kind === 'Cold' ? cold.waiting : []).to.deep.equal(['side: shop/deployment-web-side does not pre-pull r.example/b:v1 yet']);
    // Another workload's image, another namespace, a policy without the gate, a missing policy: none count.
    expect(podWarmth(pod(), WEB, ctx([ppi('app', A2, { workload: 'Deployment/other' })])).kind).to.equal('NotSelected');
    expect(podWarmth(pod(), WEB, ctx([ppi('app', A2, { namespace: 'other' })])).kind).to.equal('NotSelected');
    expect(podWarmth(pod(), WEB, ctx([ppi('app', A2)], { policies: new Map([['web', { ...POLICY, enabled: false }]]) })).kind).to.equal('NotSelected');
    expect(podWarmth(pod(), WEB, ctx([ppi('app', A2)], { policies: new Map() })).kind).to.equal('NotSelected');
  });

  it('counts init containers too', () => {
    const p = pod({ containers: [{ name: 'init', image: A2 }] });
    expect(podWarmth(p, WEB, ctx([ppi('init', A1)])).kind).to.equal('Cold');
  });
});

describe('rollout gate: patches', () => {
  it('adds the gate, creating the list when absent', () => {
    expect(addGatePatch(pod())).to.deep.equal([{ op: 'add', path: '/spec/schedulingGates', value: [{ name: GATE }] }]);
    expect(addGatePatch(pod({ gates: [{ name: 'other' }] }))).to.deep.equal([{ op: 'add', path: '/spec/schedulingGates/-', value: { name: GATE } }]);
  });

  it('removes only kwarm\'s gate, testing the list it saw', () => {
    const gates = [{ name: 'other' }, { name: GATE }];
    expect(removeGatePatch(pod({ gates }))).to.deep.equal([
      { op: 'test', path: '/spec/schedulingGates', value: gates },
      { op: 'remove', path: '/spec/schedulingGates/1' },
    ]);
    expect(removeGatePatch(pod({ gates: [{ name: 'other' }] }))).to.equal(undefined);
    expect(removeGatePatch(pod())).to.equal(undefined);
  });
});

describe('rollout gate: release', () => {
  const cold = [ppi('app', A2)];

  it('holds a cold pod until its policy\'s timeout after creation, then releases it with a Warning', () => {
    const held = decideRelease(pod(), WEB, ctx(cold), T0 + MINUTE);
    expect(held).to.deep.equal({ release: false, recheckAtMs: T0 + 5 * MINUTE, waiting: ['app: shop/deployment-web-app does not pre-pull r.example/a:v1 yet'] });
    const due = decideRelease(pod(), WEB, ctx(cold), T0 + 5 * MINUTE);
    expect(due.release).to.equal(true);
    if (!due.release) return;
    expect(due.reason).to.equal('TimedOut');
    expect(releaseEvent(due)).to.include({ type: 'Warning', reason: 'RolloutGateTimedOut' });
  });

  it('releases once warm, with a Normal Event', () => {
    const d = decideRelease(pod(), WEB, ctx([ppi('app', A1)]), T0 + MINUTE);
    expect(d).to.include({ release: true, reason: 'ImagesWarm' });
    if (d.release) expect(releaseEvent(d)).to.include({ type: 'Normal', reason: 'RolloutGateReleased' });
  });

  it('releases at once a pod no gating policy covers any more, or of no gated workload', () => {
    expect(decideRelease(pod(), WEB, ctx(cold, { policies: new Map() }), T0)).to.include({ release: true, reason: 'NotSelected' });
    expect(decideRelease(pod(), undefined, ctx(cold), T0)).to.include({ release: true, reason: 'NotSelected' });
  });

  it('releases at once a cold pod without a creation time (no deadline to wait for)', () => {
    expect(decideRelease(pod({ createdAt: undefined }), WEB, ctx(cold), T0)).to.include({ release: true, reason: 'TimedOut' });
  });

  it('tells reporting agents by their heartbeat', () => {
    expect(agentReportsAt(undefined, T0, MINUTE)).to.equal(false);
    expect(agentReportsAt(CREATED, T0 + MINUTE, MINUTE)).to.equal(true);
    expect(agentReportsAt(CREATED, T0 + MINUTE + 1, MINUTE)).to.equal(false);
  });
});

describe('rollout gate: decoding and the AdmissionReview envelope', () => {
  const rawPod = {
    metadata: { generateName: 'web-abc-', ownerReferences: [{ kind: 'ReplicaSet', name: 'web-abc', controller: true }, { kind: 'X', name: 'y' }] },
    spec: { containers: [{ name: 'app', image: A1 }], initContainers: [{ name: 'init', image: B1 }], schedulingGates: [{ name: GATE }] },
  };

  it('decodes a pod being created, its namespace from the request', () => {
    const p = decodeGatePod(rawPod, 'shop');
    expect(p).to.include({ namespace: 'shop', name: 'web-abc-', nodeName: undefined, createdAt: undefined });
    expect(p?.owner).to.deep.equal({ kind: 'ReplicaSet', name: 'web-abc' });
    expect(p?.containers).to.deep.equal([{ name: 'app', image: A1 }, { name: 'init', image: B1 }]);
    expect(p !== undefined && hasRolloutGate(p)).to.equal(true);
    expect(decodeGatePod({ metadata: {}, spec: {} })).to.equal(undefined);
  });

  it('decodes derived PrePullImages and policies, with the timeout default', () => {
    const img = decodeGateImage({
      metadata: { namespace: 'shop', name: 'x', generation: 3, labels: { 'kwarm.io/policy': 'web' }, annotations: { 'kwarm.io/workload': 'Deployment/web', 'kwarm.io/container': 'app' } },
      spec: { image: A1 },
      status: { observedGeneration: 3, summary: { total: 2, pending: 1, pulling: 0, completed: 1, failed: 0 }, nodes: [{ node: 'n2', phase: 'Pending' }] },
    });
    expect(img).to.deep.include({ policy: 'web', workload: 'Deployment/web', container: 'app', generation: 3, observedGeneration: 3, unfinished: [{ node: 'n2', phase: 'Pending' }] });
    expect(decodeGateImage({ metadata: { namespace: 'shop', name: 'hand-made' }, spec: { image: A1 } })).to.equal(undefined);
    expect(decodeGatePolicy({ metadata: { name: 'p' }, spec: {} })).to.deep.equal({ name: 'p', enabled: false, timeoutMs: 5 * MINUTE });
    expect(decodeGatePolicy({ metadata: { name: 'p' }, spec: { rolloutGate: { enabled: true, timeout: '90s' } } })).to.deep.equal({ name: 'p', enabled: true, timeoutMs: 90_000 });
  });

  it('keeps the owner reference\'s uid (a ReplicaSet created again under its name is another owner)', () => {
    const raw = { metadata: { name: 'p', ownerReferences: [{ kind: 'ReplicaSet', name: 'web-abc', uid: 'rs-1', controller: true }] }, spec: { containers: [] } };
    expect(decodeGatePod(raw, 'shop')?.owner).to.deep.equal({ kind: 'ReplicaSet', name: 'web-abc', uid: 'rs-1' });
  });

  it('a cache keeps the object it has when the projection is unchanged, so nobody is woken for it', () => {
    const decode = keepUnchanged(decodeGatePolicy);
    const before = decode({ metadata: { name: 'p' }, spec: { rolloutGate: { enabled: true } } }, undefined);
    // A change the gate does not read (another field) gives back the very same object ...
    expect(decode({ metadata: { name: 'p', labels: { x: 'y' } }, spec: { rolloutGate: { enabled: true }, timeout: '1m' } }, before)).to.equal(before);
    // ... one it reads gives a new one.
    const after = decode({ metadata: { name: 'p' }, spec: { rolloutGate: { enabled: false } } }, before);
    expect(after).to.not.equal(before);
    expect(after?.enabled).to.equal(false);
    expect(decode({ metadata: {} }, before)).to.equal(undefined);
  });

  it('groups PrePullImages by namespace', () => {
    const img = (namespace: string, name: string): GateImageView => ({
      namespace, name, policy: 'p', workload: 'Deployment/web', container: 'app', image: A1, generation: 1, observedGeneration: 1, summary: undefined, unfinished: [],
    });
    const byNs = imagesByNamespace([img('a', '1'), img('b', '2'), img('a', '3')]);
    expect([...byNs.keys()]).to.deep.equal(['a', 'b']);
    expect(byNs.get('a')?.map((i) => i.name)).to.deep.equal(['1', '3']);
    expect(imagesByNamespace([]).size).to.equal(0);
  });

  it('echoes the uid, always allows, and base64-encodes the JSON patch', () => {
    const req = decodeAdmissionRequest({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'abc', operation: 'CREATE', namespace: 'shop', object: rawPod } });
    expect(req).to.include({ uid: 'abc', operation: 'CREATE', namespace: 'shop', dryRun: false });
    expect(decodeAdmissionRequest({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'abc' } })).to.equal(undefined);
    expect(admissionResponse('abc')).to.deep.equal({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'abc', allowed: true } });
    const patch = [{ op: 'add', path: '/spec/schedulingGates', value: [{ name: GATE }] }];
    const res = admissionResponse('abc', patch) as { response: { patchType: string; patch: string } };
    expect(res.response.patchType).to.equal('JSONPatch');
    expect(JSON.parse(Buffer.from(res.response.patch, 'base64').toString())).to.deep.equal(patch);
  });
});
