// Finding 7 of the expert review (the inputs part): several inputs the API server accepts made the controller's
// apply fail on every pass, forever. A PrePullPolicy name longer than 63 characters (it becomes a label value);
// a workload image the PrePullImage CRD rejects (uppercase path, @sha512, more than 512 characters); more than
// 32 inherited pull secrets, or one whose name is not a DNS name. Here: the long name is refused at admission
// with a message naming the limit; the bad images are reported on the policy (InputsValid=False, naming the
// workload, container and image) and never written; the secrets are trimmed to 32 valid names and reported;
// the good container of the same workload gets its PrePullImage; and not one write is refused.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { getPolicy, getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';
import { prePullImageName } from '../../../controller/derive/workload-images.ts';

const KWARM_NS = 'kwarm-f7';
const NS = 'finding-7';
const NODE = 'f7-node';
const POOL = 'finding-7';
const GOOD = '127.0.0.1:5999/f7/app:v1';
const UPPER = 'docker.io/MyOrg/app:v1';
const SHA512 = `127.0.0.1:5999/f7/app@sha512:${'ab'.repeat(64)}`;
const LONG = `127.0.0.1:5999/f7/${'a'.repeat(500)}:v1`;

describe('finding 7: inputs that made a write fail forever', function () {
  this.timeout(180_000);
  const bed = new ControllerTestbed({ nodes: [{ name: NODE, labels: { 'kwarm-test/pool': POOL } }], namespaces: [NS], cleanup: [['delete', 'prepullpolicy', 'f7-inputs', '--ignore-not-found']] });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await bed.startController({ namespace: KWARM_NS, name: 'controller-f7' });
  });

  after(() => bed.tearDown());

  it('refuses a PrePullPolicy whose name is longer than 63 characters, saying why', async () => {
    const name = `p${'x'.repeat(63)}`;
    const { code, stderr } = await cp.kubectl(['create', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name }, spec: { selector: { matchLabels: { app: 'x' } } } }),
      allowFailure: true,
    });
    expect(code, `kubectl create of a ${name.length}-character name: ${stderr}`).to.not.equal(0);
    expect(stderr).to.contain('metadata.name');
    expect(stderr).to.contain('must be at most 63 characters');
    // 63 is still fine.
    const ok = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: name.slice(1) }, spec: { selector: { matchLabels: { app: 'x' } } } }),
      allowFailure: true,
    });
    expect(ok.code, ok.stderr).to.equal(0);
  });

  it('reports workload images the API cannot hold, writes the others, trims pull secrets, and no write is refused', async () => {
    const secrets = [...Array.from({ length: 40 }, (_, i) => `pull-${String(i).padStart(2, '0')}`), 'Not_A_DNS_Name'];
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: 'f7-inputs' },
        spec: { selector: { matchLabels: { 'kwarm.io/f7': 'true' }, namespaces: [NS] }, imagePullSecrets: { inherit: true } },
      }),
    });
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'apps/v1', kind: 'Deployment',
        metadata: { namespace: NS, name: 'mixed', labels: { 'kwarm.io/f7': 'true' } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'mixed' } },
          template: {
            metadata: { labels: { app: 'mixed' } },
            spec: {
              nodeSelector: { 'kwarm-test/pool': POOL },
              imagePullSecrets: secrets.map((name) => ({ name })),
              containers: [
                { name: 'good', image: GOOD },
                { name: 'upper', image: UPPER },
                { name: 'sha512', image: SHA512 },
                { name: 'long', image: LONG },
              ],
            },
          },
        },
      }),
    });
    const good = await waitFor(async () => getPrePullImage(admin, NS, prePullImageName('Deployment', 'mixed', 'good'), signal), {
      what: 'the good container\'s PrePullImage', timeoutMs: 60_000,
    });
    const names = (good.spec.imagePullSecrets ?? []).map((r) => r.name);
    expect(names).to.have.length(32);
    expect(names).to.not.include('Not_A_DNS_Name');
    expect(names).to.deep.equal(secrets.slice(0, 32));

    const policy = await waitFor(async () => {
      const p = await getPolicy(admin, 'f7-inputs', signal);
      return p?.status?.conditions?.some((c) => c.type === 'InputsValid' && c.status === 'False') === true ? p : undefined;
    }, { what: 'InputsValid=False on the policy', timeoutMs: 60_000 }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${bed.controller?.tail(30) ?? ''}`);
    });
    const message = policy.status?.conditions?.find((c) => c.type === 'InputsValid')?.message ?? '';
    for (const container of ['upper', 'sha512', 'long']) expect(message).to.contain(`Deployment ${NS}/mixed container ${container}`);
    expect(message).to.contain(UPPER);
    expect(message).to.contain('Not_A_DNS_Name');
    expect(message).to.contain('32');
    for (const container of ['upper', 'sha512', 'long']) {
      expect(await getPrePullImage(admin, NS, prePullImageName('Deployment', 'mixed', container), signal), container).to.equal(undefined);
    }
    // Not one apply was refused (before: every pass failed three applies, and the loop backed off to 30 s).
    const refused = await bed.controller!.metric('kwarm_api_write_errors_total');
    expect(refused ?? 0, bed.controller!.tail(30)).to.equal(0);

    // Fixing the workload clears the condition.
    await cp.kubectl(['-n', NS, 'patch', 'deployment', 'mixed', '--type=json', '-p', JSON.stringify([
      { op: 'replace', path: '/spec/template/spec/containers', value: [{ name: 'good', image: GOOD }] },
      { op: 'replace', path: '/spec/template/spec/imagePullSecrets', value: [{ name: 'pull-00' }] },
    ])]);
    await waitFor(async () => {
      const p = await getPolicy(admin, 'f7-inputs', signal);
      return p?.status?.conditions?.some((c) => c.type === 'InputsValid' && c.status === 'True') === true;
    }, { what: 'InputsValid=True once the workload is fixed', timeoutMs: 60_000 });
  });
});
