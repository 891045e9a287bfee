// Finding 12 of the expert review: a NotReady or cordoned node had its NodeImageSet emptied, so its agent
// cancelled running pulls, and a purge meanwhile could remove images other PrePullImages still wanted there
// (the agent's "Wanted" looks at spec.images). Here, on a real API server with the controller process: one
// node is cordoned (`kubectl cordon`), the other turns NotReady; both keep their entry, and the image comes
// back as a target once they are Ready and uncordoned again.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import { errorText } from '../../../lib/errors.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { getPrePullImage, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const CORDONED = 'f12-cordoned';
const NOT_READY = 'f12-not-ready';
const POOL = 'finding-12';
const KWARM_NS = 'kwarm-system';
const NS = 'finding-12';
const IMAGE = 'registry.invalid/f12/app:v1';

describe('finding 12: NotReady and cordoned nodes keep their NodeImageSet entries', function () {
  this.timeout(120_000);
  const bed = new ControllerTestbed({ nodes: [CORDONED, NOT_READY].map((name) => ({ name, labels: { 'kwarm-test/pool': POOL } })), namespaces: [NS] });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await bed.startController({ namespace: KWARM_NS, name: 'controller-f12' });
  });

  after(() => bed.tearDown());

  async function targets(): Promise<number | undefined> {
    return (await getPrePullImage(admin, NS, 'app', signal))?.status?.summary?.total;
  }

  async function setReady(node: string, ready: boolean): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await admin.patch(`/api/v1/nodes/${node}/status`, 'strategic', {
      status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? 'KubeletReady' : 'KubeletNotReady', message: 'test', lastHeartbeatTime: now, lastTransitionTime: now }] },
    }, signal);
  }

  it('keeps the entry while a node is cordoned or NotReady, and targets it again once it is back', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'app', namespace: NS },
        spec: { image: IMAGE, nodes: { selector: { matchLabels: { 'kwarm-test/pool': POOL } } } },
      }),
    });
    await waitFor(async () => (await specImages(admin, CORDONED, signal)).includes(IMAGE) && (await specImages(admin, NOT_READY, signal)).includes(IMAGE) && (await targets()) === 2, {
      what: 'the image on both nodes', timeoutMs: 30_000,
    });

    await cp.kubectl(['cordon', CORDONED]);
    await setReady(NOT_READY, false);
    // The roll-up no longer counts them: the controller has planned with both nodes out.
    await waitFor(async () => (await targets()) === 0, { what: 'both nodes out of the targets', timeoutMs: 30_000 }).catch(async (err: unknown) => {
      throw new Error(`${errorText(err)} (total ${String(await targets())})\n${bed.controller?.tail(20) ?? ''}`);
    });
    // A further pass changes nothing either.
    await cp.kubectl(['-n', NS, 'label', 'prepullimage', 'app', 'poke=1']);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await specImages(admin, CORDONED, signal)).to.deep.equal([IMAGE]);
    expect(await specImages(admin, NOT_READY, signal)).to.deep.equal([IMAGE]);

    await cp.kubectl(['uncordon', CORDONED]);
    await setReady(NOT_READY, true);
    await waitFor(async () => (await targets()) === 2, { what: 'both nodes targets again', timeoutMs: 30_000 });
    expect(await specImages(admin, CORDONED, signal)).to.deep.equal([IMAGE]);
  });
});
