// Benchmark (issue 6, item 5, controller side): runs bench/controller-scale.ts (5,000 simulated nodes,
// 2,000 Deployments, the controller issue's benchmark) as it is, keeps every line it prints, and samples
// the kwarm-controller process it starts from /proc once a second: RSS, and CPU in 5 s windows. The
// lines controller-scale prints mark the phases (initial convergence, idle resync, one image change),
// so the samples are summarised per phase. One run of controller-scale takes about 10 to 15 minutes.
//
//   node_modules/.bin/node bench/controller-footprint.ts [-- any controller-scale flags, e.g. --nodes=5000]
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeMachine, LoadMonitor, loadLine, machineLine } from './machine.ts';
import { cpuPercent, processFigures, type ProcessFigures } from './proc-stats.ts';
import { FigureLog, writeResult } from './results.ts';

const SCRIPT = join(import.meta.dirname, 'controller-scale.ts');
const passThrough = process.argv.slice(2).filter((a) => a !== '--');

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

interface Sample {
  at: number;
  figures: ProcessFigures;
}

interface Line {
  at: number;
  text: string;
}

type Phase = 'convergence' | 'idle' | 'change';

/** The phase a moment belongs to, from when controller-scale printed its phase lines. */
function phaseAt(at: number, lines: readonly Line[]): Phase | undefined {
  const when = (prefix: string): number => lines.find((l) => l.text.startsWith(prefix))?.at ?? Infinity;
  const converged = when('initial convergence');
  const idleDone = when('idle');
  const changeDone = when('image change');
  if (at <= converged) return 'convergence';
  if (at <= idleDone) return 'idle';
  if (at <= changeDone) return 'change';
  return undefined;
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const monitor = new LoadMonitor();
  await monitor.start();
  const machine = await describeMachine();
  console.log(`machine: ${machineLine(machine)}`);
  const child = spawn(process.execPath, [SCRIPT, ...passThrough], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Line[] = [];
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

  const samples: Sample[] = [];
  let pid: number | undefined;
  while (!state.exited) {
    await sleep(1000);
    if (child.pid === undefined) break;
    pid ??= childProcess(child.pid, 'controller/main.ts');
    if (pid === undefined) continue;
    try {
      samples.push({ at: Date.now(), figures: processFigures(pid) });
    } catch {
      // The controller has exited; controller-scale is finishing.
    }
  }
  const code = await exited;
  if (code !== 0) throw new Error(`controller-scale exited with ${String(code)}`);
  if (samples.length < 5) throw new Error('the controller process was never found to sample');

  const figures = new FigureLog();
  for (const phase of ['convergence', 'idle', 'change'] as const) {
    const inPhase = samples.filter((s) => phaseAt(s.at, lines) === phase);
    if (inPhase.length < 2) continue;
    const cpu: number[] = [];
    for (let i = 5; i < inPhase.length; i += 5) {
      const a = inPhase[i - 5]!;
      const b = inPhase[i]!;
      cpu.push(cpuPercent(a.figures, b.figures, (b.at - a.at) / 1000));
    }
    figures.measured(`footprint.controller.${phase}.rss`, `controller RSS, ${phase} (1 s samples)`, 'MiB', inPhase.map((s) => s.figures.rssMiB));
    if (cpu.length > 0) figures.measured(`footprint.controller.${phase}.cpu`, `controller CPU, ${phase} (5 s windows)`, '%', cpu);
  }
  const last = samples[samples.length - 1]!;
  figures.measured('footprint.controller.peak-rss', 'controller peak RSS over the run (VmHWM)', 'MiB', [last.figures.peakRssMiB]);
  figures.measured('footprint.controller.cpu-seconds', 'controller CPU time over the whole run', 's', [last.figures.cpuSeconds]);

  const load = await monitor.stop();
  console.log(`\n${loadLine(load)}`);
  const path = writeResult({
    benchmark: 'controller-footprint',
    command: `node_modules/.bin/node bench/controller-footprint.ts ${passThrough.join(' ')}`.trim(),
    startedAt, finishedAt: new Date().toISOString(), machine, load,
    parameters: { controllerScaleArgs: passThrough.join(' ') || '(defaults)' },
    figures: figures.figures,
    // controller-scale's own report, verbatim: its figures are its own, read them there.
    notes: [
      'one run of bench/controller-scale.ts; RSS and CPU samples are taken within that run (the phases are marked by the lines it prints)',
      ...lines.map((l) => l.text).filter((t) => t !== '' && !t.startsWith('[harness]')).map((t) => `controller-scale: ${t}`),
    ],
  });
  console.log(`results: ${path}`);
}

await main();
