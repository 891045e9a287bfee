// The JSON a benchmark leaves under bench/results/: the machine, the load, the parameters and every
// figure with its raw samples, marked measured or computed. BENCHMARKS.md and the chart are generated
// from these files (bench/report.ts, bench/chart.ts), never typed by hand.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadSummary, Machine } from './machine.ts';
import { summarize, type Summary } from './stats.ts';

export const RESULTS_DIR = join(import.meta.dirname, 'results');

export type Basis = 'measured' | 'computed';

export interface Figure {
  /** Stable key the report and the chart look figures up by, e.g. "overhead.50mb.1layer.bare". */
  id: string;
  label: string;
  basis: Basis;
  unit: string;
  /** Every sample (measured), or the one computed value. */
  samples: number[];
}

export type Parameters = Record<string, string | number | boolean>;

export interface BenchResult {
  benchmark: string;
  /** How to run it again, as run. */
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  load: LoadSummary;
  parameters: Parameters;
  figures: Figure[];
  /** Conditions a reader needs to judge the figures (what was simulated, what was throttled...). */
  notes: string[];
}

export function resultPath(benchmark: string, dir = RESULTS_DIR): string {
  return join(dir, `${benchmark}.json`);
}

export function writeResult(result: BenchResult, dir = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const path = resultPath(result.benchmark, dir);
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}

// --- reading back: the files are this project's own, but still decoded rather than trusted --------------

type Obj = Readonly<Record<string, unknown>>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what}: not an object`);
  return v as Obj;
}

function str(o: Obj, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new Error(`${what}.${key}: not a string`);
  return v;
}

function num(o: Obj, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what}.${key}: not a number`);
  return v;
}

function list(o: Obj, key: string, what: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new Error(`${what}.${key}: not a list`);
  return v as unknown[];
}

function decodeFigure(v: unknown, what: string): Figure {
  const o = obj(v, what);
  const basis = str(o, 'basis', what);
  if (basis !== 'measured' && basis !== 'computed') throw new Error(`${what}.basis: ${basis}`);
  const samples = list(o, 'samples', what).map((s, i) => {
    if (typeof s !== 'number' || !Number.isFinite(s)) throw new Error(`${what}.samples[${i}]: not a number`);
    return s;
  });
  return { id: str(o, 'id', what), label: str(o, 'label', what), basis, unit: str(o, 'unit', what), samples };
}

function decodeMachine(v: unknown): Machine {
  const o = obj(v, 'machine');
  const s = (k: string): string => str(o, k, 'machine');
  return {
    cores: num(o, 'cores', 'machine'), cpuModel: s('cpuModel'), memoryGiB: num(o, 'memoryGiB', 'machine'), kernel: s('kernel'),
    node: s('node'), containerd: s('containerd'), kubernetes: s('kubernetes'), etcd: s('etcd'), registry: s('registry'),
    revision: typeof o.revision === 'string' ? o.revision : 'not recorded',
  };
}

function decodeLoad(v: unknown): LoadSummary {
  const o = obj(v, 'load');
  const n = (k: string): number => num(o, k, 'load');
  return {
    busyBeforePercent: n('busyBeforePercent'), loadAverageStart: n('loadAverageStart'), loadAverageEnd: n('loadAverageEnd'),
    busyDuringMeanPercent: n('busyDuringMeanPercent'), busyDuringMaxPercent: n('busyDuringMaxPercent'),
  };
}

export function decodeResult(raw: unknown, what: string): BenchResult {
  const o = obj(raw, what);
  const params = obj(o.parameters, `${what}.parameters`);
  const parameters: Parameters = {};
  for (const [k, v] of Object.entries(params)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`${what}.parameters.${k}: not a scalar`);
    parameters[k] = v;
  }
  return {
    benchmark: str(o, 'benchmark', what),
    command: str(o, 'command', what),
    startedAt: str(o, 'startedAt', what),
    finishedAt: str(o, 'finishedAt', what),
    machine: decodeMachine(o.machine),
    load: decodeLoad(o.load),
    parameters,
    figures: list(o, 'figures', what).map((f, i) => decodeFigure(f, `${what}.figures[${i}]`)),
    notes: list(o, 'notes', what).map((n, i) => {
      if (typeof n !== 'string') throw new Error(`${what}.notes[${i}]: not a string`);
      return n;
    }),
  };
}

export function readResult(benchmark: string, dir = RESULTS_DIR): BenchResult {
  const path = resultPath(benchmark, dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`${path} is missing: run node_modules/.bin/node bench/${benchmark}.ts first`);
  }
  return decodeResult(JSON.parse(text) as unknown, path);
}

export function findFigure(result: BenchResult, id: string): Figure {
  const f = result.figures.find((x) => x.id === id);
  if (f === undefined) throw new Error(`${result.benchmark}: no figure ${id}`);
  return f;
}

export function figureSummary(f: Figure): Summary {
  return summarize(f.samples);
}

/** Collects figures while a benchmark runs, and prints each as it is completed. */
export class FigureLog {
  readonly figures: Figure[] = [];

  add(f: Figure): Figure {
    const existing = this.figures.findIndex((x) => x.id === f.id);
    if (existing >= 0) this.figures[existing] = f;
    else this.figures.push(f);
    console.log(describeFigure(f));
    return f;
  }

  measured(id: string, label: string, unit: string, samples: readonly number[]): Figure {
    return this.add({ id, label, basis: 'measured', unit, samples: samples.map(round3) });
  }

  computed(id: string, label: string, unit: string, value: number): Figure {
    return this.add({ id, label, basis: 'computed', unit, samples: [round3(value)] });
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function formatValue(x: number, unit: string): string {
  const digits = Math.abs(x) >= 100 || Number.isInteger(x) ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return `${x.toFixed(digits)}${unit === '' ? '' : unit === '%' || unit === 'x' ? unit : ` ${unit}`}`;
}

/** "label: median 123 ms (min 100, max 150, n=5) [measured]" */
export function describeFigure(f: Figure): string {
  if (f.samples.length === 1) return `  ${f.label}: ${formatValue(f.samples[0]!, f.unit)} [${f.basis}]`;
  const s = summarize(f.samples);
  return `  ${f.label}: median ${formatValue(s.median, f.unit)} (min ${formatValue(s.min, '')}, max ${formatValue(s.max, '')}, n=${s.n}) [${f.basis}]`;
}
