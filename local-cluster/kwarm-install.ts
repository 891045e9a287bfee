// kwarm installed on the real-node cluster the way the README tells users to: `helm install kwarm ./charts/kwarm
// -n kwarm-system --create-namespace`, or `kubectl apply -k` of an overlay on deploy/default, in both cases with
// the images built from this repository (kwarm-images.ts) instead of the published ones. Ready means what a
// user sees: the controller Deployment and one agent pod per node Ready through their own probes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { helm } from './helm.ts';
import { KWARM_NAMESPACE } from './kwarm-access.ts';
import { pushKwarmImages, REPO_ROOT } from './kwarm-images.ts';
import type { RealCluster } from './real-cluster.ts';
import { makeTempDir, removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export const RELEASE = 'kwarm';
export const CONTROLLER_DEPLOYMENT = 'kwarm-controller';
export const AGENT_DAEMONSET = 'kwarm-agent';
/** The chart's published image names (values.yaml), which an install points elsewhere. */
const PUBLISHED = { agent: 'ghcr.io/kwarm/kwarm-agent', controller: 'ghcr.io/kwarm/kwarm-controller' };

export interface KwarmImageRefs {
  /** Repository and tag as the nodes pull them, e.g. 10.250.0.1:5000/kwarm/kwarm-agent and dev-<hash>. */
  agent: { repository: string; tag: string };
  controller: { repository: string; tag: string };
}

export interface KwarmInstallation {
  readonly method: 'helm' | 'kustomize';
  readonly namespace: string;
  readonly images: KwarmImageRefs;
  /** helm uninstall / kubectl delete -k, and waits until kwarm's pods are gone (CRDs stay, as for users). */
  uninstall(): Promise<void>;
}

/** Builds (or takes from the cache) both images, pushes them to the cluster's registry and names them as nodes see them. */
export async function kwarmImagesOnCluster(cluster: RealCluster, signal?: AbortSignal): Promise<KwarmImageRefs> {
  const pushed = await pushKwarmImages(cluster.registry, signal);
  const ref = (p: { reference: string; tag: string }): { repository: string; tag: string } => {
    const onNodes = cluster.nodeImage(p.reference);
    return { repository: onNodes.slice(0, onNodes.length - p.tag.length - 1), tag: p.tag };
  };
  return { agent: ref(pushed.agent), controller: ref(pushed.controller) };
}

export interface HelmInstallOptions {
  /** Further `--set` values, e.g. { 'agent.verifyInterval': '10s' }. */
  set?: Readonly<Record<string, string | number | boolean>>;
}

/** The README's `helm install kwarm ./charts/kwarm -n kwarm-system --create-namespace`, images set to ours. */
export async function helmInstallKwarm(cluster: RealCluster, opts: HelmInstallOptions = {}): Promise<KwarmInstallation> {
  const images = await kwarmImagesOnCluster(cluster);
  const set: Record<string, string | number | boolean> = {
    'controller.image.repository': images.controller.repository,
    'controller.image.tag': images.controller.tag,
    'agent.image.repository': images.agent.repository,
    'agent.image.tag': images.agent.tag,
    ...opts.set,
  };
  await helm(['install', RELEASE, join(REPO_ROOT, 'charts', 'kwarm'), '-n', KWARM_NAMESPACE, '--create-namespace',
    ...Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${String(v)}`])], { cp: cluster.controlPlane });
  return {
    method: 'helm',
    namespace: KWARM_NAMESPACE,
    images,
    async uninstall() {
      await helm(['uninstall', RELEASE, '-n', KWARM_NAMESPACE, '--wait', '--timeout=120s'], { cp: cluster.controlPlane });
      await waitNoKwarmPods(cluster);
    },
  };
}

/** The kustomization of an overlay on deploy/default that swaps the published images for ours. */
export function kustomizeOverlay(base: string, images: KwarmImageRefs): string {
  return `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${base}
images:
  - name: ${PUBLISHED.controller}
    newName: ${images.controller.repository}
    newTag: ${images.controller.tag}
  - name: ${PUBLISHED.agent}
    newName: ${images.agent.repository}
    newTag: ${images.agent.tag}
`;
}

/** `kubectl apply -k` of an overlay on deploy/default with our images (the README's way to change them). */
export async function kustomizeInstallKwarm(cluster: RealCluster): Promise<KwarmInstallation> {
  const images = await kwarmImagesOnCluster(cluster);
  const overlay = makeTempDir('kwarm-overlay');
  try {
    mkdirSync(overlay, { recursive: true });
    // kustomize takes bases by relative path only.
    writeFileSync(join(overlay, 'kustomization.yaml'), kustomizeOverlay(relative(overlay, join(REPO_ROOT, 'deploy', 'default')), images));
    await cluster.kubectl(['apply', '--server-side', '-k', overlay]);
  } catch (err) {
    removeDir(overlay);
    throw err;
  }
  return {
    method: 'kustomize',
    namespace: KWARM_NAMESPACE,
    images,
    async uninstall() {
      try {
        // The CRDs stay, as after helm uninstall: deleting them would delete every kwarm object with them.
        await cluster.kubectl(['delete', '-f', join(REPO_ROOT, 'deploy', 'default', 'kwarm.yaml'), '--ignore-not-found', '--wait=true', '--timeout=120s']);
        await cluster.kubectl(['delete', 'namespace', KWARM_NAMESPACE, '--ignore-not-found', '--wait=true', '--timeout=120s']);
        await waitNoKwarmPods(cluster);
      } finally {
        removeDir(overlay);
      }
    },
  };
}

interface Condition { type?: string; status?: string; reason?: string; message?: string }
interface PodJson {
  metadata?: { name?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string; containers?: { image?: string }[] };
  status?: { phase?: string; conditions?: Condition[]; containerStatuses?: { ready?: boolean; restartCount?: number; state?: Record<string, { reason?: string; message?: string } | undefined> }[] };
}

/** kwarm's pods in its namespace. */
export async function kwarmPods(cluster: RealCluster, component?: 'agent' | 'controller'): Promise<PodJson[]> {
  const selector = `app.kubernetes.io/name=kwarm${component === undefined ? '' : `,app.kubernetes.io/component=${component}`}`;
  const { stdout } = await cluster.kubectl(['get', 'pods', '-n', KWARM_NAMESPACE, '-l', selector, '-o', 'json'], { allowFailure: true });
  if (stdout.trim() === '') return [];
  return (JSON.parse(stdout) as { items?: PodJson[] }).items ?? [];
}

export function podReady(p: PodJson): boolean {
  return p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** One line per pod: node, phase, readiness, restarts, waiting reason. */
export function describePods(pods: readonly PodJson[]): string {
  return pods.map((p) => {
    const cs = p.status?.containerStatuses?.[0];
    const waiting = Object.entries(cs?.state ?? {}).map(([k, v]) => `${k}${v?.reason !== undefined ? `:${v.reason}` : ''}${v?.message !== undefined ? ` ${v.message.slice(0, 200)}` : ''}`).join(',');
    return `${p.metadata?.name ?? '?'} on ${p.spec?.nodeName ?? '-'}: ${p.status?.phase ?? '?'} ready=${String(podReady(p))} restarts=${cs?.restartCount ?? 0} ${waiting}`;
  }).join('\n') || '(no pods)';
}

/** The last log lines of each kwarm pod (previous container too, when it restarted), for failure messages. */
export async function kwarmLogs(cluster: RealCluster, lines = 20): Promise<string> {
  const out: string[] = [];
  for (const p of await kwarmPods(cluster)) {
    const name = p.metadata?.name ?? '';
    for (const previous of [false, true]) {
      const r = await cluster.kubectl(['logs', '-n', KWARM_NAMESPACE, name, `--tail=${lines}`, ...(previous ? ['--previous'] : [])], { allowFailure: true });
      if (r.code === 0 && r.stdout.trim() !== '') out.push(`--- ${name}${previous ? ' (previous)' : ''} ---\n${r.stdout.trim()}`);
    }
  }
  return out.join('\n');
}

/**
 * Waits until the controller Deployment's pods and one agent pod on every node of the cluster are Ready through
 * their probes, running the images of `images`; the error says which pods are not, with their logs.
 */
export async function waitKwarmReady(cluster: RealCluster, images: KwarmImageRefs, timeoutMs = 180_000): Promise<{ agents: PodJson[]; controllers: PodJson[] }> {
  const agentImage = `${images.agent.repository}:${images.agent.tag}`;
  const controllerImage = `${images.controller.repository}:${images.controller.tag}`;
  let last: PodJson[] = [];
  try {
    return await waitFor(async () => {
      last = await kwarmPods(cluster);
      // A pod being deleted stays listed (and may still be Ready) for its grace period: it does not count, so a
      // wait after deleting a pod returns once its replacement is Ready.
      const live = last.filter((p) => p.metadata?.deletionTimestamp === undefined);
      const agents = live.filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'agent');
      const controllers = live.filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'controller');
      const nodes = cluster.nodes.map((n) => n.name).sort();
      const agentNodes = agents.filter(podReady).filter((p) => p.spec?.containers?.[0]?.image === agentImage).map((p) => p.spec?.nodeName ?? '').sort();
      const ok = JSON.stringify(agentNodes) === JSON.stringify(nodes) && agents.length === nodes.length
        && controllers.length > 0 && controllers.every((p) => podReady(p) && p.spec?.containers?.[0]?.image === controllerImage);
      return ok ? { agents, controllers } : undefined;
    }, { what: `kwarm's controller and ${cluster.nodes.length} agents Ready`, timeoutMs, intervalMs: 1000 });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${describePods(last)}\n${await kwarmLogs(cluster)}`);
  }
}

/**
 * Waits until one of `controllers` holds the controller's Lease: the planner and the warm-up barrier run only
 * on the leader, and a Lease an earlier install left behind lasts until it expires.
 */
export async function waitKwarmLeader(cluster: RealCluster, controllers: readonly PodJson[], timeoutMs = 60_000): Promise<void> {
  const names = controllers.map((p) => p.metadata?.name ?? '').filter((n) => n !== '');
  await waitFor(async () => {
    const { stdout } = await cluster.kubectl(['get', 'lease', 'kwarm-controller', '-n', KWARM_NAMESPACE, '-o', 'jsonpath={.spec.holderIdentity}'], { allowFailure: true });
    // The controller's identity is its hostname (the pod's name), '_' and a random suffix.
    return names.some((n) => stdout.startsWith(`${n}_`));
  }, { what: `one of ${names.join(', ')} to hold the kwarm-controller Lease`, timeoutMs, intervalMs: 500 });
}

async function waitNoKwarmPods(cluster: RealCluster): Promise<void> {
  await waitFor(async () => (await kwarmPods(cluster)).length === 0, { what: 'kwarm\'s pods gone', timeoutMs: 120_000, intervalMs: 1000 });
}
