// Shared by the controller tests, the demo and the benchmarks: Node objects without kubelets, a stand-in for the
// agents' status writes, and readers for the kwarm objects.
import { decode } from '../api/schema.ts';
import { nodeImageSetSchema, prePullImageSchema, prePullPolicySchema, type NodeImageSet, type NodeImageStatus, type PrePullImage, type PrePullPolicy } from '../api/v1alpha1/index.ts';
import type { KubeClient } from '../lib/kube-client.ts';

const KWARM = '/apis/kwarm.io/v1alpha1';

export interface NodeSpecFixture {
  name: string;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: string }[];
  unschedulable?: boolean;
  ready?: boolean;
}

/** Creates a Node and sets its Ready condition through the status subresource, as a kubelet would. */
export async function createNode(client: KubeClient, n: NodeSpecFixture, signal: AbortSignal): Promise<void> {
  await client.create('/api/v1/nodes', {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': n.name, ...n.labels } },
    spec: { ...(n.taints !== undefined ? { taints: n.taints } : {}), ...(n.unschedulable === true ? { unschedulable: true } : {}) },
  }, signal);
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  await client.patch(`/api/v1/nodes/${n.name}/status`, 'merge', {
    status: { conditions: [{ type: 'Ready', status: n.ready === false ? 'False' : 'True', reason: 'KubeletReady', message: 'test node', lastHeartbeatTime: now, lastTransitionTime: now }] },
  }, signal);
  // The API server's NodeTaint admission adds node.kubernetes.io/not-ready on create; with no node
  // lifecycle controller running, take it off as that controller would once the node is Ready.
  await client.patch(`/api/v1/nodes/${n.name}`, 'merge', { spec: { taints: n.taints ?? null } }, signal);
}

export async function deleteNodes(client: KubeClient, names: readonly string[], signal: AbortSignal): Promise<void> {
  for (const n of names) await client.delete(`/api/v1/nodes/${n}`, signal);
}

export async function getNodeImageSet(client: KubeClient, node: string, signal: AbortSignal): Promise<NodeImageSet | undefined> {
  const raw = await client.getOptional(`${KWARM}/nodeimagesets/${node}`, signal);
  if (raw === undefined) return undefined;
  const r = decode(nodeImageSetSchema, raw);
  if (!r.ok) throw new Error(`NodeImageSet ${node} does not decode: ${r.errors.join('; ')}`);
  return r.value;
}

export async function listNodeImageSets(client: KubeClient, signal: AbortSignal): Promise<NodeImageSet[]> {
  const page = await client.list(`${KWARM}/nodeimagesets`, {}, signal);
  return page.items.flatMap((raw) => {
    const r = decode(nodeImageSetSchema, raw);
    return r.ok ? [r.value] : [];
  });
}

export async function getPrePullImage(client: KubeClient, namespace: string, name: string, signal: AbortSignal): Promise<PrePullImage | undefined> {
  const raw = await client.getOptional(`${KWARM}/namespaces/${namespace}/prepullimages/${name}`, signal);
  if (raw === undefined) return undefined;
  const r = decode(prePullImageSchema, raw);
  if (!r.ok) throw new Error(`PrePullImage ${namespace}/${name} does not decode: ${r.errors.join('; ')}`);
  return r.value;
}

export async function getPolicy(client: KubeClient, name: string, signal: AbortSignal): Promise<PrePullPolicy | undefined> {
  const raw = await client.getOptional(`${KWARM}/prepullpolicies/${name}`, signal);
  if (raw === undefined) return undefined;
  const r = decode(prePullPolicySchema, raw);
  if (!r.ok) throw new Error(`PrePullPolicy ${name} does not decode: ${r.errors.join('; ')}`);
  return r.value;
}

/**
 * Plays the node's agent: sets the status of the given images (those in spec, for their current round)
 * through the status subresource, keeping the other entries.
 */
export async function reportImages(
  client: KubeClient,
  node: string,
  phases: Record<string, NodeImageStatus['phase']>,
  signal: AbortSignal,
): Promise<void> {
  const nis = await getNodeImageSet(client, node, signal);
  if (nis === undefined) throw new Error(`no NodeImageSet ${node}`);
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const byImage = new Map((nis.status?.images ?? []).map((s) => [s.image, s]));
  for (const e of nis.spec.images) {
    const phase = phases[e.image];
    if (phase === undefined) continue;
    byImage.set(e.image, {
      image: e.image, phase, round: e.round, attempts: 1, startedAt: now,
      ...(phase === 'Completed' || phase === 'Failed' ? { finishedAt: now } : {}),
      ...(phase === 'Failed' ? { reason: 'ImageNotFound', message: 'manifest unknown' } : {}),
    });
  }
  const images = [...byImage.values()].filter((s) => nis.spec.images.some((e) => e.image === s.image));
  await client.patch(`${KWARM}/nodeimagesets/${node}/status`, 'merge', {
    status: {
      images,
      desired: nis.spec.images.length,
      ready: images.filter((s) => s.phase === 'Completed').length,
      pulling: images.filter((s) => s.phase === 'Pulling').length,
      failed: images.filter((s) => s.phase === 'Failed').length,
    },
  }, signal);
}

/** Images in a node's NodeImageSet spec (empty when it has none). */
export async function specImages(client: KubeClient, node: string, signal: AbortSignal): Promise<string[]> {
  return (await getNodeImageSet(client, node, signal))?.spec.images.map((e) => e.image) ?? [];
}

/** A Deployment manifest labelled for the basic policy, pinned to nodes carrying `pool`. */
export function deployment(namespace: string, name: string, image: string, opts: { pool: string; imagePullSecrets?: string[]; serviceAccountName?: string; tolerations?: unknown[] }): unknown {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { namespace, name, labels: { app: name, 'kwarm.io/enabled': 'true' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeSelector: { 'kwarm-test/pool': opts.pool },
          containers: [{ name: 'app', image }],
          ...(opts.imagePullSecrets !== undefined ? { imagePullSecrets: opts.imagePullSecrets.map((n) => ({ name: n })) } : {}),
          ...(opts.serviceAccountName !== undefined ? { serviceAccountName: opts.serviceAccountName } : {}),
          ...(opts.tolerations !== undefined ? { tolerations: opts.tolerations } : {}),
        },
      },
    },
  };
}

export interface AuditWrite {
  verb: string;
  user: string;
  resource: string;
  subresource: string | undefined;
  namespace: string | undefined;
  name: string | undefined;
  code: number | undefined;
}

/** Write requests recorded in the API server's audit log (one entry per completed request). */
export function auditWrites(auditLog: string): AuditWrite[] {
  return auditLog.split('\n').flatMap((line): AuditWrite[] => {
    if (line.trim() === '') return [];
    const e = JSON.parse(line) as {
      stage?: string; verb?: string; user?: { username?: string };
      objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
      responseStatus?: { code?: number };
    };
    if (e.stage !== 'ResponseComplete') return [];
    return [{
      verb: e.verb ?? '', user: e.user?.username ?? '', resource: e.objectRef?.resource ?? '', subresource: e.objectRef?.subresource,
      namespace: e.objectRef?.namespace, name: e.objectRef?.name, code: e.responseStatus?.code,
    }];
  });
}
