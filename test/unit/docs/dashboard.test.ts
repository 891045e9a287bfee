// The Grafana dashboard shipped with the chart: valid JSON as Grafana reads it, a query in every panel, and only
// metric names the binaries register (read from their own registries, so a renamed metric fails here).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createAgentMetrics } from '../../../agent/agent-metrics.ts';
import { ControllerMetrics } from '../../../controller/metrics.ts';
import { dashboardQueries, labelValuesQuery, metricNamesOf, parseDashboard, seriesNames, substituteVariables } from '../../support/dashboard.ts';

const DASHBOARD = 'charts/kwarm/dashboards/kwarm.json';

async function registeredSeries(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const registry of [createAgentMetrics({ defaultMetrics: false }).registry, new ControllerMetrics().registry]) {
    for (const m of await registry.getMetricsAsJSON()) for (const s of seriesNames({ name: m.name, type: String(m.type) })) out.add(s);
  }
  return out;
}

describe('Grafana dashboard (charts/kwarm/dashboards/kwarm.json)', () => {
  const dashboard = parseDashboard(JSON.parse(readFileSync(DASHBOARD, 'utf8')) as unknown);
  const queries = dashboardQueries(dashboard);

  it('has panels, each with at least one query', () => {
    expect(dashboard.panels.length).to.be.greaterThan(5);
    for (const p of dashboard.panels) expect(p.queries.length, p.title).to.be.greaterThan(0);
  });

  it('uses only metric names the agent and the controller register, and every query reads one', async () => {
    const known = await registeredSeries();
    expect(known.has('kwarm_pull_duration_seconds_bucket')).to.equal(true);
    for (const q of queries) {
      const names = metricNamesOf(q.expr);
      expect(names, `${q.panel}/${q.refId} reads no kwarm metric: ${q.expr}`).to.not.deep.equal([]);
      for (const n of names) expect(known.has(n), `${q.panel}/${q.refId}: ${n} is not registered by agent-metrics.ts or controller/metrics.ts`).to.equal(true);
    }
    for (const v of dashboard.variables) {
      if (v.query === undefined) continue;
      const lv = labelValuesQuery(v.query);
      expect(lv, `variable ${v.name}: ${v.query}`).to.not.equal(undefined);
      for (const n of metricNamesOf(lv!.metric)) expect(known.has(n), `variable ${v.name}: ${n}`).to.equal(true);
    }
  });

  it('covers what users ask of kwarm: warm starts, pull time saved, time to warm, budget in use, failures, per node', () => {
    const all = queries.map((q) => q.expr).join('\n');
    for (const metric of ['kwarm_container_starts_total', 'kwarm_pull_seconds_saved_total', 'kwarm_time_to_warm_seconds_bucket', 'kwarm_unfinished_pulls', 'kwarm_held_pulls', 'kwarm_cri_errors_total', 'kwarm_active_pulls']) {
      expect(all, metric).to.include(metric);
    }
    expect(queries.filter((q) => q.legendFormat.includes('{{node}}')).length, 'per-node panels').to.be.greaterThan(2);
  });

  it('names only its own variables and Grafana\'s interval variables, all replaceable', () => {
    const values = { node: '.+', datasource: 'x', __rate_interval: '5m', __range: '1h', __interval: '30s' };
    for (const q of queries) {
      const expr = substituteVariables(q.expr, values);
      expect(expr, q.panel).to.not.include('$');
    }
    expect(dashboard.variables.map((v) => v.name)).to.include.members(['datasource', 'node']);
  });

  it('the helpers read what they are given', () => {
    expect(metricNamesOf('sum by (node) (rate(kwarm_pulls_total{status="failed"}[5m])) / kwarm_active_pulls')).to.deep.equal(['kwarm_pulls_total', 'kwarm_active_pulls']);
    expect(substituteVariables('x{node=~"$node"}[${__range}]', { node: 'a|b', __range: '1h' })).to.equal('x{node=~"a|b"}[1h]');
    expect(() => substituteVariables('x[$unknown]', {})).to.throw(/unknown/);
    expect(labelValuesQuery('label_values(kwarm_active_pulls, node)')).to.deep.equal({ metric: 'kwarm_active_pulls', label: 'node' });
    expect(() => parseDashboard({ title: 't', panels: [{ title: 'p', targets: [] }] })).to.throw(/"p" has no query/);
    expect(seriesNames({ name: 'h', type: 'histogram' })).to.deep.equal(['h_bucket', 'h_sum', 'h_count']);
  });
});
