// Benchmark (issue 6, item 5, controller side): runs bench/controller-scale.ts (5,000 simulated nodes,
// 2,000 Deployments, the controller issue's benchmark) as it is, N times in sequence, keeps every line it
// prints, and samples the kwarm-controller process it runs from /proc once a second: RSS, and CPU in 5 s
// windows. controller-scale stops its controller and starts another on the converged cluster (the memory
// peak), so the sampler follows whichever controller process is current. The lines controller-scale prints
// mark the phases (initial convergence, idle resync, one image change; the second process is the restart).
// Each figure has one value per run (a phase's median, a peak, a figure from controller-scale's lines), so
// the report gives medians and spread over runs. One run takes about 10 to 15 minutes at the default scale.
//
//   node_modules/.bin/node bench/controller-footprint.ts [--runs=5] [any controller-scale flags, e.g. --nodes=5000]
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { footprintFigures, runFootprint, scaleNote, type ControllerSample, type RunFootprint, type TimedLine } from './footprint-phases.ts';
import { describeMachine, LoadMonitor, loadLine, machineLine } from './machine.ts';
import { processFigures } from './proc-stats.ts';
import { FigureLog, writeResult } from './results.ts';

const SCRIPT = join(import.meta.dirname, 'controller-scale.ts');
// Either the compiled controller (dist/controller/main.js, what controller-scale runs) or the source.
const NEEDLE = 'controller/main.';

function parseArgs(argv: readonly string[]): { runs: number; passThrough: string[] } {
  const runsArg = argv.find((a) => a.startsWith('--runs='));
  const runs = runsArg === undefined ? 5 : Number(runsArg.slice('--runs='.length));
  if (!Number.isInteger(runs) || runs <= 0) throw new Error('--runs must be a positive integer');
  return { runs, passThrough: argv.filter((a) => a !== '--' && !a.startsWith('--runs=')) };
}

/** A direct child of `parent` whose command line mentions `needle`. */
function childProcess(parent: number, needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) return Number(entry);
    } catch {
      // Gone between readdir and read.
    }
  }
  return undefined;
}

/** One run of controller-scale: its lines as they came, and samples of whichever controller was running. */
async function oneRun(run: number, passThrough: readonly string[]): Promise<{ lines: TimedLine[]; samples: ControllerSample[] }> {
  console.log(`\n--- run ${run}: controller-scale ${passThrough.join(' ')}`.trimEnd());
  const child = spawn(process.execPath, [SCRIPT, ...passThrough], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: TimedLine[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    process.stdout.write(chunk);
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) lines.push({ at: Date.now(), text: text.trim() });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code); }));
  const state = { exited: false };
  void exited.then(() => { state.exited = true; });

  const samples: ControllerSample[] = [];
  let pid: number | undefined;
  while (!state.exited) {
    await sleep(1000);
    if (child.pid === undefined) break;
    // After the first controller exits, the next one found is the restart.
    pid ??= childProcess(child.pid, NEEDLE);
    if (pid === undefined) continue;
    try {
      samples.push({ at: Date.now(), pid, figures: processFigures(pid) });
    } catch {
      // That controller has exited (a zombie has no VmRSS either): look for the next one.
      pid = undefined;
    }
  }
  const code = await exited;
  if (partial.trim() !== '') lines.push({ at: Date.now(), text: partial.trim() });
  if (code !== 0) throw new Error(`run ${run}: controller-scale exited with ${String(code)}`);
  if (samples.length < 5) throw new Error(`run ${run}: the controller process was never found to sample`);
  return { lines, samples };
}

async function main(): Promise<void> {
  const { runs, passThrough } = parseArgs(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const monitor = new LoadMonitor();
  await monitor.start();
  const machine = await describeMachine();
  console.log(`machine: ${machineLine(machine)}`);

  const footprints: RunFootprint[] = [];
  const notes: string[] = [];
  for (let run = 1; run <= runs; run++) {
    const { lines, samples } = await oneRun(run, passThrough);
    const fp = runFootprint(samples, lines);
    footprints.push(fp);
    const pids = new Set(samples.map((s) => s.pid)).size;
    const restart = fp.restartPeakRssMiB === undefined ? 'restart not sampled' : `restart peak ${fp.restartPeakRssMiB.toFixed(0)} MiB`;
    console.log(`run ${run}: ${samples.length} samples of ${pids} controller process(es); peak RSS ${fp.peakRssMiB.toFixed(0)} MiB (${restart}), CPU ${fp.cpuSeconds.toFixed(1)} s`);
    if (fp.restartPeakRssMiB === undefined) notes.push(`run ${run}: the restarted controller was not sampled (it ran for less than a second); its peak is missing from peak RSS`);
    // controller-scale's own report, verbatim.
    notes.push(...lines.map((l) => l.text).filter((t) => t !== '' && !t.startsWith('[harness]')).map((t) => scaleNote(run, t)));
  }

  console.log(`\nfigures over ${runs} run(s), one value per run:`);
  const figures = new FigureLog();
  for (const f of footprintFigures(footprints)) figures.measured(f.id, f.label, f.unit, f.samples);

  const load = await monitor.stop();
  console.log(`\n${loadLine(load)}`);
  const path = writeResult({
    benchmark: 'controller-footprint',
    command: `node_modules/.bin/node bench/controller-footprint.ts --runs=${runs} ${passThrough.join(' ')}`.trim(),
    startedAt, finishedAt: new Date().toISOString(), machine, load,
    parameters: { runs, controllerScaleArgs: passThrough.join(' ') || '(defaults)' },
    figures: figures.figures,
    notes: [
      `${runs} runs of bench/controller-scale.ts in sequence; every figure has one value per run: a phase's median of its 1 s RSS samples and 5 s CPU windows (phases marked by the lines controller-scale prints; the restart is the second controller process), the peak RSS (VmHWM) of both processes, or a figure from controller-scale's own lines`,
      ...notes,
    ],
  });
  console.log(`results: ${path}`);
}

await main();
