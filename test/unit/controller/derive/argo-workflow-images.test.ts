import { expect } from 'chai';
import {
  argoImageGroups,
  argoPrePullImageName,
  combineScheduling,
  decodeArgoWorkflow,
  describeUsers,
  schedulingOf,
  servedArgoKinds,
  templateContainers,
  type ArgoKind,
  type ArgoWorkflowView,
} from '../../../../controller/derive/argo-workflow-images.ts';
import { DesiredImagesMemo, argoKindsNamed, desiredPrePullImages, type ServiceAccountView } from '../../../../controller/derive/desired-images.ts';
import { placementAllows } from '../../../../controller/plan/node-eligibility.ts';
import { argoSourceCondition, prePullPolicyStatus } from '../../../../controller/status/status-rollup.ts';
import { node, policy } from '../planning-fixtures.ts';

function argo(kind: ArgoKind, spec: unknown, meta: { name?: string; namespace?: string; labels?: Record<string, string> } = {}): ArgoWorkflowView {
  const namespace = kind === 'ClusterWorkflowTemplate' ? undefined : meta.namespace ?? 'ci';
  const name = meta.name ?? 'build';
  const raw = {
    apiVersion: 'argoproj.io/v1alpha1', kind,
    metadata: { name, uid: `uid-${name}`, ...(namespace !== undefined ? { namespace } : {}), labels: meta.labels ?? { 'kwarm.io/enabled': 'true' } },
    spec,
  };
  const v = decodeArgoWorkflow(kind, raw);
  if (v === undefined) throw new Error('did not decode');
  return v;
}

const noSAs = new Map<string, ServiceAccountView>();

