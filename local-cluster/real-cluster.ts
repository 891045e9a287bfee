// A local Kubernetes cluster with real nodes, for tests, the demo and `npm run cluster`.
//
//   const cluster = await startRealCluster({ nodes: 3 });
//   cluster.kubeconfig               admin kubeconfig for this process (https://127.0.0.1:<forwarded port>)
//   cluster.clusterNamespaces        the "cluster" network namespace, to start processes that reach pod IPs
//   cluster.controlPlane             kubectl(), apply(), waitFor(), serviceAccountKubeconfig() as for the
//                                    shared control plane (control-plane.ts)
//   cluster.registry                 the registry as this process reaches it: push images here (oci-image.ts)
//   cluster.registryFromNodes        "10.250.0.1:5000", the same registry as nodes and pods reach it
//   cluster.nodeImage(ref)           a reference pushed to `registry`, rewritten for pods and the chart
//   cluster.nodes, cluster.node(n)   the running nodes (real-node.ts): containerd socket, kubelet, namespaces
//   await cluster.addNode()          one more node, Ready
//   await cluster.addNode({ registerWithTaints: [{ key: 'kwarm.io/warming', effect: 'NoSchedule' }] })
//                                    one more node that registers with a startup taint (real-node.ts JoinOptions)
//   await cluster.removeNode('node-4')   stopped and its Node deleted, as a scale-down does
//   await cluster.restartContainerd('node-1')
//   await cluster.node('node-1').restartKubelet({ maxPods: 42 })   KubeletConfiguration fields over the
//                                    harness's; restartKubelet() without them restores the harness's own
//   await cluster.node('node-1').collectImages(done)   the kubelet's own image GC (seconds: it restarts the kubelet)
//   await cluster.stop()             everything gone: processes, namespaces, mounts, veths, files
//
// Shape (docs/decisions/0012-real-nodes.md): the control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler) runs in a "cluster" network namespace holding the bridge kwarm0; each node is a network +
// mount + pid namespace with a veth on that bridge, running containerd, the kubelet and kube-proxy; pods use
// the bridge CNI with a subnet per node (cluster-network.ts). The registry runs beside the test process on
// 127.0.0.1 and the API server inside; unix sockets in the cluster's directory carry the bytes between the
// two sides (forwarder.ts), so no interface of the machine's own network namespace gets an address, and all
// traffic goes to loopback or to the harness's own namespaces. Every process has a watchdog, a detached
// janitor removes the files if this process dies, and KWARM_KEEP_TEST_DIRS=1 keeps them.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pushSleeperImage } from './busybox-images.ts';
import { BRIDGE, BRIDGE_PREFIX, CLUSTER_ADDRESS, MAX_NODES, nodeAddress, nodeName, podRoutes, type NodeSlot } from './cluster-network.ts';
import { startControlPlane, type ControlPlane, type KubectlOptions, type KubectlResult } from './control-plane.ts';
import { forward, type Forwarder } from './forwarder.ts';
import { startNamespaces, type Namespaces } from './namespaces.ts';
import { createPki } from './pki.ts';
import type { ManagedProcess } from './process.ts';
import { startRealNode, type JoinOptions, type NodeCluster, type RealNode } from './real-node.ts';
import { startRegistry, type TestRegistry } from './registry.ts';
import { keepTestDirs, makeTempDir, processOwner, removeScratchDir, stillRunning } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface RealClusterOptions {
  /** Nodes started at once (default 3). */
  nodes?: number;
  /** Progress lines (default: console.log with the harness prefix). */
  log?: (line: string) => void;
}

