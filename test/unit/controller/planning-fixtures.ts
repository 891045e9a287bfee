// Builders for the planning tests: policies and PrePullImages decoded with the API's own decoder (so
// defaults are filled in as the API server would), workloads and nodes through the informers' decoders.
import { decode } from '../../../api/schema.ts';
import { prePullImageSchema, prePullPolicySchema, type PrePullImage, type PrePullPolicy } from '../../../api/v1alpha1/index.ts';
import { decodeNode, workloadDecoder } from '../../../controller/sources/decode.ts';
import type { WorkloadView } from '../../../controller/derive/desired-images.ts';
import type { NodeView } from '../../../controller/plan/node-eligibility.ts';
import type { NodeImageSetView, NodeImageStatusView } from '../../../controller/plan/node-image-set-view.ts';
import type { BuiltinWorkloadKind } from '../../../controller/derive/workload-images.ts';

export function policy(name: string, spec: Record<string, unknown>, generation = 1): PrePullPolicy {
  const r = decode(prePullPolicySchema, { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name, generation }, spec });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

export function prePullImage(namespace: string, name: string, spec: Record<string, unknown>, generation = 1): PrePullImage {
  const r = decode(prePullImageSchema, { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { namespace, name, generation, uid: `uid-${name}` }, spec });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

export interface WorkloadFixture {
  kind?: BuiltinWorkloadKind;
  namespace?: string;
  name: string;
  labels?: Record<string, string>;
  podSpec: Record<string, unknown>;
}

export function workload(f: WorkloadFixture): WorkloadView {
  const kind = f.kind ?? 'Deployment';
  const template = { metadata: { labels: { app: f.name } }, spec: f.podSpec };
  const spec = kind === 'CronJob' ? { schedule: '* * * * *', jobTemplate: { spec: { template } } } : { template };
  const raw = {
    metadata: { namespace: f.namespace ?? 'shop', name: f.name, uid: `uid-${f.name}`, labels: f.labels ?? { 'kwarm.io/enabled': 'true' }, managedFields: [{ manager: 'x' }] },
    spec,
  };
  const w = workloadDecoder(kind)(raw);
  if (w === undefined) throw new Error('workload did not decode');
  return w;
}

export interface NodeFixture {
  name: string;
  labels?: Record<string, string>;
  ready?: boolean;
  unschedulable?: boolean;
  taints?: { key: string; value?: string; effect: string }[];
}

export function node(f: NodeFixture): NodeView {
  const n = decodeNode({
    metadata: { name: f.name, uid: `uid-${f.name}`, labels: { 'kubernetes.io/os': 'linux', ...f.labels } },
    spec: { ...(f.unschedulable === true ? { unschedulable: true } : {}), ...(f.taints !== undefined ? { taints: f.taints } : {}) },
    status: { conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status: f.ready === false ? 'False' : 'True' }] },
  });
  if (n === undefined) throw new Error('node did not decode');
  return n;
}

/** A NodeImageSet view as the cache would hold it: released entries and the agent's status. */
export function nodeImageSetView(
  name: string,
  released: Record<string, number>,
  status: Record<string, Partial<NodeImageStatusView> & Pick<NodeImageStatusView, 'phase'>> = {},
): NodeImageSetView {
  return {
    name,
    generation: 1,
    ownerUid: `uid-${name}`,
    specDigest: 'unknown',
    released: new Map(Object.entries(released)),
    status: new Map(Object.entries(status).map(([image, s]) => [image, { round: 0, ...s }])),
  };
}
