// Applies one warm-up barrier decision to a Node, touching nothing else: kwarm's own taint is removed with
// a JSON patch that first tests the taint list it was computed from (a taint added or removed meanwhile
// fails the patch instead of being lost), the ImagesWarm condition is merged into nodes/status by its type
// (the kubelet's conditions stay as they are), and the Event is recorded on the Node. No request when the
// decision changes nothing. The chart's admission policy allows kwarm exactly these two Node writes.
import type { KubeClient } from '../../lib/kube-client.ts';
import { controllerEvent, metaTime } from '../write/api-objects.ts';
import type { BarrierDecision, NodeTaint, WarmupNodeView } from './barrier-decision.ts';

export const nodePaths = {
  nodes: '/api/v1/nodes',
  node: (name: string) => `/api/v1/nodes/${name}`,
  nodeStatus: (name: string) => `/api/v1/nodes/${name}/status`,
  // Events about cluster-scoped objects live in the default namespace, where the kubelet records its own.
  events: '/api/v1/namespaces/default/events',
} as const;

export interface NodeWriterOptions {
  readonly client: KubeClient;
  /** reportingInstance of the Events (the controller's identity). */
  readonly instance: string;
  readonly taintKey: string;
}

/** What was written, for logs and tests. */
export interface BarrierWrites {
  readonly condition: boolean;
  readonly taint: boolean;
  readonly event: boolean;
}

function taintJson(t: NodeTaint): Record<string, string> {
  return { key: t.key, effect: t.effect, ...(t.value !== undefined ? { value: t.value } : {}), ...(t.timeAdded !== undefined ? { timeAdded: t.timeAdded } : {}) };
}

/**
 * The JSON patch removing every taint with `taintKey` from `taints` (the list as last seen), or undefined
 * when there is none. Pure.
 */
export function taintRemovalPatch(taints: readonly NodeTaint[], taintKey: string): unknown[] | undefined {
  const rest = taints.filter((t) => t.key !== taintKey);
  if (rest.length === taints.length) return undefined;
  return [
    { op: 'test', path: '/spec/taints', value: taints.map(taintJson) },
    { op: 'replace', path: '/spec/taints', value: rest.map(taintJson) },
  ];
}

export class NodeWriter {
  readonly #o: NodeWriterOptions;

  constructor(opts: NodeWriterOptions) {
    this.#o = opts;
  }

  /** Writes what `decision` asks of `node` (as seen when deciding), condition first, then the taint, then the Event. */
  async apply(node: WarmupNodeView, decision: BarrierDecision, now: Date, signal: AbortSignal): Promise<BarrierWrites> {
    const { client, taintKey } = this.#o;
    let condition = false;
    let taint = false;
    let event = false;
    if (decision.condition !== undefined) {
      const c = decision.condition;
      const body = {
        status: {
          conditions: [{
            type: c.type, status: c.status, reason: c.reason, message: c.message,
            lastTransitionTime: c.lastTransitionTime, lastHeartbeatTime: metaTime(now),
          }],
        },
      };
      await client.patch(nodePaths.nodeStatus(node.name), 'strategic', body, signal);
      condition = true;
    }
    if (decision.removeTaint) {
      const patch = taintRemovalPatch(node.taints, taintKey);
      if (patch !== undefined) {
        await client.patch(nodePaths.node(node.name), 'json', patch, signal);
        taint = true;
      }
    }
    if (decision.event !== undefined) {
      await client.create(nodePaths.events, nodeEventBody(node.name, decision.event, metaTime(now), this.#o.instance), signal);
      event = true;
    }
    return { condition, taint, event };
  }
}

/**
 * A core/v1 Event about a Node. involvedObject.uid is the node's name, as the kubelet sets it, because that
 * is what `kubectl describe node` looks for.
 */
export function nodeEventBody(nodeName: string, ev: NonNullable<BarrierDecision['event']>, now: string, instance: string): unknown {
  return controllerEvent(nodeName, 'default', { apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeName }, ev, now, instance);
}
