// Pure parts of the controller footprint benchmark (bench/controller-footprint.ts): which phase of a
// controller-scale run a /proc sample belongs to, the figures controller-scale prints in its own lines,
// how N runs become figures with one value per run, and the controller's goals. No I/O, no clock.
import { cpuPercent, type ProcessFigures } from './proc-stats.ts';
import type { Figure } from './results.ts';
import { median } from './stats.ts';

export const PHASES = ['convergence', 'idle', 'change', 'restart'] as const;
export type Phase = (typeof PHASES)[number];

/** A line controller-scale printed, with when this process read it. */
export interface TimedLine {
  at: number;
  text: string;
}

/** One reading of a controller process; `pid` tells the first controller from the restarted one. */
export interface ControllerSample {
  at: number;
  pid: number;
  figures: ProcessFigures;
}

/**
 * The phase a sample belongs to. The first controller's samples are split by when controller-scale printed
 * "initial convergence", "idle" and "image change" (after that it only stops the process); every sample of
 * a later process is the restart on the converged cluster.
 */
export function phaseOf(sample: ControllerSample, firstPid: number, lines: readonly TimedLine[]): Phase | undefined {
  if (sample.pid !== firstPid) return 'restart';
  const when = (prefix: string): number => lines.find((l) => l.text.startsWith(prefix))?.at ?? Infinity;
  if (sample.at <= when('initial convergence')) return 'convergence';
  if (sample.at <= when('idle')) return 'idle';
  if (sample.at <= when('image change')) return 'change';
  return undefined;
}

export interface PhaseFootprint {
  /** RSS of every sample in the phase. */
  rssMiB: number[];
  /** CPU over windows of `window` consecutive samples, as a share of one core. */
  cpuPercent: number[];
}

/** The samples (about one a second) of one run, summarised per phase; phases without samples are left out. */
export function phaseFootprints(samples: readonly ControllerSample[], lines: readonly TimedLine[], window = 5): Map<Phase, PhaseFootprint> {
  const out = new Map<Phase, PhaseFootprint>();
  const first = samples[0];
  if (first === undefined) return out;
  for (const phase of PHASES) {
    const inPhase = samples.filter((s) => phaseOf(s, first.pid, lines) === phase);
    if (inPhase.length === 0) continue;
    const cpu: number[] = [];
    for (let i = window; i < inPhase.length; i += window) {
      const a = inPhase[i - window]!;
      const b = inPhase[i]!;
      // A window spanning two processes would count the new one's CPU from zero.
      if (a.pid === b.pid) cpu.push(cpuPercent(a.figures, b.figures, (b.at - a.at) / 1000));
    }
    out.set(phase, { rssMiB: inPhase.map((s) => s.figures.rssMiB), cpuPercent: cpu });
  }
  return out;
}

/** Each process's last sample: VmHWM and CPU time only grow while a process lives. */
function lastPerProcess(samples: readonly ControllerSample[]): ControllerSample[] {
  const last = new Map<number, ControllerSample>();
  for (const s of samples) last.set(s.pid, s);
  return [...last.values()];
}

/** The highest RSS any of the controller processes reached (VmHWM), restart included. */
export function peakRssMiB(samples: readonly ControllerSample[]): number {
  return Math.max(...lastPerProcess(samples).map((s) => s.figures.peakRssMiB));
}

/** VmHWM of the processes after the first (the restart), or undefined when none was sampled. */
export function restartPeakRssMiB(samples: readonly ControllerSample[]): number | undefined {
  const later = lastPerProcess(samples).slice(1);
  return later.length === 0 ? undefined : Math.max(...later.map((s) => s.figures.peakRssMiB));
}

/** CPU time of all controller processes together, as last read. */
export function cpuSecondsTotal(samples: readonly ControllerSample[]): number {
  return lastPerProcess(samples).reduce((sum, s) => sum + s.figures.cpuSeconds, 0);
}

/** What controller-scale's own lines say; undefined where a line is missing or worded differently. */
export interface ScaleFigures {
  convergenceSeconds: number | undefined;
  idleWrites: number | undefined;
  affectedNodes: number | undefined;
  nisUpdatedMs: number | undefined;
  ppiCompletedMs: number | undefined;
  changeWrites: number | undefined;
  /** Writes for the image change beyond one per affected node. */
  changeConstant: number | undefined;
  restartSyncSeconds: number | undefined;
  restartWrites: number | undefined;
  /** controller-scale's own reading of the restarted controller's VmHWM. */
  restartPeakMiB: number | undefined;
}

function match(lines: readonly string[], re: RegExp, group = 1): number | undefined {
  for (const line of lines) {
    const m = re.exec(line);
    if (m?.[group] !== undefined) return Number(m[group]);
  }
  return undefined;
}