describe('controller/argo-workflow-images', () => {
  describe('template containers', () => {
    it('reads container, script, initContainers, sidecars and containerSet containers, main ones named "main"', () => {
      expect(templateContainers({ name: 't', container: { image: 'r.example/c:1' } })).to.deep.equal([{ container: 'main', image: 'r.example/c:1' }]);
      expect(templateContainers({ name: 't', script: { image: 'python:3.12', source: 'print(1)' } })).to.deep.equal([{ container: 'main', image: 'python:3.12' }]);
      expect(templateContainers({
        name: 't',
        initContainers: [{ name: 'fetch', image: 'r.example/init:1' }],
        container: { image: 'r.example/main:1' },
        sidecars: [{ name: 'db', image: 'postgres:16' }],
      })).to.deep.equal([
        { container: 'fetch', image: 'r.example/init:1' },
        { container: 'main', image: 'r.example/main:1' },
        { container: 'db', image: 'postgres:16' },
      ]);
      expect(templateContainers({ name: 't', containerSet: { containers: [{ name: 'a', image: 'r.example/a:1' }, { name: 'b', image: 'r.example/b:1' }] } }))
        .to.deep.equal([{ container: 'a', image: 'r.example/a:1' }, { container: 'b', image: 'r.example/b:1' }]);
    });

    it('skips templates without containers and images that are empty, templated or not references', () => {
      expect(templateContainers({ name: 'steps', steps: [[{ name: 's', template: 't' }]] })).to.deep.equal([]);
      expect(templateContainers({ name: 'dag', dag: { tasks: [] } })).to.deep.equal([]);
      expect(templateContainers({ name: 'res', resource: { action: 'create', manifest: 'x' } })).to.deep.equal([]);
      expect(templateContainers({ name: 't', container: { image: '{{inputs.parameters.image}}' } })).to.deep.equal([]);
      expect(templateContainers({ name: 't', container: { image: '' }, script: { source: 'x' } })).to.deep.equal([]);
      expect(templateContainers({ name: 't', container: { image: 'Not A Reference' } })).to.deep.equal([]);
    });

    it('tolerates malformed shapes without throwing', () => {
      for (const odd of [null, 7, 'x', [], { container: 'alpine' }, { initContainers: 'alpine' }, { sidecars: [null, 3, { image: 5 }] }, { containerSet: { containers: {} } }]) {
        expect(templateContainers(odd), JSON.stringify(odd)).to.deep.equal([]);
      }
      // A container without a name still counts, named after its position.
      expect(templateContainers({ sidecars: [{ image: 'r.example/s:1' }] })).to.deep.equal([{ container: 'sidecars[0]', image: 'r.example/s:1' }]);
      for (const spec of [undefined, null, 'x', { templates: 'x' }, { templates: [null, 1, 'x', { container: null }] }]) {
        const v = argo('WorkflowTemplate', spec);
        expect(v.containers, JSON.stringify(spec)).to.deep.equal([]);
      }
    });
  });

  describe('objects', () => {
    it('reads a WorkflowTemplate\'s spec.templates and a CronWorkflow\'s spec.workflowSpec.templates', () => {
      const templates = [{ name: 'build', container: { image: 'r.example/build:1' } }, { name: 'main', steps: [[{ name: 'b', template: 'build' }]] }];
      expect(argo('WorkflowTemplate', { templates }).containers.map((c) => [c.template, c.container, c.image])).to.deep.equal([['build', 'main', 'r.example/build:1']]);
      const cron = argo('CronWorkflow', { schedule: '0 * * * *', workflowSpec: { templates, imagePullSecrets: [{ name: 'reg' }, { name: 'reg' }], serviceAccountName: 'runner' } });
      expect(cron.containers.map((c) => c.image)).to.deep.equal(['r.example/build:1']);
      expect(cron.imagePullSecrets).to.deep.equal(['reg']);
      expect(cron.serviceAccountName).to.equal('runner');
      // Templates directly under a CronWorkflow's spec are not where Argo reads them.
      expect(argo('CronWorkflow', { schedule: '0 * * * *', templates }).containers).to.deep.equal([]);
      const cwt = argo('ClusterWorkflowTemplate', { templates });
      expect(cwt.identity).to.deep.equal({ kind: 'ClusterWorkflowTemplate', namespace: '', name: 'build', uid: 'uid-build' });
      expect(cwt.serviceAccountName).to.equal('default');
    });

    it('rejects objects without name or uid, or with the wrong scope', () => {
      expect(decodeArgoWorkflow('WorkflowTemplate', { metadata: { namespace: 'ci', name: 'x' }, spec: {} })).to.equal(undefined);
      expect(decodeArgoWorkflow('WorkflowTemplate', { metadata: { name: 'x', uid: 'u' }, spec: {} })).to.equal(undefined);
      expect(decodeArgoWorkflow('ClusterWorkflowTemplate', { metadata: { namespace: 'ci', name: 'x', uid: 'u' }, spec: {} })).to.equal(undefined);
      expect(decodeArgoWorkflow('CronWorkflow', 'garbage')).to.equal(undefined);
    });

    it('returns the previous projection when nothing it keeps changed', () => {
      const raw = (extra: Record<string, unknown>) => ({
        metadata: { namespace: 'ci', name: 'n', uid: 'u', resourceVersion: String(Math.random()) },
        spec: { schedule: '* * * * *', workflowSpec: { templates: [{ name: 't', container: { image: 'r.example/a:1' } }] } },
        ...extra,
      });
      const first = decodeArgoWorkflow('CronWorkflow', raw({}));
      expect(decodeArgoWorkflow('CronWorkflow', raw({ status: { lastScheduledTime: 'now' } }), first)).to.equal(first);
      const changed = decodeArgoWorkflow('CronWorkflow', { ...raw({}), spec: { workflowSpec: { templates: [{ name: 't', container: { image: 'r.example/a:2' } }] } } }, first);
      expect(changed).to.not.equal(first);
    });
  });

  describe('placement', () => {
    const wf = { nodeSelector: { pool: 'ci' }, tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }] };

    it('uses the workflow\'s nodeSelector, tolerations and affinity; a template\'s own replace them field by field', () => {
      const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }] } } };
      expect(combineScheduling(schedulingOf(wf), schedulingOf({}))).to.deep.equal(schedulingOf(wf));
      const combined = combineScheduling(schedulingOf(wf), schedulingOf({ nodeSelector: { pool: 'gpu' }, affinity }));
      expect(combined.nodeSelector).to.deep.equal({ pool: 'gpu' });
      expect(combined.tolerations).to.deep.equal(wf.tolerations);
      expect(combined.affinity).to.deep.equal(affinity);
      // Empty template fields do not replace the workflow's (as in Argo).
      expect(combineScheduling(schedulingOf(wf), schedulingOf({ nodeSelector: {}, tolerations: [] }))).to.deep.equal(schedulingOf(wf));
      // Malformed fields are dropped, not thrown on.
      expect(schedulingOf({ nodeSelector: 'x', tolerations: 'y', affinity: 3 })).to.deep.equal({});
    });

    it('places each template\'s images on the nodes its pods could run on', () => {
      const v = argo('WorkflowTemplate', {
        ...wf,
        templates: [
          { name: 'cpu', container: { image: 'r.example/cpu:1' } },
          { name: 'gpu', nodeSelector: { pool: 'gpu' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists' }], container: { image: 'r.example/gpu:1' } },
        ],
      });
      const groups = argoImageGroups(v);
      const cpu = groups.find((g) => g.image === 'r.example/cpu:1')!;
      const gpu = groups.find((g) => g.image === 'r.example/gpu:1')!;
      const ciNode = node({ name: 'ci-1', labels: { pool: 'ci' }, taints: [{ key: 'ci', effect: 'NoSchedule' }] });
      const gpuNode = node({ name: 'gpu-1', labels: { pool: 'gpu' }, taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] });
      expect(placementAllows(cpu.placement, ciNode).eligible).to.equal(true);
      expect(placementAllows(cpu.placement, gpuNode)).to.include({ eligible: false, reason: 'NodeSelectorMismatch' });
      expect(placementAllows(gpu.placement, gpuNode).eligible).to.equal(true);
      // The GPU template's tolerations replace the workflow's: the ci taint is no longer tolerated.
      const ciGpu = node({ name: 'x', labels: { pool: 'gpu' }, taints: [{ key: 'ci', effect: 'NoSchedule' }] });
      expect(placementAllows(gpu.placement, ciGpu)).to.include({ eligible: false, reason: 'UntoleratedTaint' });
    });
  });

  describe('grouping and names', () => {
    it('gives one PrePullImage per distinct image, named after the object and the image, stable across template edits', () => {
      const spec = (extra: unknown[]) => ({ templates: [{ name: 'a', container: { image: 'alpine:3.20' } }, { name: 'b', script: { image: 'alpine:3.20' } }, ...extra] });
      const one = argoImageGroups(argo('WorkflowTemplate', spec([])));
      expect(one).to.have.length(1);
      expect(one[0]!.users).to.deep.equal(['a/main', 'b/main']);
      expect(one[0]!.name).to.match(/^workflowtemplate\.build\.alpine-[0-9a-f]{10}$/);
      const two = argoImageGroups(argo('WorkflowTemplate', spec([{ name: 'c', container: { image: 'r.example/team/tool@sha256:' + 'a'.repeat(64) } }])));
      expect(two.map((g) => g.name)).to.include(one[0]!.name);
      expect(two.find((g) => g.image.startsWith('r.example'))!.name).to.match(/^workflowtemplate\.build\.tool-[0-9a-f]{10}$/);
    });

    it('splits one image placed differently by two templates into two PrePullImages with distinct names', () => {
      const groups = argoImageGroups(argo('WorkflowTemplate', { templates: [
        { name: 'a', container: { image: 'alpine:3' } },
        { name: 'b', nodeSelector: { pool: 'b' }, container: { image: 'alpine:3' } },
      ] }));
      expect(groups).to.have.length(2);
      expect(new Set(groups.map((g) => g.name)).size).to.equal(2);
    });

    it('keeps names valid and distinct when they are long or odd', () => {
      const long = 'x'.repeat(200);
      const a = argoPrePullImageName({ kind: 'CronWorkflow', namespace: 'ci', name: long }, 'r.example/a:1');
      const b = argoPrePullImageName({ kind: 'CronWorkflow', namespace: 'ci', name: long }, 'r.example/b:1');
      for (const n of [a, b]) {
        expect(n.length).to.be.at.most(63);
        expect(n).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
      }
      expect(a).to.not.equal(b);
      expect(argoPrePullImageName({ kind: 'ClusterWorkflowTemplate', namespace: '', name: 'x' }, 'localhost:5000/my_img:1')).to.match(/^clusterworkflowtemplate\.x\.my-img-[0-9a-f]{10}$/);
      expect(describeUsers(['a', 'b', 'c'], 2)).to.equal('a,b,+1 more');
    });
  });

  it('reads served kinds from the discovery resource list', () => {
    expect([...servedArgoKinds({
      kind: 'APIResourceList',
      resources: [
        { name: 'workflowtemplates', kind: 'WorkflowTemplate', namespaced: true },
        { name: 'workflowtemplates/status', kind: 'WorkflowTemplate' },
        { name: 'cronworkflows', kind: 'CronWorkflow', namespaced: true },
        { name: 'workflows', kind: 'Workflow' },
      ],
    })].sort()).to.deep.equal(['CronWorkflow', 'WorkflowTemplate']);
    expect(servedArgoKinds(undefined).size).to.equal(0);
    expect(servedArgoKinds({ resources: 'x' }).size).to.equal(0);
  });
});

