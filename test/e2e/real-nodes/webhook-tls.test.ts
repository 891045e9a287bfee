// The rollout gate's webhook reached by a real API server: kwarm installed from its chart with
// rolloutGate.enabled on the real-node cluster, the API server calling /mutate-pods through the webhook Service
// over TLS it verifies with the caBundle kwarm wrote; the certificate rotated (Secret deleted) and trusted
// again; the webhook down (controller scaled to 0) and pods still created. The API server's own audit
// annotations say whether each pod's webhook call succeeded (mutation.webhook.admission.k8s.io/...) or failed
// open (failed-open.mutation.webhook.admission.k8s.io/...), whatever the handler answers.
//
// /mutate-pods answers with the placeholder allow-all handler until the rollout gate's decision is wired in.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { helmInstallKwarm, kwarmLogs, kwarmPods, waitKwarmReady, CONTROLLER_DEPLOYMENT, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const NS = 'e2e-webhook';
const CONFIG = 'kwarm-rollout-gate';
const SECRET = 'kwarm-webhook-cert';
const WEBHOOK = 'rollout-gate.kwarm.io';

type Call = 'called' | 'failed-open' | 'not-called';

interface AuditEvent {
  verb?: string;
  stage?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
  annotations?: Record<string, string>;
}

describe('e2e on real nodes: the rollout gate webhook over TLS (chart, self-managed certificate)', function () {
  this.timeout(600_000);
  let cluster: RealCluster;
  let kwarm: KwarmInstallation | undefined;
  let podCount = 0;

  /** What the API server's audit log says about the webhook for the creation of pod namespace/name. */
  function webhookCall(namespace: string, name: string): Call | undefined {
    const lines = readFileSync(cluster.controlPlane.auditLogPath, 'utf8').split('\n');
    for (const line of lines) {
      if (!line.includes(`"name":"${name}"`)) continue;
      const ev = JSON.parse(line) as AuditEvent;
      if (ev.verb !== 'create' || ev.stage !== 'ResponseComplete' || ev.objectRef?.resource !== 'pods'
        || ev.objectRef.namespace !== namespace || ev.objectRef.name !== name) continue;
      const entries = Object.entries(ev.annotations ?? {});
      if (entries.some(([k, v]) => k.startsWith('failed-open.mutation.webhook.admission.k8s.io/') && v === WEBHOOK)) return 'failed-open';
      if (entries.some(([k, v]) => k.startsWith('mutation.webhook.admission.k8s.io/') && v.includes(`"configuration":"${CONFIG}"`))) return 'called';
      return 'not-called';
    }
    return undefined;
  }

  /** Creates a pod that never schedules (only its admission matters) and returns what happened to its webhook call. */
  async function createPod(namespace = NS): Promise<{ name: string; call: Call; ms: number }> {
    const name = `p${++podCount}`;
    const started = Date.now();
    await cluster.kubectl(['create', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace },
        spec: { nodeSelector: { 'kwarm.io/no-such-node': 'true' }, containers: [{ name: 'c', image: 'kwarm.invalid/none:1' }] },
      }),
    });
    const ms = Date.now() - started;
    const call = await waitFor(() => webhookCall(namespace, name), { what: `the audit event of pod ${namespace}/${name}`, timeoutMs: 30_000, intervalMs: 200 });
    return { name, call, ms };
  }

  async function caBundle(): Promise<string> {
    const { stdout } = await cluster.kubectl(['get', 'mutatingwebhookconfiguration', CONFIG, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}']);
    return Buffer.from(stdout.trim(), 'base64').toString();
  }

  async function secretCa(): Promise<string> {
    const r = await cluster.kubectl(['get', 'secret', SECRET, '-n', KWARM_NAMESPACE, '-o', 'jsonpath={.data.ca\\.crt}'], { allowFailure: true });
    return r.code === 0 ? Buffer.from(r.stdout.trim(), 'base64').toString() : '';
  }

  async function scaleController(replicas: number): Promise<void> {
    await cluster.kubectl(['scale', 'deployment', CONTROLLER_DEPLOYMENT, '-n', KWARM_NAMESPACE, `--replicas=${replicas}`]);
  }

  before(async () => {
    cluster = await sharedRealCluster();
    kwarm = await helmInstallKwarm(cluster, { set: { 'rolloutGate.enabled': true } });
    // Ready includes the webhook: a certificate served and its CA in the caBundle.
    await waitKwarmReady(cluster, kwarm.images);
    await cluster.kubectl(['create', 'namespace', NS]);
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false']);
    await kwarm?.uninstall();
  });

  it('the API server calls /mutate-pods over TLS verified with the caBundle kwarm wrote', async () => {
    const ca = await caBundle();
    expect(ca).to.include('BEGIN CERTIFICATE');
    expect(ca).to.equal(await secretCa());
    const pod = await createPod();
    expect(pod.call, await kwarmLogs(cluster)).to.equal('called');
    // kube-system (and kwarm's own namespace) are never sent to the webhook.
    expect((await createPod('kube-system')).call).to.equal('not-called');
    await cluster.kubectl(['delete', 'pod', '-n', 'kube-system', `p${podCount}`, '--wait=false']);
  });

  it('rotation: the Secret deleted, kwarm issues a new CA and certificate, writes the caBundle and serves it without a restart', async () => {
    const oldCa = await caBundle();
    const restartsBefore = (await kwarmPods(cluster, 'controller')).map((p) => p.status?.containerStatuses?.[0]?.restartCount ?? 0);
    await cluster.kubectl(['delete', 'secret', SECRET, '-n', KWARM_NAMESPACE]);
    await waitFor(async () => {
      const [ca, inSecret] = [await caBundle(), await secretCa()];
      return ca !== oldCa && ca === inSecret;
    }, { what: 'a new CA in the Secret and the caBundle', timeoutMs: 60_000, intervalMs: 500 });
    // The replica swaps its certificate as it writes the caBundle; a pod created in the gap fails open.
    const called = await waitFor(async () => (await createPod()).call === 'called', { what: 'a webhook call trusted with the new caBundle', timeoutMs: 60_000, intervalMs: 500 });
    expect(called).to.equal(true);
    const restartsAfter = (await kwarmPods(cluster, 'controller')).map((p) => p.status?.containerStatuses?.[0]?.restartCount ?? 0);
    expect(restartsAfter).to.deep.equal(restartsBefore);
  });

  it('webhook down (controller scaled to 0): pods are still created, the call failed open', async () => {
    await scaleController(0);
    try {
      await waitFor(async () => (await kwarmPods(cluster, 'controller')).length === 0, { what: 'no controller pod', timeoutMs: 120_000, intervalMs: 1000 });
      const pod = await createPod();
      expect(pod.call).to.equal('failed-open');
      console.log(`    pod created with the webhook down in ${pod.ms} ms (kubectl create, failurePolicy Ignore)`);
      const { stdout } = await cluster.kubectl(['get', 'pod', pod.name, '-n', NS, '-o', 'jsonpath={.metadata.uid}']);
      expect(stdout.trim()).to.not.equal('');
    } finally {
      await scaleController(1);
    }
    if (kwarm !== undefined) await waitKwarmReady(cluster, kwarm.images);
    expect((await createPod()).call).to.equal('called');
  });
});
