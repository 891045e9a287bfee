// Finding 15 of the expert review: what the controller caches. ConfigMaps were watched cluster-wide and
// filtered by spec.configMaps.namespaces afterwards, so every selected ConfigMap of the cluster was held; and
// all five built-in workload kinds were list-watched whatever the policies named (10^5 Jobs in a batch
// cluster, for a policy that only names Deployments). Here the controller's own Informers run against the
// real API server, and the test counts what their caches hold. The API server is this test's own: what the
// caches hold depends on every policy and workload in the cluster, and other tests leave theirs in a shared one.
import { expect } from 'chai';
import winston from 'winston';
import { KubeClient } from '../../../lib/kube-client.ts';
import { Informers } from '../../../controller/sources/informers.ts';
import { startControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const NS_A = 'f15-a';
const NS_B = 'f15-b';
const POLICY = 'f15';
const LABEL = 'kwarm-test/f15-images';

function configMap(namespace: string, name: string): unknown {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace, name, labels: { [LABEL]: 'true' } }, data: { images: 'r.example/f15:1' } };
}

const podSpec = { restartPolicy: 'Never', containers: [{ name: 'c', image: 'r.example/f15-job:1' }] };

describe('finding 15: the controller caches only what the policies name', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let informers: Informers;
  let running: Promise<void> | undefined;
  const ac = new AbortController();
  const signal = ac.signal;

  before(async () => {
    cp = await startControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    await cp.kubectl(['create', 'namespace', NS_A]);
    await cp.kubectl(['create', 'namespace', NS_B]);
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1', kind: 'List', items: [
          configMap(NS_A, 'a1'), configMap(NS_A, 'a2'), configMap(NS_B, 'b1'), configMap(NS_B, 'b2'),
          { apiVersion: 'batch/v1', kind: 'Job', metadata: { namespace: NS_A, name: 'job', labels: { app: 'f15' } }, spec: { suspend: true, template: { spec: podSpec } } },
          {
            apiVersion: 'batch/v1', kind: 'CronJob', metadata: { namespace: NS_A, name: 'cron', labels: { app: 'f15' } },
            spec: { schedule: '0 0 1 1 *', suspend: true, jobTemplate: { spec: { template: { spec: podSpec } } } },
          },
          {
            apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
            spec: { selector: { matchLabels: { app: 'f15' } }, configMaps: { selector: { matchLabels: { [LABEL]: 'true' } }, namespaces: [NS_A] } },
          },
        ],
      }),
    });
    informers = new Informers({ client: admin, log: winston.createLogger({ silent: true }), namespace: 'kwarm-f15', onChange: () => undefined, argoDiscoveryIntervalMs: 60_000 });
    running = informers.run(signal);
    await informers.waitForSync(signal);
  });

  after(async () => {
    ac.abort();
    await running;
    admin.close();
    await cp.stop();
  });

  /** Every ConfigMap the controller's ConfigMap caches hold, as namespace/name. */
  function cachedConfigMaps(): string[] {
    return [...informers.configMapWatches.synced().values()].flatMap((cms) => [...cms].map((c) => `${c.namespace}/${c.name}`)).sort();
  }

  it('watches ConfigMaps only in the namespaces spec.configMaps.namespaces names', () => {
    // Before: one cluster-wide watch held f15-b's ConfigMaps too.
    expect(cachedConfigMaps()).to.deep.equal([`${NS_A}/a1`, `${NS_A}/a2`]);
  });

  it('watches only the workload kinds some policy names, starting and stopping them as policies change', async () => {
    const kinds = (): string[] => [...informers.workloads.keys()].sort();
    const cachedKinds = (): string[] => [...new Set(informers.workloadViews().map((w) => w.template.identity.kind))].sort();
    // Before: all five kinds were list-watched, and the Job and CronJob cached, for a policy naming Deployment only.
    expect(kinds()).to.deep.equal(['Deployment']);
    expect(cachedKinds()).to.deep.equal([]);

    await cp.kubectl(['patch', 'prepullpolicy', POLICY, '--type=merge', '-p', JSON.stringify({ spec: { workloadKinds: ['Deployment', 'Job'] } })]);
    await waitFor(() => {
      informers.followPolicies(signal);
      return cachedKinds().includes('Job');
    }, { what: 'the Job watch to start and list', timeoutMs: 30_000 });
    expect(kinds()).to.deep.equal(['Deployment', 'Job']);
    expect(cachedKinds()).to.deep.equal(['Job']);

    await cp.kubectl(['patch', 'prepullpolicy', POLICY, '--type=merge', '-p', JSON.stringify({ spec: { workloadKinds: ['Deployment'] } })]);
    await waitFor(() => {
      informers.followPolicies(signal);
      return !kinds().includes('Job');
    }, { what: 'the Job watch to stop', timeoutMs: 30_000 });
    expect(cachedKinds()).to.deep.equal([]);
  });
});
