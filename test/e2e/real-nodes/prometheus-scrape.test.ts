// Node-level scraping by a real Prometheus: kwarm installed from its chart on the real-node cluster (NetworkPolicies
// on, metricsFrom naming Prometheus), a Prometheus inside the cluster's network namespace discovering pods through
// Kubernetes service discovery with its own ServiceAccount, configured with the chart's
// files/prometheus-scrape.yaml verbatim. It must scrape every agent pod and the controller, each series labelled
// with its node; after a pre-pull, a failed pull and a pod start on every node, every query of the chart's Grafana
// dashboard must return data (finite values), and the per-node ones a series for every node.
//
// The bridge CNI of the harness does not enforce NetworkPolicies, so the installed policies are checked by
// evaluating their ingress rules for Prometheus' source address (what an enforcing plugin decides).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { CLUSTER_ADDRESS } from '../../../local-cluster/cluster-network.ts';
import { KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { REPO_ROOT } from '../../../local-cluster/kwarm-images.ts';
import { helmInstallKwarm, kwarmPods, waitKwarmReady, type KwarmInstallation } from '../../../local-cluster/kwarm-install.ts';
import { startPrometheus, type PromSeries, type TestPrometheus } from '../../../local-cluster/prometheus.ts';
import { sharedRealCluster, type RealCluster } from '../../../local-cluster/real-cluster.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { dashboardQueries, labelValuesQuery, parseDashboard, substituteVariables, type DashboardQuery } from '../../support/dashboard.ts';

const NS = 'e2e-scrape';
const APP = 'scraped';
const METRICS_PORT = 8080;

interface PolicyPeer { ipBlock?: { cidr: string; except?: string[] }; podSelector?: unknown; namespaceSelector?: unknown }
interface PolicyJson {
  metadata: { name: string };
  spec: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: { ports?: { port?: number | string; protocol?: string }[]; from?: PolicyPeer[] }[];
  };
}

function ipv4(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  if (base === undefined || bits === undefined || base.includes(':') || ip.includes(':')) return false;
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base) / size);
}

/**
 * Whether the policies selecting a pod with `podLabels` admit TCP from `sourceIp` (a process outside any pod, as
 * this Prometheus is) to `port`: NetworkPolicy's rules for a source matched by ipBlock only.
 */
