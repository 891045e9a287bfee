// Finding 11 of the expert review: an object that did not decode was treated as deleted. A newer CRD (applied
// before the binaries, as the README says) can accept what this build's decoders reject; the controller then
// dropped the policy, deleted (and with purgeOnDelete purged) every PrePullImage derived through it, and an
// agent dropped all its images ("NodeImageSet is gone"). Here, on a real API server of the test's own (its CRDs
// are relaxed as a newer release would widen them, so no other test sees them): the controller process and an
// agent's NodeImageSet watch meet objects they cannot decode and keep what they had.
import { expect } from 'chai';
import winston from 'winston';
import { NodeImageSetWatch, type WatchedNodeImageSet } from '../../../agent/node-image-set-watch.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { errorText } from '../../../lib/errors.ts';
import { startControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { createNode, deployment, getPrePullImage, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const NODE = 'f11-node';
const POOL = 'finding-11';
const NS = 'finding-11';
const POLICY = 'finding-11';
const KWARM_NS = 'kwarm-system';
const PPI = 'deployment.app.app';
const IMAGE = 'registry.invalid/f11/app:v1';
const SCHEMA = '/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties';

describe('finding 11: an object that does not decode is never treated as deleted', function () {
  this.timeout(180_000);
  let cp: ControlPlane | undefined;
  let admin: KubeClient;
  let controller: ControllerProcess | undefined;
  const ac = new AbortController();
  const signal = ac.signal;

  before(async () => {
    cp = await startControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    await createNode(admin, { name: NODE, labels: { 'kwarm-test/pool': POOL } }, signal);
    await cp.kubectl(['create', 'namespace', NS]);
  });

  after(async () => {
    await controller?.stop();
    ac.abort();
    admin.close();
    await cp?.stop();
  });

  async function startController(name: string): Promise<ControllerProcess> {
    return ControllerProcess.start({ kubeconfig: await controllerKubeconfig(cp!, KWARM_NS), namespace: KWARM_NS, name, args: ['--resync-period=1s'] });
  }

  /** Several passes' worth of time, checking nothing was deleted or purged at any point. */
  async function expectKept(what: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const p = await getPrePullImage(admin, NS, PPI, signal);
      expect(p, `${what}: the PrePullImage`).to.not.equal(undefined);
      expect(p?.metadata.deletionTimestamp, `${what}: deletion of the PrePullImage\n${controller?.tail(20) ?? ''}`).to.equal(undefined);
      const nis = await admin.get(`/apis/kwarm.io/v1alpha1/nodeimagesets/${NODE}`, signal) as { spec?: { removals?: unknown[] } };
      expect(nis.spec?.removals ?? [], `${what}: removals`).to.deep.equal([]);
      expect(await specImages(admin, NODE, signal), `${what}: spec.images`).to.deep.equal([IMAGE]);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  it('controller: a policy that stops decoding keeps its PrePullImages, also after a restart', async () => {
    controller = await startController('controller-f11');
    await cp!.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
        spec: { selector: { matchLabels: { 'kwarm-test/suite': POOL } }, nodeSelector: { matchLabels: { 'kwarm-test/pool': POOL } }, purgeOnDelete: true },
      }),
    });
    const d = deployment(NS, 'app', IMAGE, { pool: POOL }) as { metadata: { labels: Record<string, string> } };
    d.metadata.labels = { app: 'app', 'kwarm-test/suite': POOL };
    await cp!.kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });
    await waitFor(async () => (await specImages(admin, NODE, signal)).includes(IMAGE) && (await getPrePullImage(admin, NS, PPI, signal)) !== undefined, {
      what: 'the derived PrePullImage and its NodeImageSet entry', timeoutMs: 30_000,
    });

    // A newer CRD knows a workload kind this build does not; the policy uses it.
    await cp!.kubectl(['patch', 'crd', 'prepullpolicies.kwarm.io', '--type=json', '-p', JSON.stringify([{ op: 'remove', path: `${SCHEMA}/workloadKinds/items/enum` }])]);
    await waitFor(async () => {
      const r = await cp!.kubectl(['patch', 'prepullpolicy', POLICY, '--type=merge', '-p', JSON.stringify({ spec: { workloadKinds: ['Deployment', 'FutureKind'] } })], { allowFailure: true });
      return r.code === 0;
    }, { what: 'the API server to accept the new workload kind', timeoutMs: 30_000 });
    await expectKept('after the policy stopped decoding').catch((err: unknown) => { throw new Error(`${errorText(err)}\n${controller?.tail(20) ?? ''}`); });
    expect(controller.tail(200)).to.contain('keeping its last version');
    // An operator sees it: one PrePullPolicy that does not decode.
    expect(await controller.metrics()).to.match(/^kwarm_undecodable_objects\{kind="PrePullPolicy"\} 1$/m);

    // A controller that starts now has never seen the policy decode: the images are unknown, not unwanted.
    await controller.stop();
    controller = await startController('controller-f11-restarted');
    await waitFor(() => Promise.resolve((controller?.tail(200) ?? '').includes('caches synced')), { what: 'the restarted controller synced', timeoutMs: 30_000 });
    await expectKept('after a restart').catch((err: unknown) => { throw new Error(`${errorText(err)}\n${controller?.tail(20) ?? ''}`); });
    expect(controller.tail(200)).to.contain('ignoring an object that does not decode');
    const metrics = await controller.metrics();
    expect(metrics).to.match(/^kwarm_undecodable_objects\{kind="PrePullPolicy"\} 1$/m);
    expect(metrics).to.match(/^kwarm_undecodable_objects\{kind="PrePullImage"\} 0$/m);
  });

  it('agent: a NodeImageSet update that does not decode keeps the last spec', async () => {
    await controller?.stop();
    controller = undefined;
    const name = 'f11-agent-node';
    await admin.create('/apis/kwarm.io/v1alpha1/nodeimagesets', {
      apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet', metadata: { name },
      spec: { maxConcurrentPulls: 2, images: [{ image: IMAGE }] },
    }, signal);
    const seen: (WatchedNodeImageSet | undefined)[] = [];
    const log = winston.createLogger({ level: 'warn', transports: [new winston.transports.Console({ silent: true })] });
    const watch = new NodeImageSetWatch({ client: admin, nodeName: name, log, onChange: (obj) => { seen.push(obj); } });
    const stop = new AbortController();
    const running = watch.run(stop.signal);
    try {
      await waitFor(() => Promise.resolve(watch.current !== undefined), { what: 'the NodeImageSet seen', timeoutMs: 20_000 });
      // A newer CRD allows more pulls at once than this build's schema does.
      await cp!.kubectl(['patch', 'crd', 'nodeimagesets.kwarm.io', '--type=json', '-p', JSON.stringify([{ op: 'remove', path: `${SCHEMA}/maxConcurrentPulls/maximum` }])]);
      await waitFor(async () => {
        const r = await cp!.kubectl(['patch', 'nodeimageset', name, '--type=merge', '-p', JSON.stringify({ spec: { maxConcurrentPulls: 100 } })], { allowFailure: true });
        return r.code === 0;
      }, { what: 'the API server to accept 100 pulls at once', timeoutMs: 30_000 });
      // Nothing to wait for when nothing happens: the event arrives within milliseconds; give it two seconds.
      await new Promise((r) => setTimeout(r, 2000));
      expect(watch.healthy, 'the watch is open').to.equal(true);
      expect(seen.filter((o) => o === undefined), 'onChange(undefined): "NodeImageSet is gone"').to.deep.equal([]);
      expect(watch.current?.spec.images.map((e) => e.image)).to.deep.equal([IMAGE]);
      expect(watch.current?.spec.maxConcurrentPulls).to.equal(2);
    } finally {
      stop.abort();
      await running;
    }
  });
});
