// The harness's temp dirs (local-cluster/tmp.ts) go when the process that made them dies without removing them,
// SIGKILL included: its janitor removes them a few seconds later, and if the janitor died too, the next harness
// process does. A live owner's dirs, a dir with a `keep` file and KWARM_KEEP_TEST_DIRS runs are left alone.
// removeDir itself keeps its dir with KWARM_KEEP_TEST_DIRS, and neither it nor removeScratchDir goes into a mount.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listFile, processOwner, removeDir, removeScratchDir, type Owner } from '../../../local-cluster/tmp.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const OWNER_SCRIPT = join(import.meta.dirname, 'temp-dir-owner.ts');

interface OwnerProcess {
  child: ChildProcess;
  owner: Owner;
  dirs: string[];
}

/** The owner processes started, killed after each test. */
const children: ChildProcess[] = [];

/** Runs temp-dir-owner.ts and resolves once it has printed its dirs. */
async function startOwner(args: readonly string[], keepDirs = false): Promise<OwnerProcess> {
  const env = { ...process.env };
  delete env.KWARM_KEEP_TEST_DIRS;
  if (keepDirs) env.KWARM_KEEP_TEST_DIRS = '1';
  const child = spawn(process.execPath, [OWNER_SCRIPT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
  const pid = child.pid;
  if (pid === undefined) throw new Error('temp-dir-owner.ts did not start');
  const owner = processOwner(pid);
  const line = await waitFor(() => {
    if (child.exitCode !== null && !out.includes('\n')) throw new Error(`temp-dir-owner.ts exited ${child.exitCode}:\n${out}`);
    return out.includes('\n') ? out.slice(0, out.indexOf('\n')) : undefined;
  }, { what: 'temp-dir-owner.ts to print its dirs', timeoutMs: 30_000, intervalMs: 50 });
  if (owner === undefined) throw new Error(`temp-dir-owner.ts (pid ${pid}) ended before it could be identified:\n${out}`);
  return { child, owner, dirs: JSON.parse(line) as string[] };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** A pid no process has any more: that of a `true` that has exited. */
function deadPid(): number {
  return spawnSync('true').pid;
}

/** A dir as a harness process makes them: /tmp/kwarm-*, with a file in it. */
function makeDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `kwarm-tmpsweep-${prefix}-`));
  writeFileSync(join(dir, 'data'), 'x\n');
  return dir;
}

describe('harness: temp dirs are removed even when the process that made them is killed', function () {
  this.timeout(60_000);
  const cleanUp: string[] = [];

  afterEach(async () => {
    for (const c of children.splice(0)) await kill(c);
    for (const p of cleanUp.splice(0)) rmSync(p, { recursive: true, force: true });
  });

  it('its janitor removes the dirs and the list a few seconds after a SIGKILL', async () => {
    const { child, owner, dirs } = await startOwner(['tmpsweep-a', 'tmpsweep-b']);
    cleanUp.push(...dirs, listFile(owner));
    expect(dirs).to.have.length(2);
    for (const d of dirs) expect(readFileSync(join(d, 'data'), 'utf8')).to.match(/temp-dir-owner/);
    expect(readFileSync(listFile(owner), 'utf8').split('\n').filter((l) => l !== '')).to.deep.equal(dirs);

    await kill(child);
    await waitFor(() => [...dirs, listFile(owner)].every((p) => !existsSync(p)),
      { what: `${dirs.join(', ')} and ${listFile(owner)} to be removed`, timeoutMs: 15_000, intervalMs: 200 });
  });

  it('the next process sweeps the lists of dead owners whose janitor died too, and nothing of a live owner', async () => {
    const stale = makeDir('stale');
    const kept = makeDir('kept');
    writeFileSync(join(kept, 'keep'), '');
    const outside = mkdtempSync(join(tmpdir(), 'tmpsweep-outside-'));
    const reused = makeDir('reused-pid');
    const live = makeDir('live');
    cleanUp.push(stale, kept, outside, reused, live);
    const self = processOwner(process.pid);
    if (self === undefined) throw new Error('no /proc/self/stat');
    // A process that is gone, and one whose pid now runs another process (this one, with another start time).
    const deadList = listFile({ pid: deadPid(), startTime: '1' });
    const reusedList = listFile({ pid: process.pid, startTime: `${self.startTime}0` });
    cleanUp.push(deadList, reusedList);
    writeFileSync(deadList, `${stale}\n${kept}\n${outside}\n`);
    writeFileSync(reusedList, `${reused}\n`);
    // This process, alive: added to its own list (made here when this process has made no temp dir yet).
    const liveList = listFile(self);
    if (!existsSync(liveList)) cleanUp.push(liveList);
    writeFileSync(liveList, `${live}\n`, { flag: 'a' });

    const { owner, dirs } = await startOwner(['tmpsweep-sweeper', '--exit']);
    cleanUp.push(...dirs, listFile(owner));

    expect(existsSync(stale), 'a dead owner\'s dir').to.equal(false);
    expect(existsSync(deadList), 'a dead owner\'s list').to.equal(false);
    expect(existsSync(reused), 'the dir of an owner whose pid was reused').to.equal(false);
    expect(existsSync(reusedList), 'the list of an owner whose pid was reused').to.equal(false);
    expect(existsSync(join(kept, 'data')), 'a dir with a keep file').to.equal(true);
    expect(existsSync(outside), 'a listed dir that is not /tmp/kwarm-*').to.equal(true);
    expect(existsSync(join(live, 'data')), 'a live owner\'s dir').to.equal(true);
    expect(readFileSync(liveList, 'utf8'), 'a live owner\'s list').to.include(live);
  });

  it('with KWARM_KEEP_TEST_DIRS nothing is listed and the dirs stay after a SIGKILL', async () => {
    const { child, owner, dirs } = await startOwner(['tmpsweep-keep'], true);
    cleanUp.push(...dirs);
    expect(existsSync(listFile(owner))).to.equal(false);
    await kill(child);
    // Longer than a janitor would wait (3 s after its 1 s poll).
    await sleep(6_000);
    for (const d of dirs) expect(existsSync(join(d, 'data')), d).to.equal(true);
    for (const d of dirs) removeDir(d);
  });
});

