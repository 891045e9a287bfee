// The chart's own ServiceAccounts, RBAC, admission policy and the agents' API priority level on a test control
// plane, and credentials for them: tests run the controller and the agents with exactly the permissions (and
// the API server's treatment) a Helm install gives them.
import { dumpYaml, loadAllYaml } from '@kubernetes/client-node';
import type { ControlPlane } from './control-plane.ts';
import { helm } from './helm.ts';

/** The namespace the chart's defaults (and deploy/default) install into. */
export const KWARM_NAMESPACE = 'kwarm-system';
export const CONTROLLER_SA = 'kwarm-controller';
export const AGENT_SA = 'kwarm-agent';

const ACCESS_KINDS = new Set([
  'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'PriorityLevelConfiguration', 'FlowSchema',
]);
const CLUSTER_SCOPED = new Set([
  'ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'PriorityLevelConfiguration', 'FlowSchema',
]);

interface Doc {
  kind: string;
  metadata: { name: string };
  roleRef?: { kind: string; name: string };
  spec?: { policyName?: string; priorityLevelConfiguration?: { name: string } };
}

/**
 * The access objects of `helm template kwarm charts/kwarm -n <namespace>`. Outside kwarm-system the
 * cluster-scoped ones get a `-<namespace>` suffix, so installs for several test namespaces live side by side.
 */
export async function accessManifest(namespace: string): Promise<string> {
  const { stdout } = await helm(['template', 'kwarm', 'charts/kwarm', '--namespace', namespace]);
  const suffix = namespace === KWARM_NAMESPACE ? '' : `-${namespace}`;
  const docs = (loadAllYaml(stdout) as (Doc | null)[]).filter((d): d is Doc => d !== null && ACCESS_KINDS.has(d.kind));
  for (const d of docs) {
    if (CLUSTER_SCOPED.has(d.kind)) d.metadata.name += suffix;
    if (d.kind === 'ClusterRoleBinding' && d.roleRef !== undefined) d.roleRef.name += suffix;
    if (d.kind === 'ValidatingAdmissionPolicyBinding' && d.spec?.policyName !== undefined) d.spec.policyName += suffix;
    if (d.kind === 'FlowSchema' && d.spec?.priorityLevelConfiguration !== undefined) d.spec.priorityLevelConfiguration.name += suffix;
  }
  return [`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n`, ...docs.map((d) => dumpYaml(d))].join('---\n');
}

const installed = new WeakMap<ControlPlane, Map<string, Promise<void>>>();

/** Applies the chart's access objects for `namespace` once per control plane. */
export function installKwarmAccess(cp: ControlPlane, namespace = KWARM_NAMESPACE): Promise<void> {
  let perCp = installed.get(cp);
  if (perCp === undefined) {
    perCp = new Map();
    installed.set(cp, perCp);
  }
  let done = perCp.get(namespace);
  if (done === undefined) {
    const map = perCp;
    done = accessManifest(namespace).then((yaml) => cp.apply(yaml));
    map.set(namespace, done);
    done.catch(() => { map.delete(namespace); });
  }
  return done;
}

/** A kubeconfig for the chart's controller ServiceAccount. */
export async function controllerKubeconfig(cp: ControlPlane, namespace = KWARM_NAMESPACE): Promise<string> {
  await installKwarmAccess(cp, namespace);
  return cp.serviceAccountKubeconfig(namespace, CONTROLLER_SA);
}

function podName(nodeName: string): string {
  const base = `${AGENT_SA}-${nodeName}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return base.length <= 63 ? base : base.slice(0, 63).replace(/-+$/, '');
}

/** The agent pod the kubelet would run on `nodeName` (it never runs here: there is no kubelet); kept. */
async function ensureAgentPod(cp: ControlPlane, nodeName: string, namespace: string): Promise<string> {
  await installKwarmAccess(cp, namespace);
  const pod = podName(nodeName);
  await cp.apply(`apiVersion: v1
kind: Pod
metadata:
  name: ${pod}
  namespace: ${namespace}
  labels: {app.kubernetes.io/name: kwarm, app.kubernetes.io/component: agent}
spec:
  serviceAccountName: ${AGENT_SA}
  nodeName: ${nodeName}
  containers:
  - name: agent
    image: kwarm-agent:test
`);
  return pod;
}

/**
 * What the kubelet gives the agent pod on `nodeName`: a token of the chart's agent ServiceAccount bound to
 * that pod, so it carries the node name the chart's admission policy checks.
 */
export async function agentToken(cp: ControlPlane, nodeName: string, namespace = KWARM_NAMESPACE): Promise<string> {
  const pod = await ensureAgentPod(cp, nodeName, namespace);
  const { stdout } = await cp.kubectl(['create', 'token', AGENT_SA, '-n', namespace, '--duration=2h',
    '--bound-object-kind=Pod', `--bound-object-name=${pod}`]);
  return stdout.trim();
}

/** A kubeconfig with the credentials of `agentToken`. */
export async function agentKubeconfig(cp: ControlPlane, nodeName: string, namespace = KWARM_NAMESPACE): Promise<string> {
  const pod = await ensureAgentPod(cp, nodeName, namespace);
  return cp.serviceAccountKubeconfig(namespace, AGENT_SA, { boundPod: pod });
}
