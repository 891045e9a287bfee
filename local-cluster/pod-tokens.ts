// What a pod's own credentials can do, for tests that try writes with kwarm's real tokens: the service account
// token the kubelet mounted into a pod, and an API client that authenticates with it.
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../lib/kube-client.ts';
import type { RealCluster } from './real-cluster.ts';

export interface PodRef {
  readonly metadata?: { readonly uid?: string; readonly name?: string };
  readonly spec?: { readonly nodeName?: string };
}

/**
 * The token the kubelet mounted into `pod` (its kube-api-access projected volume), read inside the node's mount
 * namespace, where the kubelet's tmpfs for the volume is mounted.
 */
export async function kubeletIssuedToken(cluster: RealCluster, pod: PodRef): Promise<string> {
  const n = cluster.node(pod.spec?.nodeName ?? '');
  const volumes = `/var/lib/kubelet/pods/${pod.metadata?.uid ?? ''}/volumes/kubernetes.io~projected`;
  const access = (await n.namespaces.exec('ls', [volumes])).split('\n').find((v) => v.startsWith('kube-api-access-'));
  if (access === undefined) throw new Error(`no kube-api-access volume of ${pod.metadata?.name ?? '?'} in ${volumes} on ${n.name}`);
  return (await n.namespaces.exec('cat', [`${volumes}/${access}/token`])).trim();
}

/** An API client of the cluster's control plane that authenticates with `token` (`user` names it in the kubeconfig). */
export function clientWithToken(cluster: RealCluster, token: string, user: string): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'real', server: cluster.controlPlane.server, caFile: cluster.controlPlane.caFile }],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: 'real', user }],
    currentContext: user,
  });
  return new KubeClient(kc);
}
