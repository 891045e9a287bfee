// Child processes for the test harness: real servers started on loopback that always stop by
// themselves, even when the test process dies without running its hooks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StartOptions {
  /** Shown in logs and errors. */
  name: string;
  command: string;
  args: readonly string[];
  /** stdout and stderr go here; read back by `tail()` when the process misbehaves. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * The command forks the real server and waits for it (nsenter entering a pid namespace does): signals go to
   * that child, and the process counts as exited once the wrapper has (it exits when the child does).
   */
  signalsToChild?: boolean;
}

/**
 * A server process owned by a test. A detached watchdog kills it if this Node process goes away,
 * so a crashed or interrupted test run never leaves servers behind.
 */
export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  private readonly signalsToChild: boolean;

  private constructor(opts: StartOptions) {
    this.name = opts.name;
    this.signalsToChild = opts.signalsToChild ?? false;
    this.logFile = opts.logFile;
    this.log = createWriteStream(opts.logFile, { flags: 'a' });
    this.child = spawn(opts.command, opts.args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.pipe(this.log, { end: false });
    this.child.stderr?.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(this.exitCode);
      });
      this.child.once('error', (err) => {
        this.log.write(`spawn error: ${err.message}\n`);
        this.exitCode = -1;
        resolve(-1);
      });
    });
    if (this.child.pid !== undefined) startWatchdog(this.child.pid);
  }

  static start(opts: StartOptions): ManagedProcess {
    return new ManagedProcess(opts);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The last lines of the process's log, for error messages. */
  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Resolves when the process exits, with its exit code (-1 when killed by a signal). */
  wait(): Promise<number | null> {
    return this.exited;
  }

  /** Sends a signal without waiting (e.g. SIGKILL to simulate a crash). */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    const inner = this.signalsToChild ? forkedChild(this.child.pid) : undefined;
    if (inner === undefined) {
      this.child.kill(sig);
      return;
    }
    try {
      process.kill(inner, sig);
    } catch {
      // Gone between the lookup and the signal: the wrapper exits by itself.
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.running) {
      this.signal('SIGTERM');
      const ac = new AbortController();
      const killed = sleep(graceMs, undefined, { signal: ac.signal }).then(
        () => { this.signal('SIGKILL'); },
        () => undefined,
      );
      await this.exited;
      ac.abort();
      await killed;
    }
    if (!this.log.closed) {
      const closed = once(this.log, 'close').catch(() => undefined);
      this.log.end();
      await closed;
    }
  }
}

/** The one child a wrapper such as nsenter forked, from /proc; undefined before the fork or after the exit. */
function forkedChild(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
    return first === undefined || first === '' ? undefined : Number(first);
  } catch {
    return undefined;
  }
}

/**
 * A tiny shell loop, detached from us, that kills `pid` once this Node process has exited.
 * It also ends by itself when `pid` is gone.
 */
export function startWatchdog(pid: number): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${pid} 2>/dev/null; do sleep 1; done; kill -9 ${pid} 2>/dev/null; exit 0`;
  const dog = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  dog.unref();
}
