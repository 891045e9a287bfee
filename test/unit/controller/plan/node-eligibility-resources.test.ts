// Finding 22 of the review: targeting honours extended-resource requests (GPUs) and RuntimeClass scheduling.
import { expect } from 'chai';
import {
  compilePodPlacement,
  isExtendedResourceName,
  isPositiveQuantity,
  podCanRunOn,
  requestedExtendedResources,
  type NodeView,
  type PodSchedulingSpec,
} from '../../../../controller/plan/node-eligibility.ts';
import { withRuntimeClass, type RuntimeClassView } from '../../../../controller/plan/runtime-class.ts';
import { decodeNode, decodeRuntimeClass, workloadDecoder } from '../../../../controller/sources/decode.ts';

function node(name: string, o: { allocatable?: Record<string, string>; labels?: Record<string, string>; taints?: { key: string; effect: string }[] } = {}): NodeView {
  return {
    metadata: { name, labels: { 'kubernetes.io/os': 'linux', ...o.labels } },
    spec: o.taints !== undefined ? { taints: o.taints } : {},
    status: { conditions: [{ type: 'Ready', status: 'True' }], ...(o.allocatable !== undefined ? { allocatable: o.allocatable } : {}) },
  };
}

function verdict(spec: PodSchedulingSpec, n: NodeView): string {
  const r = podCanRunOn(spec, n);
  return r.eligible ? 'eligible' : r.reason;
}

const GPU = 'nvidia.com/gpu';
const gpuNode = node('gpu', { allocatable: { cpu: '8', [GPU]: '2' }, taints: [{ key: GPU, effect: 'NoSchedule' }] });
const cpuNode = node('cpu', { allocatable: { cpu: '8', memory: '32Gi' } });
const drainedGpuNode = node('gpu-0', { allocatable: { [GPU]: '0' } });

