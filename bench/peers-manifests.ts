// The peers' pre-pulling mechanisms as plain Kubernetes objects, in the shape their documentation and
// manifests describe (their code is not run), plus the kubelet-alone reference and kwarm's static-list
// policy. Pure: objects in, objects out, no I/O.
//
// - kube-fledged: one Job per (node, image), pinned to the node, backoffLimit 0, the target image as the
//   container with a command copied in by an init container (a static busybox) so images without a shell
//   work; created all at once; deleted when finished (its default --job-retention-policy=delete).
// - kubernetes-image-puller: one DaemonSet whose pod has one container per image, each running a static
//   sleep binary copied in by an init container, with the puller's default per-container requests (50m CPU,
//   10Mi) and limits (200m, 20Mi) from CACHING_CPU_* / CACHING_MEMORY_*.
// - kubelet alone: a Deployment with one pod per node running every image (what a workload does when
//   nothing pre-pulls).
// - kwarm: a PrePullPolicy listing the images (spec.images), all nodes.

/** The label every object of a benchmark cell carries, so it can be listed and deleted at once. */
export const CELL_LABEL = 'bench.kwarm.io/cell';

export const APPROACHES = ['jobs', 'daemonset', 'kubelet', 'kwarm'] as const;
export type Approach = (typeof APPROACHES)[number];

export const APPROACH_LABELS: Readonly<Record<Approach, string>> = {
  jobs: 'Job per (node, image), as kube-fledged',
  daemonset: 'DaemonSet of sleeping containers, as kubernetes-image-puller',
  kubelet: 'kubelet alone (a Deployment, no pre-pulling)',
  kwarm: 'kwarm (chart, PrePullPolicy spec.images)',
};

/** What each must do when an image changes (from their documentation; kwarm's from its README). */
export const ON_IMAGE_CHANGE: Readonly<Record<Approach, string>> = {
  jobs: 'edit the ImageCache; the controller creates one new Job (and Pod) per (node, image) again, and re-pulls every image every --image-cache-refresh-frequency (15m) by Jobs too',
  daemonset: 'edit IMAGES in the ConfigMap; the puller re-creates the DaemonSet (checked every CACHING_INTERVAL_HOURS), a rolling replacement of one pod per node whose sleeping containers hold their requests for good',
  kubelet: 'nothing ahead of time: each node pulls when the first pod needing the new image lands there, and that pod waits',
  kwarm: 'nothing for workload images (the PrePullImage follows the Deployment); for a static list, edit spec.images: each NodeImageSet is patched in place, no Pod or Job is created',
};

/** The puller's defaults per cached image (CACHING_CPU_REQUEST, CACHING_MEMORY_REQUEST, and the limits). */
export const PULLER_REQUESTS = { cpu: '50m', memory: '10Mi' } as const;
export const PULLER_LIMITS = { cpu: '200m', memory: '20Mi' } as const;

export interface CellSpec {
  /** A DNS label naming this cell's objects (e.g. "jobs-8-r2"). */
  cell: string;
  namespace: string;
  /** The images as the nodes pull them. */
  images: readonly string[];
  nodes: readonly string[];
  /** An image holding a static busybox at /bin/busybox (the tool image each peer copies its binary from). */
  busybox: string;
}

type Obj = Record<string, unknown>;

const TOOL_VOLUME = 'tool-bin';

function toolInit(busybox: string, mount: string): Obj {
  return {
    name: 'copy-tool',
    image: busybox,
    imagePullPolicy: 'IfNotPresent',
    command: ['/bin/busybox', 'cp', '/bin/busybox', `${mount}/busybox`],
    volumeMounts: [{ name: TOOL_VOLUME, mountPath: mount }],
  };
}

function labels(spec: CellSpec, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { [CELL_LABEL]: spec.cell, ...extra };
}

/** kube-fledged: one Job per (node, image), in node-major order. */
export function fledgedJobs(spec: CellSpec): Obj[] {
  const mount = '/tmp/bin';
  return spec.nodes.flatMap((node, n) => spec.images.map((image, i) => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `${spec.cell}-n${n}-i${i}`, namespace: spec.namespace, labels: labels(spec) },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 300,
      template: {
        metadata: { labels: labels(spec) },
        spec: {
          nodeSelector: { 'kubernetes.io/hostname': node },
          restartPolicy: 'Never',
          initContainers: [toolInit(spec.busybox, mount)],
          containers: [{
            name: 'image-puller',
            image,
            imagePullPolicy: 'IfNotPresent',
            command: [`${mount}/busybox`, 'echo', 'Image pulled successfully!'],
            volumeMounts: [{ name: TOOL_VOLUME, mountPath: mount }],
          }],
          volumes: [{ name: TOOL_VOLUME, emptyDir: {} }],
        },
      },
    },
  })));
}

