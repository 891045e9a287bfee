// How the agent reaches the API server: --kubeconfig when given (development, tests), otherwise the
// ServiceAccount the kubelet mounts in its pod. Unlike the controller it never falls back to
// $KUBECONFIG or ~/.kube/config: on a node those belong to someone else. The readers live in
// lib/cluster-access.ts; this file only picks the source (hence its own name).
import type { AccessSource, AccessEnvironment } from '../lib/cluster-access.ts';

export function agentAccessSource(kubeconfig: string | undefined, env: Pick<AccessEnvironment, 'KUBERNETES_SERVICE_HOST' | 'KUBERNETES_SERVICE_PORT'>): AccessSource {
  if (kubeconfig !== undefined && kubeconfig !== '') return { kind: 'kubeconfig', paths: [kubeconfig] };
  return { kind: 'in-cluster', host: env.KUBERNETES_SERVICE_HOST, port: env.KUBERNETES_SERVICE_PORT };
}