describe('controller/node-eligibility: extended resources and RuntimeClass (finding 22)', () => {
  describe('extended resources', () => {
    it('tells extended resource names from native ones', () => {
      expect(isExtendedResourceName(GPU)).to.equal(true);
      expect(isExtendedResourceName('example.com/dongle')).to.equal(true);
      for (const native of ['cpu', 'memory', 'ephemeral-storage', 'hugepages-2Mi', 'kubernetes.io/something', 'requests.example.com/x']) {
        expect(isExtendedResourceName(native), native).to.equal(false);
      }
    });

    it('reads quantities as positive or not', () => {
      for (const q of ['1', '2', '0.5', '1k', '+3', '10']) expect(isPositiveQuantity(q), q).to.equal(true);
      for (const q of ['0', '0k', '0.0', '', 'x']) expect(isPositiveQuantity(q), q).to.equal(false);
    });

    it('collects what containers and init containers request or limit, positive amounts only', () => {
      expect(requestedExtendedResources([
        { resources: { requests: { cpu: '1', [GPU]: '1' } } },
        { resources: { limits: { 'example.com/fpga': '2', memory: '1Gi' } } },
        { resources: { requests: { 'example.com/zero': '0' } } },
        {},
      ])).to.deep.equal(['example.com/fpga', GPU]);
    });

    it('a GPU workload that tolerates the GPU taint targets only nodes with allocatable GPUs', () => {
      const spec: PodSchedulingSpec = { tolerations: [{ key: GPU, operator: 'Exists', effect: 'NoSchedule' }], extendedResources: [GPU] };
      expect(verdict(spec, gpuNode)).to.equal('eligible');
      expect(verdict(spec, cpuNode)).to.equal('MissingExtendedResource');
      expect(verdict(spec, drainedGpuNode)).to.equal('MissingExtendedResource');
      const r = podCanRunOn(spec, cpuNode);
      expect(r.eligible ? '' : r.message).to.contain(GPU);
      // Without the request, the same toleration goes to every untainted node, as before.
      expect(verdict({ tolerations: spec.tolerations ?? [] }, cpuNode)).to.equal('eligible');
    });

    it('keeps the placement key of specs without extended resources and changes it with them', () => {
      const plain = compilePodPlacement({ nodeSelector: { a: 'b' } });
      expect(plain.key).to.equal(JSON.stringify([null, [['a', 'b']], null, [], null]));
      expect(compilePodPlacement({ nodeSelector: { a: 'b' }, extendedResources: [GPU] }).key).to.not.equal(plain.key);
    });

    it('the node decoder keeps extended allocatable resources only; the workload decoder keeps the requests', () => {
      const n = decodeNode({ metadata: { name: 'n1' }, status: { allocatable: { cpu: '4', memory: '8Gi', [GPU]: '1' } } });
      expect(n?.status?.allocatable).to.deep.equal({ [GPU]: '1' });
      expect(decodeNode({ metadata: { name: 'n2' }, status: { allocatable: { cpu: '4' } } })?.status).to.not.have.property('allocatable');
      const w = workloadDecoder('Deployment')({
        metadata: { namespace: 'ns', name: 'train', uid: 'u1' },
        spec: { template: { spec: {
          runtimeClassName: 'nvidia',
          initContainers: [{ name: 'fetch', image: 'x/fetch:1', resources: { limits: { 'example.com/fpga': '1' } } }],
          containers: [{ name: 'train', image: 'x/train:1', resources: { requests: { cpu: '1', [GPU]: '1' }, limits: { [GPU]: '1' } } }],
        } } },
      });
      expect(w?.template.schedulingSpec.extendedResources).to.deep.equal(['example.com/fpga', GPU]);
      expect(w?.template.podSpec.runtimeClassName).to.equal('nvidia');
      const ds = workloadDecoder('DaemonSet')({
        metadata: { namespace: 'ns', name: 'ds', uid: 'u2' },
        spec: { template: { spec: { containers: [{ name: 'c', image: 'x/c:1', resources: { limits: { [GPU]: '1' } } }] } } },
      });
      expect(ds?.template.schedulingSpec.extendedResources).to.deep.equal([GPU]);
    });
  });

  describe('RuntimeClass scheduling', () => {
    const gvisor: RuntimeClassView = {
      name: 'gvisor',
      nodeSelector: { sandbox: 'gvisor' },
      tolerations: [{ key: 'sandbox', operator: 'Equal', value: 'gvisor', effect: 'NoSchedule' }],
    };
    const sandboxNode = node('sandbox', { labels: { sandbox: 'gvisor' }, taints: [{ key: 'sandbox', effect: 'NoSchedule' }] });
    const plainNode = node('plain');

    it('merges the class nodeSelector and tolerations into the pod spec', () => {
      const merged = withRuntimeClass({ nodeSelector: { zone: 'a' } }, 'gvisor', gvisor);
      expect(merged.nodeSelector).to.deep.equal({ zone: 'a', sandbox: 'gvisor' });
      expect(merged.tolerations).to.deep.equal(gvisor.tolerations);
      expect(merged.rejection).to.equal(undefined);
      // A toleration the pod already has is not added twice.
      const twice = withRuntimeClass({ tolerations: gvisor.tolerations ?? [] }, 'gvisor', gvisor);
      expect(twice.tolerations).to.have.length(1);
    });

    it('a pod naming the class targets only the nodes the class schedules onto', () => {
      const tainted = { ...sandboxNode, spec: { taints: [{ key: 'sandbox', value: 'gvisor', effect: 'NoSchedule' }] } };
      const merged = withRuntimeClass({}, 'gvisor', gvisor);
      expect(verdict(merged, tainted)).to.equal('eligible');
      expect(verdict(merged, plainNode)).to.equal('NodeSelectorMismatch');
      // Unmerged, the same pod would go to the plain node: the over-approximation of the finding.
      expect(verdict({}, plainNode)).to.equal('eligible');
    });

    it('a missing class or a conflicting nodeSelector selects no node, as admission refuses the pods', () => {
      const missing = withRuntimeClass({}, 'kata', undefined);
      expect(verdict(missing, plainNode)).to.equal('RuntimeClassRejected');
      const r = podCanRunOn(missing, plainNode);
      expect(r.eligible ? '' : r.message).to.contain('"kata" does not exist');
      const conflict = withRuntimeClass({ nodeSelector: { sandbox: 'kata' } }, 'gvisor', gvisor);
      expect(verdict(conflict, sandboxNode)).to.equal('RuntimeClassRejected');
      expect(compilePodPlacement(conflict).key).to.not.equal(compilePodPlacement({ nodeSelector: { sandbox: 'kata' } }).key);
    });

    it('a class without scheduling changes nothing', () => {
      const spec: PodSchedulingSpec = { nodeSelector: { zone: 'a' } };
      expect(withRuntimeClass(spec, 'runc', { name: 'runc' })).to.deep.equal(spec);
    });

    it('the RuntimeClass decoder keeps name and scheduling, and returns the previous projection when unchanged', () => {
      const raw = { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'gvisor', resourceVersion: '1' }, handler: 'runsc', scheduling: { nodeSelector: { sandbox: 'gvisor' }, tolerations: [{ key: 'sandbox', operator: 'Equal', value: 'gvisor', effect: 'NoSchedule' }] } };
      const rc = decodeRuntimeClass(raw);
      expect(rc).to.deep.equal(gvisor);
      expect(decodeRuntimeClass({ ...raw, metadata: { name: 'gvisor', resourceVersion: '2' } }, rc)).to.equal(rc);
      expect(decodeRuntimeClass({ metadata: { name: 'runc' }, handler: 'runc' })).to.deep.equal({ name: 'runc' });
    });
  });
});
