// The cluster the agent benchmarks run on, all on this machine: a real API server with kwarm's CRDs,
// one registry on loopback, one containerd per simulated node, and per node a kwarm-agent started as
// in a pod (the chart's ServiceAccount, RBAC and admission policy; in-cluster credentials; info logs).
// Built in steps, so each script keeps its own order (images pushed before the agents start, nodes
// that reach the registry through a proxy...); dispose() stops whatever was started.
import { GrpcImageRuntime } from '../agent/cri/grpc-runtime.ts';
import { NODE_IMAGE_SETS_PATH } from '../agent/node-image-set-watch.ts';
import { API_VERSION } from '../api/v1alpha1/group.ts';
import type { NodeImageSetSpecInput } from '../api/v1alpha1/nodeimageset.ts';
import { CONTROLLER_FIELD_MANAGER } from '../api/v1alpha1/labels.ts';
import { KubeClient } from '../lib/kube-client.ts';
import { agentInClusterCredentials, startAgentProcess, type AgentProcess } from '../local-cluster/agent-process.ts';
import { startContainerd, type TestContainerd } from '../local-cluster/containerd.ts';
import { startControlPlane, type ControlPlane } from '../local-cluster/control-plane.ts';
import { installCrds } from '../local-cluster/crds.ts';
import { KWARM_NAMESPACE } from '../local-cluster/kwarm-access.ts';
import { startRegistry, type RegistryEndpoint, type TestRegistry } from '../local-cluster/registry.ts';

export interface BenchNode {
  readonly name: string;
  readonly containerd: TestContainerd;
  /** A CRI client on this node's containerd: opened on first use, closed by the cluster's dispose(). */
  cri(): GrpcImageRuntime;
}

export interface BenchAgentOptions {
  /** The script the agents run (bench/compiled-binaries.ts); undefined: agent/main.ts with type stripping. */
  entry: string | undefined;
  maxPullsPerNode?: number;
  /** How long each agent may take to report ready; default: the harness's. */
  readyTimeoutMs?: number;
}

export class BenchCluster {
  readonly cp: ControlPlane;
  /** Admin client on the API server. */
  readonly admin: KubeClient;
  readonly registry: TestRegistry;
  readonly nodes: BenchNode[] = [];
  readonly #agents: AgentProcess[] = [];
  readonly #clients: GrpcImageRuntime[] = [];

  constructor(cp: ControlPlane, admin: KubeClient, registry: TestRegistry) {
    this.cp = cp;
    this.admin = admin;
    this.registry = registry;
  }

  /** Starts the node's containerd, which reaches `registries` (default: the cluster's registry) over plain HTTP. */
  async addNode(name: string, registries: readonly RegistryEndpoint[] = [this.registry]): Promise<BenchNode> {
    const containerd = await startContainerd({ name, registries });
    let client: GrpcImageRuntime | undefined;
    const node: BenchNode = {
      name,
      containerd,
      cri: () => {
        if (client === undefined) {
          client = new GrpcImageRuntime({ endpoint: containerd.socket });
          this.#clients.push(client);
        }
        return client;
      },
    };
    this.nodes.push(node);
    return node;
  }

  /** Starts the agent of `node` as in a pod and waits until it is ready. */
  async startAgent(node: BenchNode, opts: BenchAgentOptions): Promise<AgentProcess> {
    const inCluster = await agentInClusterCredentials(this.cp, { namespace: KWARM_NAMESPACE, nodeName: node.name });
    const agent = await startAgentProcess({
      nodeName: node.name, inCluster, criSocket: node.containerd.socket, logLevel: 'info',
      ...(opts.maxPullsPerNode !== undefined ? { maxPullsPerNode: opts.maxPullsPerNode } : {}),
      ...(opts.entry !== undefined ? { entry: opts.entry } : {}),
    });
    this.#agents.push(agent);
    await agent.waitReady(opts.readyTimeoutMs);
    return agent;
  }

  /** Writes NodeImageSet `node`'s spec the way kwarm-controller does (server-side apply, its field manager). */
  async applySpec(node: string, spec: NodeImageSetSpecInput, signal: AbortSignal): Promise<void> {
    await this.admin.apply(`${NODE_IMAGE_SETS_PATH}/${node}`, {
      apiVersion: API_VERSION, kind: 'NodeImageSet', metadata: { name: node }, spec,
    }, CONTROLLER_FIELD_MANAGER, signal);
  }

  /** An empty spec, so the agent's periodic check does not pull again what the caller removes next. */
  async clearSpec(node: string, signal: AbortSignal): Promise<void> {
    await this.applySpec(node, { maxConcurrentPulls: 1, images: [] }, signal);
  }

  /** Stops everything started: agents, CRI clients, containerds, the registry, the API server. */
  async dispose(): Promise<void> {
    for (const a of this.#agents) await a.dispose();
    for (const c of this.#clients) c.close();
    for (const n of this.nodes) await n.containerd.dispose();
    await this.registry.dispose();
    this.admin.close();
    await this.cp.stop();
  }
}

/** The API server with kwarm's CRDs, an admin client and the registry; no nodes yet. */
export async function startBenchCluster(): Promise<BenchCluster> {
  const cp = await startControlPlane();
  let admin: KubeClient | undefined;
  try {
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    return new BenchCluster(cp, admin, await startRegistry());
  } catch (err) {
    admin?.close();
    await cp.stop();
    throw err;
  }
}
