// Finding 4 on real pods: kwarm installed from its chart (agent.pullSecretsFrom=controller, the default) on the
// real-node cluster; a PrePullImage with a pull secret is pulled on every node with the credentials each agent
// got from the controller's endpoint through the Service's cluster IP (kube-proxy), proving its node with the
// projected token the kubelet mounted. The cluster's registry takes anonymous pulls, so what is checked is the
// path of the credentials: the controller served each node, the agents read no Secret, no password is logged.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { describePods, helmInstallKwarm, kwarmLogs, kwarmPods, waitKwarmReady, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { startRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const NS = 'e2e-creds';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

interface NisJson {
  metadata: { name: string };
  spec?: { images?: { image: string; pullSecrets?: string[] }[] };
  status?: { images?: { image: string; phase: string; message?: string }[] };
}

describe('e2e on real nodes: agents get their node\'s pull credentials from the controller', function () {
  this.timeout(900_000);
  let cluster: RealCluster | undefined;
  let kwarm: KwarmInstallation | undefined;

  before(async () => {
    cluster = await startRealCluster({ nodes: 2 });
    kwarm = await helmInstallKwarm(cluster);
    await waitKwarmReady(cluster, kwarm.images);
  });

  after(async () => {
    await kwarm?.uninstall().catch(() => undefined);
    await cluster?.stop();
  });

  it('pulls an image with a pull secret on every node through the controller; nothing logs the password', async () => {
    const c = cluster!;
    const pushed = await buildAndPushImage(c.registry, { repository: 'e2e/creds', tag: 'v1', layers: [256 * 1024] });
    const image = c.nodeImage(pushed.reference);
    const host = image.split('/')[0]!;
    const config = JSON.stringify({ auths: { [host]: { username: 'u', password: PASSWORD, auth: Buffer.from(`u:${PASSWORD}`).toString('base64') } } });
    await c.kubectl(['create', 'namespace', NS]);
    await c.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1', kind: 'List', items: [
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'regcred', namespace: NS }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(config).toString('base64') } },
          { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'creds', namespace: NS }, spec: { image, nodes: { names: c.nodes.map((n) => n.name) }, imagePullSecrets: [{ name: 'regcred' }] } },
        ],
      }),
    });
    let sets: NisJson[] = [];
    try {
      await waitFor(async () => {
        sets = (JSON.parse((await c.kubectl(['get', 'nodeimagesets', '-o', 'json'])).stdout) as { items: NisJson[] }).items;
        return c.nodes.every((n) => sets.find((s) => s.metadata.name === n.name)?.status?.images?.find((i) => i.image === image)?.phase === 'Completed');
      }, { what: `${image} Completed on every node`, timeoutMs: 240_000, intervalMs: 1000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${JSON.stringify(sets.map((s) => s.status?.images))}\n${describePods(await kwarmPods(c))}\n${await kwarmLogs(c, 30)}`);
    }
    for (const n of c.nodes) {
      const entry = sets.find((s) => s.metadata.name === n.name)?.spec?.images?.find((i) => i.image === image);
      expect(entry?.pullSecrets?.[0], n.name).to.match(/^kwarm-pull\./);
    }
    const controllerLogs: string[] = [];
    for (const p of await kwarmPods(c, 'controller')) {
      controllerLogs.push((await c.kubectl(['logs', '-n', KWARM_NAMESPACE, p.metadata?.name ?? ''])).stdout);
    }
    const logs = controllerLogs.join('\n');
    for (const n of c.nodes) expect(logs, `served to ${n.name}`).to.match(new RegExp(`pull credentials served[^\\n]*"node":"${n.name}"`));
    const all = `${logs}\n${await kwarmLogs(c, 500)}`;
    for (const form of [PASSWORD, Buffer.from(`u:${PASSWORD}`).toString('base64')]) expect(all.includes(form)).to.equal(false);
    // The agent's own token may not read the copy.
    const can = await c.kubectl(['auth', 'can-i', 'get', `secrets/${sets[0]!.spec!.images!.find((i) => i.image === image)!.pullSecrets![0]!}`, '-n', KWARM_NAMESPACE,
      `--as=system:serviceaccount:${KWARM_NAMESPACE}:kwarm-agent`], { allowFailure: true });
    expect(can.stdout.trim()).to.equal('no');
  });
});