function admits(policies: readonly PolicyJson[], podLabels: Readonly<Record<string, string>>, sourceIp: string, port: number): boolean {
  const selecting = policies.filter((p) => (p.spec.policyTypes ?? ['Ingress']).includes('Ingress')
    && Object.entries(p.spec.podSelector.matchLabels ?? {}).every(([k, v]) => podLabels[k] === v));
  if (selecting.length === 0) return true;
  return selecting.some((p) => (p.spec.ingress ?? []).some((rule) => {
    const portOk = rule.ports === undefined || rule.ports.some((rp) => rp.port === undefined || (rp.port === port && (rp.protocol ?? 'TCP') === 'TCP'));
    const fromOk = rule.from === undefined || rule.from.some((peer) => peer.ipBlock !== undefined
      && inCidr(sourceIp, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((e) => inCidr(sourceIp, e)));
    return portOk && fromOk;
  }));
}

function finite(s: PromSeries): boolean {
  return Number.isFinite(Number(s.value));
}

describe('e2e on real nodes: a real Prometheus scrapes every agent and the controller; the dashboard\'s queries return data', function () {
  this.timeout(900_000);
  let cluster: RealCluster;
  let kwarm: KwarmInstallation | undefined;
  let prom: TestPrometheus | undefined;
  let nodes: string[];
  const started = Date.now();

  before(async () => {
    cluster = await sharedRealCluster();
    nodes = cluster.nodes.map((n) => n.name).sort();
    // The documented value naming Prometheus: here a process in the cluster's network namespace, whose packets to
    // pods leave from the bridge address; in a cluster, a namespaceSelector/podSelector of the Prometheus pods.
    kwarm = await helmInstallKwarm(cluster, { set: { 'networkPolicy.metricsFrom[0].ipBlock.cidr': `${CLUSTER_ADDRESS}/32` } });
    await waitKwarmReady(cluster, kwarm.images);
    prom = await startPrometheus(cluster, { scrapeConfigs: readFileSync(join(REPO_ROOT, 'charts', 'kwarm', 'files', 'prometheus-scrape.yaml'), 'utf8') });
    await cluster.kubectl(['create', 'namespace', NS]);
    await waitFor(async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', NS], { allowFailure: true })).code === 0,
      { what: `the default ServiceAccount of ${NS}`, timeoutMs: 60_000, intervalMs: 250 });
  });

  after(async () => {
    await cluster.kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    await prom?.stop();
    await kwarm?.uninstall();
  });

  it('discovers every agent pod and the controller through the shipped scrape config, scrapes them up, each labelled with its node', async () => {
    const pods = await kwarmPods(cluster);
    const expected = pods.map((p) => ({ pod: p.metadata?.name ?? '', node: p.spec?.nodeName ?? '', component: p.metadata?.labels?.['app.kubernetes.io/component'] ?? '' }));
    expect(expected.filter((e) => e.component === 'agent').map((e) => e.node).sort(), 'one agent per node').to.deep.equal(nodes);
    expect(expected.filter((e) => e.component === 'controller').length).to.be.greaterThan(0);
    let last = '';
    const targets = await waitFor(async () => {
      const t = (await prom!.targets()).filter((x) => x.labels.job === 'kwarm');
      last = t.map((x) => `${x.labels.pod ?? '?'} ${x.health} ${x.lastError}`).join('; ');
      const allUp = expected.every((e) => t.some((x) => x.labels.pod === e.pod && x.labels.node === e.node && x.labels.component === e.component
        && x.labels.namespace === KWARM_NAMESPACE && x.health === 'up'));
      return allUp && t.length === expected.length ? t : undefined;
    }, { what: 'Prometheus scraping every kwarm pod', timeoutMs: 90_000, intervalMs: 1000 }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\ntargets: ${last}\n${prom!.tail(20)}`);
    });
    expect(targets.every((t) => t.scrapeUrl.endsWith(`:${METRICS_PORT}/metrics`))).to.equal(true);

    const up = await prom!.query('up{job="kwarm"}');
    expect(up.map((s) => s.metric.pod).sort()).to.deep.equal(expected.map((e) => e.pod).sort());
    expect(up.every((s) => s.value === '1'), JSON.stringify(up)).to.equal(true);
    // The agents' own metrics, one series per node.
    expect((await prom!.labelValues('node', 'kwarm_active_pulls')).sort()).to.deep.equal(nodes);
    const leader = await prom!.query('kwarm_controller_leader');
    expect(leader.some((s) => s.value === '1' && s.metric.component === 'controller'), JSON.stringify(leader)).to.equal(true);
  });

  it('the NetworkPolicies (chart default: on) admit Prometheus to the metrics port of the agents and the controller, and no one else', async () => {
    const { stdout } = await cluster.kubectl(['get', 'networkpolicies', '-n', KWARM_NAMESPACE, '-o', 'json']);
    const policies = (JSON.parse(stdout) as { items: PolicyJson[] }).items;
    expect(policies.length, 'one policy per component').to.equal(2);
    for (const p of await kwarmPods(cluster)) {
      const labels = p.metadata?.labels ?? {};
      expect(admits(policies, labels, CLUSTER_ADDRESS, METRICS_PORT), `${p.metadata?.name ?? ''}: Prometheus at ${CLUSTER_ADDRESS}`).to.equal(true);
      expect(admits(policies, labels, '10.250.0.99', METRICS_PORT), `${p.metadata?.name ?? ''}: another address`).to.equal(false);
    }
  });

  it('after a pre-pull, a failed pull and a pod start on every node, every dashboard query returns data, the per-node ones for every node', async () => {
    // Two pre-pulls on every node, one after the other, then pods of the second image on every node (warm starts).
    // Two, because a labelled series appears with its first sample: Prometheus' rate() counts only what a series
    // gains after that, so the pull-duration panel needs a second pull on each node to show one.
    const everyNode = { selector: { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] } };
    const completedEverywhere = async (image: string): Promise<void> => {
      await waitFor(async () => {
        const { stdout } = await cluster.kubectl(['get', 'nodeimagesets', '-o', 'json']);
        const sets = (JSON.parse(stdout) as { items: { metadata: { name: string }; status?: { images?: { image: string; phase: string }[] } }[] }).items;
        return nodes.every((n) => sets.find((s) => s.metadata.name === n)?.status?.images?.some((i) => i.image === image && i.phase === 'Completed'));
      }, { what: `${image} Completed on every node`, timeoutMs: 180_000, intervalMs: 1000 });
    };
    let image = '';
    for (const tag of ['v1', 'v2']) {
      image = cluster.nodeImage((await pushSleeperImage(cluster.registry, 'e2e/scraped', tag)).reference);
      await cluster.controlPlane.apply(JSON.stringify({ apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: `scraped-${tag}`, namespace: NS }, spec: { image, nodes: everyNode } }));
      await completedEverywhere(image);
      // Prometheus must hold a sample of each node's series before the second pull adds to it.
      if (tag === 'v1') {
        await waitFor(async () => new Set((await prom!.query('kwarm_pull_duration_seconds_count{status="succeeded"}')).map((x) => x.metric.node)).size === nodes.length,
          { what: 'a scraped pull-duration series on every node', timeoutMs: 60_000, intervalMs: 1000 });
      }
    }
    // An image the registry does not have: a failed pull on every node, for the failure panels.
    const missing = cluster.nodeImage(`${cluster.registry.host}/e2e/not-pushed:v1`);
    await cluster.controlPlane.apply(JSON.stringify({ apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'missing', namespace: NS }, spec: { image: missing, nodes: everyNode } }));
    await cluster.controlPlane.apply(JSON.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: APP, namespace: NS },
      spec: {
        replicas: nodes.length, selector: { matchLabels: { app: APP } },
        template: {
          metadata: { labels: { app: APP } },
          spec: {
            topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: APP } } }],
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'app', image, imagePullPolicy: 'IfNotPresent' }],
          },
        },
      },
    }));
    await cluster.kubectl(['rollout', 'status', `deployment/${APP}`, '-n', NS, '--timeout=180s']);

    const dashboard = parseDashboard(JSON.parse(readFileSync(join(REPO_ROOT, 'charts', 'kwarm', 'dashboards', 'kwarm.json'), 'utf8')) as unknown);
    // The node variable's own query lists every node.
    for (const v of dashboard.variables) {
      const lv = v.query === undefined ? undefined : labelValuesQuery(v.query);
      if (lv !== undefined) expect((await prom!.labelValues(lv.label, lv.metric)).sort(), `variable ${v.name}`).to.deep.equal(nodes);
    }
    // Windows that cover the whole test, as a dashboard opened on the last hour would.
    const window = `${Math.ceil((Date.now() - started) / 60_000) + 5}m`;
    const values = { node: '.+', datasource: 'prometheus', __rate_interval: window, __range: window, __interval: '30s' };
    const queries = dashboardQueries(dashboard);
    const problems = async (): Promise<string[]> => {
      const out: string[] = [];
      const check = async (q: DashboardQuery): Promise<void> => {
        const expr = substituteVariables(q.expr, values);
        const series = (await prom!.query(expr)).filter(finite);
        if (series.length === 0) {
          out.push(`${q.panel}/${q.refId}: no data: ${expr}`);
          return;
        }
        if (q.legendFormat.includes('{{node}}')) {
          const seen = new Set(series.map((s) => s.metric.node));
          const lacking = nodes.filter((n) => !seen.has(n));
          if (lacking.length > 0) out.push(`${q.panel}/${q.refId}: no series for ${lacking.join(', ')}: ${expr}`);
        }
      };
      for (const q of queries) await check(q);
      return out;
    };
    let last: string[] = [];
    await waitFor(async () => {
      last = await problems();
      return last.length === 0;
    }, { what: `data for all ${queries.length} dashboard queries`, timeoutMs: 120_000, intervalMs: 3000 }).catch(async (err: unknown) => {
      const { stdout } = await cluster.kubectl(['get', 'pods', '-n', NS, '-o', 'wide'], { allowFailure: true });
      const starts = (await prom!.query('kwarm_container_starts_total')).map((x) => `${x.metric.node ?? '?'} ${x.metric.result ?? '?'}=${x.value}`).join(', ');
      throw new Error(`${(err as Error).message}:\n${last.join('\n')}\nkwarm_container_starts_total: ${starts}\n${stdout}`);
    });
    console.log(`      [figures] ${queries.length} dashboard queries over ${nodes.length} nodes returned data (window ${window})`);
  });
});