export interface RealCluster {
  /** Everything of this cluster that is not in another harness temp dir; kept with KWARM_KEEP_TEST_DIRS=1. */
  readonly dir: string;
  readonly controlPlane: ControlPlane;
  /**
   * The "cluster" network namespace (bridge, control plane, forwarders): a process started here reaches pod
   * IPs as the API server does (prometheus.ts runs Prometheus here).
   */
  readonly clusterNamespaces: Namespaces;
  /** Admin kubeconfig for the test process. */
  readonly kubeconfig: string;
  /** The registry as the test process reaches it (127.0.0.1): push images here. */
  readonly registry: TestRegistry;
  /** The same registry as nodes and pods reach it: "10.250.0.1:5000". */
  readonly registryFromNodes: string;
  /** The pod sandbox image every node's containerd uses, as nodes see it. */
  readonly sandboxImage: string;
  /** The running nodes, in the order they joined. */
  readonly nodes: readonly RealNode[];
  node(name: string): RealNode;
  /** A reference to an image pushed to `registry`, as a pod spec or the chart must name it. */
  nodeImage(reference: string): string;
  kubectl(args: readonly string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** Starts one more node and waits until it is Ready (with its startup taints still on, if it has any). */
  addNode(opts?: JoinOptions): Promise<RealNode>;
  /**
   * Stops a node and deletes its Node object, as a scale-down does; its name and addresses are not used again.
   * Its pods are left to the pod garbage collector, its files to stop().
   */
  removeNode(name: string): Promise<void>;
  /** Stops the node's containerd (SIGTERM) and starts it again on the same state; the kubelet reconnects. */
  restartContainerd(node: string): Promise<void>;
  stop(): Promise<void>;
}

/** kube-controller-manager's controllers for Deployments, DaemonSets, Jobs and pods with service-account tokens. */
export const REAL_CLUSTER_CONTROLLERS = [
  'garbagecollector', 'namespace', 'serviceaccount', 'serviceaccount-token', 'root-ca-cert-publisher',
  'deployment', 'replicaset', 'daemonset', 'job', 'statefulset', 'nodelifecycle', 'podgc',
  'endpoint', 'endpointslice',
];

const REGISTRY_PORT = 5000;
const DIR_PREFIX = 'kwarm-real-cluster-';
const NODE_READY_TIMEOUT_MS = 120_000;

/** `owner.pid` names the run that owns a cluster dir: its pid and start time, so a reused pid is not taken for it. */
function ownerText(): string {
  const self = processOwner(process.pid);
  return self === undefined ? String(process.pid) : `${self.pid} ${self.startTime}`;
}

/** Whether the run `owner.pid` names is still running (a file without a start time: whether its pid is). */
function ownerAlive(text: string): boolean {
  const [pid, startTime] = text.trim().split(' ');
  return startTime === undefined ? processOwner(Number(pid)) !== undefined : stillRunning({ pid: Number(pid), startTime });
}

/** Removes what a cluster of a test process that died left behind (unless it was asked to keep it). */
function sweepStaleDirs(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(DIR_PREFIX)) continue;
    const dir = join(tmpdir(), entry);
    let owner: string;
    try {
      owner = readFileSync(join(dir, 'owner.pid'), 'utf8');
    } catch {
      continue;
    }
    if (existsSync(join(dir, 'keep')) || ownerAlive(owner)) continue;
    removeListedDirs(dir);
  }
}

/**
 * Removes the cluster's dir and the dirs it lists whatever KWARM_KEEP_TEST_DIRS says: called for a dead run's
 * leftovers (a run that kept its files left a `keep` file) and by stop() only when this run keeps nothing.
 */
function removeListedDirs(dir: string): void {
  let listed: string[] = [];
  try {
    listed = readFileSync(join(dir, 'dirs'), 'utf8').split('\n').filter((d) => d !== '');
  } catch {
    // No list yet.
  }
  for (const d of listed) removeScratchDir(d);
  removeScratchDir(dir);
}

/**
 * A detached shell that waits for this process to end, gives the watchdogs time to kill the namespace
 * holders (their mounts go with them), then removes the empty cgroups of the nodes' containers (as
 * removeContainerCgroups does), the cluster's files and the temp dirs listed in `dirs`.
 */
