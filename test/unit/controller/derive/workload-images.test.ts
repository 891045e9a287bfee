import { expect } from 'chai';
import type { V1Deployment, V1PodSpec } from '@kubernetes/client-node';
import { podCanRunOn } from '../../../../controller/plan/node-eligibility.ts';
import {
  builtinWorkloadKinds,
  PRE_PULL_IMAGE_NAME_MAX,
  prePullImageName,
  schedulingSpecFor,
  workloadApiVersion,
  type BuiltinWorkloadKind,
  type WorkloadPodTemplate,
} from '../../../../controller/derive/workload-images.ts';
import { workloadDecoder } from '../../../../controller/sources/decode.ts';
import { node, podSpec, type Plain } from '../fixtures.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const meta = (name: string) => ({ namespace: 'shop', name, uid: `uid-${name}`, labels: { 'kwarm.io/enabled': 'true' } });
const selector = { matchLabels: { app: 'x' } };

const fullSpec: Plain<V1PodSpec> = {
  initContainers: [
    { name: 'migrate', image: 'registry.example/migrate:1.2' },
    { name: 'sidecar', image: 'registry.example/proxy@sha256:' + 'a'.repeat(64), restartPolicy: 'Always' },
  ],
  containers: [
    { name: 'app', image: 'registry.example/app:v2' },
    { name: 'no-image' },
    { name: 'metrics', image: 'registry.example/app:v2' },
  ],
  imagePullSecrets: [{ name: 'regcred' }, { name: '' }, { name: 'other' }, { name: 'regcred' }],
  serviceAccountName: 'shop-sa',
};

/** A workload as the API serves it (no kind field), for the informers' decoder. */
function workloadOf(kind: BuiltinWorkloadKind, name: string, spec: Plain<V1PodSpec>, metadata: Plain<V1Deployment['metadata']> = meta(name)): { kind: BuiltinWorkloadKind; raw: unknown } {
  const template = { metadata: { labels: { app: 'x' } }, spec };
  switch (kind) {
    case 'Deployment':
    case 'DaemonSet':
      return { kind, raw: { metadata, spec: { selector, template } } };
    case 'StatefulSet':
      return { kind, raw: { metadata, spec: { selector, serviceName: name, template } } };
    case 'Job':
      return { kind, raw: { metadata, spec: { template } } };
    case 'CronJob':
      return { kind, raw: { metadata, spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template } } } } };
    default: {
      const unreachable: never = kind;
      return unreachable;
    }
  }
}

/** The pod template the production decoder (sources/decode.ts) keeps of a workload. */
function extracted(w: { kind: BuiltinWorkloadKind; raw: unknown }): WorkloadPodTemplate {
  const view = workloadDecoder(w.kind)(w.raw);
  if (view === undefined) throw new Error('the decoder dropped the workload');
  return view.template;
}