describe('controller/desired-images: Argo objects', () => {
  const p = policy('ci', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, workloadKinds: ['WorkflowTemplate', 'ClusterWorkflowTemplate', 'CronWorkflow'], timeout: '20m' });
  const templates = [{ name: 't', container: { image: 'r.example/t:1' } }];

  it('derives PrePullImages owned by the object, in its namespace (kwarm\'s for a ClusterWorkflowTemplate), with the policy settings', () => {
    const wt = argo('WorkflowTemplate', { templates });
    const cron = argo('CronWorkflow', { workflowSpec: { templates } }, { name: 'nightly' });
    const cwt = argo('ClusterWorkflowTemplate', { templates }, { name: 'shared' });
    const { images, policies } = desiredPrePullImages([p], [], noSAs, undefined, { objects: [wt, cron, cwt], clusterNamespace: 'kwarm-system' });
    const byOwner = new Map([...images.values()].map((d) => [d.owner.kind, d]));
    expect(byOwner.get('WorkflowTemplate')).to.deep.include({ namespace: 'ci', policy: 'ci' });
    expect(byOwner.get('WorkflowTemplate')!.annotations).to.deep.equal({ 'kwarm.io/workload': 'WorkflowTemplate/build', 'kwarm.io/container': 't/main' });
    expect(byOwner.get('CronWorkflow')!.name).to.match(/^cronworkflow\.nightly\.t-/);
    expect(byOwner.get('ClusterWorkflowTemplate')).to.deep.include({ namespace: 'kwarm-system' });
    // The owner reference's shape, as for every source: a cluster-scoped owner of a namespaced PrePullImage.
    expect(byOwner.get('ClusterWorkflowTemplate')!.owner).to.deep.equal({ apiVersion: 'argoproj.io/v1alpha1', kind: 'ClusterWorkflowTemplate', name: 'shared', uid: 'uid-shared' });
    expect(byOwner.get('WorkflowTemplate')!.spec).to.deep.equal({ image: 'r.example/t:1', nodes: {}, imagePullSecrets: [], retry: { maxAttempts: 3, backoffSeconds: 30 }, timeout: '20m' });
    expect(policies.get('ci')).to.deep.include({ watchedWorkloads: 3 });
    expect(policies.get('ci')!.watchedByKind).to.include({ WorkflowTemplate: 1, ClusterWorkflowTemplate: 1, CronWorkflow: 1, Deployment: 0 });
  });

  it('gives its images the policy\'s node targeting, purgeOnDelete and refreshInterval, as workload images get them', () => {
    const tolerations = [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }];
    const targeted = policy('ci', {
      selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, workloadKinds: ['WorkflowTemplate'],
      nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'In', values: ['ci'] }] }, tolerations, purgeOnDelete: true, refreshInterval: '12h',
    });
    const { images } = desiredPrePullImages([targeted], [], noSAs, undefined, { objects: [argo('WorkflowTemplate', { templates })], clusterNamespace: 'kwarm-system' });
    const d = [...images.values()][0]!;
    expect(d.spec).to.deep.include({
      nodes: { selector: { matchExpressions: [{ key: 'pool', operator: 'In', values: ['ci'] }] }, tolerations },
      purgeOnDelete: true,
      refreshInterval: '12h',
    });
  });

  it('selects by kind, labels and namespaces; a ClusterWorkflowTemplate only by policies without namespaces', () => {
    const onlyWt = policy('a', { selector: { matchLabels: { team: 'a' }, namespaces: ['ci'] }, workloadKinds: ['WorkflowTemplate', 'ClusterWorkflowTemplate'] });
    const objects = [
      argo('WorkflowTemplate', { templates }, { name: 'in', labels: { team: 'a' } }),
      argo('WorkflowTemplate', { templates }, { name: 'other-ns', namespace: 'x', labels: { team: 'a' } }),
      argo('WorkflowTemplate', { templates }, { name: 'unlabelled', labels: {} }),
      argo('CronWorkflow', { workflowSpec: { templates } }, { name: 'cron', labels: { team: 'a' } }),
      argo('ClusterWorkflowTemplate', { templates }, { name: 'cluster', labels: { team: 'a' } }),
    ];
    const { images } = desiredPrePullImages([onlyWt], [], noSAs, undefined, { objects, clusterNamespace: 'kwarm-system' });
    expect([...images.values()].map((d) => d.owner.name)).to.deep.equal(['in']);
  });

  it('drops an image removed from the templates and inherits pull secrets from the workflow spec and its ServiceAccount', () => {
    const inherit = policy('ci', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, workloadKinds: ['WorkflowTemplate'], imagePullSecrets: { inherit: true } });
    const sas = new Map([['ci/runner', { namespace: 'ci', name: 'runner', imagePullSecrets: ['sa-secret'] }]]);
    const before = argo('WorkflowTemplate', { serviceAccountName: 'runner', imagePullSecrets: [{ name: 'wf-secret' }], templates: [...templates, { name: 'u', container: { image: 'r.example/u:1' } }] });
    const after = argo('WorkflowTemplate', { serviceAccountName: 'runner', imagePullSecrets: [{ name: 'wf-secret' }], templates });
    const memo = new DesiredImagesMemo();
    const one = desiredPrePullImages([inherit], [], sas, memo, { objects: [before], clusterNamespace: 'k' });
    const two = desiredPrePullImages([inherit], [], sas, memo, { objects: [after], clusterNamespace: 'k' });
    expect([...one.images.values()].map((d) => d.spec.image).sort()).to.deep.equal(['r.example/t:1', 'r.example/u:1']);
    expect([...two.images.values()].map((d) => d.spec.image)).to.deep.equal(['r.example/t:1']);
    expect([...two.images.keys()][0]).to.equal([...one.images.keys()].find((k) => one.images.get(k)!.spec.image === 'r.example/t:1'));
    expect([...two.images.values()][0]!.spec.imagePullSecrets).to.deep.equal([{ name: 'wf-secret' }, { name: 'sa-secret' }]);
    // Memoised: the same object gives the very same derived images.
    const three = desiredPrePullImages([inherit], [], sas, memo, { objects: [after], clusterNamespace: 'k' });
    expect([...three.images.values()][0]).to.equal([...two.images.values()][0]);
  });

  it('lists the Argo kinds live policies name', () => {
    const deleting = { ...policy('d', { selector: { matchLabels: { a: 'b' } }, workloadKinds: ['CronWorkflow'] }) };
    deleting.metadata = { ...deleting.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' };
    expect([...argoKindsNamed([p, policy('x', { selector: { matchLabels: { a: 'b' } } }), deleting])].sort())
      .to.deep.equal(['ClusterWorkflowTemplate', 'CronWorkflow', 'WorkflowTemplate']);
  });
});

