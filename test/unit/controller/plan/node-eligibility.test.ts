import { expect } from 'chai';
import type { V1NodeSelectorTerm, V1PodSpec, V1Taint, V1Toleration } from '@kubernetes/client-node';
import {
  compileNodeTargeting,
  compilePodPlacement,
  describeTaint,
  findUntoleratedTaint,
  ineligibilityReasons,
  isNodeReady,
  isSchedulable,
  nodeAcceptsPulls,
  placementAllows,
  podCanRunOn,
  targetingAllows,
  toleratesTaint,
  type IneligibilityReason,
} from '../../../../controller/plan/node-eligibility.ts';
import { node, podSpec, type Plain } from '../fixtures.ts';

interface NodeOptions {
  name?: string;
  /** Replaces the default labels (hostname, os=linux, arch=amd64). */
  labels?: Record<string, string>;
  extraLabels?: Record<string, string>;
  taints?: Plain<V1Taint>[];
  unschedulable?: boolean;
  /** Status of the Ready condition; null leaves the condition out. */
  ready?: 'True' | 'False' | 'Unknown' | null;
}

function makeNode(o: NodeOptions = {}) {
  const name = o.name ?? 'node-a';
  const labels = o.labels ?? { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' };
  const ready = o.ready === undefined ? 'True' : o.ready;
  return node({
    metadata: { name, labels: { ...labels, ...o.extraLabels } },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable !== undefined ? { unschedulable: o.unschedulable } : {}) },
    status: {
      conditions: [
        { type: 'MemoryPressure', status: 'False' },
        ...(ready === null ? [] : [{ type: 'Ready', status: ready }]),
      ],
    },
  });
}

function spec(fields: Partial<Plain<V1PodSpec>> = {}): V1PodSpec {
  return podSpec({ containers: [{ name: 'app', image: 'registry.example/app:v1' }], ...fields });
}

function requiredAffinity(...terms: Plain<V1NodeSelectorTerm>[]): Partial<Plain<V1PodSpec>> {
  return { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } };
}

function expr(key: string, operator: string, values?: string[]) {
  return values === undefined ? { key, operator } : { key, operator, values };
}

function taint(key: string, effect: string, value?: string): V1Taint {
  return makeNode({ taints: [{ key, effect, ...(value !== undefined ? { value } : {}) }] }).spec!.taints![0]!;
}

function toleration(fields: Plain<V1Toleration>): V1Toleration {
  return spec({ tolerations: [fields] }).tolerations![0]!;
}

type Want = 'eligible' | IneligibilityReason;

function verdict(s: V1PodSpec, n: ReturnType<typeof makeNode>): Want {
  const result = podCanRunOn(s, n);
  if (result.eligible) return 'eligible';
  expect(result.message).to.be.a('string').and.not.equal('');
  return result.reason;
}

