// kwarm-agent started as the chart starts it, for tests that depend on the pod's view of the node: the
// DaemonSet is rendered with helm, its hostPath volumes are bound at their mountPaths in the agent's private
// mount namespace (see pod-entry.ts), and it runs with the chart's arguments and an in-cluster token.
// Host paths below /run/containerd are mapped to the test containerd's state directory, where its socket is.
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { agentInClusterCredentials, startAgentProcess, type AgentProcess } from '../../../local-cluster/agent-process.ts';
import type { TestContainerd } from '../../../local-cluster/containerd.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { helm } from '../../../local-cluster/helm.ts';

export const POD_MOUNTS_ENV = 'KWARM_TEST_POD_MOUNTS';
/** The test process's mount namespace: pod-entry.ts refuses to mount when it is still in it. */
export const TEST_MOUNT_NAMESPACE_ENV = 'KWARM_TEST_MOUNT_NAMESPACE';
const POD_ENTRY = join(import.meta.dirname, 'pod-entry.ts');

export interface PodMount {
  /** Path on the host (the hostPath volume, mapped to where the test's containerd keeps it). */
  source: string;
  /** Path inside the pod (the volumeMount's mountPath). */
  target: string;
  readOnly: boolean;
}

interface RenderedAgentPod {
  args: string[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  volumes: { name: string; hostPath?: { path: string; type?: string } }[];
}

/** The agent container's args and mounts, and the pod's volumes, as `helm template` renders them. */
export async function renderAgentPod(namespace: string, set: readonly string[] = []): Promise<RenderedAgentPod> {
  const res = await helm(['template', 'kwarm', 'charts/kwarm', '-n', namespace, '--show-only', 'templates/agent-daemonset.yaml', ...set.flatMap((s) => ['--set', s])]);
  const [doc] = loadAllYaml(res.stdout) as unknown[];
  const pod = (doc as { spec: { template: { spec: { containers: { name: string; args: string[]; volumeMounts: RenderedAgentPod['volumeMounts'] }[]; volumes: RenderedAgentPod['volumes'] } } } }).spec.template.spec;
  const agent = pod.containers.find((c) => c.name === 'agent');
  if (agent === undefined) throw new Error('the rendered DaemonSet has no "agent" container');
  return { args: agent.args, volumeMounts: agent.volumeMounts, volumes: pod.volumes };
}

/** Flags startAgentProcess sets itself (node name, loopback ports, debug JSON log). */
const OWN_FLAGS = ['--node-name', '--metrics-bind-address', '--health-probe-bind-address', '--log-level', '--log-format'];

export interface ChartAgentOptions {
  cp: ControlPlane;
  namespace: string;
  nodeName: string;
  containerd: TestContainerd;
  /** Helm --set values. */
  set?: readonly string[];
  /** Flag values that replace the chart's, e.g. {'--verify-interval': '2s'}. */
  override?: Readonly<Record<string, string>>;
}

export async function startChartAgent(opts: ChartAgentOptions): Promise<AgentProcess> {
  const pod = await renderAgentPod(opts.namespace, opts.set);
  const mounts: PodMount[] = [];
  for (const vm of pod.volumeMounts) {
    const hostPath = pod.volumes.find((v) => v.name === vm.name)?.hostPath?.path;
    // Only the runtime's /run paths are mapped; others (the image store) are left out, the test containerd's
    // root being visible to the agent at its own path anyway.
    if (hostPath === undefined || !(hostPath === '/run/containerd' || hostPath.startsWith('/run/containerd/'))) continue;
    mounts.push({ source: opts.containerd.state + hostPath.slice('/run/containerd'.length), target: vm.mountPath, readOnly: vm.readOnly === true });
  }
  if (mounts.length === 0) throw new Error(`the chart mounts nothing below /run/containerd: ${JSON.stringify(pod.volumes)}`);
  const override = opts.override ?? {};
  const args = pod.args
    .filter((a) => !OWN_FLAGS.includes(a.split('=')[0]!))
    .map((a) => {
      const flag = a.split('=')[0]!;
      const value = override[flag];
      return value === undefined ? a : `${flag}=${value}`;
    });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_NAME' && !k.startsWith('KUBERNETES_')));
  env[POD_MOUNTS_ENV] = JSON.stringify(mounts);
  env[TEST_MOUNT_NAMESPACE_ENV] = readlinkSync('/proc/self/ns/mnt');
  return startAgentProcess({
    nodeName: opts.nodeName,
    inCluster: await agentInClusterCredentials(opts.cp, { namespace: opts.namespace, nodeName: opts.nodeName }),
    entry: POD_ENTRY,
    env,
    args,
  });
}
