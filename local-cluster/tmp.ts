// Scratch directories for the harness (servers' data, logs, kubeconfigs, PKI), /tmp/kwarm-* (os.tmpdir()),
// removed when the run ends, however it ends:
// - normally by whoever made one, with removeDir() when it stops;
// - if the process dies first (even SIGKILL of the whole process tree): every dir made here, but those whose
//   caller has its own crash janitor (ownCrashCleanup), is also listed, one a line, in the process's own list file
//   /tmp/kwarm-owned-<pid>-<start time>.list, and the first makeTempDir of the process starts one detached
//   janitor (a shell) that waits until the process is gone, gives the servers' watchdogs (process.ts) a few
//   seconds to kill them, then removes the listed dirs (never crossing into a mount) and the list;
// - if the janitor was killed too: the first makeTempDir of the next harness process removes the dirs that the
//   list of every dead owner names, and the list.
// A dir holding a file named `keep` is left to the user by both. KWARM_KEEP_TEST_DIRS (keepTestDirs()) keeps
// every dir, and this file is the one place that rule lives: with it set removeDir() removes nothing (its callers
// do not check the variable), and a process lists nothing, starts no janitor and sweeps nothing, so its dirs stay
// after it. removeScratchDir() removes whatever the variable says: for pure temporaries and other runs' leftovers.
// Neither crosses into a mount: both refuse, removing nothing, when a mount point lies in the dir. removeDir()
// leaves its dir's line in the list: the janitor's rm of a dir already gone costs nothing, a rewrite per removal
// would (tests make hundreds).
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

export interface TempDirOptions {
  /**
   * Not listed: the caller's own crash janitor removes the dir, after reading it (real-cluster.ts finds the nodes'
   * container cgroups from the task bundles in its dir, so the files must outlive this module's janitor).
   */
  ownCrashCleanup?: boolean;
}

/** A process as the lists name it: the pid and its start time (/proc/<pid>/stat field 22), so a reused pid is another owner. */
export interface Owner {
  pid: number;
  startTime: string;
}

/** Seconds the janitor waits after its process is gone: the watchdogs poll once a second, as in real-cluster.ts. */
const JANITOR_GRACE_S = 3;
const LIST_NAME = /^kwarm-owned-(\d+)-(\d+)\.list$/;

export function listFile(owner: Owner): string {
  return join(tmpdir(), `kwarm-owned-${owner.pid}-${owner.startTime}.list`);
}

/** The process running under `pid` now, or undefined when there is none (a zombie has ended too). */
export function processOwner(pid: number): Owner | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The second field (the command name) may hold spaces and parentheses: count from after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTime = fields[19];
  return fields[0] === 'Z' || startTime === undefined ? undefined : { pid, startTime };
}

/** Whether the process `owner` names still runs (not another one that got its pid since). */
export function stillRunning(owner: Owner): boolean {
  return processOwner(owner.pid)?.startTime === owner.startTime;
}

/** Whether KWARM_KEEP_TEST_DIRS is set: the harness's dirs stay after the run, for the user to read. */
export function keepTestDirs(): boolean {
  return process.env.KWARM_KEEP_TEST_DIRS !== undefined;
}

/** This process's list file, set up by the first makeTempDir; null when nothing is listed (KWARM_KEEP_TEST_DIRS). */
let ownList: string | null | undefined;

function setUpOwnList(): string | null {
  if (keepTestDirs()) return null;
  const self = processOwner(process.pid);
  if (self === undefined) return null; // No /proc (not Linux): no crash cleanup, as before it existed.
  sweepDeadOwners();
  const list = listFile(self);
  writeFileSync(list, '');
  startJanitor(list);
  return list;
}

export function makeTempDir(prefix: string, opts: TempDirOptions = {}): string {
  ownList ??= setUpOwnList();
  const dir = mkdtempSync(join(tmpdir(), `kwarm-${prefix}-`));
  if (ownList !== null && opts.ownCrashCleanup !== true) appendFileSync(ownList, `${dir}\n`);
  return dir;
}

/**
 * Removes a harness dir (made by makeTempDir, or in one) when its user is done with it, unless KWARM_KEEP_TEST_DIRS
 * is set: then it stays, with the servers' data and logs, for the user to read. Throws, removing nothing, if a
 * mount point lies in it.
 */
export function removeDir(dir: string): void {
  if (keepTestDirs()) return;
  removeScratchDir(dir);
}

/**
 * Removes a dir whatever KWARM_KEEP_TEST_DIRS says: for pure temporaries that keeping would only fill the disk
 * with (an image build's scratch copy, a stripped Node binary), and for another run's leftovers. Throws, removing
 * nothing, if a mount point lies in it. rmSync has no one-file-system option: Node 22's removes the rest of the
 * dir and then fails with EBUSY on the mount point, and a recursion that empties directories before removing
 * them (std::filesystem::remove_all, which later Node versions use) would delete the mounted files as well.
 */
export function removeScratchDir(dir: string): void {
  const mounts = mountPointsIn(dir);
  if (mounts.length > 0) {
    throw new Error(`not removing ${dir}: ${mounts.join(', ')} ${mounts.length === 1 ? 'is a mount point' : 'are mount points'} in it; unmount first`);
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** The mount points at or below `dir` in this process's mount namespace (/proc/self/mountinfo, field 5). */
function mountPointsIn(dir: string): string[] {
  let real: string;
  let table: string;
  try {
    real = realpathSync(dir);
    table = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return []; // The dir is gone (nothing to remove), or there is no /proc (not Linux): rmSync has the last word.
  }
  return table.split('\n').flatMap((line) => {
    const field = line.split(' ')[4];
    if (field === undefined) return [];
    // Space, tab, newline and backslash in a path appear as octal escapes (\040).
    const mount = field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    return mount === real || mount.startsWith(real === '/' ? '/' : `${real}/`) ? [mount] : [];
  });
}

/**
 * One shell per process, detached so that a kill of our process group misses it. It polls the pid alone, like
 * the watchdogs: a pid reused within that second only delays the removal until the new process ends or the next
 * sweep (which checks the start time too).
 */
function startJanitor(list: string): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; sleep ${JANITOR_GRACE_S}
while read -r d; do [ -e "$d/keep" ] || rm -rf --one-file-system -- "$d"; done < "$1"; rm -f -- "$1"`;
  const janitor = spawn('sh', ['-c', script, 'kwarm-temp-janitor', list], { detached: true, stdio: 'ignore' });
  janitor.unref();
}

/**
 * Removes the dirs listed by owners that are gone and whose janitor did not finish (killed with them), and
 * their lists. Only our own user's lists, and only entries that are /tmp/kwarm-* dirs: /tmp is everyone's.
 */
function sweepDeadOwners(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = LIST_NAME.exec(name);
    if (m === null) continue;
    const file = join(tmpdir(), name);
    const owner = { pid: Number(m[1]), startTime: m[2] ?? '' };
    if (stillRunning(owner)) continue;
    let listed: string[];
    try {
      if (statSync(file).uid !== process.getuid?.()) continue;
      listed = readFileSync(file, 'utf8').split('\n');
    } catch {
      continue; // Its janitor removed it meanwhile.
    }
    const dirs = listed.filter((d) => dirname(d) === tmpdir() && basename(d).startsWith('kwarm-')
      && existsSync(d) && !existsSync(join(d, 'keep')));
    if (dirs.length > 0) spawnSync('rm', ['-rf', '--one-file-system', '--', ...dirs], { stdio: 'ignore' });
    rmSync(file, { force: true });
  }
}