describe('controller/node-eligibility', () => {
  describe('isNodeReady / isSchedulable / nodeAcceptsPulls', () => {
    it('Ready=True is ready; False, Unknown and a missing condition are not', () => {
      expect(isNodeReady(makeNode({ ready: 'True' }))).to.equal(true);
      expect(isNodeReady(makeNode({ ready: 'False' }))).to.equal(false);
      expect(isNodeReady(makeNode({ ready: 'Unknown' }))).to.equal(false);
      expect(isNodeReady(makeNode({ ready: null }))).to.equal(false);
      expect(isNodeReady(node({ metadata: { name: 'bare' } }))).to.equal(false);
    });

    it('the first Ready condition decides', () => {
      const n = node({
        metadata: { name: 'x' },
        status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'Ready', status: 'True' }] },
      });
      expect(isNodeReady(n)).to.equal(false);
    });

    it('cordoned nodes are not schedulable', () => {
      expect(isSchedulable(makeNode())).to.equal(true);
      expect(isSchedulable(makeNode({ unschedulable: false }))).to.equal(true);
      expect(isSchedulable(makeNode({ unschedulable: true }))).to.equal(false);
    });

    it('reports NotReady before Unschedulable', () => {
      const r = nodeAcceptsPulls(makeNode({ ready: 'Unknown', unschedulable: true }));
      expect(r).to.deep.include({ eligible: false, reason: 'NotReady' });
      expect(nodeAcceptsPulls(makeNode({ unschedulable: true }))).to.deep.include({ eligible: false, reason: 'Unschedulable' });
      expect(nodeAcceptsPulls(makeNode())).to.deep.equal({ eligible: true });
    });
  });

  describe('toleratesTaint', () => {
    const cases: { name: string; tol: Plain<V1Toleration>; taint: [string, string, string?]; want: boolean }[] = [
      { name: 'empty key with Exists tolerates every taint (NoSchedule)', tol: { operator: 'Exists' }, taint: ['a', 'NoSchedule', 'v'], want: true },
      { name: 'empty key with Exists tolerates every taint (NoExecute)', tol: { operator: 'Exists' }, taint: ['b', 'NoExecute'], want: true },
      { name: 'empty key with Exists and an effect tolerates only that effect', tol: { operator: 'Exists', effect: 'NoSchedule' }, taint: ['a', 'NoExecute'], want: false },
      { name: 'Exists with a key tolerates any value of that key', tol: { key: 'gpu', operator: 'Exists' }, taint: ['gpu', 'NoSchedule', 'nvidia'], want: true },
      { name: 'Exists with another key does not tolerate', tol: { key: 'gpu', operator: 'Exists' }, taint: ['tpu', 'NoSchedule'], want: false },
      { name: 'Equal: key and value match', tol: { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }, taint: ['dedicated', 'NoSchedule', 'db'], want: true },
      { name: 'Equal: value differs', tol: { key: 'dedicated', operator: 'Equal', value: 'db' }, taint: ['dedicated', 'NoSchedule', 'web'], want: false },
      { name: 'Equal: empty value matches a taint without value', tol: { key: 'k', operator: 'Equal' }, taint: ['k', 'NoSchedule'], want: true },
      { name: 'Equal: empty value does not match a taint with a value', tol: { key: 'k', operator: 'Equal' }, taint: ['k', 'NoSchedule', 'v'], want: false },
      { name: 'operator omitted means Equal', tol: { key: 'k', value: 'v' }, taint: ['k', 'NoExecute', 'v'], want: true },
      { name: 'operator omitted means Equal (value differs)', tol: { key: 'k', value: 'v' }, taint: ['k', 'NoExecute', 'w'], want: false },
      { name: 'empty effect matches every effect', tol: { key: 'k', operator: 'Exists' }, taint: ['k', 'NoExecute'], want: true },
      { name: 'effect must match when set', tol: { key: 'k', operator: 'Exists', effect: 'NoExecute' }, taint: ['k', 'NoSchedule'], want: false },
      { name: 'tolerationSeconds does not change toleration', tol: { key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 0 }, taint: ['k', 'NoExecute'], want: true },
      { name: 'an unknown operator tolerates nothing', tol: { key: 'k', operator: 'Gt', value: '1' }, taint: ['k', 'NoSchedule', '2'], want: false },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(toleratesTaint(toleration(c.tol), taint(...c.taint))).to.equal(c.want);
      });
    }
  });

  describe('findUntoleratedTaint', () => {
    it('ignores PreferNoSchedule and reports the first untolerated NoSchedule/NoExecute taint', () => {
      const taints = [taint('soft', 'PreferNoSchedule'), taint('ok', 'NoSchedule'), taint('hard', 'NoExecute', 'x'), taint('later', 'NoSchedule')];
      const found = findUntoleratedTaint(taints, [toleration({ key: 'ok', operator: 'Exists' })]);
      expect(found && describeTaint(found)).to.equal('hard=x:NoExecute');
    });
    it('returns undefined when everything is tolerated or there are no taints', () => {
      expect(findUntoleratedTaint([taint('a', 'NoSchedule')], [toleration({ operator: 'Exists' })])).to.equal(undefined);
      expect(findUntoleratedTaint(undefined, undefined)).to.equal(undefined);
    });
  });

  describe('podCanRunOn', () => {
    const linux = makeNode();
    const cases: { name: string; spec: V1PodSpec; node: ReturnType<typeof makeNode>; want: Want }[] = [
      { name: 'no constraints on a ready node', spec: spec(), node: linux, want: 'eligible' },
      { name: 'node not ready', spec: spec(), node: makeNode({ ready: 'False' }), want: 'NotReady' },
      { name: 'node without Ready condition', spec: spec(), node: makeNode({ ready: null }), want: 'NotReady' },
      {
        name: 'cordoned node, even when the pod tolerates the unschedulable taint',
        spec: spec({ tolerations: [{ operator: 'Exists' }] }),
        node: makeNode({ unschedulable: true, taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] }),
        want: 'Unschedulable',
      },
      { name: 'nodeName pins another node', spec: spec({ nodeName: 'node-b' }), node: linux, want: 'NodeNameMismatch' },
      { name: 'nodeName pins this node', spec: spec({ nodeName: 'node-a' }), node: linux, want: 'eligible' },

      // nodeSelector
      { name: 'nodeSelector matches', spec: spec({ nodeSelector: { 'kubernetes.io/hostname': 'node-a' } }), node: linux, want: 'eligible' },
      { name: 'nodeSelector value differs', spec: spec({ nodeSelector: { disk: 'ssd' } }), node: makeNode({ extraLabels: { disk: 'hdd' } }), want: 'NodeSelectorMismatch' },
      { name: 'nodeSelector label missing', spec: spec({ nodeSelector: { disk: 'ssd' } }), node: linux, want: 'NodeSelectorMismatch' },
      { name: 'nodeSelector empty value needs the label', spec: spec({ nodeSelector: { edge: '' } }), node: linux, want: 'NodeSelectorMismatch' },
      { name: 'nodeSelector empty value with empty label', spec: spec({ nodeSelector: { edge: '' } }), node: makeNode({ extraLabels: { edge: '' } }), want: 'eligible' },
      { name: 'nodeSelector entries are ANDed', spec: spec({ nodeSelector: { a: '1', b: '2' } }), node: makeNode({ extraLabels: { a: '1', b: '3' } }), want: 'NodeSelectorMismatch' },

      // required node affinity: each operator
      { name: 'affinity In matches', spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'In', ['z1', 'z2'])] })), node: makeNode({ extraLabels: { zone: 'z2' } }), want: 'eligible' },
      { name: 'affinity In does not match', spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'In', ['z1'])] })), node: makeNode({ extraLabels: { zone: 'z3' } }), want: 'AffinityMismatch' },
      { name: 'affinity In with label missing', spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'In', ['z1'])] })), node: linux, want: 'AffinityMismatch' },
      { name: 'affinity NotIn matches', spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'NotIn', ['z1'])] })), node: makeNode({ extraLabels: { zone: 'z2' } }), want: 'eligible' },
      { name: 'affinity NotIn excludes', spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'NotIn', ['z1'])] })), node: makeNode({ extraLabels: { zone: 'z1' } }), want: 'AffinityMismatch' },
      { name: 'affinity NotIn with label missing matches', spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'NotIn', ['z1'])] })), node: linux, want: 'eligible' },
      { name: 'affinity Exists matches', spec: spec(requiredAffinity({ matchExpressions: [expr('gpu', 'Exists')] })), node: makeNode({ extraLabels: { gpu: '' } }), want: 'eligible' },
      { name: 'affinity Exists with label missing', spec: spec(requiredAffinity({ matchExpressions: [expr('gpu', 'Exists')] })), node: linux, want: 'AffinityMismatch' },
      { name: 'affinity DoesNotExist matches', spec: spec(requiredAffinity({ matchExpressions: [expr('spot', 'DoesNotExist')] })), node: linux, want: 'eligible' },
      { name: 'affinity DoesNotExist excludes', spec: spec(requiredAffinity({ matchExpressions: [expr('spot', 'DoesNotExist')] })), node: makeNode({ extraLabels: { spot: 'true' } }), want: 'AffinityMismatch' },
      { name: 'affinity Gt matches', spec: spec(requiredAffinity({ matchExpressions: [expr('cores', 'Gt', ['8'])] })), node: makeNode({ extraLabels: { cores: '16' } }), want: 'eligible' },
      { name: 'affinity Gt excludes an equal value', spec: spec(requiredAffinity({ matchExpressions: [expr('cores', 'Gt', ['8'])] })), node: makeNode({ extraLabels: { cores: '8' } }), want: 'AffinityMismatch' },
      { name: 'affinity Gt with a non-integer node label', spec: spec(requiredAffinity({ matchExpressions: [expr('cores', 'Gt', ['8'])] })), node: makeNode({ extraLabels: { cores: '16.5' } }), want: 'AffinityMismatch' },
      { name: 'affinity Gt with the label missing', spec: spec(requiredAffinity({ matchExpressions: [expr('cores', 'Gt', ['8'])] })), node: linux, want: 'AffinityMismatch' },
      { name: 'affinity Lt matches', spec: spec(requiredAffinity({ matchExpressions: [expr('gen', 'Lt', ['3'])] })), node: makeNode({ extraLabels: { gen: '2' } }), want: 'eligible' },
      { name: 'affinity Lt excludes', spec: spec(requiredAffinity({ matchExpressions: [expr('gen', 'Lt', ['3'])] })), node: makeNode({ extraLabels: { gen: '3' } }), want: 'AffinityMismatch' },
      { name: 'affinity Lt with a non-integer node label', spec: spec(requiredAffinity({ matchExpressions: [expr('gen', 'Lt', ['3'])] })), node: makeNode({ extraLabels: { gen: 'two' } }), want: 'AffinityMismatch' },
      {
        name: 'affinity Gt with a non-integer bound makes its term never match',
        spec: spec(requiredAffinity({ matchExpressions: [expr('cores', 'Gt', ['8.5'])] })),
        node: makeNode({ extraLabels: { cores: '16' } }),
        want: 'AffinityMismatch',
      },
      {
        name: 'an invalid term is skipped, another term still matches',
        spec: spec(requiredAffinity({ matchExpressions: [expr('cores', 'Lt', ['x'])] }, { matchExpressions: [expr('cores', 'Exists')] })),
        node: makeNode({ extraLabels: { cores: '16' } }),
        want: 'eligible',
      },

      // terms ORed, expressions ANDed
      {
        name: 'multiple terms: the second matches',
        spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'In', ['z1'])] }, { matchExpressions: [expr('zone', 'In', ['z2'])] })),
        node: makeNode({ extraLabels: { zone: 'z2' } }),
        want: 'eligible',
      },
      {
        name: 'multiple terms: none matches',
        spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'In', ['z1'])] }, { matchExpressions: [expr('zone', 'In', ['z2'])] })),
        node: makeNode({ extraLabels: { zone: 'z3' } }),
        want: 'AffinityMismatch',
      },
      {
        name: 'expressions in one term are ANDed',
        spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'In', ['z1']), expr('disk', 'In', ['ssd'])] })),
        node: makeNode({ extraLabels: { zone: 'z1', disk: 'hdd' } }),
        want: 'AffinityMismatch',
      },
      {
        name: 'expressions in one term all hold',
        spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'In', ['z1']), expr('disk', 'In', ['ssd'])] })),
        node: makeNode({ extraLabels: { zone: 'z1', disk: 'ssd' } }),
        want: 'eligible',
      },
      { name: 'an empty term selects nothing', spec: spec(requiredAffinity({})), node: linux, want: 'AffinityMismatch' },
      {
        name: 'an empty term does not spoil a matching one',
        spec: spec(requiredAffinity({}, { matchExpressions: [expr('kubernetes.io/hostname', 'Exists')] })),
        node: linux,
        want: 'eligible',
      },
      { name: 'nodeSelector and affinity are ANDed', spec: spec({ nodeSelector: { disk: 'ssd' }, ...requiredAffinity({ matchExpressions: [expr('zone', 'Exists')] }) }), node: makeNode({ extraLabels: { zone: 'z1' } }), want: 'NodeSelectorMismatch' },

      // matchFields
      { name: 'matchFields metadata.name In matches', spec: spec(requiredAffinity({ matchFields: [expr('metadata.name', 'In', ['node-a'])] })), node: linux, want: 'eligible' },
      { name: 'matchFields metadata.name In excludes', spec: spec(requiredAffinity({ matchFields: [expr('metadata.name', 'In', ['node-b'])] })), node: linux, want: 'AffinityMismatch' },
      { name: 'matchFields metadata.name NotIn matches', spec: spec(requiredAffinity({ matchFields: [expr('metadata.name', 'NotIn', ['node-b'])] })), node: linux, want: 'eligible' },
      { name: 'matchFields metadata.name NotIn excludes', spec: spec(requiredAffinity({ matchFields: [expr('metadata.name', 'NotIn', ['node-a'])] })), node: linux, want: 'AffinityMismatch' },
      { name: 'matchFields with two values is invalid', spec: spec(requiredAffinity({ matchFields: [expr('metadata.name', 'In', ['node-a', 'node-b'])] })), node: linux, want: 'AffinityMismatch' },
      { name: 'matchFields with Exists is invalid', spec: spec(requiredAffinity({ matchFields: [expr('metadata.name', 'Exists')] })), node: linux, want: 'AffinityMismatch' },
      {
        name: 'matchFields and matchExpressions in one term are ANDed',
        spec: spec(requiredAffinity({ matchExpressions: [expr('zone', 'Exists')], matchFields: [expr('metadata.name', 'In', ['node-a'])] })),
        node: linux,
        want: 'AffinityMismatch',
      },

      // OS and architecture
      { name: 'nodeSelector os matches', spec: spec({ nodeSelector: { 'kubernetes.io/os': 'linux' } }), node: linux, want: 'eligible' },
      { name: 'nodeSelector os differs', spec: spec({ nodeSelector: { 'kubernetes.io/os': 'windows' } }), node: linux, want: 'OSMismatch' },
      { name: 'nodeSelector arch differs', spec: spec({ nodeSelector: { 'kubernetes.io/arch': 'arm64' } }), node: linux, want: 'ArchMismatch' },
      { name: 'nodeSelector os on a node without os label', spec: spec({ nodeSelector: { 'kubernetes.io/os': 'linux' } }), node: makeNode({ labels: {} }), want: 'OSMismatch' },
      { name: 'nodeSelector arch on a node without arch label', spec: spec({ nodeSelector: { 'kubernetes.io/arch': 'amd64' } }), node: makeNode({ labels: { 'kubernetes.io/os': 'linux' } }), want: 'ArchMismatch' },
      {
        name: 'OS is reported before other selector mismatches',
        spec: spec({ nodeSelector: { disk: 'ssd', 'kubernetes.io/os': 'windows' } }),
        node: linux,
        want: 'OSMismatch',
      },
      { name: 'affinity os In on a node without os label', spec: spec(requiredAffinity({ matchExpressions: [expr('kubernetes.io/os', 'In', ['linux'])] })), node: makeNode({ labels: {} }), want: 'OSMismatch' },
      { name: 'affinity os NotIn on a node without os label', spec: spec(requiredAffinity({ matchExpressions: [expr('kubernetes.io/os', 'NotIn', ['windows'])] })), node: makeNode({ labels: {} }), want: 'eligible' },
      { name: 'affinity arch In differs', spec: spec(requiredAffinity({ matchExpressions: [expr('kubernetes.io/arch', 'In', ['arm64', 'riscv64'])] })), node: linux, want: 'ArchMismatch' },
      { name: 'affinity arch In matches', spec: spec(requiredAffinity({ matchExpressions: [expr('kubernetes.io/arch', 'In', ['arm64', 'amd64'])] })), node: linux, want: 'eligible' },
      {
        name: 'affinity: every term fails on os',
        spec: spec(requiredAffinity({ matchExpressions: [expr('kubernetes.io/os', 'In', ['windows'])] }, { matchExpressions: [expr('zone', 'Exists'), expr('kubernetes.io/os', 'In', ['darwin'])] })),
        node: linux,
        want: 'OSMismatch',
      },
      {
        name: 'affinity: one term fails on os, another on arch: a plain affinity mismatch',
        spec: spec(requiredAffinity({ matchExpressions: [expr('kubernetes.io/os', 'In', ['windows'])] }, { matchExpressions: [expr('kubernetes.io/arch', 'In', ['arm64'])] })),
        node: linux,
        want: 'AffinityMismatch',
      },
      { name: 'spec.os differs from the node os label', spec: spec({ os: { name: 'windows' } }), node: linux, want: 'OSMismatch' },
      { name: 'spec.os equals the node os label', spec: spec({ os: { name: 'linux' } }), node: linux, want: 'eligible' },
      { name: 'spec.os on a node without os label is allowed', spec: spec({ os: { name: 'windows' } }), node: makeNode({ labels: {} }), want: 'eligible' },

      // taints
      { name: 'untolerated NoSchedule taint', spec: spec(), node: makeNode({ taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }), want: 'UntoleratedTaint' },
      { name: 'untolerated NoExecute taint', spec: spec(), node: makeNode({ taints: [{ key: 'maintenance', effect: 'NoExecute' }] }), want: 'UntoleratedTaint' },
      { name: 'PreferNoSchedule taint is ignored', spec: spec(), node: makeNode({ taints: [{ key: 'soft', effect: 'PreferNoSchedule' }] }), want: 'eligible' },
      {
        name: 'NoExecute tolerated for a while still schedules',
        spec: spec({ tolerations: [{ key: 'maintenance', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }] }),
        node: makeNode({ taints: [{ key: 'maintenance', effect: 'NoExecute' }] }),
        want: 'eligible',
      },
      {
        name: 'empty-key Exists toleration tolerates every taint',
        spec: spec({ tolerations: [{ operator: 'Exists' }] }),
        node: makeNode({ taints: [{ key: 'a', effect: 'NoSchedule' }, { key: 'b', value: 'c', effect: 'NoExecute' }] }),
        want: 'eligible',
      },
      {
        name: 'toleration for one taint of two',
        spec: spec({ tolerations: [{ key: 'a', operator: 'Exists' }] }),
        node: makeNode({ taints: [{ key: 'a', effect: 'NoSchedule' }, { key: 'b', effect: 'NoSchedule' }] }),
        want: 'UntoleratedTaint',
      },
      {
        name: 'selector mismatch is reported before an untolerated taint',
        spec: spec({ nodeSelector: { disk: 'ssd' } }),
        node: makeNode({ taints: [{ key: 'a', effect: 'NoSchedule' }] }),
        want: 'NodeSelectorMismatch',
      },
      // Finding 22 (more in node-eligibility-resources.test.ts): what sources/ merges in from resources and the RuntimeClass.
      { name: 'extended resource the node has none of', spec: Object.assign(spec(), { extendedResources: ['nvidia.com/gpu'] }), node: linux, want: 'MissingExtendedResource' },
      { name: 'pods admission refuses (RuntimeClass)', spec: Object.assign(spec(), { rejection: 'RuntimeClass "kata" does not exist' }), node: linux, want: 'RuntimeClassRejected' },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(verdict(c.spec, c.node)).to.equal(c.want);
      });
    }

    it('every reason is exercised by the table above', () => {
      const seen = new Set(cases.map((c) => c.want));
      expect(ineligibilityReasons.filter((r) => !seen.has(r))).to.deep.equal([]);
    });

    it('explains the mismatch in the message', () => {
      const r = podCanRunOn(spec({ nodeSelector: { 'kubernetes.io/os': 'windows' } }), makeNode({ labels: {} }));
      expect(r).to.deep.equal({ eligible: false, reason: 'OSMismatch', message: 'nodeSelector kubernetes.io/os=windows: node has no kubernetes.io/os label' });
      const t = podCanRunOn(spec(), makeNode({ taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }));
      expect(t).to.deep.include({ message: 'taint dedicated=db:NoSchedule is not tolerated' });
      const a = podCanRunOn(spec(requiredAffinity({ matchExpressions: [expr('k', 'Gt', ['1.5'])] }, { matchExpressions: [expr('zone', 'Exists')] })), makeNode());
      expect(a.eligible ? '' : a.message).to.match(/^none of 2 required node affinity terms matches \(1 invalid/);
    });
  });

  describe('compilePodPlacement', () => {
    it('gives the same verdicts as podCanRunOn', () => {
      const s = spec({ nodeSelector: { disk: 'ssd' }, tolerations: [{ key: 'a', operator: 'Exists' }] });
      const placement = compilePodPlacement(s);
      const nodes = [
        makeNode({ extraLabels: { disk: 'ssd' } }),
        makeNode(),
        makeNode({ extraLabels: { disk: 'ssd' }, taints: [{ key: 'a', effect: 'NoSchedule' }] }),
        makeNode({ extraLabels: { disk: 'ssd' }, taints: [{ key: 'b', effect: 'NoSchedule' }] }),
      ];
      expect(nodes.map((n) => placementAllows(placement, n))).to.deep.equal(nodes.map((n) => podCanRunOn(s, n)));
      expect(nodes.map((n) => placementAllows(placement, n).eligible)).to.deep.equal([true, false, true, false]);
    });

    it('keys placements by what constrains nodes, not by container or map order', () => {
      const a = compilePodPlacement(spec({ nodeSelector: { x: '1', y: '2' } }));
      const reordered = podSpec({ containers: [{ name: 'other', image: 'other:1' }], nodeSelector: { y: '2', x: '1' } });
      expect(Object.keys(reordered.nodeSelector ?? {})).to.deep.equal(['y', 'x']);
      expect(a.key).to.equal(compilePodPlacement(reordered).key);
      expect(compilePodPlacement(spec()).key).to.equal(compilePodPlacement(spec({ tolerations: [] })).key);
    });

    it('gives different keys to placements that differ', () => {
      const keys = [
        spec(),
        spec({ nodeSelector: { x: '1' } }),
        spec({ nodeSelector: { x: '2' } }),
        spec({ tolerations: [{ key: 'a', operator: 'Exists' }] }),
        spec({ tolerations: [{ key: 'a', operator: 'Exists', effect: 'NoSchedule' }] }),
        spec(requiredAffinity({ matchExpressions: [expr('z', 'In', ['1'])] })),
        spec(requiredAffinity({ matchExpressions: [expr('z', 'NotIn', ['1'])] })),
        spec(requiredAffinity({ matchFields: [expr('metadata.name', 'In', ['1'])] })),
        spec({ nodeName: 'n' }),
        spec({ os: { name: 'linux' } }),
      ].map((s) => compilePodPlacement(s).key);
      expect(new Set(keys).size).to.equal(keys.length);
    });
  });

  describe('PrePullImage node targeting (compileNodeTargeting / targetingAllows)', () => {
    const terms = (...t: Plain<V1NodeSelectorTerm>[]) => ({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: t } } });
    const allows = (t: ReturnType<typeof compileNodeTargeting>, n: ReturnType<typeof makeNode>): Want => {
      if (t === undefined) throw new Error('targeting compiled to nothing');
      const r = targetingAllows(t, n);
      if (r.eligible) return 'eligible';
      expect(r.message).to.be.a('string').and.not.equal('');
      return r.reason;
    };

    it('constrains nothing when neither affinity nor tolerations are set', () => {
      expect(compileNodeTargeting({})).to.equal(undefined);
    });

    it('compares Gt and Lt as integers; a missing or non-integer label fails both', () => {
      const gt = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('cores', 'Gt', ['8'])] }) });
      const lt = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('cores', 'Lt', ['8'])] }) });
      expect(allows(gt, makeNode({ extraLabels: { cores: '16' } }))).to.equal('eligible');
      expect(allows(gt, makeNode({ extraLabels: { cores: '8' } }))).to.equal('AffinityMismatch');
      expect(allows(lt, makeNode({ extraLabels: { cores: '4' } }))).to.equal('eligible');
      expect(allows(lt, makeNode({ extraLabels: { cores: '-20' } }))).to.equal('eligible');
      expect(allows(lt, makeNode({ extraLabels: { cores: '8' } }))).to.equal('AffinityMismatch');
      expect(allows(gt, makeNode({ extraLabels: { cores: 'many' } }))).to.equal('AffinityMismatch');
      expect(allows(lt, makeNode())).to.equal('AffinityMismatch');
    });

    it('reads matchFields on metadata.name (In and NotIn)', () => {
      const only = compileNodeTargeting({ affinity: terms({ matchFields: [expr('metadata.name', 'In', ['node-b'])] }) });
      const not = compileNodeTargeting({ affinity: terms({ matchFields: [expr('metadata.name', 'NotIn', ['node-b'])] }) });
      expect(allows(only, makeNode({ name: 'node-b' }))).to.equal('eligible');
      expect(allows(only, makeNode({ name: 'node-c' }))).to.equal('AffinityMismatch');
      expect(allows(not, makeNode({ name: 'node-b' }))).to.equal('AffinityMismatch');
      expect(allows(not, makeNode({ name: 'node-c' }))).to.equal('eligible');
    });

    it('matches when any term matches, and all requirements of a term hold', () => {
      const t = compileNodeTargeting({
        affinity: terms(
          { matchExpressions: [expr('zone', 'In', ['a']), expr('disk', 'Exists')] },
          { matchExpressions: [expr('zone', 'In', ['b'])], matchFields: [expr('metadata.name', 'In', ['node-x'])] },
        ),
      });
      expect(allows(t, makeNode({ extraLabels: { zone: 'a', disk: 'ssd' } }))).to.equal('eligible');
      expect(allows(t, makeNode({ extraLabels: { zone: 'a' } }))).to.equal('AffinityMismatch');
      expect(allows(t, makeNode({ name: 'node-x', extraLabels: { zone: 'b' } }))).to.equal('eligible');
      expect(allows(t, makeNode({ name: 'node-y', extraLabels: { zone: 'b' } }))).to.equal('AffinityMismatch');
    });

    it('an invalid requirement never matches, other terms still count', () => {
      const t = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('cores', 'Gt', ['x'])] }, { matchExpressions: [expr('zone', 'In', ['a'])] }) });
      expect(allows(t, makeNode({ extraLabels: { cores: '9' } }))).to.equal('AffinityMismatch');
      expect(allows(t, makeNode({ extraLabels: { cores: '9', zone: 'a' } }))).to.equal('eligible');
    });

    it('ignores taints without tolerations; with tolerations, leaves out nodes whose NoSchedule/NoExecute taints they do not tolerate', () => {
      const tainted = makeNode({ taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] });
      const soft = makeNode({ taints: [{ key: 'spot', effect: 'PreferNoSchedule' }] });
      const evicting = makeNode({ taints: [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }] });
      const affinityOnly = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('kubernetes.io/os', 'In', ['linux'])] }) });
      expect(allows(affinityOnly, tainted)).to.equal('eligible');
      const gpu = compileNodeTargeting({ tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }] });
      expect(allows(gpu, tainted)).to.equal('eligible');
      expect(allows(gpu, soft)).to.equal('eligible');
      expect(allows(gpu, evicting)).to.equal('UntoleratedTaint');
      expect(allows(gpu, makeNode())).to.equal('eligible');
      const none = compileNodeTargeting({ tolerations: [] });
      expect(allows(none, tainted)).to.equal('UntoleratedTaint');
      expect(allows(none, makeNode())).to.equal('eligible');
      const all = compileNodeTargeting({ tolerations: [{ operator: 'Exists' }] });
      expect(allows(all, evicting)).to.equal('eligible');
    });

    it('checks affinity before taints', () => {
      const t = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('zone', 'In', ['a'])] }), tolerations: [] });
      expect(allows(t, makeNode({ taints: [{ key: 'x', effect: 'NoSchedule' }] }))).to.equal('AffinityMismatch');
    });

    it('keys targetings by content: equal content, equal key; tolerations absent differs from empty', () => {
      const a = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('zone', 'In', ['a'])] }) })!.key;
      const b = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('zone', 'In', ['a'])] }) })!.key;
      const c = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('zone', 'In', ['a'])] }), tolerations: [] })!.key;
      const d = compileNodeTargeting({ affinity: terms({ matchExpressions: [expr('zone', 'In', ['b'])] }) })!.key;
      expect(a).to.equal(b);
      expect(new Set([a, c, d]).size).to.equal(3);
    });
  });
});