describe('controller/status-rollup: ArgoSourceActive', () => {
  const T0 = '2026-01-01T00:00:00Z';
  const T1 = '2026-01-01T00:01:00Z';

  it('is False with NotInstalled listing missing kinds, True once served, absent when no Argo kind is named', () => {
    const missing = argoSourceCondition({ named: ['WorkflowTemplate', 'CronWorkflow'], served: new Set(['WorkflowTemplate']) }, undefined, 2, T0);
    expect(missing).to.include({ type: 'ArgoSourceActive', status: 'False', reason: 'NotInstalled', observedGeneration: 2 });
    expect(missing!.message).to.contain('CronWorkflow').and.not.contain('WorkflowTemplate,');
    const served = argoSourceCondition({ named: ['WorkflowTemplate', 'CronWorkflow'], served: new Set(['WorkflowTemplate', 'CronWorkflow']) }, [missing!], 2, T1);
    expect(served).to.include({ status: 'True', lastTransitionTime: T1 });
    expect(argoSourceCondition({ named: [], served: new Set() }, undefined, 1, T0)).to.equal(undefined);
    // Discovery has not answered: what the status said stands.
    expect(argoSourceCondition({ named: ['CronWorkflow'], served: undefined }, [missing!], 2, T1)).to.equal(missing);
  });

  it('is part of the policy status', () => {
    const ev = {
      name: 'p', selectorError: undefined, watchedWorkloads: 0, shadowed: 0, images: [],
      watchedByKind: { Deployment: 0, StatefulSet: 0, DaemonSet: 0, Job: 0, CronJob: 0, WorkflowTemplate: 0, ClusterWorkflowTemplate: 0, CronWorkflow: 0 },
    };
    const s = prePullPolicyStatus({ generation: 1, evaluation: ev, imagePhases: [], previous: undefined, now: T0, argo: { named: ['CronWorkflow'], served: new Set() } });
    expect(s.conditions?.map((c) => c.type)).to.deep.equal(['Ready', 'ResourcesIgnored', 'ArgoSourceActive']);
  });
});
