// kwarm installed on the real-node cluster exactly as the README says, with the images built from this
// repository: kubelets pull and run the controller Deployment and the agent DaemonSet, whose pods become Ready
// through their own probes, with the chart's ServiceAccounts, projected tokens and admission policy; each agent
// reports its node's runtime in its own NodeImageSet's status. `kubectl apply -k` (an overlay of deploy/default
// setting the images) gives the same.
import { expect } from 'chai';
import { KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { helmInstallKwarm, kustomizeInstallKwarm, waitKwarmReady, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';

interface PodSpecJson {
  metadata: { name: string };
  spec: {
    nodeName: string;
    serviceAccountName: string;
    hostNetwork?: boolean;
    volumes?: { name: string; hostPath?: { path: string; type?: string }; projected?: object }[];
    containers: { securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean } }[];
  };
}

async function podsOf(cluster: RealCluster, component: string): Promise<PodSpecJson[]> {
  const { stdout } = await cluster.kubectl(['get', 'pods', '-n', KWARM_NAMESPACE, '-l', `app.kubernetes.io/component=${component}`, '-o', 'json']);
  return (JSON.parse(stdout) as { items: PodSpecJson[] }).items;
}

/**
 * A hand-written PrePullImage for every node; once Ready, each node's NodeImageSet status names the runtime its
 * agent talks to: written by that agent, with its kubelet-issued token, past the chart's admission policy.
 */
async function prePullEverywhere(cluster: RealCluster, name: string): Promise<Record<string, string>> {
  const image = cluster.nodeImage((await pushSleeperImage(cluster.registry, `install-check/${name}`, 'v1')).reference);
  await cluster.controlPlane.apply(JSON.stringify({
    apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name, namespace: 'default' },
    spec: { image, nodes: { selector: { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] } } },
  }));
  try {
    await cluster.controlPlane.waitFor(`prepullimage/${name}`, 'condition=Ready', { namespace: 'default', timeoutSeconds: 120 });
    const { stdout } = await cluster.kubectl(['get', 'nodeimagesets', '-o', 'json']);
    const items = (JSON.parse(stdout) as { items: { metadata: { name: string }; status?: { runtime?: { name?: string; version?: string } } }[] }).items;
    return Object.fromEntries(items.map((i) => [i.metadata.name, `${i.status?.runtime?.name ?? ''} ${i.status?.runtime?.version ?? ''}`.trim()]));
  } finally {
    await cluster.kubectl(['delete', 'prepullimage', name, '-n', 'default', '--ignore-not-found']);
  }
}

describe('install on real nodes: kwarm from its chart and from deploy/default, run by kubelets', function () {
  this.timeout(600_000);
  let cluster: RealCluster;
  let installed: KwarmInstallation | undefined;

  before(async () => {
    cluster = await sharedRealCluster();
  });
  afterEach(async () => {
    await installed?.uninstall();
    installed = undefined;
  });

  it('helm install kwarm ./charts/kwarm -n kwarm-system --create-namespace: the controller and one agent per node Ready through their probes, each agent reporting its node', async () => {
    const started = Date.now();
    installed = await helmInstallKwarm(cluster);
    const { agents, controllers } = await waitKwarmReady(cluster, installed.images);
    console.log(`      [figures] helm install to all ${agents.length} agents and the controller Ready: ${Date.now() - started} ms`);
    expect(controllers).to.have.length(1);

    const agentPods = await podsOf(cluster, 'agent');
    expect(agentPods.map((p) => p.spec.nodeName).sort()).to.deep.equal(cluster.nodes.map((n) => n.name).sort());
    for (const p of agentPods) {
      expect(p.spec.serviceAccountName).to.equal('kwarm-agent');
      expect(p.spec.hostNetwork ?? false).to.equal(false);
      // The only host path: the CRI socket (or its directory, so a restarted runtime's new socket is seen);
      // the API token is the kubelet's projected one.
      const hostPaths = p.spec.volumes?.flatMap((v) => (v.hostPath === undefined ? [] : [v.hostPath])) ?? [];
      // The CRI socket's directory (so a runtime restart's new socket is seen) and, with the disk guard on by
      // default, the image store it measures; nothing else of the node.
      expect(hostPaths).to.deep.equal([{ path: '/run/containerd', type: 'Directory' }, { path: '/var/lib/containerd', type: 'Directory' }]);
      expect(p.spec.volumes?.some((v) => v.projected !== undefined), 'projected service account token').to.equal(true);
      expect(p.spec.containers[0]?.securityContext).to.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    }
    const [controller] = await podsOf(cluster, 'controller');
    expect(controller?.spec.serviceAccountName).to.equal('kwarm-controller');

    // The admission policy that keeps each agent to its own node's status is installed and bound...
    const vap = await cluster.kubectl(['get', 'validatingadmissionpolicybindings', '-o', 'name']);
    expect(vap.stdout).to.match(/kwarm/);
    // ...and lets every agent, with its kubelet-issued token, write its own node's status.
    const runtimes = await prePullEverywhere(cluster, 'helm-check');
    for (const n of cluster.nodes) expect(runtimes[n.name], JSON.stringify(runtimes)).to.match(/containerd/);
  });

  it('kubectl apply -k with deploy/default and an overlay setting the images: the same, Ready through the probes', async () => {
    const started = Date.now();
    installed = await kustomizeInstallKwarm(cluster);
    const { agents } = await waitKwarmReady(cluster, installed.images);
    console.log(`      [figures] kubectl apply -k to all ${agents.length} agents and the controller Ready: ${Date.now() - started} ms`);
    const runtimes = await prePullEverywhere(cluster, 'kustomize-check');
    for (const n of cluster.nodes) expect(runtimes[n.name], JSON.stringify(runtimes)).to.match(/containerd/);
  });
});
