import { expect } from 'chai';
import { canonicalJson } from '../../../../controller/write/canonical-json.ts';
import {
  decodeConfigMap,
  decodeNode,
  decodeNodeImageSet,
  decodeSecret,
  decodeServiceAccount,
  InternPool,
  SharedValues,
  workloadDecoder,
} from '../../../../controller/sources/decode.ts';
import { isNodeReady, podCanRunOn } from '../../../../controller/plan/node-eligibility.ts';
import { nodeImageSetDigest } from '../../../../controller/plan/node-image-set-digest.ts';

describe('controller/cluster-cache decoders', () => {
  it('keeps of a Node only what eligibility reads', () => {
    const n = decodeNode({
      metadata: { name: 'n1', uid: 'u1', labels: { a: 'b' }, annotations: { big: 'x'.repeat(1000) }, managedFields: [{}] },
      spec: { unschedulable: true, taints: [{ key: 'k', effect: 'NoSchedule' }], podCIDR: '10.0.0.0/24' },
      status: { conditions: [{ type: 'DiskPressure', status: 'False' }, { type: 'Ready', status: 'True', reason: 'KubeletReady' }], images: [{ names: ['x'] }] },
    })!;
    expect(n.metadata).to.deep.equal({ name: 'n1', uid: 'u1', labels: { a: 'b' } });
    expect(n.spec).to.deep.equal({ unschedulable: true, taints: [{ key: 'k', effect: 'NoSchedule' }] });
    expect(n.status).to.deep.equal({ conditions: [{ type: 'Ready', status: 'True' }] });
    expect(isNodeReady(n)).to.equal(true);
    expect(decodeNode({ metadata: {} })).to.equal(undefined);
  });

  it('keeps of a workload its labels and the scheduling-relevant pod template', () => {
    const raw = {
      metadata: { namespace: 'shop', name: 'web', uid: 'u', labels: { tier: 'web' } },
      spec: {
        template: {
          spec: {
            containers: [{ name: 'app', image: 'r.example/web:1', env: [{ name: 'A', value: 'x' }] }],
            initContainers: [{ name: 'init', image: 'r.example/init:1' }],
            nodeSelector: { disk: 'ssd' },
            tolerations: [{ key: 'k', operator: 'Exists' }],
            affinity: { podAntiAffinity: { x: 1 }, nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } },
            serviceAccountName: 'sa',
            imagePullSecrets: [{ name: 'regcred' }],
          },
        },
      },
    };
    const w = workloadDecoder('Deployment')(raw)!;
    expect(w.labels).to.deep.equal({ tier: 'web' });
    expect(w.template.images.map((i) => i.image)).to.deep.equal(['r.example/init:1', 'r.example/web:1']);
    expect(w.template.podSpec).to.deep.equal({
      containers: [{ name: 'app', image: 'r.example/web:1' }],
      initContainers: [{ name: 'init', image: 'r.example/init:1' }],
      nodeSelector: { disk: 'ssd' },
      tolerations: [{ key: 'k', operator: 'Exists' }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } },
      serviceAccountName: 'sa',
      imagePullSecrets: [{ name: 'regcred' }],
    });
    expect(w.template.serviceAccountName).to.equal('sa');
    expect(w.template.imagePullSecrets).to.deep.equal(['regcred']);
    const fits = { metadata: { name: 'n', labels: { disk: 'ssd', zone: 'a' } }, status: { conditions: [{ type: 'Ready', status: 'True' }] }, spec: { taints: [{ key: 'k', effect: 'NoSchedule' }] } };
    expect(podCanRunOn(w.template.schedulingSpec, decodeNode(fits)!).eligible).to.equal(true);
    const cron = workloadDecoder('CronJob')({ metadata: { namespace: 'a', name: 'c', uid: 'u' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'x', image: 'r.example/c:1' }] } } } } } });
    expect(cron?.template.images[0]?.image).to.equal('r.example/c:1');
    const jobSpec = { template: { spec: { containers: [{ name: 'x', image: 'r.example/c:1' }] } } };
    const owned = (ownerReferences: unknown[]) => workloadDecoder('Job')({ metadata: { namespace: 'a', name: 'c-1', uid: 'u', ownerReferences }, spec: jobSpec });
    expect(owned([{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'c', uid: 'cu', controller: true }])?.ownerCronJob).to.equal('c');
    expect(owned([{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'c', uid: 'cu' }])?.ownerCronJob).to.equal(undefined);
    expect(owned([])?.ownerCronJob).to.equal(undefined);
    expect(workloadDecoder('Deployment')({ metadata: { namespace: 'a', name: 'b', uid: 'u' }, spec: {} })).to.equal(undefined);
  });

  it('decodes ServiceAccounts and Secrets', () => {
    expect(decodeServiceAccount({ metadata: { namespace: 'a', name: 'sa' }, imagePullSecrets: [{ name: 'x' }, {}] })).to.deep.equal({ namespace: 'a', name: 'sa', imagePullSecrets: ['x'] });
    expect(decodeSecret({ metadata: { namespace: 'a', name: 's' }, type: 'kubernetes.io/dockerconfigjson', data: { k: 'dg==' } })).to.deep.include({ type: 'kubernetes.io/dockerconfigjson', data: { k: 'dg==' } });
  });

  it('reduces a NodeImageSet to released rounds, status by image and a digest equal to the planner\'s', () => {
    const spec = { maxConcurrentPulls: 2, images: [{ image: 'r.example/a:1', round: 2 }] };
    const v = decodeNodeImageSet({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet',
      metadata: { name: 'n1', generation: 5, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u1' }] },
      spec,
      status: { images: [{ image: 'r.example/a:1', phase: 'Failed', round: 2, reason: 'ImageNotFound', message: 'nope' }] },
    })!;
    expect(v).to.deep.include({ name: 'n1', generation: 5, ownerUid: 'u1' });
    expect([...v.released]).to.deep.equal([['r.example/a:1', 2]]);
    expect(v.status.get('r.example/a:1')).to.deep.equal({ phase: 'Failed', round: 2, reason: 'ImageNotFound', message: 'nope' });
    const defaulted = { maxConcurrentPulls: 2, images: [{ image: 'r.example/a:1', pullSecrets: [], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: 2, sources: [] }], removals: [] };
    expect(v.specDigest).to.equal(nodeImageSetDigest('u1', defaulted));
  });

  it('digests spec.gatingImages like the planner, and a NodeImageSet without it as before', () => {
    const entry = { image: 'r.example/a:1', pullSecrets: [], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: 0, sources: [], gatesNode: true };
    const raw = (spec: Record<string, unknown>): unknown => ({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet',
      metadata: { name: 'n1', generation: 1, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u1' }] },
      spec: { maxConcurrentPulls: 2, images: [entry], ...spec },
    });
    const gating = decodeNodeImageSet(raw({ gatingImages: 3 }))!;
    expect(gating.specDigest).to.equal(nodeImageSetDigest('u1', { maxConcurrentPulls: 2, images: [entry], removals: [], gatingImages: 3 }));
    expect(gating.specDigest).to.not.equal(decodeNodeImageSet(raw({ gatingImages: 1 }))!.specDigest);
    expect(decodeNodeImageSet(raw({}))!.specDigest).to.equal(nodeImageSetDigest('u1', { maxConcurrentPulls: 2, images: [entry], removals: [] }));
  });

  describe('sharing and reuse', () => {
    const now = '2026-01-01T00:00:00Z';
    const nis = (o: { generation?: number; owner?: string; images?: string[]; status?: Record<string, unknown>[]; heartbeat?: string; name?: string; uid?: string }): unknown => ({
      apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet',
      metadata: { name: o.name ?? 'n1', uid: o.uid ?? 'nis-uid-1', generation: o.generation ?? 1, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: o.name ?? 'n1', uid: o.owner ?? 'u1' }] },
      spec: { maxConcurrentPulls: 2, images: (o.images ?? ['r.example/a:1']).map((image) => ({ image })) },
      status: { heartbeatTime: o.heartbeat ?? now, images: o.status ?? [{ image: 'r.example/a:1', phase: 'Completed', round: 0, startedAt: now, finishedAt: now, imageId: 'sha256:x' }] },
    });

    it('returns the cached NodeImageSet itself when only fields it does not keep changed (a heartbeat)', () => {
      const first = decodeNodeImageSet(nis({}))!;
      expect(decodeNodeImageSet(nis({ heartbeat: '2026-01-01T00:05:00Z' }), first)).to.equal(first);
    });

    it('finding 1: keeps the latest heartbeat in the shared cell without a new object, except the first one', () => {
      const first = decodeNodeImageSet(nis({}))!;
      expect(first.agent?.heartbeatMs).to.equal(Date.parse(now));
      const later = decodeNodeImageSet(nis({ heartbeat: '2026-01-01T00:05:00Z' }), first)!;
      expect(later).to.equal(first);
      expect(first.agent?.heartbeatMs).to.equal(Date.parse('2026-01-01T00:05:00Z'));
      // An older heartbeat (a stale event) never moves it back.
      decodeNodeImageSet(nis({ heartbeat: '2026-01-01T00:01:00Z' }), first);
      expect(first.agent?.heartbeatMs).to.equal(Date.parse('2026-01-01T00:05:00Z'));
      const raw = nis({}) as { status: Record<string, unknown> };
      delete raw.status.heartbeatTime;
      const silent = decodeNodeImageSet(raw)!;
      expect(silent.agent?.heartbeatMs).to.equal(undefined);
      const beat = decodeNodeImageSet(nis({}), silent)!;
      expect(beat).to.not.equal(silent);
      expect(beat.agent?.heartbeatMs).to.equal(Date.parse(now));
      const paused = nis({}) as { status: Record<string, unknown> };
      paused.status.imageFs = { pullsPaused: true };
      expect(decodeNodeImageSet(paused, first)!.pullsPaused).to.equal(true);
    });

    it('keeps the spec part while the generation stands, and a changed status makes a new object', () => {
      const first = decodeNodeImageSet(nis({}))!;
      const pulling = decodeNodeImageSet(nis({ status: [{ image: 'r.example/a:1', phase: 'Pulling', round: 0 }] }), first)!;
      expect(pulling).to.not.equal(first);
      expect(pulling.released).to.equal(first.released);
      expect(pulling.specDigest).to.equal(first.specDigest);
      expect(pulling.status.get('r.example/a:1')).to.deep.equal({ phase: 'Pulling', round: 0 });
    });

    it('decodes the spec again when the generation, the object (uid) or the owner changed', () => {
      const first = decodeNodeImageSet(nis({}))!;
      const next = decodeNodeImageSet(nis({ generation: 2, images: ['r.example/a:1', 'r.example/b:1'] }), first)!;
      expect([...next.released.keys()]).to.deep.equal(['r.example/a:1', 'r.example/b:1']);
      expect(next.specDigest).to.not.equal(first.specDigest);
      // Deleted and created again while the watch was down: generation 1 again, another spec.
      const again = decodeNodeImageSet(nis({ uid: 'nis-uid-2', images: ['r.example/c:1'] }), first)!;
      expect([...again.released.keys()]).to.deep.equal(['r.example/c:1']);
      const recreated = decodeNodeImageSet(nis({ owner: 'u2' }), first)!;
      expect(recreated.ownerUid).to.equal('u2');
      expect(recreated.specDigest).to.not.equal(first.specDigest);
    });

    it('skips malformed status entries and keeps a message only for failures', () => {
      const v = decodeNodeImageSet(nis({ status: [
        { image: 'r.example/a:1', phase: 'Failed', round: 1, reason: 'NotFound', message: 'no such tag' },
        { image: 'r.example/b:1', phase: 'Pulling', message: 'half way' },
        { image: 'r.example/c:1', phase: 'Sleeping' },
        { phase: 'Completed' },
      ] }))!;
      expect([...v.status]).to.deep.equal([
        ['r.example/a:1', { phase: 'Failed', round: 1, reason: 'NotFound', message: 'no such tag' }],
        ['r.example/b:1', { phase: 'Pulling', round: 0 }],
      ]);
    });

    it('shares equal strings, released maps and status entries between NodeImageSets of one pool', () => {
      const shared = new SharedValues();
      const a = decodeNodeImageSet(nis({ name: 'n1', owner: 'u1' }), undefined, shared)!;
      const b = decodeNodeImageSet(nis({ name: 'n2', owner: 'u2' }), undefined, shared)!;
      expect(a.released).to.equal(b.released);
      expect(a.status.get('r.example/a:1')).to.equal(b.status.get('r.example/a:1'));
      expect(a.specDigest).to.not.equal(b.specDigest);
      // Without SharedValues every NodeImageSet has its own.
      expect(decodeNodeImageSet(nis({ name: 'n3' }))!.released).to.not.equal(a.released);
    });

    it('returns the cached Node and workload when nothing kept changed, a new object when something did', () => {
      const raw = (labels: Record<string, string>, heartbeat: string): unknown => ({
        metadata: { name: 'n1', uid: 'u1', labels },
        status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: heartbeat }] },
      });
      const n = decodeNode(raw({ a: 'b' }, 't1'))!;
      expect(decodeNode(raw({ a: 'b' }, 't2'), n)).to.equal(n);
      expect(decodeNode(raw({ a: 'c' }, 't2'), n)).to.not.equal(n);
      const decodeW = workloadDecoder('Deployment');
      const wraw = (image: string, replicas: number): unknown => ({
        metadata: { namespace: 'a', name: 'w', uid: 'u' },
        spec: { replicas, template: { spec: { containers: [{ name: 'c', image }] } } },
      });
      const w = decodeW(wraw('r.example/a:1', 1))!;
      expect(decodeW(wraw('r.example/a:1', 3), w)).to.equal(w);
      expect(decodeW(wraw('r.example/a:2', 3), w)?.template.images[0]?.image).to.equal('r.example/a:2');
    });

    it('an InternPool starts over when full', () => {
      const pool = new InternPool<string>(2);
      const one = pool.share('a', () => 'first');
      expect(pool.share('a', () => 'second')).to.equal(one);
      pool.share('b', () => 'b');
      pool.share('c', () => 'c');
      expect(pool.size).to.equal(1);
      expect(pool.share('a', () => 'third')).to.equal('third');
    });
  });

  it('canonicalJson sorts keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }] })).to.equal('{"a":[{"c":"x"}],"b":1}');
  });

  describe('decodeConfigMap', () => {
    const raw = (rv: string, data: Record<string, unknown>, labels: Record<string, string> = {}) => ({
      metadata: { namespace: 'shop', name: 'images', uid: 'u1', resourceVersion: rv, labels, annotations: { big: 'x'.repeat(1000) }, managedFields: [{}] },
      data,
      binaryData: { blob: 'AAAA' },
    });

    it('keeps identity, resourceVersion and string data only', () => {
      expect(decodeConfigMap(raw('5', { images: 'alpine', n: 3 }))).to.deep.equal({ namespace: 'shop', name: 'images', uid: 'u1', resourceVersion: '5', data: { images: 'alpine' } });
      expect(decodeConfigMap({ metadata: { namespace: 'shop', name: 'x' } })).to.equal(undefined);
      expect(decodeConfigMap({ metadata: { namespace: 'shop', name: 'x', uid: 'u' } })?.data).to.deep.equal({});
    });

    it('returns the previous projection when only metadata changed, a new one when data did', () => {
      const v1 = decodeConfigMap(raw('5', { images: 'alpine' }))!;
      expect(decodeConfigMap(raw('6', { images: 'alpine' }, { relabelled: 'yes' }), v1)).to.equal(v1);
      const v2 = decodeConfigMap(raw('7', { images: 'debian' }), v1);
      expect(v2).to.not.equal(v1);
      expect(v2?.resourceVersion).to.equal('7');
    });
  });
});