describe('harness: removeDir and removeScratchDir', function () {
  this.timeout(60_000);
  const cleanUp: string[] = [];
  const mounted: string[] = [];

  afterEach(async () => {
    for (const c of children.splice(0)) await kill(c);
    // Unmounted first: a recursive rm of a dir with a mount in it would delete the mounted dir's files.
    const stillMounted = mounted.splice(0).filter((m) => spawnSync('umount', [m]).status !== 0);
    if (stillMounted.length > 0) throw new Error(`could not unmount ${stillMounted.join(', ')}; left ${cleanUp.splice(0).join(', ')} in place`);
    for (const p of cleanUp.splice(0)) rmSync(p, { recursive: true, force: true });
  });

  it('removeDir removes the dir, and leaves it with KWARM_KEEP_TEST_DIRS', async () => {
    const removed = await startOwner(['tmpsweep-remove', '--remove', '--exit']);
    cleanUp.push(...removed.dirs, listFile(removed.owner));
    const kept = await startOwner(['tmpsweep-remove-keep', '--remove', '--exit'], true);
    cleanUp.push(...kept.dirs);
    expect(removed.dirs).to.have.length(1);
    expect(kept.dirs).to.have.length(1);
    for (const d of removed.dirs) expect(existsSync(d), d).to.equal(false);
    for (const d of kept.dirs) expect(existsSync(join(d, 'data')), d).to.equal(true);
  });

  // mount --bind needs root, as the real-node tests do.
  it('removeScratchDir refuses a dir with a mount point in it, removing nothing, and removes it once unmounted', () => {
    const dir = makeDir('mount');
    const source = mkdtempSync(join(tmpdir(), 'tmpsweep-bind-source-'));
    cleanUp.push(dir, source);
    writeFileSync(join(source, 'precious'), 'not the harness\'s\n');
    // A space, which /proc/self/mountinfo writes as \040.
    const mountPoint = join(dir, 'sub', 'mount point');
    mkdirSync(mountPoint, { recursive: true });
    const bind = spawnSync('mount', ['--bind', source, mountPoint], { encoding: 'utf8' });
    if (bind.status !== 0) throw new Error(`mount --bind ${source} ${mountPoint}: ${bind.stderr}`);
    mounted.push(mountPoint);

    expect(() => { removeScratchDir(dir); }).to.throw(`not removing ${dir}: ${mountPoint} is a mount point in it; unmount first`);
    expect(existsSync(join(source, 'precious')), 'the mounted dir\'s file').to.equal(true);
    expect(existsSync(join(dir, 'data')), 'the dir\'s own file').to.equal(true);

    const unmount = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
    if (unmount.status !== 0) throw new Error(`umount ${mountPoint}: ${unmount.stderr}`);
    mounted.splice(0);
    removeScratchDir(dir);
    expect(existsSync(dir)).to.equal(false);
    expect(existsSync(join(source, 'precious'))).to.equal(true);
  });
});