export function parseScaleLines(lines: readonly string[]): ScaleFigures {
  return {
    convergenceSeconds: match(lines, /^initial convergence: ([\d.]+) s/),
    idleWrites: match(lines, /^idle .*: \d+ passes, (\d+) API writes/),
    affectedNodes: match(lines, /^image change on (\d+) affected nodes/),
    nisUpdatedMs: match(lines, /^image change on .*NodeImageSets updated in (\d+) ms/),
    ppiCompletedMs: match(lines, /^image change on .*PrePullImage Completed in (\d+) ms/),
    changeWrites: match(lines, /^writes for the image change: (\d+)/),
    changeConstant: match(lines, /^writes for the image change: .*affected nodes \+ constant = \d+ \+ (-?\d+)/),
    restartSyncSeconds: match(lines, /^restart: synced and first pass done in ([\d.]+) s/),
    restartWrites: match(lines, /^restart: .*, (\d+) API writes/),
    restartPeakMiB: match(lines, /^restart: .*\(peak (\d+) MiB\)/),
  };
}

// --- notes: controller-scale's lines, verbatim, per run ---------------------------------------------------

/** "controller-scale run 2: <line>"; results written before --runs have "controller-scale: <line>" (run 1). */
export function scaleNote(run: number, line: string): string {
  return `controller-scale run ${run}: ${line}`;
}

export function parseScaleNote(note: string): { run: number; line: string } | undefined {
  const m = /^controller-scale(?: run (\d+))?: (.*)$/.exec(note);
  if (m === null) return undefined;
  return { run: m[1] === undefined ? 1 : Number(m[1]), line: m[2] ?? '' };
}

/** controller-scale's lines of one run, from a result's notes. */
export function scaleLinesOfRun(notes: readonly string[], run: number): string[] {
  return notes.flatMap((n) => {
    const p = parseScaleNote(n);
    return p?.run === run ? [p.line] : [];
  });
}

// --- figures: one value per run -------------------------------------------------------------------------

export interface RunFootprint {
  phases: Map<Phase, PhaseFootprint>;
  peakRssMiB: number;
  restartPeakRssMiB: number | undefined;
  cpuSeconds: number;
  scale: ScaleFigures;
}

/** A run's figures from its samples and lines. */
export function runFootprint(samples: readonly ControllerSample[], lines: readonly TimedLine[]): RunFootprint {
  return {
    phases: phaseFootprints(samples, lines),
    peakRssMiB: peakRssMiB(samples),
    restartPeakRssMiB: restartPeakRssMiB(samples),
    cpuSeconds: cpuSecondsTotal(samples),
    scale: parseScaleLines(lines.map((l) => l.text)),
  };
}

export const FOOTPRINT_IDS = {
  peakRss: 'footprint.controller.peak-rss',
  restartPeakRss: 'footprint.controller.restart.peak-rss',
  cpuSeconds: 'footprint.controller.cpu-seconds',
  convergenceTime: 'footprint.controller.convergence.time',
  idleWrites: 'footprint.controller.idle.writes',
  affectedNodes: 'footprint.controller.change.affected-nodes',
  nisUpdated: 'footprint.controller.change.nis-updated',
  ppiCompleted: 'footprint.controller.change.ppi-completed',
  changeWrites: 'footprint.controller.change.writes',
  changeConstant: 'footprint.controller.change.writes-constant',
  restartSync: 'footprint.controller.restart.sync-time',
  restartWrites: 'footprint.controller.restart.writes',
} as const;

export function phaseRssId(phase: Phase): string {
  return `footprint.controller.${phase}.rss`;
}

export function phaseCpuId(phase: Phase): string {
  return `footprint.controller.${phase}.cpu`;
}

/** From controller-scale's own lines, in the order the report lists them. */
const SCALE_FIGURES: readonly { id: string; key: keyof ScaleFigures; label: string; unit: string }[] = [
  { id: FOOTPRINT_IDS.convergenceTime, key: 'convergenceSeconds', label: 'initial convergence: controller start to every PrePullImage Completed', unit: 's' },
  { id: FOOTPRINT_IDS.idleWrites, key: 'idleWrites', label: 'API writes during an idle resync', unit: '' },
  { id: FOOTPRINT_IDS.affectedNodes, key: 'affectedNodes', label: 'nodes affected by the image change', unit: '' },
  { id: FOOTPRINT_IDS.nisUpdated, key: 'nisUpdatedMs', label: 'image change: Deployment patch to every affected NodeImageSet updated', unit: 'ms' },
  { id: FOOTPRINT_IDS.ppiCompleted, key: 'ppiCompletedMs', label: 'image change: Deployment patch to PrePullImage Completed', unit: 'ms' },
  { id: FOOTPRINT_IDS.changeWrites, key: 'changeWrites', label: 'API writes for the image change', unit: '' },
  { id: FOOTPRINT_IDS.changeConstant, key: 'changeConstant', label: 'writes for the image change beyond one per affected node (the constant)', unit: '' },
  { id: FOOTPRINT_IDS.restartSync, key: 'restartSyncSeconds', label: 'restart on the converged cluster: synced and first pass done', unit: 's' },
  { id: FOOTPRINT_IDS.restartWrites, key: 'restartWrites', label: 'API writes by the restarted controller', unit: '' },
];

