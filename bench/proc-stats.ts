// Memory and CPU of one process, read from /proc (Linux), and of the whole machine from /proc/stat.
import { readFileSync } from 'node:fs';

const MiB = 1024 * 1024;

export interface ProcessFigures {
  rssMiB: number;
  /** VmHWM: the highest RSS since the process started. */
  peakRssMiB: number;
  /** User + system CPU time consumed so far. */
  cpuSeconds: number;
}

export function processFigures(pid: number): ProcessFigures {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${key}`);
    return Number(m[1]);
  };
  // utime and stime are the 14th and 15th fields; the command name before them is in parentheses and may hold spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  // USER_HZ is 100 on every Linux this runs on.
  return { rssMiB: (kb('VmRSS') * 1024) / MiB, peakRssMiB: (kb('VmHWM') * 1024) / MiB, cpuSeconds: ticks / 100 };
}

/** CPU time of a process between two readings, as a percentage of one core over `wallSeconds`. */
export function cpuPercent(before: ProcessFigures, after: ProcessFigures, wallSeconds: number): number {
  return wallSeconds <= 0 ? 0 : ((after.cpuSeconds - before.cpuSeconds) / wallSeconds) * 100;
}

export interface MachineTicks {
  busy: number;
  total: number;
}

/** The aggregate "cpu" line of /proc/stat: busy (everything but idle and iowait) and total ticks. */
export function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('/proc/stat has no cpu line');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Share of all cores busy between two readings, in percent. */
export function busyPercent(a: MachineTicks, b: MachineTicks): number {
  const total = b.total - a.total;
  return total <= 0 ? 0 : ((b.busy - a.busy) / total) * 100;
}