describe('controller/workload-images', () => {
  describe('workload pod templates as the informers decode them', () => {
    for (const kind of builtinWorkloadKinds) {
      it(`reads identity, images, pull secrets and service account of a ${kind}`, () => {
        const t = extracted(workloadOf(kind, 'web', fullSpec));
        expect(t.identity).to.deep.equal({ kind, namespace: 'shop', name: 'web', uid: 'uid-web' });
        expect(t.images).to.deep.equal([
          { containerName: 'migrate', image: 'registry.example/migrate:1.2', isInit: true },
          { containerName: 'sidecar', image: 'registry.example/proxy@sha256:' + 'a'.repeat(64), isInit: true },
          { containerName: 'app', image: 'registry.example/app:v2', isInit: false },
          { containerName: 'metrics', image: 'registry.example/app:v2', isInit: false },
        ]);
        expect(t.imagePullSecrets).to.deep.equal(['regcred', 'other']);
        expect(t.serviceAccountName).to.equal('shop-sa');
        expect(t.podSpec.containers.map((c) => c.name)).to.deep.equal(['app', 'no-image', 'metrics']);
      });
    }

    it('knows the API group of every kind', () => {
      expect(builtinWorkloadKinds.map(workloadApiVersion)).to.deep.equal(['apps/v1', 'apps/v1', 'apps/v1', 'batch/v1', 'batch/v1']);
    });

    it('defaults the service account to "default" and honours the deprecated serviceAccount field', () => {
      const plain = extracted(workloadOf('Deployment', 'a', { containers: [{ name: 'c', image: 'i' }] }));
      expect(plain.serviceAccountName).to.equal('default');
      expect(plain.imagePullSecrets).to.deep.equal([]);
      const legacy = extracted(workloadOf('Deployment', 'b', { containers: [{ name: 'c', image: 'i' }], serviceAccount: 'old-sa' }));
      expect(legacy.serviceAccountName).to.equal('old-sa');
    });

    it('drops a workload without uid or without a pod template spec', () => {
      expect(workloadDecoder('Deployment')(workloadOf('Deployment', 'a', fullSpec, { namespace: 'shop', name: 'a' }).raw)).to.equal(undefined);
      expect(workloadDecoder('Deployment')({ metadata: meta('a') })).to.equal(undefined);
    });
  });

  describe('schedulingSpecFor', () => {
    const taintedNode = (key: string) =>
      node({
        metadata: { name: 'n', labels: { 'kubernetes.io/os': 'linux' } },
        spec: { taints: [{ key, effect: 'NoSchedule' }] },
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
      });

    it('leaves non-DaemonSet specs as they are', () => {
      const s = podSpec({ containers: [{ name: 'c', image: 'i' }], tolerations: [{ key: 'a', operator: 'Exists' }] });
      for (const kind of ['Deployment', 'StatefulSet', 'Job', 'CronJob'] as const) expect(schedulingSpecFor(kind, s)).to.equal(s);
    });

    it('adds the tolerations the DaemonSet controller gives its pods', () => {
      const s = podSpec({ containers: [{ name: 'c', image: 'i' }], nodeSelector: { role: 'edge' }, tolerations: [{ key: 'a', operator: 'Exists' }] });
      const ds = schedulingSpecFor('DaemonSet', s);
      expect(ds.nodeSelector).to.deep.equal({ role: 'edge' });
      expect(ds.tolerations?.map((t) => `${t.key ?? ''}:${t.effect ?? ''}`)).to.deep.equal([
        'a:',
        'node.kubernetes.io/not-ready:NoExecute',
        'node.kubernetes.io/unreachable:NoExecute',
        'node.kubernetes.io/disk-pressure:NoSchedule',
        'node.kubernetes.io/memory-pressure:NoSchedule',
        'node.kubernetes.io/pid-pressure:NoSchedule',
        'node.kubernetes.io/unschedulable:NoSchedule',
      ]);
      expect(s.tolerations).to.have.length(1);
    });

    it('tolerates network-unavailable only with hostNetwork, and replaces a matching toleration', () => {
      const s = podSpec({
        containers: [{ name: 'c', image: 'i' }],
        hostNetwork: true,
        tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 60 }],
      });
      const tolerations = schedulingSpecFor('DaemonSet', s).tolerations ?? [];
      expect(tolerations.filter((t) => t.key === 'node.kubernetes.io/not-ready')).to.deep.equal([
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
      ]);
      expect(tolerations.map((t) => t.key)).to.include('node.kubernetes.io/network-unavailable');
    });

    it('makes DaemonSet pods eligible on a node under memory pressure, where a Deployment is not', () => {
      const n = taintedNode('node.kubernetes.io/memory-pressure');
      const ds = extracted(workloadOf('DaemonSet', 'agent', { containers: [{ name: 'c', image: 'i' }] }));
      const deploy = extracted(workloadOf('Deployment', 'web', { containers: [{ name: 'c', image: 'i' }] }));
      expect(podCanRunOn(ds.schedulingSpec, n)).to.deep.equal({ eligible: true });
      expect(podCanRunOn(deploy.schedulingSpec, n)).to.deep.include({ eligible: false, reason: 'UntoleratedTaint' });
      // network-unavailable is tolerated only by host-network DaemonSets.
      expect(podCanRunOn(ds.schedulingSpec, taintedNode('node.kubernetes.io/network-unavailable'))).to.deep.include({ eligible: false });
    });
  });

  describe('prePullImageName', () => {
    it('is <kind>.<workload>.<container> when that fits', () => {
      expect(prePullImageName('Deployment', 'my-app', 'app')).to.equal('deployment.my-app.app');
      expect(prePullImageName('CronJob', 'nightly.report', 'run')).to.equal('cronjob.nightly.report.run');
      expect(prePullImageName('StatefulSet', 'db', 'postgres')).to.equal('statefulset.db.postgres');
    });

    it('keeps triples apart that a dash-joined name would merge', () => {
      const names = [
        prePullImageName('Deployment', 'a-b', 'c'),
        prePullImageName('Deployment', 'a', 'b-c'),
        prePullImageName('Deployment', 'a.b', 'c'),
        prePullImageName('StatefulSet', 'a-b', 'c'),
        prePullImageName('DaemonSet', 'a-b', 'c'),
        prePullImageName('Job', 'a-b', 'c'),
        prePullImageName('CronJob', 'a-b', 'c'),
      ];
      expect(new Set(names).size).to.equal(names.length);
    });

    const long = 'payments-' + 'x'.repeat(200);
    const cases: { name: string; kind: BuiltinWorkloadKind; workload: string; container: string }[] = [
      { name: 'short', kind: 'Job', workload: 'j', container: 'c' },
      { name: 'exactly at the bound', kind: 'Job', workload: 'w'.repeat(PRE_PULL_IMAGE_NAME_MAX - 'job..c'.length), container: 'c' },
      { name: 'one over the bound', kind: 'Job', workload: 'w'.repeat(PRE_PULL_IMAGE_NAME_MAX - 'job..c'.length + 1), container: 'c' },
      { name: 'a 253-character workload name', kind: 'StatefulSet', workload: 'a'.repeat(253), container: 'main' },
      { name: 'long workload with dots cut right after a dot', kind: 'Deployment', workload: 'x'.repeat(40) + '.' + 'y'.repeat(40), container: 'c' },
      { name: 'long workload and long container', kind: 'CronJob', workload: long, container: 'c'.repeat(63) },
      { name: 'invalid characters', kind: 'Deployment', workload: 'My_App', container: 'Main' },
      { name: 'dash right at the cut', kind: 'DaemonSet', workload: 'd'.repeat(38) + '-' + 'e'.repeat(30), container: 'c' },
    ];
    for (const c of cases) {
      it(`is a DNS-1123 subdomain of at most ${PRE_PULL_IMAGE_NAME_MAX} characters: ${c.name}`, () => {
        const name = prePullImageName(c.kind, c.workload, c.container);
        expect(name.length).to.be.at.most(PRE_PULL_IMAGE_NAME_MAX);
        expect(name).to.match(DNS1123_SUBDOMAIN);
        expect(prePullImageName(c.kind, c.workload, c.container)).to.equal(name);
      });
    }

    it('cuts long names and appends a hash of the whole triple', () => {
      const a = prePullImageName('Deployment', long, 'app');
      const b = prePullImageName('Deployment', long + 'z', 'app');
      const c = prePullImageName('Deployment', long, 'api');
      expect(a).to.match(/^deployment\.payments-x+-[0-9a-f]{10}$/);
      expect(a).to.have.length(PRE_PULL_IMAGE_NAME_MAX);
      expect(new Set([a, b, c]).size).to.equal(3);
    });

    it('hashes names whose inputs are not valid Kubernetes names instead of passing them through', () => {
      const a = prePullImageName('Deployment', 'My_App', 'main');
      const b = prePullImageName('Deployment', 'my-app', 'main');
      expect(a).to.match(/^deployment\.my-app\.main-[0-9a-f]{10}$/);
      expect(a).to.not.equal(b);
    });
  });
});
