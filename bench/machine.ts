// What a benchmark ran on: cores, memory, CPU model, kernel, and the versions of the real parts
// (Node, containerd, kube-apiserver, etcd, registry), plus how busy the machine was before and
// during the run, since other work shares it.
import { execFile } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cachedBinary, systemBinary } from '../local-cluster/binaries.ts';
import { busyPercent, machineTicks, type MachineTicks } from './proc-stats.ts';
import { errorText } from '../lib/errors.ts';

const execFileAsync = promisify(execFile);

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  containerd: string;
  kubernetes: string;
  etcd: string;
  registry: string;
  /** The commit the benchmark ran on, and the source folders that had uncommitted changes then. */
  revision: string;
}

async function firstLine(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args);
    return stdout.split('\n')[0]?.trim() ?? '';
  } catch (err) {
    return `unknown (${errorText(err)})`;
  }
}

async function revision(): Promise<string> {
  const root = join(import.meta.dirname, '..');
  const head = await firstLine('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  try {
    const { stdout } = await execFileAsync('git', ['-C', root, 'status', '--porcelain', '--', 'agent', 'controller', 'lib', 'api', 'proto']);
    const dirs = [...new Set(stdout.split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(3).split('/')[0] ?? ''))];
    return dirs.length === 0 ? head : `${head} with uncommitted changes in ${dirs.join(', ')}`;
  } catch {
    return head;
  }
}

export async function describeMachine(): Promise<Machine> {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    containerd: await firstLine(systemBinary('containerd'), ['--version']),
    kubernetes: await firstLine(cachedBinary('kube-apiserver'), ['--version']),
    etcd: await firstLine(cachedBinary('etcd'), ['--version']),
    registry: await firstLine(systemBinary('docker-registry'), ['--version']),
    revision: await revision(),
  };
}

export function machineLine(m: Machine): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node}; ${m.containerd}; ${m.kubernetes}; ${m.etcd}; ${m.registry}`;
}

export interface LoadSummary {
  /** Share of all cores busy over a few seconds before the benchmark started anything: other people's work. */
  busyBeforePercent: number;
  /** The 1-minute load average at the start and at the end. */
  loadAverageStart: number;
  loadAverageEnd: number;
  /** Share of all cores busy during the run (this benchmark's own processes included), mean and highest 5 s window. */
  busyDuringMeanPercent: number;
  busyDuringMaxPercent: number;
}

/** Samples machine-wide CPU use while a benchmark runs. */
export class LoadMonitor {
  readonly #controller = new AbortController();
  readonly #windows: number[] = [];
  #busyBefore = 0;
  #loadStart = 0;
  #first: MachineTicks | undefined;
  #running: Promise<void> | undefined;

  /** Measures the background load for `quietSeconds`, then keeps sampling in 5 s windows until stop(). */
  async start(quietSeconds = 3): Promise<void> {
    this.#loadStart = loadavg()[0] ?? 0;
    const a = machineTicks();
    await sleep(quietSeconds * 1000);
    this.#busyBefore = busyPercent(a, machineTicks());
    this.#first = machineTicks();
    this.#running = this.#sample(this.#controller.signal);
  }

  async #sample(signal: AbortSignal): Promise<void> {
    let last = machineTicks();
    while (!signal.aborted) {
      try {
        await sleep(5000, undefined, { signal });
      } catch {
        return;
      }
      const now = machineTicks();
      this.#windows.push(busyPercent(last, now));
      last = now;
    }
  }

  async stop(): Promise<LoadSummary> {
    this.#controller.abort();
    await this.#running;
    const end = machineTicks();
    return {
      busyBeforePercent: round1(this.#busyBefore),
      loadAverageStart: this.#loadStart,
      loadAverageEnd: loadavg()[0] ?? 0,
      busyDuringMeanPercent: round1(this.#first === undefined ? 0 : busyPercent(this.#first, end)),
      busyDuringMaxPercent: round1(this.#windows.length === 0 ? 0 : Math.max(...this.#windows)),
    };
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function loadLine(l: LoadSummary): string {
  return `machine busy ${l.busyBeforePercent} % before the run (other work); during it ${l.busyDuringMeanPercent} % mean, ${l.busyDuringMaxPercent} % in the busiest 5 s; load average ${l.loadAverageStart.toFixed(2)} -> ${l.loadAverageEnd.toFixed(2)}`;
}
