// What the warm-up barrier keeps of Nodes and NodeImageSets, projected from the raw API objects once at the
// edge; and the Node as the planner should see it while it warms. Pure: no I/O.
import { IMAGES_WARM_CONDITION, NODE_PULL_PHASES, type NodePullPhase } from '../../api/v1alpha1/index.ts';
import { field, list, str } from '../../lib/raw.ts';
import { isNodeReady, type NodeView } from '../plan/node-eligibility.ts';
import { warmsWithoutTaint, type GatingEntry, type ImageProgress, type NodeConditionView, type NodeTaint, type WarmupImageSetView, type WarmupNodeView } from './barrier-decision.ts';

function taintOf(v: unknown): NodeTaint | undefined {
  const key = str(field(v, 'key'));
  const effect = str(field(v, 'effect'));
  if (key === undefined || effect === undefined) return undefined;
  const value = str(field(v, 'value'));
  const timeAdded = str(field(v, 'timeAdded'));
  return { key, effect, ...(value !== undefined ? { value } : {}), ...(timeAdded !== undefined ? { timeAdded } : {}) };
}

function conditionOf(v: unknown): NodeConditionView | undefined {
  const status = str(field(v, 'status'));
  if (status === undefined) return undefined;
  return {
    status,
    reason: str(field(v, 'reason')) ?? '',
    message: str(field(v, 'message')) ?? '',
    lastTransitionTime: str(field(v, 'lastTransitionTime')),
  };
}

/** Name, uid, creation time, taints, Ready and ImagesWarm; undefined when the object has no name, uid or creation time. */
export function decodeWarmupNode(raw: unknown): WarmupNodeView | undefined {
  const name = str(field(raw, 'metadata', 'name'));
  const uid = str(field(raw, 'metadata', 'uid'));
  const createdAt = str(field(raw, 'metadata', 'creationTimestamp'));
  if (name === undefined || uid === undefined || createdAt === undefined) return undefined;
  const conditions = field(raw, 'status', 'conditions');
  const all = Array.isArray(conditions) ? (conditions as unknown[]) : [];
  // The first condition of a type counts, as in the Kubernetes helpers.
  const ready = all.find((c) => field(c, 'type') === 'Ready');
  const warm = all.find((c) => field(c, 'type') === IMAGES_WARM_CONDITION);
  return {
    name, uid, createdAt,
    taints: list(field(raw, 'spec', 'taints'), taintOf),
    ready: field(ready, 'status') === 'True',
    imagesWarm: warm === undefined ? undefined : conditionOf(warm),
  };
}

function isPhase(v: unknown): v is NodePullPhase {
  return typeof v === 'string' && (NODE_PULL_PHASES as readonly string[]).includes(v);
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
}

/**
 * The NodeImageSet's owner, gating count, gating entries, their phases and the agent's heartbeat; undefined
 * when the object has no name. Status entries of images that do not gate are not kept.
 */
export function decodeWarmupImageSet(raw: unknown): WarmupImageSetView | undefined {
  if (str(field(raw, 'metadata', 'name')) === undefined) return undefined;
  const owners = field(raw, 'metadata', 'ownerReferences');
  const owner = Array.isArray(owners) ? (owners as unknown[]).find((o) => field(o, 'kind') === 'Node' && field(o, 'apiVersion') === 'v1') : undefined;
  const gating = list(field(raw, 'spec', 'images'), (e): GatingEntry | undefined => {
    const image = str(field(e, 'image'));
    return image !== undefined && field(e, 'gatesNode') === true ? { image, round: count(field(e, 'round')) ?? 0 } : undefined;
  });
  const wanted = new Set(gating.map((g) => g.image));
  const progress = new Map<string, ImageProgress>();
  for (const e of list(field(raw, 'status', 'images'), (x) => x)) {
    const image = str(field(e, 'image'));
    const phase = field(e, 'phase');
    if (image !== undefined && wanted.has(image) && isPhase(phase)) progress.set(image, { phase, round: count(field(e, 'round')) ?? 0 });
  }
  return {
    ownerUid: str(field(owner, 'uid')),
    gatingImages: count(field(raw, 'spec', 'gatingImages')) ?? 0,
    gating,
    progress,
    heartbeatTime: str(field(raw, 'status', 'heartbeatTime')),
  };
}

const plannerViews = new WeakMap<NodeView, NodeView>();

/**
 * warmsWithoutTaint for the planner's Node (--warmup-condition-on-new-nodes): such a node, like a tainted one,
 * gets a NodeImageSet even with nothing to pull, so the barrier can set its condition True at once instead of
 * at the timeout (`windowMs`).
 */
export function nodeWarmsWithoutTaint(node: NodeView, nowMs: number, windowMs: number): boolean {
  const warm = node.status?.conditions?.find((c) => c.type === IMAGES_WARM_CONDITION)?.status;
  return warmsWithoutTaint(warm, node.metadata?.createdAt, nowMs, windowMs);
}

/**
 * The node lifecycle controller's taints on a node that has not reported Ready (NoSchedule, and NoExecute which
 * pods tolerate for 300 s through the DefaultTolerationSeconds admission plugin, not through their template);
 * removed once it has.
 */
const NOT_READY_TAINTS: ReadonlySet<string> = new Set(['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']);
/** The kubelet's taint (with an external cloud provider) until the cloud controller manager initializes the node. */
const UNINITIALIZED_TAINT = 'node.cloudprovider.kubernetes.io/uninitialized';

/**
 * The Node as the planner should see it: without kwarm's warm-up taint, which no workload tolerates and
 * which must not keep the node's images away from it. A joining node reports Ready a moment before the node
 * lifecycle controller removes its not-ready taints; planned with those taints, a warming node would
 * get an empty NodeImageSet and be released at once (seen on real kubelets), so a Ready warming node is also
 * seen without it; likewise without the cloud provider's start-up taint, which goes away on its own. The same object when the node has no warm-up taint, and the same projection for the same
 * Node object, so the planner's identity-keyed memo keeps working.
 */
export function withoutWarmupTaint(node: NodeView, taintKey: string): NodeView {
  const taints = node.spec?.taints;
  if (taints === undefined || !taints.some((t) => t.key === taintKey)) return node;
  let view = plannerViews.get(node);
  if (view === undefined) {
    const ready = isNodeReady(node);
    const rest = taints.filter((t) => t.key !== taintKey && t.key !== UNINITIALIZED_TAINT && !(ready && NOT_READY_TAINTS.has(t.key)));
    const { taints: _dropped, ...spec } = node.spec ?? {};
    view = { ...node, spec: rest.length > 0 ? { ...spec, taints: rest } : spec };
    plannerViews.set(node, view);
  }
  return view;
}
