import { expect } from 'chai';
import { join } from 'node:path';
import { decodeResult, describeFigure, figureSummary, findFigure, formatValue, resultPath, type BenchResult, type Figure } from '../../../bench/results.ts';

function sample(): BenchResult {
  return {
    benchmark: 'concurrency',
    command: 'node_modules/.bin/node bench/concurrency.ts --runs 3',
    startedAt: '2026-11-22T00:51:17.296Z',
    finishedAt: '2026-11-22T01:02:38.256Z',
    machine: {
      cores: 2, cpuModel: 'Test CPU', memoryGiB: 23.5, kernel: '6.1.0', node: 'v22.23.3', containerd: 'containerd 1.6.20',
      kubernetes: 'Kubernetes v1.34.10', etcd: 'etcd 3.6.16', registry: 'registry 2.8.2', revision: 'abc1234',
    },
    load: { busyBeforePercent: 3, loadAverageStart: 0.5, loadAverageEnd: 1.25, busyDuringMeanPercent: 60.2, busyDuringMaxPercent: 99.9 },
    parameters: { runs: 3, links: 'per-connection,shared', compiledAgent: true },
    figures: [
      { id: 'concurrency.shared.serial', label: 'shared: serial', basis: 'measured', unit: 'ms', samples: [300, 100, 200] },
      { id: 'writes.per-pair', label: 'job-style writes', basis: 'computed', unit: '', samples: [18] },
    ],
    notes: ['registry behind a throttling proxy'],
  };
}

/** The sample as the JSON file holds it, with `edit` applied to the parsed object. */
function raw(edit: (o: Record<string, unknown>) => void = () => undefined): unknown {
  const o = JSON.parse(JSON.stringify(sample())) as Record<string, unknown>;
  edit(o);
  return o;
}

function figureAt(o: Record<string, unknown>, i: number): Record<string, unknown> {
  return (o.figures as Record<string, unknown>[])[i]!;
}

describe('bench/results', () => {
  describe('decodeResult', () => {
    it('reads back what a benchmark writes', () => {
      expect(decodeResult(raw(), 'r.json')).to.deep.equal(sample());
    });

    it('marks a result from before revisions were recorded', () => {
      const r = decodeResult(raw((o) => { delete (o.machine as Record<string, unknown>).revision; }), 'r.json');
      expect(r.machine.revision).to.equal('not recorded');
    });

    it('refuses a document that is not an object, naming the file', () => {
      expect(() => decodeResult([], 'old.json')).to.throw(/^old\.json: not an object/);
      expect(() => decodeResult(null, 'old.json')).to.throw(/^old\.json: not an object/);
    });

    it('names the field that is wrong', () => {
      const cases: [string, (o: Record<string, unknown>) => void, RegExp][] = [
        ['benchmark missing', (o) => { delete o.benchmark; }, /^r\.json\.benchmark: not a string/],
        ['machine a string', (o) => { o.machine = 'big'; }, /^machine: not an object/],
        ['cores a string', (o) => { (o.machine as Record<string, unknown>).cores = '2'; }, /^machine\.cores: not a number/],
        ['load average null', (o) => { (o.load as Record<string, unknown>).loadAverageEnd = null; }, /^load\.loadAverageEnd: not a number/],
        ['parameter a list', (o) => { (o.parameters as Record<string, unknown>).sizes = [1, 2]; }, /^r\.json\.parameters\.sizes: not a scalar/],
        ['figures an object', (o) => { o.figures = {}; }, /^r\.json\.figures: not a list/],
        ['unknown basis', (o) => { figureAt(o, 1).basis = 'guessed'; }, /^r\.json\.figures\[1\]\.basis: guessed/],
        ['sample a string', (o) => { figureAt(o, 0).samples = [1, '2']; }, /^r\.json\.figures\[0\]\.samples\[1\]: not a number/],
        ['figure without unit', (o) => { delete figureAt(o, 0).unit; }, /^r\.json\.figures\[0\]\.unit: not a string/],
        ['note a number', (o) => { o.notes = ['ok', 7]; }, /^r\.json\.notes\[1\]: not a string/],
      ];
      for (const [what, edit, message] of cases) expect(() => decodeResult(raw(edit), 'r.json'), what).to.throw(message);
    });

    it('refuses numbers JSON cannot hold', () => {
      const r = sample() as unknown as Record<string, unknown>;
      (r.figures as Figure[])[0]!.samples = [1, Number.POSITIVE_INFINITY];
      expect(() => decodeResult(r, 'r.json')).to.throw(/samples\[1\]: not a number/);
      const m = sample() as unknown as Record<string, unknown>;
      (m.machine as Record<string, unknown>).memoryGiB = Number.NaN;
      expect(() => decodeResult(m, 'r.json')).to.throw(/machine\.memoryGiB: not a number/);
    });
  });

  describe('resultPath', () => {
    it('names the file after the benchmark, in the given folder', () => {
      expect(resultPath('image-change', '/tmp/results')).to.equal(join('/tmp/results', 'image-change.json'));
    });
  });

  describe('findFigure and figureSummary', () => {
    it('finds a figure by id and summarizes its samples', () => {
      const f = findFigure(sample(), 'concurrency.shared.serial');
      expect(f.label).to.equal('shared: serial');
      const s = figureSummary(f);
      expect([s.n, s.median, s.min, s.max, s.mean]).to.deep.equal([3, 200, 100, 300, 200]);
    });

    it('names the benchmark and the id it could not find', () => {
      expect(() => findFigure(sample(), 'concurrency.shared.limit9')).to.throw('concurrency: no figure concurrency.shared.limit9');
    });
  });

  describe('formatValue', () => {
    it('shows fewer decimals as values grow, none for whole numbers', () => {
      expect(formatValue(1.2345, 'ms')).to.equal('1.23 ms');
      expect(formatValue(12.345, 'ms')).to.equal('12.3 ms');
      expect(formatValue(123.45, 'ms')).to.equal('123 ms');
      expect(formatValue(7, 'ms')).to.equal('7 ms');
      expect(formatValue(-12.345, 'ms')).to.equal('-12.3 ms');
      expect(formatValue(0.5, 'ms')).to.equal('0.50 ms');
    });

    it('attaches % and x, spaces other units, and leaves no trailing space without one', () => {
      expect(formatValue(99.94, '%')).to.equal('99.9%');
      expect(formatValue(2.5, 'x')).to.equal('2.50x');
      expect(formatValue(50, 'MiB')).to.equal('50 MiB');
      expect(formatValue(3.25, '')).to.equal('3.25');
    });
  });

  describe('describeFigure', () => {
    it('shows a computed value as it is', () => {
      expect(describeFigure(findFigure(sample(), 'writes.per-pair'))).to.equal('  job-style writes: 18 [computed]');
    });

    it('shows measured samples as median, extremes and count', () => {
      const f: Figure = { id: 'x', label: 'pull', basis: 'measured', unit: 'ms', samples: [10.5, 30, 12.25, 11] };
      expect(describeFigure(f)).to.equal('  pull: median 11.6 ms (min 10.5, max 30, n=4) [measured]');
    });
  });
});
