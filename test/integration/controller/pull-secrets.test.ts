// Pull secret copies on a real API server: referenced Secrets are copied into kwarm's namespace under
// deterministic names, kept in sync with their source and deleted when unreferenced; a missing or
// malformed Secret shows as a condition and an Event on the PrePullImage, and the controller carries on.
import { expect } from 'chai';
import { KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deleteNodes, deployment, getNodeImageSet, getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';

const NS = 'secrets-src';
const SUITE = 'secrets';
const NODE = 'sec-1';
const COPY = `kwarm-pull.${NS}.regcred`;

function dockerConfig(password: string): string {
  return Buffer.from(JSON.stringify({ auths: { 'r.example': { username: 'u', password } } })).toString('base64');
}

describe('controller: pull secret copies', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let controller: ControllerProcess | undefined;
  const ac = new AbortController();
  const signal = ac.signal;
  const copyPath = `/api/v1/namespaces/kwarm-system/secrets/${COPY}`;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    await createNode(admin, { name: NODE, labels: { 'kwarm-test/pool': SUITE } }, signal);
    await cp.kubectl(['create', 'namespace', NS]);
    controller = await ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp), name: 'controller-secrets' });
  });

  after(async () => {
    await controller?.stop();
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    await cp.kubectl(['delete', 'prepullpolicy', SUITE], { allowFailure: true });
    await deleteNodes(admin, [NODE], signal);
    ac.abort();
    admin.close();
  });

  it('copies, syncs and removes the Secrets a policy inherits, and reports missing or malformed ones', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata: {name: ${SUITE}}
spec:
  selector: {matchLabels: {kwarm-test/suite: ${SUITE}}}
  imagePullSecrets: {inherit: true, additional: [{name: missing}]}
`,
    });
    await admin.create(`/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'regcred' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': dockerConfig('one') } }, signal);
    await admin.create(`/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'broken' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from('{"credsStore":"desktop"}').toString('base64') } }, signal);
    const d = deployment(NS, 'app', 'r.example/app:v1', { pool: SUITE, imagePullSecrets: ['regcred', 'broken'] }) as { metadata: { labels: Record<string, string> } };
    d.metadata.labels = { app: 'app', 'kwarm-test/suite': SUITE };
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });

    // The usable Secret is copied and named in the NodeImageSet; the others are reported.
    const copy = await waitFor(async () => await admin.getOptional(copyPath, signal) as { data: Record<string, string>; metadata: { annotations: Record<string, string> } } | undefined, { what: 'the copy of regcred' });
    expect(copy.data['.dockerconfigjson']).to.equal(dockerConfig('one'));
    expect(copy.metadata.annotations['kwarm.io/source']).to.equal(`${NS}/regcred`);
    await waitFor(async () => (await getNodeImageSet(admin, NODE, signal))?.spec.images[0]?.pullSecrets.includes(COPY), { what: 'the NodeImageSet to name the copy' });
    // The namespace was referenced for the first time: its Secrets were listed before the image went to the node,
    // so no version of the NodeImageSet offered the image without its pull secret (the agent would have pulled
    // without credentials and failed).
    const nis = await admin.get(`/apis/kwarm.io/v1alpha1/nodeimagesets/${NODE}`, signal) as { metadata: { generation?: number } };
    expect(nis.metadata.generation, 'NodeImageSet spec versions before it named the copy').to.equal(1);
    const ppi = await waitFor(async () => {
      const p = await getPrePullImage(admin, NS, 'deployment.app.app', signal);
      return p?.status?.conditions?.find((c) => c.type === 'PullSecretsReady') !== undefined ? p : undefined;
    }, { what: 'the PullSecretsReady condition' });
    const cond = ppi.status?.conditions?.find((c) => c.type === 'PullSecretsReady');
    expect(cond).to.include({ status: 'False', reason: 'SecretUnusable' });
    expect(cond?.message).to.contain(`${NS}/missing: SecretNotFound`);
    expect(cond?.message).to.contain(`${NS}/broken: SecretMalformed`);
    const events = await cp.kubectl(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=deployment.app.app,reason=PullSecretProblem', '-o', 'name']);
    expect(events.stdout.trim()).to.not.equal('');

    // Rotating the source updates the copy.
    await admin.patch(`/api/v1/namespaces/${NS}/secrets/regcred`, 'merge', { data: { '.dockerconfigjson': dockerConfig('two') } }, signal);
    await waitFor(async () => ((await admin.get(copyPath, signal)) as { data: Record<string, string> }).data['.dockerconfigjson'] === dockerConfig('two'), { what: 'the copy to follow the source' });

    // No longer referenced: the copy goes, and the NodeImageSet no longer names it.
    await cp.kubectl(['-n', NS, 'patch', 'deployment', 'app', '--type=json', '-p', '[{"op":"remove","path":"/spec/template/spec/imagePullSecrets"}]']);
    await waitFor(async () => (await admin.getOptional(copyPath, signal)) === undefined, { what: 'the unreferenced copy to be deleted' });
    await waitFor(async () => (await getNodeImageSet(admin, NODE, signal))?.spec.images[0]?.pullSecrets.length === 0, { what: 'the NodeImageSet to drop the copy' });
    expect(controller!.process.running).to.equal(true);
  });
});
