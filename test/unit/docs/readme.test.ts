// The README documents every Helm value the chart has, so the table cannot fall behind values.yaml.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { loadYaml } from '@kubernetes/client-node';

/** Values that are free-form maps or Kubernetes structures: documented as one value each. */
const OPAQUE = new Set(['resources', 'nodeSelector', 'podAnnotations', 'labels', 'commonLabels', 'affinity']);

/** Dotted paths of the values a user sets; opaque maps and lists count as one value each. */
function valuePaths(node: unknown, prefix = ''): string[] {
  const last = prefix.slice(prefix.lastIndexOf('.') + 1);
  if (typeof node !== 'object' || node === null || Array.isArray(node) || Object.keys(node).length === 0 || OPAQUE.has(last)) {
    return [prefix];
  }
  return Object.entries(node).flatMap(([k, v]) => valuePaths(v, prefix === '' ? k : `${prefix}.${k}`));
}

function helmTableRows(readme: string): string[] {
  const start = readme.indexOf('### Helm values');
  expect(start, 'README has a "### Helm values" section').to.be.greaterThan(-1);
  const end = readme.indexOf('\n## ', start);
  return readme.slice(start, end).split('\n').filter((l) => l.startsWith('| `'));
}

describe('README: Helm values table', () => {
  const readme = readFileSync('README.md', 'utf8');
  const rows = helmTableRows(readme);
  const paths = valuePaths(loadYaml(readFileSync('charts/kwarm/values.yaml', 'utf8')));

  it('finds the values to check', () => {
    expect(paths).to.include('controller.maxConcurrentPulls').and.include('agent.criSocket');
  });

  for (const path of paths) {
    it(`documents ${path}`, () => {
      const dot = path.lastIndexOf('.');
      const [parent, last] = dot < 0 ? ['', path] : [path.slice(0, dot), path.slice(dot + 1)];
      const documented = rows.some((row) => row.includes(`\`${path}\``) ||
        (parent !== '' && row.includes(`\`${parent}.`) && row.includes(`.${last}\``)) ||
        // "`metrics.serviceMonitor.enabled` ... (`.interval`, `.labels`)": siblings named in the description.
        (parent !== '' && row.includes(`\`${parent}.`) && row.includes(`(\`.${last}\``)) ||
        (parent !== '' && row.includes(`\`${parent}.`) && row.includes(`, \`.${last}\`)`)));
      expect(documented, `README's Helm values table has no row for ${path}`).to.equal(true);
    });
  }
});
