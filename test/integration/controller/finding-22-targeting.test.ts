// Finding 22 of the expert review: targeting over-approximated. A GPU workload that tolerates the GPU taint
// got its image on every untainted CPU node, and a workload naming a RuntimeClass ignored the class's
// `scheduling`. Here, on a real API server with the controller process and the chart's RBAC: three nodes (one
// with allocatable nvidia.com/gpu, one plain, one labelled and tainted for a sandbox runtime); the GPU image
// goes to the GPU node only, and the sandboxed image to no node while its RuntimeClass is missing, then to the
// sandbox node only once the RuntimeClass exists.
import { expect } from 'chai';
import type { KubeClient } from '../../../lib/kube-client.ts';
import { errorText } from '../../../lib/errors.ts';
import type { ControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerTestbed } from '../../../local-cluster/controller-testbed.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { deployment, getPrePullImage, specImages } from '../../../local-cluster/cluster-fixtures.ts';

const GPU_NODE = 'f22-gpu';
const CPU_NODE = 'f22-cpu';
const SANDBOX_NODE = 'f22-sandbox';
const NODES = [GPU_NODE, CPU_NODE, SANDBOX_NODE];
const POOL = 'finding-22';
const KWARM_NS = 'kwarm-system';
const NS = 'finding-22';
const POLICY = 'finding-22';
const RUNTIME_CLASS = 'f22-gvisor';
const GPU_IMAGE = 'registry.invalid/f22/train:v1';
const SANDBOX_IMAGE = 'registry.invalid/f22/sandboxed:v1';
const GPU = 'nvidia.com/gpu';

function workload(name: string, image: string, podSpec: Record<string, unknown>): unknown {
  const d = deployment(NS, name, image, { pool: POOL }) as { metadata: { labels: Record<string, string> }; spec: { template: { spec: Record<string, unknown> } } };
  d.metadata.labels = { app: name, 'kwarm-test/suite': POOL };
  Object.assign(d.spec.template.spec, podSpec);
  return d;
}

describe('finding 22: targeting honours extended resources and RuntimeClass scheduling', function () {
  this.timeout(120_000);
  const bed = new ControllerTestbed({
    nodes: [
      { name: GPU_NODE, labels: { 'kwarm-test/pool': POOL }, taints: [{ key: GPU, value: 'present', effect: 'NoSchedule' }] },
      { name: CPU_NODE, labels: { 'kwarm-test/pool': POOL } },
      { name: SANDBOX_NODE, labels: { 'kwarm-test/pool': POOL, 'f22/sandbox': 'gvisor' }, taints: [{ key: 'f22/sandbox', value: 'gvisor', effect: 'NoSchedule' }] },
    ],
    namespaces: [NS],
    cleanup: [['delete', 'prepullpolicy', POLICY], ['delete', 'runtimeclass', RUNTIME_CLASS]],
  });
  let cp: ControlPlane;
  let admin: KubeClient;
  const signal = bed.signal;

  before(async () => {
    ({ cp, admin } = await bed.setUp());
    await admin.patch(`/api/v1/nodes/${GPU_NODE}/status`, 'merge', { status: { capacity: { cpu: '8', [GPU]: '2' }, allocatable: { cpu: '8', [GPU]: '2' } } }, signal);
    await admin.patch(`/api/v1/nodes/${CPU_NODE}/status`, 'merge', { status: { capacity: { cpu: '8' }, allocatable: { cpu: '8' } } }, signal);
    await bed.startController({ namespace: KWARM_NS, name: 'controller-f22' });
  });

  after(() => bed.tearDown());

  async function imagesByNode(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const n of NODES) out[n] = (await specImages(admin, n, signal)).sort();
    return out;
  }

  async function total(name: string): Promise<number | undefined> {
    return (await getPrePullImage(admin, NS, name, signal))?.status?.summary?.total;
  }

  it('GPU image on GPU nodes only; sandboxed image nowhere without its RuntimeClass, then on the sandbox node only', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
        spec: { selector: { matchLabels: { 'kwarm-test/suite': POOL } }, nodeSelector: { matchLabels: { 'kwarm-test/pool': POOL } } },
      }),
    });
    // Tolerates every taint and requests a GPU: only the GPU node has allocatable GPUs.
    await admin.create(`/apis/apps/v1/namespaces/${NS}/deployments`, workload('train', GPU_IMAGE, {
      tolerations: [{ operator: 'Exists' }],
      containers: [{ name: 'app', image: GPU_IMAGE, resources: { limits: { [GPU]: '1' } } }],
    }), signal);
    await admin.create(`/apis/apps/v1/namespaces/${NS}/deployments`, workload('sandboxed', SANDBOX_IMAGE, { runtimeClassName: RUNTIME_CLASS }), signal);

    await waitFor(async () => (await total('deployment.train.app')) === 1 && (await total('deployment.sandboxed.app')) === 0, {
      what: 'the GPU image on one node and the sandboxed one on none', timeoutMs: 45_000,
    }).catch(async (err: unknown) => {
      throw new Error(`${errorText(err)}: ${JSON.stringify(await imagesByNode())}\n${bed.controller?.tail(20) ?? ''}`);
    });
    expect(await imagesByNode()).to.deep.equal({ [GPU_NODE]: [GPU_IMAGE], [CPU_NODE]: [], [SANDBOX_NODE]: [] });

    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: RUNTIME_CLASS }, handler: 'runsc',
        scheduling: { nodeSelector: { 'f22/sandbox': 'gvisor' }, tolerations: [{ key: 'f22/sandbox', operator: 'Equal', value: 'gvisor', effect: 'NoSchedule' }] },
      }),
    });
    await waitFor(async () => (await specImages(admin, SANDBOX_NODE, signal)).includes(SANDBOX_IMAGE), {
      what: 'the sandboxed image on the sandbox node', timeoutMs: 30_000,
    }).catch(async (err: unknown) => {
      throw new Error(`${errorText(err)}: ${JSON.stringify(await imagesByNode())}\n${bed.controller?.tail(20) ?? ''}`);
    });
    expect(await imagesByNode()).to.deep.equal({ [GPU_NODE]: [GPU_IMAGE], [CPU_NODE]: [], [SANDBOX_NODE]: [SANDBOX_IMAGE] });
    await waitFor(async () => (await total('deployment.sandboxed.app')) === 1, { what: 'the sandboxed PrePullImage counting one node', timeoutMs: 30_000 });
  });
});
