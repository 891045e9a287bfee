// One benchmark run as every bench script records it: the machine described up front, the machine's
// load sampled throughout, figures and notes gathered on the way, and at the end one result file under
// bench/results/ (bench/results.ts).
import { describeMachine, LoadMonitor, loadLine, machineLine, type Machine } from './machine.ts';
import { FigureLog, writeResult, type Parameters } from './results.ts';

export class BenchRun {
  readonly startedAt: string;
  readonly machine: Machine;
  readonly figures = new FigureLog();
  /** Conditions a reader needs to judge the figures; written with them. */
  readonly notes: string[] = [];
  readonly #monitor: LoadMonitor;

  constructor(startedAt: string, monitor: LoadMonitor, machine: Machine) {
    this.startedAt = startedAt;
    this.#monitor = monitor;
    this.machine = machine;
  }

  /** Measures the quiet load first (a few seconds), then describes the machine and prints it. */
  static async start(): Promise<BenchRun> {
    const startedAt = new Date().toISOString();
    const monitor = new LoadMonitor();
    await monitor.start();
    const machine = await describeMachine();
    console.log(`machine: ${machineLine(machine)}`);
    return new BenchRun(startedAt, monitor, machine);
  }

  /**
   * Stops the load sampling, prints the load, writes bench/results/<benchmark>.json (the command being
   * bench/<benchmark>.ts with `argv`) and prints its path; returns the path.
   */
  async finish(benchmark: string, argv: readonly string[], parameters: Parameters): Promise<string> {
    const load = await this.#monitor.stop();
    console.log(`\n${loadLine(load)}`);
    const path = writeResult({
      benchmark,
      command: `node_modules/.bin/node bench/${benchmark}.ts ${argv.join(' ')}`.trim(),
      startedAt: this.startedAt, finishedAt: new Date().toISOString(), machine: this.machine, load,
      parameters, figures: this.figures.figures, notes: this.notes,
    });
    console.log(`results: ${path}`);
    return path;
  }

  /** Stops the load sampling; for a `finally`, whether or not finish() ran. */
  async stop(): Promise<void> {
    await this.#monitor.stop();
  }
}
