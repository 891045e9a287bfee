import { expect } from 'chai';
import { canonicalJson } from '../../../controller/canonical-json.ts';
import { decodeNode, decodeNodeImageSet, decodeSecret, decodeServiceAccount, workloadDecoder } from '../../../controller/cluster-cache.ts';
import { isNodeReady, podCanRunOn } from '../../../controller/node-eligibility.ts';
import { nodeImageSetDigest } from '../../../controller/node-plan.ts';

describe('controller/cluster-cache decoders', () => {
  it('keeps of a Node only what eligibility reads', () => {
    const n = decodeNode({
      metadata: { name: 'n1', uid: 'u1', labels: { a: 'b' }, annotations: { big: 'x'.repeat(1000) }, managedFields: [{}] },
      spec: { unschedulable: true, taints: [{ key: 'k', effect: 'NoSchedule' }], podCIDR: '10.0.0.0/24' },
      status: { conditions: [{ type: 'DiskPressure', status: 'False' }, { type: 'Ready', status: 'True', reason: 'KubeletReady' }], images: [{ names: ['x'] }] },
    })!;
    expect(n.metadata).to.deep.equal({ name: 'n1', uid: 'u1', labels: { a: 'b' } });
    expect(n.spec?.unschedulable).to.equal(true);
    expect(n.spec?.taints?.[0]).to.include({ key: 'k', effect: 'NoSchedule' });
    expect(n.status?.conditions).to.have.length(1);
    expect(isNodeReady(n)).to.equal(true);
    expect(n.status?.images).to.equal(undefined);
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
    expect(w.template.podSpec.containers[0]?.env).to.equal(undefined);
    expect(w.template.podSpec.affinity?.podAntiAffinity).to.equal(undefined);
    expect(w.template.serviceAccountName).to.equal('sa');
    expect(w.template.imagePullSecrets).to.deep.equal(['regcred']);
    const fits = { metadata: { name: 'n', labels: { disk: 'ssd', zone: 'a' } }, status: { conditions: [{ type: 'Ready', status: 'True' }] }, spec: { taints: [{ key: 'k', effect: 'NoSchedule' }] } };
    expect(podCanRunOn(w.template.schedulingSpec, decodeNode(fits)!).eligible).to.equal(true);
    const cron = workloadDecoder('CronJob')({ metadata: { namespace: 'a', name: 'c', uid: 'u' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'x', image: 'r.example/c:1' }] } } } } } });
    expect(cron?.template.images[0]?.image).to.equal('r.example/c:1');
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
    const defaulted = { maxConcurrentPulls: 2, images: [{ image: 'r.example/a:1', pullSecrets: [], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: 2, sources: [] }] };
    expect(v.specDigest).to.equal(nodeImageSetDigest('u1', defaulted));
  });

  it('canonicalJson sorts keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }] })).to.equal('{"a":[{"c":"x"}],"b":1}');
  });
});
