// The rollout gate end to end on real kubelets and a real scheduler, kwarm installed once from its chart with
// rolloutGate.enabled (one installation for both parts: a helm install and uninstall cost a minute and more).
//
// The webhook: the API server calls /mutate-pods through the webhook Service over TLS it verifies with the caBundle
// kwarm wrote; the certificate rotated (Secret deleted) and trusted again; the webhook down (controller scaled to 0)
// and pods still created. The API server's own audit annotations say whether each pod's webhook call succeeded
// (mutation.webhook.admission.k8s.io/...) or failed open (failed-open.mutation.webhook.admission.k8s.io/...).
//
// The gate: a PrePullPolicy with rolloutGate.enabled and a labelled Deployment. After an image change the new pods
// are created gated by the webhook, wait while kwarm pulls, are released by the controller once the image is on
// every node (Event RolloutGateReleased), and start with the kubelet's "already present" event and no "Pulling".
// With the registry down, the gate comes off at the policy's timeout (RolloutGateTimedOut). The controller killed
// (forced, grace 0) while pods are gated: the next leader releases them. The pod writes kwarm must never make are
// refused for the token the kubelet mounted into the controller pod. helm uninstall leaves no pod gated (the
// pre-delete hook).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ROLLOUT_GATE_NAME, WORKLOAD_ANNOTATION } from '../../../api/v1alpha1/index.ts';
import { errorText } from '../../../lib/errors.ts';
import { KubeApiError } from '../../../lib/kube-client.ts';
import { BUSYBOX } from '../../../local-cluster/busybox-images.ts';
import { KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { helmInstallKwarm, kwarmLogs, kwarmPods, podReady, waitKwarmReady, CONTROLLER_DEPLOYMENT, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { linkNodesToRegistry } from '../../../local-cluster/node-registry-link.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { clientWithToken, kubeletIssuedToken } from '../../../local-cluster/pod-tokens.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const WEBHOOK_NS = 'e2e-webhook';
const CONFIG = 'kwarm-rollout-gate';
const SECRET = 'kwarm-webhook-cert';
const WEBHOOK = 'rollout-gate.kwarm.io';
const NS = 'e2e-gate';
const APP = 'gated';
const POLICY = 'e2e-rollout-gate';

type Call = 'called' | 'failed-open' | 'not-called';

interface AuditEvent {
  verb?: string;
  stage?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
  annotations?: Record<string, string>;
}
interface PodJson {
  metadata: { name: string; uid?: string; creationTimestamp?: string; labels?: Record<string, string> };
  spec: { nodeName?: string; containers: { image: string }[]; schedulingGates?: { name: string }[] };
  status: { phase?: string };
}
interface EventJson { type?: string; reason?: string; message?: string; reportingInstance?: string; involvedObject: { name?: string; kind?: string } }
interface ImageJson {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { image: string };
  status?: { phase?: string; ready?: string };
}

describe('e2e on real nodes: the rollout gate (chart, webhook over TLS, release loop, uninstall hook)', function () {
  this.timeout(600_000);
  let cluster: RealCluster;
  let kwarm: KwarmInstallation | undefined;
  let podCount = 0;
  let tagCount = 0;

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
  async function createPod(namespace = WEBHOOK_NS): Promise<{ name: string; call: Call; ms: number }> {
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

  /** Pushes a new tag of the app; returns the reference the nodes pull it by (`via`: through a registry link). */
  async function pushApp(mib: number, via: (reference: string) => string = (r) => cluster.nodeImage(r)): Promise<string> {
    const pushed = await buildAndPushImage(cluster.registry, {
      repository: `e2e/${APP}`, tag: `v${++tagCount}`, layers: [mib * 2 ** 20],
      files: [{ path: 'bin/busybox', content: readFileSync(BUSYBOX), mode: 0o755 }],
      entrypoint: ['/bin/busybox', 'sleep', '86400'],
    });
    return via(pushed.reference);
  }

  function deployment(image: string, replicas: number): string {
    return JSON.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment',
      metadata: { name: APP, namespace: NS, labels: { app: APP, 'kwarm-e2e/gate': 'true' } },
      spec: {
        replicas, selector: { matchLabels: { app: APP } },
        // New pods are created at once on an image change (maxUnavailable 0): the webhook sees them before kwarm
        // can have pulled anything, so they are gated for certain.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: replicas, maxUnavailable: 0 } },
        template: {
          metadata: { labels: { app: APP } },
          spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image }] },
        },
      },
    });
  }

  async function pods(): Promise<PodJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NS, '-l', `app=${APP}`, '-o', 'json']);
    return (JSON.parse(stdout) as { items: PodJson[] }).items;
  }

  async function events(): Promise<EventJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '-o', 'json']);
    return (JSON.parse(stdout) as { items: EventJson[] }).items;
  }

  async function prePullImages(): Promise<ImageJson[]> {
    const { stdout } = await cluster.kubectl(['get', 'prepullimages', '-n', NS, '-o', 'json']);
    return (JSON.parse(stdout) as { items: ImageJson[] }).items;
  }

  /**
   * What a failed gate wait needs to be understood: the namespace's PrePullImages (did kwarm derive one for the
   * workload, for which image, how far), each app pod's webhook call (called or failed open), and the controller's
   * log lines about leadership, the webhook and the rollout gate.
   */
  async function gateDiagnostics(): Promise<string> {
    const images = await prePullImages().catch((err: unknown) => [`(list failed: ${errorText(err)})`]);
    const ppis = images.map((i) => typeof i === 'string' ? i
      : `${i.metadata.name} ${i.metadata.annotations?.[WORKLOAD_ANNOTATION] ?? '-'} ${i.spec.image} ${i.status?.phase ?? '-'} ${i.status?.ready ?? '-'}`);
    const calls = (await pods().catch(() => [])).map((p) => `${p.metadata.name} ${p.spec.containers[0]?.image ?? '-'} gated=${gated(p)} webhook=${webhookCall(NS, p.metadata.name) ?? 'no audit event'}`);
    const logs: string[] = [];
    for (const p of await kwarmPods(cluster, 'controller')) {
      const name = p.metadata?.name ?? '';
      const r = await cluster.kubectl(['logs', '-n', KWARM_NAMESPACE, name], { allowFailure: true });
      const lines = r.stdout.split('\n').filter((l) => /rollout gate|admission|webhook|leader|lease/i.test(l));
      logs.push(`--- ${name} ---`, ...lines.slice(-40));
    }
    return [`PrePullImages in ${NS}:`, ...ppis, 'pods:', ...calls, 'controller log (rollout gate, webhook, leadership):', ...logs].join('\n');
  }

  async function patchPolicyTimeout(timeout: string): Promise<void> {
    await cluster.kubectl(['patch', 'prepullpolicy', POLICY, '--type=merge', '-p', JSON.stringify({ spec: { rolloutGate: { timeout } } })]);
  }

  /** When the named Event was (last) recorded on pod `name`. */
  async function eventTime(name: string, reason: string): Promise<string | undefined> {
    const { stdout } = await cluster.kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name},reason=${reason}`, '-o', 'json']);
    const items = (JSON.parse(stdout) as { items: { eventTime?: string; lastTimestamp?: string; firstTimestamp?: string }[] }).items;
    const first = items[0];
    return first?.lastTimestamp ?? first?.eventTime ?? first?.firstTimestamp;
  }


  /** Rethrows a failed wait with gateDiagnostics() appended. */
  async function withGateDiagnostics(err: unknown): Promise<never> {
    throw new Error(`${errorText(err)}\n${await gateDiagnostics()}`);
  }

  const gated = (p: PodJson): boolean => p.spec.schedulingGates?.some((g) => g.name === ROLLOUT_GATE_NAME) ?? false;

  before(async () => {
    cluster = await sharedRealCluster();
    kwarm = await helmInstallKwarm(cluster, { set: { 'rolloutGate.enabled': true } });
    // Ready includes the webhook: a certificate served and its CA in the caBundle.
    await waitKwarmReady(cluster, kwarm.images);
    await cluster.kubectl(['create', 'namespace', WEBHOOK_NS]);
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', WEBHOOK_NS, NS, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    await cluster.kubectl(['delete', 'prepullpolicy', POLICY, '--ignore-not-found'], { allowFailure: true });
    await kwarm?.uninstall();
  });

  describe('the webhook over TLS', () => {
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
        const { stdout } = await cluster.kubectl(['get', 'pod', pod.name, '-n', WEBHOOK_NS, '-o', 'jsonpath={.metadata.uid}']);
        expect(stdout.trim()).to.not.equal('');
      } finally {
        await scaleController(1);
      }
      if (kwarm !== undefined) await waitKwarmReady(cluster, kwarm.images);
      expect((await createPod()).call).to.equal('called');
    });
  });

  describe('the gate on a rollout', () => {
    before(async () => {
      await cluster.kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullPolicy', metadata: { name: POLICY },
          spec: { selector: { matchLabels: { 'kwarm-e2e/gate': 'true' }, namespaces: [NS] }, rolloutGate: { enabled: true, timeout: '5m' } },
        }),
      });
      await cluster.kubectl(['create', 'namespace', NS]);
      await waitFor(async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', NS], { allowFailure: true })).code === 0,
        { what: `the default ServiceAccount of ${NS}`, timeoutMs: 60_000, intervalMs: 250 });
      // A new workload has no PrePullImage yet, so its first pods are admitted ungated: roll it out first.
      const v1 = await pushApp(1);
      await cluster.controlPlane.apply(deployment(v1, cluster.nodes.length));
      await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=180s']);
      // The webhook gates a workload's new pods only once a PrePullImage of a gate-enabled policy exists for it;
      // kwarm's leader derives it. After the controller was scaled to 0 and back, the new replica is Ready before
      // it holds the Lease (the old holder's must expire first), so wait for the derived PrePullImage of v1,
      // Completed, before the image change (without it the new pods are admitted ungated: NotSelected).
      await waitFor(async () => (await prePullImages()).find((i) => i.metadata.annotations?.[WORKLOAD_ANNOTATION] === `Deployment/${APP}`
        && i.spec.image === v1 && i.status?.phase === 'Completed'), { what: `kwarm's PrePullImage of Deployment ${NS}/${APP} for ${v1}, Completed`, timeoutMs: 180_000, intervalMs: 500 })
        .catch(withGateDiagnostics);
    });

    it('an image change: new pods wait gated while kwarm pulls, then start with the image already present', async () => {
      const v2 = await pushApp(24);
      await cluster.kubectl(['set', 'image', `deployment/${APP}`, `app=${v2}`, '-n', NS]);
      const seenGated = await waitFor(async () => (await pods()).find((p) => p.spec.containers[0]?.image === v2 && gated(p)),
        { what: 'a new pod created with kwarm\'s scheduling gate', timeoutMs: 60_000, intervalMs: 200 })
        .catch(withGateDiagnostics);
      expect(seenGated.spec.nodeName, 'a gated pod is not scheduled').to.equal(undefined);
      await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=240s']);
      const fresh = await waitFor(async () => {
        const list = (await pods()).filter((p) => p.spec.containers[0]?.image === v2 && p.status.phase === 'Running');
        return list.length === cluster.nodes.length ? list : undefined;
      }, { what: 'the new pods running', timeoutMs: 60_000, intervalMs: 500 });
      const all = await waitFor(async () => {
        const e = await events();
        return fresh.every((p) => e.some((x) => x.involvedObject.name === p.metadata.name && x.reason === 'Pulled')) ? e : undefined;
      }, { what: 'the kubelet\'s Pulled events', timeoutMs: 30_000, intervalMs: 500 });
      for (const p of fresh) {
        const mine = all.filter((x) => x.involvedObject.name === p.metadata.name);
        const text = mine.map((x) => `${x.reason ?? ''}: ${x.message ?? ''}`).join('; ');
        expect(mine.filter((x) => x.reason === 'Pulling'), `${p.metadata.name} pulled: ${text}`).to.deep.equal([]);
        expect(mine.some((x) => x.reason === 'Pulled' && (x.message ?? '').includes('already present on machine')), text).to.equal(true);
        expect(mine.some((x) => x.reason === 'RolloutGateReleased' && (x.message ?? '').includes('ImagesWarm')), `${p.metadata.name} released by kwarm: ${text}\n${await kwarmLogs(cluster, 10)}`).to.equal(true);
      }
    });

    it('the registry down: the gate comes off at the policy\'s timeout, with a RolloutGateTimedOut Warning', async () => {
      // Nothing listens on this port of the nodes' own loopback: for every node the registry is down.
      const down = '127.0.0.1:5009/e2e/gated:down';
      await patchPolicyTimeout('20s');
      try {
        await cluster.kubectl(['set', 'image', `deployment/${APP}`, `app=${down}`, '-n', NS]);
        await waitFor(async () => (await pods()).some((p) => p.spec.containers[0]?.image === down && gated(p)),
          { what: 'a gated pod of the image whose registry is down', timeoutMs: 60_000, intervalMs: 200 }).catch(withGateDiagnostics);
        const released = await waitFor(async () => {
          const mine = (await pods()).filter((p) => p.spec.containers[0]?.image === down);
          return mine.length === cluster.nodes.length && !mine.some(gated) ? mine : undefined;
        }, { what: 'the gates of the pods of the down registry removed at the 20s timeout', timeoutMs: 90_000, intervalMs: 500 }).catch(withGateDiagnostics);
        const e = await waitFor(async () => {
          const all = await events();
          return released.every((p) => all.some((x) => x.involvedObject.name === p.metadata.name && x.reason === 'RolloutGateTimedOut')) ? all : undefined;
        }, { what: 'a RolloutGateTimedOut Event on each', timeoutMs: 30_000, intervalMs: 500 });
        for (const p of released) {
          const ev = e.find((x) => x.involvedObject.name === p.metadata.name && x.reason === 'RolloutGateTimedOut');
          expect(ev?.type).to.equal('Warning');
          expect(ev?.message).to.include(POLICY).and.to.include('TimedOut');
          // Held until the timeout (from the pod's creation), not released before.
          const created = Date.parse(p.metadata.creationTimestamp ?? '');
          const releasedAt = Date.parse((await eventTime(p.metadata.name, 'RolloutGateTimedOut')) ?? '');
          expect(releasedAt - created, `${p.metadata.name}: created ${p.metadata.creationTimestamp ?? '?'}`).to.be.at.least(19_000);
        }
      } finally {
        await patchPolicyTimeout('5m');
      }
    });

    it('the controller killed (force, grace 0) while pods are gated: the next leader releases them', async () => {
      // Pulled through a paced link (16 MiB at 2 MB/s: 8 s per node), so the pulls cannot finish, and the killed
      // controller cannot release anything, in the second its process takes to die after the forced delete.
      const link = await linkNodesToRegistry(cluster, { bytesPerSecond: 2e6 });
      let killed: string[] = [];
      let stillGated: PodJson[] = [];
      try {
        const v3 = await pushApp(16, (r) => link.nodeImage(r));
        await cluster.kubectl(['set', 'image', `deployment/${APP}`, `app=${v3}`, '-n', NS]);
        await waitFor(async () => (await pods()).some((p) => p.spec.containers[0]?.image === v3 && gated(p)),
          { what: 'a gated pod of the new image', timeoutMs: 60_000, intervalMs: 100 }).catch(withGateDiagnostics);
        killed = (await kwarmPods(cluster, 'controller')).map((p) => p.metadata?.name ?? '');
        await cluster.kubectl(['delete', 'pod', '-n', KWARM_NAMESPACE, ...killed, '--force', '--grace-period=0']);
        stillGated = (await pods()).filter((p) => p.spec.containers[0]?.image === v3 && gated(p));
        expect(stillGated, 'pods gated as the controller went').to.not.deep.equal([]);
        await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=240s']);
      } finally {
        await link.stop();
      }
      const e = await waitFor(async () => {
        const all = await events();
        return stillGated.every((p) => all.some((x) => x.involvedObject.name === p.metadata.name && x.reason === 'RolloutGateReleased')) ? all : undefined;
      }, { what: 'a RolloutGateReleased Event on each pod gated when the controller was killed', timeoutMs: 30_000, intervalMs: 500 }).catch(withGateDiagnostics);
      for (const p of stillGated) {
        const ev = e.find((x) => x.involvedObject.name === p.metadata.name && x.reason === 'RolloutGateReleased');
        expect(ev?.message).to.include('ImagesWarm');
        // Released by a replica that is not the killed one (its identity starts with its pod's host name).
        expect(killed.some((k) => (ev?.reportingInstance ?? '').startsWith(`${k}_`)), `released by ${ev?.reportingInstance ?? '?'}, killed ${killed.join(', ')}`).to.equal(false);
      }
      // The new replica leads before it is Ready (its webhook certificate trusted): the next tests need the webhook.
      if (kwarm !== undefined) await waitKwarmReady(cluster, kwarm.images);
    });

    it('the pod writes kwarm must never make are refused for the token the kubelet gave the controller', async () => {
      const controller = (await kwarmPods(cluster, 'controller')).find(podReady);
      if (controller === undefined) throw new Error('no Ready controller pod');
      const client = clientWithToken(cluster, await kubeletIssuedToken(cluster, controller), 'kwarm-controller');
      const ac = new AbortController();
      const name = 'foreign-gate';
      // A pod with someone else's gate (it never schedules while gated): only kwarm's own gate may be removed.
      await cluster.kubectl(['create', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { owner: 'e2e' } },
          spec: { schedulingGates: [{ name: 'example.com/other' }], containers: [{ name: 'c', image: 'kwarm.invalid/none:1' }] },
        }),
      });
      const path = `/api/v1/namespaces/${NS}/pods/${name}`;
      const view = async (): Promise<unknown> => {
        const p = JSON.parse((await cluster.kubectl(['get', 'pod', name, '-n', NS, '-o', 'json'])).stdout) as PodJson;
        return { labels: p.metadata.labels, gates: p.spec.schedulingGates, image: p.spec.containers[0]?.image };
      };
      try {
        // The token is the real one: it reads what its role allows.
        await client.get(path, ac.signal);
        const before = await view();
        const cases: [string, () => Promise<unknown>, number[], RegExp][] = [
          // Refused by the chart's admission policy (its message names kwarm-controller), not merely by RBAC.
          ['adding a label', () => client.patch(path, 'merge', { metadata: { labels: { 'kwarm-e2e/evil': 'x' } } }, ac.signal), [403], /kwarm-controller may/u],
          ['removing another scheduling gate', () => client.patch(path, 'json', [{ op: 'remove', path: '/spec/schedulingGates/0' }], ac.signal), [403], /only remove its own scheduling gate/u],
          // The API server's pod validation (gates may only be removed) may answer before the admission policy.
          ['adding kwarm\'s gate', () => client.patch(path, 'json', [{ op: 'add', path: '/spec/schedulingGates/-', value: { name: ROLLOUT_GATE_NAME } }], ac.signal), [403, 422], /kwarm-controller may|schedulingGates/u],
          ['changing an image', () => client.patch(path, 'json', [{ op: 'replace', path: '/spec/containers/0/image', value: 'kwarm.invalid/evil:1' }], ac.signal), [403], /kwarm-controller may/u],
        ];
        for (const [what, write, statuses, says] of cases) {
          const err = await write().then(() => undefined, (e: unknown) => e);
          expect(err, `${what}: accepted`).to.be.instanceOf(KubeApiError);
          const apiErr = err as KubeApiError;
          expect(apiErr.status, `${what}: ${apiErr.message}`).to.be.oneOf(statuses);
          expect(apiErr.message, what).to.match(says);
          console.log(`    refused, ${what}: ${apiErr.status} ${apiErr.message.slice(0, 200)}`);
          expect(await view(), `${what}: the pod changed`).to.deep.equal(before);
        }
      } finally {
        ac.abort();
        client.close();
        await cluster.kubectl(['delete', 'pod', name, '-n', NS, '--wait=false'], { allowFailure: true });
      }
    });

    it('helm uninstall leaves no pod gated', async () => {
      // An image that does not exist: the pods stay gated (until the 5m timeout) ...
      const missing = cluster.nodeImage(`${cluster.registry.host}/e2e/${APP}:missing`);
      await cluster.kubectl(['set', 'image', `deployment/${APP}`, `app=${missing}`, '-n', NS]);
      await waitFor(async () => (await pods()).some((p) => p.spec.containers[0]?.image === missing && gated(p)),
        { what: 'a gated pod of the missing image', timeoutMs: 60_000, intervalMs: 200 });
      // ... until kwarm goes: the pre-delete hook removes the gate before the controller is deleted.
      const installed = kwarm;
      kwarm = undefined;
      await installed?.uninstall();
      const left = (await pods()).filter(gated);
      expect(left.map((p) => p.metadata.name)).to.deep.equal([]);
      const e = await events();
      expect(e.some((x) => x.reason === 'RolloutGateReleased' && (x.message ?? '').includes('Uninstalled'))).to.equal(true);
    });
  });
});
