// Finding 15 of the expert review: what the controller caches. ConfigMaps were watched cluster-wide and
// filtered by spec.configMaps.namespaces afterwards, so every selected ConfigMap of the cluster was held; and
// all five built-in workload kinds were list-watched whatever the policies named (10^5 Jobs in a batch
// cluster, for a policy that only names Deployments). Here the controller's own Informers run against the
// real API server, and the test counts what their caches hold. The API server is this test's own: what the
// caches hold depends on every policy and workload in the cluster, and other tests leave theirs in a shared one.
// Pull Secrets: every dockerconfigjson/dockercfg Secret of the cluster was cached, with its data; now only those
// of namespaces whose PrePullImages name pull secrets, and a namespace not listed yet reads 'unknown', not absent.
import { expect } from 'chai';
import winston from 'winston';
import { KubeClient, type ListPage, type ListQuery } from '../../../lib/kube-client.ts';
import { Informers } from '../../../controller/sources/informers.ts';
import { namespacesWithPullSecrets, planSecretCopies, secretCopyName } from '../../../controller/derive/pull-secrets.ts';
import { SECRET_COPY_LABEL, SECRET_SOURCE_ANNOTATION } from '../../../api/v1alpha1/labels.ts';
import { startControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const NS_A = 'f15-a';
const NS_B = 'f15-b';
/** Referenced only once the test adds a PrePullImage there; its Secret list is held back until the test releases it. */
const NS_C = 'f15-c';
const POLICY = 'f15';
const LABEL = 'kwarm-test/f15-images';

function configMap(namespace: string, name: string): unknown {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace, name, labels: { [LABEL]: 'true' } }, data: { images: 'r.example/f15:1' } };
}

function pullSecret(namespace: string, name: string): unknown {
  const config = Buffer.from(JSON.stringify({ auths: { 'r.example': { auth: Buffer.from('u:p').toString('base64') } } })).toString('base64');
  return { apiVersion: 'v1', kind: 'Secret', metadata: { namespace, name }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': config } };
}

function prePullImage(namespace: string, secret: string): unknown {
  return { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { namespace, name: 'f15' }, spec: { image: 'r.example/f15-ppi:1', imagePullSecrets: [{ name: secret }] } };
}

/**
 * The real client, except that listing NS_C's Secrets waits until `release` is called: the fault injected is a
 * list that has not come back yet, which the real API server answers too fast to observe.
 */
class HeldListClient extends KubeClient {
  private released!: () => void;
  private readonly gate = new Promise<void>((resolve) => { this.released = resolve; });
  heldLists = 0;

  release(): void {
    this.released();
  }

  override async *listPages(path: string, query: ListQuery, signal: AbortSignal): AsyncGenerator<ListPage, void, undefined> {
    if (path === `/api/v1/namespaces/${NS_C}/secrets`) {
      this.heldLists++;
      await this.gate;
    }
    yield* super.listPages(path, query, signal);
  }
}

const podSpec = { restartPolicy: 'Never', containers: [{ name: 'c', image: 'r.example/f15-job:1' }] };

describe('finding 15: the controller caches only what the policies name', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  let client: HeldListClient;
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
    await cp.kubectl(['create', 'namespace', NS_C]);
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1', kind: 'List', items: [
          configMap(NS_A, 'a1'), configMap(NS_A, 'a2'), configMap(NS_B, 'b1'), configMap(NS_B, 'b2'),
          pullSecret(NS_A, 'regcred'), pullSecret(NS_A, 'unused'), pullSecret(NS_B, 'other-team'), pullSecret(NS_C, 'later'),
          prePullImage(NS_A, 'regcred'),
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
    client = new HeldListClient(cp.kubeConfig());
    informers = new Informers({ client, log: winston.createLogger({ silent: true }), namespace: 'kwarm-f15', onChange: () => undefined, argoDiscoveryIntervalMs: 60_000 });
    running = informers.run(signal);
    await informers.waitForSync(signal);
  });

  after(async () => {
    ac.abort();
    await running;
    client.release();
    admin.close();
    client.close();
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

  it('caches pull Secrets only in the namespaces whose PrePullImages name some', () => {
    // Before: one cluster-wide watch per type held f15-b's and f15-c's Secrets too, with their data.
    expect(informers.secretSources.namespaces()).to.deep.equal([NS_A]);
    expect(informers.secretSources.cachedKeys()).to.deep.equal([`${NS_A}/regcred`, `${NS_A}/unused`]);
    expect(informers.sourceSecret(`${NS_A}/regcred`)).to.include({ namespace: NS_A, name: 'regcred' });
    expect(informers.sourceSecret(`${NS_A}/missing`)).to.equal(undefined);
    expect(informers.sourceSecret(`${NS_B}/other-team`)).to.equal('unknown');
  });

  it('reads a newly referenced namespace as unknown until its Secrets are listed, then watches it; stops when unreferenced', async () => {
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(prePullImage(NS_C, 'later')) });
    const followCached = (): void => {
      informers.followSecrets(namespacesWithPullSecrets([...informers.prePullImages.values()].map((p) => ({ namespace: p.metadata.namespace, imagePullSecrets: p.spec.imagePullSecrets }))), signal);
    };
    await waitFor(() => {
      followCached();
      return client.heldLists >= 2;
    }, { what: `the controller to list ${NS_C}'s Secrets of both types`, timeoutMs: 30_000 });
    expect(informers.secretSources.namespaces()).to.deep.equal([NS_A, NS_C]);
    // Not listed yet: unknown, so the planner keeps the copy it made (SecretNotFound would remove it).
    expect(informers.sourceSecret(`${NS_C}/later`)).to.equal('unknown');
    expect(informers.sourceSecret(`${NS_C}/none`)).to.equal('unknown');
    const copies = new Map([[secretCopyName(NS_C, 'later'), {
      namespace: 'kwarm-f15', name: secretCopyName(NS_C, 'later'), type: 'kubernetes.io/dockerconfigjson', data: {},
      labels: { [SECRET_COPY_LABEL]: 'true' }, annotations: { [SECRET_SOURCE_ANNOTATION]: `${NS_C}/later` },
    }]]);
    const held = planSecretCopies([`${NS_C}/later`], (k) => informers.sourceSecret(k), copies);
    expect(held.remove).to.deep.equal([]);
    expect(held.problems.size).to.equal(0);

    client.release();
    await waitFor(() => typeof informers.sourceSecret(`${NS_C}/later`) === 'object', { what: `${NS_C}'s Secrets to be listed`, timeoutMs: 30_000 });
    expect(informers.sourceSecret(`${NS_C}/none`)).to.equal(undefined);
    const listed = planSecretCopies([`${NS_C}/later`, `${NS_C}/none`], (k) => informers.sourceSecret(k), copies);
    expect(listed.apply.map((c) => c.name)).to.deep.equal([secretCopyName(NS_C, 'later')]);
    expect(listed.problems.get(`${NS_C}/none`)?.reason).to.equal('SecretNotFound');

    await cp.kubectl(['-n', NS_C, 'delete', 'prepullimage', 'f15']);
    await waitFor(() => {
      followCached();
      return !informers.secretSources.namespaces().includes(NS_C);
    }, { what: `the ${NS_C} Secret watch to stop`, timeoutMs: 30_000 });
    expect(informers.secretSources.cachedKeys()).to.deep.equal([`${NS_A}/regcred`, `${NS_A}/unused`]);
  });
});
