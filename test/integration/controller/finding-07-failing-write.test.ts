// Finding 7 of the review (the loop part): one write the API server refuses on every try must not slow the
// others. A ValidatingAdmissionPolicy in the test's own API server refuses the PrePullImage derived from one
// Deployment; while the controller keeps failing that write, another Deployment's image change still
// reaches its NodeImageSets within the usual reaction time, and the refused write is still retried (it
// lands once the policy is gone). Before the fix, every failed pass doubled a sleep of the whole loop
// (0.4 s up to 30 s) that no event could cut short.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { deployment, getPrePullImage, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const NS = 'finding-07';
const POOL = 'finding-07';
const NODES = ['f07-1', 'f07-2'];
const LABEL = 'kwarm-test/finding';
const ADMISSION = 'finding-07-refuse-one-prepullimage';
/** The reaction the README promises is well under a second; this leaves room for a loaded machine. */
const REACTION_MS = 5000;
/**
 * Failures of the refused write before the image change: on the old loop the sleep after the sixth failed
 * pass is 12.8 s, far beyond REACTION_MS.
 */
const FAILURES_BEFORE_CHANGE = 6;

function labelled(name: string, image: string): unknown {
  const d = deployment(NS, name, image, { pool: POOL }) as { metadata: { labels: Record<string, string> } };
  d.metadata.labels[LABEL] = '07';
  return d;
}

describe('finding 7: a write the API server always refuses does not slow the others', function () {
  this.timeout(240_000);
  const bed = new ControllerTestbed({
    nodes: NODES.map((name) => ({ name, labels: { 'kwarm-test/pool': POOL } })),
    namespaces: [NS],
    cleanup: [['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', ADMISSION, '--wait=false'], ['delete', 'prepullpolicy', 'finding-07', '--wait=false']],
  });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    // Refuses, in this namespace only, every PrePullImage whose image names the repository "refused".
    await cp.apply(`
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: ${ADMISSION}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["kwarm.io"]
        apiVersions: ["*"]
        operations: ["CREATE", "UPDATE"]
        resources: ["prepullimages"]
  validations:
    - expression: "!object.spec.image.contains('/refused:')"
      message: refused by the finding-07 test
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: ${ADMISSION}
spec:
  policyName: ${ADMISSION}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: ${NS}
`);
    // The API server takes a moment to load a new policy: wait until a dry run is refused.
    const probe = {
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { namespace: NS, name: 'probe' }, spec: { image: 'r.example/refused:probe' },
    };
    await waitFor(async () => {
      const r = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(probe), allowFailure: true });
      return r.code !== 0 && `${r.stdout}${r.stderr}`.includes('refused by the finding-07 test');
    }, { what: 'the ValidatingAdmissionPolicy to refuse a PrePullImage', timeoutMs: 30_000 });
    await cp.apply(`
apiVersion: kwarm.io/v1alpha1
kind: PrePullPolicy
metadata:
  name: finding-07
spec:
  selector:
    matchLabels:
      ${LABEL}: "07"
`);
    await bed.startController({ name: 'controller-finding-07', args: ['--resync-period=60s'] });
  });

  after(() => bed.tearDown());

  it('keeps reacting to other changes at once, and still retries the refused write', async () => {
    const c = bed.controller;
    if (c === undefined) throw new Error('no controller');
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(labelled('good', 'r.example/good:v1')) });
    for (const n of NODES) await waitFor(async () => (await specImages(admin, n, signal)).includes('r.example/good:v1'), { what: `${n} to want good:v1` });

    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(labelled('broken', 'r.example/refused:v1')) });
    const refusedWrites = async (): Promise<number> => (await c.metric('kwarm_api_write_errors_total', { kind: 'prepullimages' })) ?? 0;
    await waitFor(async () => (await refusedWrites()) >= FAILURES_BEFORE_CHANGE, { what: `${FAILURES_BEFORE_CHANGE} refused PrePullImage writes`, timeoutMs: 90_000 });
    expect(await getPrePullImage(admin, NS, 'deployment.broken.app', signal)).to.equal(undefined);

    // Another workload's image change reaches every NodeImageSet within the reaction time.
    const start = Date.now();
    await cp.kubectl(['-n', NS, 'set', 'image', 'deployment/good', 'app=r.example/good:v2']);
    for (const n of NODES) {
      await waitFor(async () => (await specImages(admin, n, signal)).includes('r.example/good:v2'), { what: `${n} to want good:v2`, timeoutMs: 60_000 });
    }
    const reactionMs = Date.now() - start;
    expect(reactionMs, `good:v2 reached the NodeImageSets after ${reactionMs} ms`).to.be.below(REACTION_MS);
    expect((await getPrePullImage(admin, NS, 'deployment.good.app', signal))?.spec.image).to.equal('r.example/good:v2');

    // The refused write backs off, but is not given up: without the policy it lands (the back-off is at most 30 s).
    const before = await refusedWrites();
    await cp.kubectl(['delete', 'validatingadmissionpolicybinding', ADMISSION]);
    const landed = await waitFor(() => getPrePullImage(admin, NS, 'deployment.broken.app', signal), { what: 'the once refused PrePullImage', timeoutMs: 60_000 });
    expect(landed.spec.image).to.equal('r.example/refused:v1');
    // Backed off, not hammered: a handful of further tries while the reaction test ran, not one per event.
    expect((await refusedWrites()) - before).to.be.below(5);
  });
});
