// A paced link from every node of the real-node cluster to its registry, for the demo and benchmarks where
// pulls must take as long as over a real network (the cluster's own registry path, 10.250.0.1:5000, runs at
// loopback speed). Each node gets its own link (throttled-proxy.ts: all of that node's connections together
// share the rate, as a node's own network link would), reached at the same address on every node:
//
//   const link = await linkNodesToRegistry(cluster, { bytesPerSecond: 25e6 });
//   link.nodeImage(pushed.reference)   "127.0.0.1:5001/<repository>:<tag>", pulled through the node's link
//   await cluster.addNode({ beforeKubelet: (n) => link.addNode(n) })   a node that joins later, linked before
//                                      its kubelet starts (so before any pod lands on it)
//   await link.stop()
//
// Path of the bytes: registry (127.0.0.1, this process's side) <- throttled proxy (in process) <- unix socket
// in a temp dir <- forwarder in the node's network namespace listening on the node's own 127.0.0.1:5001. The
// node's containerd learns the address as a plain-HTTP registry from a hosts.toml beside the one the harness
// wrote for 10.250.0.1:5000; containerd reads that directory on each pull, so no restart is needed. Nothing
// listens outside loopback and the harness's namespaces; stop() (or the processes' watchdogs) removes it all.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errorText } from '../lib/errors.ts';
import { forward, type Forwarder } from './forwarder.ts';
import type { ManagedProcess } from './process.ts';
import type { RealCluster } from './real-cluster.ts';
import type { NodeBeforeKubelet } from './real-node.ts';
import { startThrottledProxy, type ThrottledProxy } from './throttled-proxy.ts';
import { makeTempDir, removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface NodeRegistryLinkOptions {
  /** Bytes per second from the registry to each node, all its connections together. */
  bytesPerSecond: number;
  /** The port on each node's loopback (default 5001). */
  port?: number;
}

export interface NodeRegistryLink {
  /** "127.0.0.1:<port>": the registry as every node reaches it through its link. */
  readonly host: string;
  readonly bytesPerSecond: number;
  /** A reference pushed to the cluster's registry, as pods must name it to pull through the link. */
  nodeImage(reference: string): string;
  /** Links one more node (one that joins later); its link goes with the node's namespaces or with stop(). */
  addNode(node: NodeBeforeKubelet): Promise<void>;
  stop(): Promise<void>;
}

interface OneLink {
  proxy: ThrottledProxy;
  inProcess: Forwarder;
  inNode: ManagedProcess;
  /** The hosts.toml directory written for the link's address in the node's certs.d. */
  hostsEntry: string;
}

/**
 * containerd's registry config dir of a node: containerd.ts writes certs.d beside the log. Checked against the
 * hosts.toml the harness wrote there, so a change of that layout fails here with a reason.
 */
function hostsTemplate(cluster: RealCluster, node: NodeBeforeKubelet): { hostsDir: string; text: string } {
  const hostsDir = join(dirname(node.containerd.logFile), 'certs.d');
  const existing = join(hostsDir, cluster.registryFromNodes, 'hosts.toml');
  try {
    return { hostsDir, text: readFileSync(existing, 'utf8') };
  } catch (err) {
    throw new Error(`${node.name}'s containerd registry config is not at ${existing} (${errorText(err)}); did local-cluster/containerd.ts move certs.d?`);
  }
}

async function linkNode(cluster: RealCluster, node: NodeBeforeKubelet, host: string, bytesPerSecond: number, dir: string): Promise<OneLink> {
  const { hostsDir, text } = hostsTemplate(cluster, node);
  const hostsEntry = join(hostsDir, host);
  mkdirSync(hostsEntry, { recursive: true });
  writeFileSync(join(hostsEntry, 'hosts.toml'), text.replaceAll(cluster.registryFromNodes, host));
  const proxy = await startThrottledProxy(cluster.registry, bytesPerSecond, 'shared');
  const socket = join(dir, `${node.name}.sock`);
  const inProcess = await forward({ kind: 'unix', path: socket }, { kind: 'tcp', host: '127.0.0.1', port: Number(proxy.host.split(':')[1]) });
  const inNode = node.namespaces.start({
    name: `${node.name}-registry-link`,
    command: process.execPath,
    args: [join(import.meta.dirname, 'forwarder.ts'), `tcp:${host}`, `unix:${socket}`],
    logFile: join(dir, `${node.name}-forwarder.log`),
  });
  await waitFor(() => {
    if (!inNode.running) throw new Error(`${node.name}'s registry link (forwarder) exited: ${inNode.tail()}`);
    return inNode.tail().includes('ready');
  }, { what: `${node.name}'s registry link`, timeoutMs: 30_000, intervalMs: 50 });
  return { proxy, inProcess, inNode, hostsEntry };
}

/** A paced registry link for each node the cluster has now (nodes added later: addNode). */
export async function linkNodesToRegistry(cluster: RealCluster, opts: NodeRegistryLinkOptions): Promise<NodeRegistryLink> {
  const host = `127.0.0.1:${opts.port ?? 5001}`;
  const dir = makeTempDir('node-registry-link');
  const links: OneLink[] = [];
  const stop = async (): Promise<void> => {
    for (const l of links.splice(0)) {
      await l.inNode.stop();
      await l.inProcess.close();
      await l.proxy.stop();
      // The node's containerd would otherwise keep a registry entry for an address nothing serves any more.
      rmSync(l.hostsEntry, { recursive: true, force: true });
    }
    removeDir(dir);
  };
  try {
    for (const n of cluster.nodes) links.push(await linkNode(cluster, n, host, opts.bytesPerSecond, dir));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host,
    bytesPerSecond: opts.bytesPerSecond,
    nodeImage(reference) {
      if (!reference.startsWith(`${cluster.registry.host}/`)) throw new Error(`${reference} is not in the cluster's registry ${cluster.registry.host}`);
      return `${host}${reference.slice(cluster.registry.host.length)}`;
    },
    async addNode(node) {
      links.push(await linkNode(cluster, node, host, opts.bytesPerSecond, dir));
    },
    stop,
  };
}