/** kubernetes-image-puller: one DaemonSet, one sleeping container per image. */
export function pullerDaemonSet(spec: CellSpec): Obj {
  const mount = '/kip';
  const app = { app: spec.cell };
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: spec.cell, namespace: spec.namespace, labels: labels(spec) },
    spec: {
      selector: { matchLabels: app },
      template: {
        metadata: { labels: labels(spec, app) },
        spec: {
          terminationGracePeriodSeconds: 1,
          initContainers: [toolInit(spec.busybox, mount)],
          containers: spec.images.map((image, i) => ({
            name: `image-${i}`,
            image,
            imagePullPolicy: 'IfNotPresent',
            // 720h, the puller's sleep, in seconds (busybox's sleep takes plain seconds everywhere).
            command: [`${mount}/busybox`, 'sleep', '2592000'],
            resources: { requests: { ...PULLER_REQUESTS }, limits: { ...PULLER_LIMITS } },
            volumeMounts: [{ name: TOOL_VOLUME, mountPath: mount }],
          })),
          volumes: [{ name: TOOL_VOLUME, emptyDir: {} }],
        },
      },
    },
  };
}

/** No pre-puller: a Deployment with one pod per node that runs every image (sleeping, as an app would run). */
export function kubeletDeployment(spec: CellSpec): Obj {
  const mount = '/tool';
  const app = { app: spec.cell };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: spec.cell, namespace: spec.namespace, labels: labels(spec) },
    spec: {
      replicas: spec.nodes.length,
      selector: { matchLabels: app },
      template: {
        metadata: { labels: labels(spec, app) },
        spec: {
          terminationGracePeriodSeconds: 1,
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: app } }],
          initContainers: [toolInit(spec.busybox, mount)],
          containers: spec.images.map((image, i) => ({
            name: `app-${i}`,
            image,
            imagePullPolicy: 'IfNotPresent',
            command: [`${mount}/busybox`, 'sleep', '2592000'],
            volumeMounts: [{ name: TOOL_VOLUME, mountPath: mount }],
          })),
          volumes: [{ name: TOOL_VOLUME, emptyDir: {} }],
        },
      },
    },
  };
}

/** kwarm: a PrePullPolicy whose static list is the images, on every node; it selects no workload. */
export function kwarmPolicy(spec: CellSpec): Obj {
  return {
    apiVersion: 'kwarm.io/v1alpha1',
    kind: 'PrePullPolicy',
    metadata: { name: spec.cell, labels: labels(spec) },
    spec: {
      selector: { matchLabels: { [CELL_LABEL]: `${spec.cell}-no-workload` } },
      images: [...spec.images],
      nodeSelector: { matchLabels: {} },
    },
  };
}

// --- requests ------------------------------------------------------------------------------------------

/** A Kubernetes CPU quantity ("50m", "0.5", "2") in millicores. */
export function cpuMillis(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(q.trim());
  if (m === null) throw new Error(`not a CPU quantity: ${q}`);
  return m[2] === 'm' ? Number(m[1]) : Number(m[1]) * 1000;
}

const MEMORY_SUFFIX: Readonly<Record<string, number>> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
};

/** A memory quantity ("10Mi", "64M", "1Gi", "1048576") in bytes. */
export function memoryBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(|k|M|G|T|Ki|Mi|Gi|Ti)$/.exec(q.trim());
  if (m === null) throw new Error(`not a memory quantity: ${q}`);
  return Number(m[1]) * (MEMORY_SUFFIX[m[2] ?? ''] ?? Number.NaN);
}

export interface ContainerLike {
  resources?: { requests?: Readonly<Record<string, string>> };
}

export interface PodSpecLike {
  containers: readonly ContainerLike[];
  initContainers?: readonly ContainerLike[];
}

export interface Requests {
  cpuMillis: number;
  memoryBytes: number;
}

function requestsOf(c: ContainerLike): Requests {
  const r = c.resources?.requests ?? {};
  return { cpuMillis: r.cpu === undefined ? 0 : cpuMillis(r.cpu), memoryBytes: r.memory === undefined ? 0 : memoryBytes(r.memory) };
}

/**
 * What the scheduler reserves for a pod: per resource, the larger of the containers' sum and the largest init
 * container (init containers run one at a time, before the others). No pod overhead (no RuntimeClass here).
 */
export function podRequests(spec: PodSpecLike): Requests {
  const sum = spec.containers.map(requestsOf).reduce((a, b) => ({ cpuMillis: a.cpuMillis + b.cpuMillis, memoryBytes: a.memoryBytes + b.memoryBytes }), { cpuMillis: 0, memoryBytes: 0 });
  const init = (spec.initContainers ?? []).map(requestsOf);
  return {
    cpuMillis: Math.max(sum.cpuMillis, ...init.map((r) => r.cpuMillis)),
    memoryBytes: Math.max(sum.memoryBytes, ...init.map((r) => r.memoryBytes)),
  };
}

export function totalRequests(specs: readonly PodSpecLike[]): Requests {
  return specs.map(podRequests).reduce((a, b) => ({ cpuMillis: a.cpuMillis + b.cpuMillis, memoryBytes: a.memoryBytes + b.memoryBytes }), { cpuMillis: 0, memoryBytes: 0 });
}
