// The workloads the real-node tests and benchmarks run: a Deployment of sleeping pods (the app images of
// busybox-images.ts and the benchmarks sleep) placed over the nodes in one of the two ways they need.
// Pure: it returns the manifest as JSON for `controlPlane.apply`.

export interface SleeperDeploymentOptions {
  name: string;
  namespace: string;
  image: string;
  replicas: number;
  /** Labels of the Deployment itself (what PrePullPolicies select); `app: <name>` is always among them. */
  labels?: Readonly<Record<string, string>>;
  /**
   * 'one-per-node': required pod anti-affinity, so a replica beyond the node count stays Pending until a node
   * joins (an autoscaler's scale-up). 'spread': topology spread with maxSkew 1 over the nodes.
   */
  placement: 'one-per-node' | 'spread';
  /** Default: the API's own (RollingUpdate 25 %/25 %). */
  strategy?: { type: 'Recreate' } | { type: 'RollingUpdate'; rollingUpdate: { maxSurge: number; maxUnavailable: number } };
}

/** A Deployment whose pods run `image` (its entrypoint sleeps) and go within a second when deleted. */
export function sleeperDeployment(o: SleeperDeploymentOptions): string {
  const match = { matchLabels: { app: o.name } };
  const placement = o.placement === 'one-per-node'
    ? { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: match }] } } }
    : { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: match }] };
  return JSON.stringify({
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: o.name, namespace: o.namespace, labels: { ...o.labels, app: o.name } },
    spec: {
      replicas: o.replicas,
      selector: match,
      ...(o.strategy === undefined ? {} : { strategy: o.strategy }),
      template: {
        metadata: { labels: { app: o.name } },
        spec: { ...placement, terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: o.image }] },
      },
    },
  });
}
