// The optional disk guard: no new pulls while the runtime's image filesystem is fuller than a
// threshold. CRI ImageFsInfo names the filesystem (its mountpoint) but reports no capacity, so the
// filesystem itself is measured with statfs. The decision is pure; measuring is a thin I/O shell.
import { statfs } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { ImageRuntime } from './cri/runtime.ts';
import type { ImageFsReport } from './status-document.ts';
import { errorText } from '../lib/errors.ts';

export interface FilesystemFigures {
  /** Bytes used on the filesystem (statfs), or by images (CRI) when statfs is not possible. */
  usedBytes: number | undefined;
  /** Undefined when the filesystem could not be measured. */
  capacityBytes: number | undefined;
}

export interface DiskAssessment {
  usedPercent: number | undefined;
  /** True when new pulls must wait. */
  pause: boolean;
}

/**
 * Whether pulls must wait: only when a threshold is set (> 0) and the used share is known and at
 * or above it. An unmeasurable filesystem never blocks pulls (the guard fails open).
 */
export function assessDisk(fs: FilesystemFigures, thresholdPercent: number): DiskAssessment {
  const usedPercent =
    fs.usedBytes !== undefined && fs.capacityBytes !== undefined && fs.capacityBytes > 0
      ? Math.min(100, Math.round((fs.usedBytes / fs.capacityBytes) * 100))
      : undefined;
  return { usedPercent, pause: thresholdPercent > 0 && usedPercent !== undefined && usedPercent >= thresholdPercent };
}

export function imageFsReport(fs: FilesystemFigures, assessment: DiskAssessment, guardOn: boolean): ImageFsReport {
  const report: ImageFsReport = {};
  if (fs.usedBytes !== undefined) report.usedBytes = fs.usedBytes;
  if (fs.capacityBytes !== undefined) report.capacityBytes = fs.capacityBytes;
  if (assessment.usedPercent !== undefined) report.usedPercent = assessment.usedPercent;
  if (guardOn) report.pullsPaused = assessment.pause;
  return report;
}

export type StatfsFn = (path: string) => Promise<{ blocks: number; bfree: number; bsize: number }>;

/** Measures the runtime's image filesystem; `explain` says why capacity is unknown, when it is. */
export async function measureImageFs(
  runtime: ImageRuntime,
  signal: AbortSignal,
  fsStat: StatfsFn = statfs,
): Promise<FilesystemFigures & { mountpoint: string | undefined; explain?: string }> {
  const info = await runtime.imageFsInfo({ signal });
  const first = info.imageFilesystems[0];
  if (first === undefined) return { usedBytes: undefined, capacityBytes: undefined, mountpoint: undefined, explain: 'the runtime reports no image filesystem' };
  try {
    const st = await fsStat(first.mountpoint);
    return { usedBytes: (st.blocks - st.bfree) * st.bsize, capacityBytes: st.blocks * st.bsize, mountpoint: first.mountpoint };
  } catch (err) {
    // The agent may not see the host path (it is not mounted into the pod): report what CRI says.
    const why = errorText(err);
    return { usedBytes: first.usedBytes, capacityBytes: undefined, mountpoint: first.mountpoint, explain: `cannot measure ${first.mountpoint}: ${why}` };
  }
}

export interface DiskGuardOptions {
  runtime: ImageRuntime;
  /** 0 = off (the filesystem is still measured and reported). */
  thresholdPercent: number;
  intervalMs: number;
  log: Logger;
  /** Called after each measurement with the pause decision and the report for status. */
  onReport: (report: ImageFsReport, pause: boolean) => void;
  statfs?: StatfsFn;
}

/** Measures every `intervalMs` until `signal` aborts; measurement errors are logged and retried. */
export async function runDiskGuard(opts: DiskGuardOptions, signal: AbortSignal): Promise<void> {
  let explained: string | undefined;
  const guardOn = opts.thresholdPercent > 0;
  const stopped = (): boolean => signal.aborted;
  while (!stopped()) {
    try {
      const fs = await measureImageFs(opts.runtime, AbortSignal.any([signal, AbortSignal.timeout(10_000)]), opts.statfs);
      if (fs.explain !== undefined && fs.explain !== explained && guardOn) {
        opts.log.warn('disk guard cannot measure the image filesystem; pulls are not limited by it', { why: fs.explain });
      }
      explained = fs.explain;
      const assessment = assessDisk(fs, opts.thresholdPercent);
      opts.onReport(imageFsReport(fs, assessment, guardOn), assessment.pause);
    } catch (err) {
      if (stopped()) break;
      const why = errorText(err);
      if (why !== explained && guardOn) opts.log.warn('disk guard cannot measure the image filesystem; pulls are not limited by it', { why });
      explained = why;
      // Fails open: a runtime that cannot report its image filesystem must not stop every pull.
      opts.onReport(imageFsReport({ usedBytes: undefined, capacityBytes: undefined }, { usedPercent: undefined, pause: false }, guardOn), false);
    }
    await sleep(opts.intervalMs, undefined, { signal }).catch(() => undefined);
  }
}