function startJanitor(dir: string): ChildProcess {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; sleep 3
for t in "${dir}"/node-*/run-containerd/io.containerd.runtime.v2.task/k8s.io/*; do
  [ -e "$t" ] || continue; id=$(basename "$t"); rmdir /sys/fs/cgroup/k8s.io/"$id" /sys/fs/cgroup/*/k8s.io/"$id" 2>/dev/null
done
while read -r d; do rm -rf --one-file-system -- "$d"; done < "${dir}/dirs"; rm -rf --one-file-system -- "${dir}"`;
  const janitor = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  janitor.unref();
  return janitor;
}

interface NodeNetwork {
  cluster: Namespaces;
  slots: NodeSlot[];
  nodes: Map<string, RealNode>;
}

async function addRoutes(ns: Namespaces, self: NodeSlot, others: readonly NodeSlot[]): Promise<void> {
  for (const r of podRoutes(self, others)) await ns.exec('ip', ['route', 'replace', r.subnet, 'via', r.via]);
}

export async function startRealCluster(opts: RealClusterOptions = {}): Promise<RealCluster> {
  const log = opts.log ?? ((line: string) => { console.log(`    [harness] ${line}`); });
  const started = Date.now();
  sweepStaleDirs();
  // Its own janitor removes it (after the containers' cgroups, found from the files in it), not tmp.ts's.
  const dir = makeTempDir('real-cluster', { ownCrashCleanup: true });
  writeFileSync(join(dir, 'owner.pid'), ownerText());
  writeFileSync(join(dir, 'dirs'), '');
  const janitor = keepTestDirs() ? undefined : startJanitor(dir);
  if (janitor === undefined) writeFileSync(join(dir, 'keep'), '');
  const cleanUp = (): void => {
    if (janitor === undefined) return;
    removeListedDirs(dir);
    // Its whole process group (it is detached): the shell and the sleep it waits on, at once.
    if (janitor.pid !== undefined) {
      try {
        process.kill(-janitor.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };
  const ownDir = (d: string): void => { appendFileSync(join(dir, 'dirs'), `${d}\n`); };

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        console.error(`    [harness] stopping the real cluster: ${String(err)}`);
      }
    }
  };
  try {
    const clusterNs = await startNamespaces({ name: 'cluster', dir });
    stops.push(() => clusterNs.stop());
    await clusterNs.exec('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    await clusterNs.exec('ip', ['addr', 'add', `${CLUSTER_ADDRESS}/${BRIDGE_PREFIX}`, 'dev', BRIDGE]);
    await clusterNs.exec('ip', ['link', 'set', BRIDGE, 'up']);

    // A forwarder process inside the cluster's namespace: listens on `from`, connects to `to`.
    let forwarders = 0;
    const nsForwarder = async (from: string, to: string): Promise<ManagedProcess> => {
      const n = forwarders++;
      const proc = clusterNs.start({
        name: `forwarder-${n}`,
        command: process.execPath,
        args: [join(import.meta.dirname, 'forwarder.ts'), from, to],
        logFile: join(dir, `forwarder-${n}.log`),
      });
      stops.push(() => proc.stop());
      await waitFor(() => {
        if (!proc.running) throw new Error(`forwarder ${from} -> ${to} exited: ${proc.tail()}`);
        return proc.tail().includes('ready');
      }, { what: `forwarder ${from} -> ${to}`, timeoutMs: 20_000, intervalMs: 20 });
      return proc;
    };
    const inProcess = (f: Forwarder): Forwarder => {
      stops.push(() => f.close());
      return f;
    };

    const registry = await startRegistry({ name: 'real-cluster-registry' });
    ownDir(dirname(registry.storageDir));
    stops.push(() => registry.dispose());
    const registrySocket = join(dir, 'registry.sock');
    inProcess(await forward({ kind: 'unix', path: registrySocket }, { kind: 'tcp', host: '127.0.0.1', port: Number(registry.host.split(':')[1]) }));
    await nsForwarder(`tcp:${CLUSTER_ADDRESS}:${REGISTRY_PORT}`, `unix:${registrySocket}`);
    const registryFromNodes = `${CLUSTER_ADDRESS}:${REGISTRY_PORT}`;
    const nodeImage = (reference: string): string => {
      if (!reference.startsWith(`${registry.host}/`)) throw new Error(`${reference} is not in the cluster's registry ${registry.host}`);
      return `${registryFromNodes}${reference.slice(registry.host.length)}`;
    };

    const pki = await createPki(makeTempDirListed('pki', ownDir));
    const controlPlane = await startControlPlane({
      controllerManager: true,
      controllers: REAL_CLUSTER_CONTROLLERS,
      scheduler: true,
      network: {
        address: CLUSTER_ADDRESS,
        start: clusterNs.start,
        pki,
        async reach(port) {
          const socket = join(dir, `reach-${port}.sock`);
          await nsForwarder(`unix:${socket}`, `tcp:${CLUSTER_ADDRESS}:${port}`);
          return inProcess(await forward({ kind: 'tcp', host: '127.0.0.1', port: 0 }, { kind: 'unix', path: socket })).port;
        },
      },
    });
    ownDir(controlPlane.dir);
    stops.push(() => controlPlane.stop());

    const sandbox = await pushSleeperImage(registry, 'kwarm/pause', '1', 0);
    const nodeCluster: NodeCluster = {
      namespaces: clusterNs,
      server: controlPlane.clusterServer,
      pki,
      kubeProxyCert: await pki.issue({ file: 'kube-proxy', commonName: 'system:kube-proxy' }),
      registries: [{ host: registryFromNodes }],
      sandboxImage: nodeImage(sandbox.reference),
    };
    const net: NodeNetwork = { cluster: clusterNs, slots: [], nodes: new Map() };

    // Nodes stop first, all at once: each is only a namespace kill after the kubelet.
    stops.push(async () => { await Promise.all([...net.nodes.values()].map((n) => n.stop())); });
    const startNode = async (slot: NodeSlot, joining: JoinOptions): Promise<RealNode> => {
      const node = await startRealNode({ slot, dir: join(dir, slot.name), cluster: nodeCluster, join: joining });
      // containerd's temp dir (config, log) lives outside the cluster's dir.
      ownDir(dirname(node.containerd.logFile));
      return node;
    };
    const joinNodes = async (slots: readonly NodeSlot[], joining: JoinOptions = {}): Promise<RealNode[]> => {
      const results = await Promise.allSettled(slots.map((s) => startNode(s, joining)));
      const nodes = results.flatMap((r) => r.status === 'fulfilled' ? [r.value] : []);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) {
        await Promise.all(nodes.map((n) => n.stop()));
        throw failed.reason;
      }
      net.slots.push(...slots);
      for (const n of nodes) net.nodes.set(n.name, n);
      await addRoutes(clusterNs, { name: 'cluster', index: 0 }, net.slots);
      for (const n of net.nodes.values()) {
        const self = net.slots.find((s) => s.name === n.name);
        if (self !== undefined) await addRoutes(n.namespaces, self, net.slots);
      }
      await waitNodesReady(controlPlane, nodes);
      return nodes;
    };

    const count = opts.nodes ?? 3;
    await joinNodes(Array.from({ length: count }, (_, i) => ({ name: nodeName(i + 1), index: i + 1 })));
    // Pods are admitted only once their namespace's default ServiceAccount exists.
    await waitFor(async () => (await controlPlane.kubectl(['get', 'serviceaccount', 'default', '-n', 'default'], { allowFailure: true })).code === 0,
      { what: 'the default ServiceAccount', timeoutMs: 60_000, intervalMs: 250 });
    log(`real cluster: ${count} nodes Ready, control plane at ${controlPlane.server}, registry ${registry.host} (${registryFromNodes} from nodes) in ${Date.now() - started} ms`);

    const cluster: RealCluster = {
      dir,
      controlPlane,
      clusterNamespaces: clusterNs,
      kubeconfig: controlPlane.adminKubeconfig,
      registry,
      registryFromNodes,
      sandboxImage: nodeCluster.sandboxImage,
      get nodes() {
        return [...net.nodes.values()];
      },
      node(name) {
        const n = net.nodes.get(name);
        if (n === undefined) throw new Error(`no node ${name} in the real cluster (nodes: ${[...net.nodes.keys()].join(', ')})`);
        return n;
      },
      nodeImage,
      kubectl: (args, kopts) => controlPlane.kubectl(args, kopts),
      async addNode(joining = {}) {
        const index = Math.max(0, ...net.slots.map((s) => s.index)) + 1;
        if (index > MAX_NODES) throw new Error(`the address plan has room for ${MAX_NODES} nodes`);
        const [node] = await joinNodes([{ name: nodeName(index), index }], joining);
        if (node === undefined) throw new Error('no node started');
        log(`real cluster: ${node.name} joined at ${nodeAddress({ name: node.name, index })}`);
        return node;
      },
      async removeNode(name) {
        const node = cluster.node(name);
        await node.stop();
        net.nodes.delete(name);
        await controlPlane.kubectl(['delete', 'node', name, '--ignore-not-found', '--wait=true']);
      },
      async restartContainerd(name) {
        await cluster.node(name).containerd.restart();
      },
      async stop() {
        await stopAll();
        cleanUp();
      },
    };
    return cluster;
  } catch (err) {
    await stopAll();
    cleanUp();
    throw err;
  }
}