function measured(id: string, label: string, unit: string, samples: readonly (number | undefined)[]): Figure[] {
  const values = samples.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return values.length === 0 ? [] : [{ id, label, basis: 'measured', unit, samples: values }];
}

/** Figures with one sample per run (runs lacking a value are left out of that figure). */
export function footprintFigures(runs: readonly RunFootprint[]): Figure[] {
  const perPhase = PHASES.flatMap((phase) => {
    const of = runs.map((r) => r.phases.get(phase));
    return [
      ...measured(phaseRssId(phase), `controller RSS, ${phase} (median of 1 s samples, per run)`, 'MiB', of.map((p) => (p === undefined ? undefined : median(p.rssMiB)))),
      ...measured(phaseCpuId(phase), `controller CPU, ${phase} (median of 5 s windows, per run)`, '%', of.map((p) => (p === undefined || p.cpuPercent.length === 0 ? undefined : median(p.cpuPercent)))),
    ];
  });
  return [
    ...perPhase,
    ...measured(FOOTPRINT_IDS.peakRss, 'controller peak RSS (VmHWM), restart included', 'MiB', runs.map((r) => r.peakRssMiB)),
    ...measured(FOOTPRINT_IDS.restartPeakRss, 'restarted controller peak RSS (VmHWM)', 'MiB', runs.map((r) => r.restartPeakRssMiB)),
    ...measured(FOOTPRINT_IDS.cpuSeconds, 'controller CPU time over the run, restart included', 's', runs.map((r) => r.cpuSeconds)),
    ...SCALE_FIGURES.flatMap((f) => measured(f.id, f.label, f.unit, runs.map((r) => r.scale[f.key]))),
  ];
}

/**
 * The figures of a result written before --runs (one run, samples of the first controller only): the
 * figures it has, plus what controller-scale's lines say, with the restart's peak from its own line.
 */
export function legacyFootprintFigures(figures: readonly Figure[], notes: readonly string[]): Figure[] {
  const scale = parseScaleLines(scaleLinesOfRun(notes, 1));
  const out = figures.map((f) => {
    if (f.id !== FOOTPRINT_IDS.peakRss || scale.restartPeakMiB === undefined) return f;
    return { ...f, label: 'controller peak RSS (VmHWM), restart included (restart from controller-scale\'s line)', samples: [Math.max(...f.samples, scale.restartPeakMiB)] };
  });
  const have = new Set(out.map((f) => f.id));
  const add = [
    ...measured(FOOTPRINT_IDS.restartPeakRss, 'restarted controller peak RSS (VmHWM, controller-scale\'s line)', 'MiB', [scale.restartPeakMiB]),
    ...SCALE_FIGURES.flatMap((f) => measured(f.id, f.label, f.unit, [scale[f.key]])),
  ].filter((f) => !have.has(f.id));
  return [...out, ...add];
}

// --- goals ------------------------------------------------------------------------------------------------

/** The limit controller-scale itself judges "affected nodes + constant" by. */
export const CHANGE_CONSTANT_LIMIT = 10;

export interface GoalCheck {
  goal: string;
  unit: string;
  limit: number;
  /** Runs the figure has a value for. */
  n: number;
  median: number;
  /** The run furthest from the goal (every goal is an upper limit). */
  worst: number;
  medianMet: boolean;
  worstMet: boolean;
}

export const CONTROLLER_GOALS: readonly { id: string; goal: string; unit: string; limit: number }[] = [
  { id: FOOTPRINT_IDS.peakRss, goal: 'RSS ≤ 300 MiB (peak, restart included)', unit: 'MiB', limit: 300 },
  { id: FOOTPRINT_IDS.idleWrites, goal: 'idle resync 0 writes', unit: '', limit: 0 },
  { id: FOOTPRINT_IDS.changeConstant, goal: `writes per change ≤ affected nodes + ${CHANGE_CONSTANT_LIMIT}`, unit: '', limit: CHANGE_CONSTANT_LIMIT },
  { id: FOOTPRINT_IDS.restartWrites, goal: 'restart 0 writes', unit: '', limit: 0 },
];

/** Each goal whose figure is there, judged on the median and on the worst run. */
export function controllerGoals(figures: readonly Figure[]): GoalCheck[] {
  return CONTROLLER_GOALS.flatMap((g) => {
    const f = figures.find((x) => x.id === g.id);
    if (f === undefined || f.samples.length === 0) return [];
    const m = median(f.samples);
    const worst = Math.max(...f.samples);
    return [{ goal: g.goal, unit: g.unit, limit: g.limit, n: f.samples.length, median: m, worst, medianMet: m <= g.limit, worstMet: worst <= g.limit }];
  });
}
