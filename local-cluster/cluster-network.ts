// The real-node cluster's address plan. Every address lives only inside namespaces the harness made (the
// cluster's, with the bridge, and one per node), so the ranges cannot clash with the machine's own networks.
//
//   bridge kwarm0 in the cluster namespace  10.250.0.0/24   control plane and registry forwarder at .1
//   node n (1, 2, ...) on the bridge        10.250.0.(10+n)
//   pods of node n                          10.244.n.0/24   (of CLUSTER_CIDR 10.244.0.0/16)
//   Services                                10.96.0.0/16    (the `kubernetes` Service is 10.96.0.1)

export const BRIDGE = 'kwarm0';
/** The cluster namespace's address on the bridge: API server, registry forwarder, the nodes' default gateway. */
export const CLUSTER_ADDRESS = '10.250.0.1';
export const BRIDGE_PREFIX = 24;
export const CLUSTER_CIDR = '10.244.0.0/16';
export const SERVICE_CIDR = '10.96.0.0/16';
/** The most nodes the plan has addresses for (10.250.0.11 to .254, and 10.244.1-244.0/24). */
export const MAX_NODES = 244;

/** A node's place in the plan: index 0 is the cluster's own namespace, nodes count from 1. */
export interface NodeSlot {
  name: string;
  index: number;
}

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index > MAX_NODES) throw new Error(`node index ${index} is outside 0..${MAX_NODES}`);
}

/** The address on the bridge: the cluster namespace's (index 0) or a node's. */
export function nodeAddress(slot: NodeSlot): string {
  checkIndex(slot.index);
  return slot.index === 0 ? CLUSTER_ADDRESS : `10.250.0.${10 + slot.index}`;
}

export function podSubnet(slot: NodeSlot): string {
  checkIndex(slot.index);
  if (slot.index === 0) throw new Error('the cluster namespace runs no pods');
  return `10.244.${slot.index}.0/24`;
}

export function nodeName(index: number): string {
  return `node-${index}`;
}

/** A route: pods of `to` are reached through `to`'s bridge address. */
export interface PodRoute {
  subnet: string;
  via: string;
}

/** The routes a namespace (the cluster's, index 0, or a node's) needs to reach every other node's pods. */
export function podRoutes(self: NodeSlot, nodes: readonly NodeSlot[]): PodRoute[] {
  return nodes.filter((n) => n.index !== self.index).map((n) => ({ subnet: podSubnet(n), via: nodeAddress(n) }));
}