function makeTempDirListed(prefix: string, list: (d: string) => void): string {
  const d = makeTempDir(prefix);
  list(d);
  return d;
}

interface NodeList {
  items?: { metadata?: { name?: string }; status?: { conditions?: { type?: string; status?: string }[] } }[];
}

async function waitNodesReady(cp: ControlPlane, nodes: readonly RealNode[]): Promise<void> {
  const names = new Set(nodes.map((n) => n.name));
  await waitFor(async () => {
    for (const n of nodes) {
      if (!n.kubelet.running) throw new Error(`the kubelet of ${n.name} exited:\n${n.kubelet.tail()}`);
    }
    const { stdout } = await cp.kubectl(['get', 'nodes', '-o', 'json']);
    const list = JSON.parse(stdout) as NodeList;
    const ready = (list.items ?? []).filter((item) => names.has(item.metadata?.name ?? '')
      && (item.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));
    return ready.length === names.size;
  }, { what: `nodes ${[...names].join(', ')} Ready`, timeoutMs: NODE_READY_TIMEOUT_MS, intervalMs: 500 });
}

let shared: Promise<RealCluster> | undefined;

/**
 * One real cluster (3 nodes) per mocha process, shared by the real-node test files so that start-up is paid
 * once; stopped by the root hook in test/support/hooks.ts. Tests may add nodes: use `nodes`, not a count.
 */
export function sharedRealCluster(): Promise<RealCluster> {
  shared ??= startRealCluster({ nodes: 3 });
  return shared;
}

export async function stopSharedRealCluster(): Promise<void> {
  if (shared === undefined) return;
  const cluster = await shared.catch(() => undefined);
  shared = undefined;
  await cluster?.stop();
}
