// Reading kwarm's Grafana dashboard (charts/kwarm/dashboards/kwarm.json) for the tests: its panels' queries,
// the metric names they use, and the queries with Grafana's variables replaced so Prometheus can run them.
// Pure: no I/O.

export interface DashboardQuery {
  panel: string;
  refId: string;
  expr: string;
  /** Grafana's legend template: "{{node}}" marks a query with one series per node. */
  legendFormat: string;
}

export interface DashboardVariable {
  name: string;
  type: string;
  /** A query variable's PromQL helper, e.g. label_values(kwarm_active_pulls, node). */
  query?: string;
}

export interface Dashboard {
  title: string;
  panels: { title: string; queries: DashboardQuery[] }[];
  variables: DashboardVariable[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Decodes the dashboard JSON; throws naming the first panel or field that is not as Grafana needs it. */
export function parseDashboard(json: unknown): Dashboard {
  if (!isObject(json)) throw new Error('the dashboard is not a JSON object');
  if (typeof json.title !== 'string' || json.title === '') throw new Error('the dashboard has no title');
  if (!Array.isArray(json.panels) || json.panels.length === 0) throw new Error('the dashboard has no panels');
  const panels = json.panels.map((p: unknown, i) => {
    if (!isObject(p) || typeof p.title !== 'string' || p.title === '') throw new Error(`panel ${i} has no title`);
    const title = p.title;
    if (!Array.isArray(p.targets) || p.targets.length === 0) throw new Error(`panel "${title}" has no query`);
    const queries = p.targets.map((t: unknown, j) => {
      if (!isObject(t) || typeof t.expr !== 'string' || t.expr.trim() === '') throw new Error(`panel "${title}" target ${j} has no expr`);
      if (typeof t.refId !== 'string' || t.refId === '') throw new Error(`panel "${title}" target ${j} has no refId`);
      return { panel: title, refId: t.refId, expr: t.expr, legendFormat: typeof t.legendFormat === 'string' ? t.legendFormat : '' };
    });
    return { title, queries };
  });
  const templating = isObject(json.templating) && Array.isArray(json.templating.list) ? json.templating.list : [];
  const variables = templating.map((v: unknown, i): DashboardVariable => {
    if (!isObject(v) || typeof v.name !== 'string' || typeof v.type !== 'string') throw new Error(`variable ${i} has no name or type`);
    const q = isObject(v.query) ? v.query.query : v.query;
    return { name: v.name, type: v.type, ...(typeof q === 'string' && v.type === 'query' ? { query: q } : {}) };
  });
  return { title: json.title, panels, variables };
}

export function dashboardQueries(d: Dashboard): DashboardQuery[] {
  return d.panels.flatMap((p) => p.queries);
}

/** The kwarm_* metric names a PromQL expression reads (histogram series suffixes kept). */
export function metricNamesOf(expr: string): string[] {
  return [...new Set(expr.match(/\bkwarm_[a-zA-Z0-9_]*\b/g) ?? [])];
}

/** The series names a registered metric produces: a histogram's _bucket, _sum and _count, else its own name. */
export function seriesNames(metric: { name: string; type: string }): string[] {
  return metric.type === 'histogram' ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`] : [metric.name];
}

/**
 * Grafana's variables replaced: `$node`/`${node}` (and any other dashboard variable) by `values`, the built-in
 * intervals by the given windows.
 */
export function substituteVariables(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const v = values[name];
    if (v === undefined) throw new Error(`no value for the variable ${whole} in ${expr}`);
    return v;
  });
}

/** label_values(metric, label) of a query variable, as Prometheus' label values API takes it. */
export function labelValuesQuery(query: string): { metric: string; label: string } | undefined {
  const m = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(query.trim());
  return m?.[1] !== undefined && m[2] !== undefined ? { metric: m[1], label: m[2] } : undefined;
}
