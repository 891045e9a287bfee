// Linux namespaces made by the harness for the real-node cluster. Each one is held by a process (unshare),
// never by a name under /run/netns, so it vanishes as soon as its holder and the processes inside are gone:
// the holder's watchdog kills it when the test process dies, and a node's holder is the init of the node's
// own pid namespace, whose death makes the kernel kill everything started inside (containerd shims and
// containers included). Mounts made inside a node's private mount namespace vanish with it, too.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManagedProcess, type StartOptions } from './process.ts';
import { waitFor } from './wait.ts';

export interface Namespaces {
  /** A process inside, for `nsenter --target` and /proc/<pid>/ns/net. */
  readonly pid: number;
  /** Runs a short command inside (network namespace, plus mount and pid for a node) and returns its stdout. */
  exec: (command: string, args: readonly string[]) => Promise<string>;
  /** Starts a long-running process inside. */
  start: (opts: StartOptions) => ManagedProcess;
  /** Kills every process inside; the namespaces go with them. */
  stop: () => Promise<void>;
}

/** A bind mount made inside a node's mount namespace: `source` (a host path) appears at `target`. */
export interface BindMount {
  source: string;
  target: string;
}

export interface NamespaceOptions {
  name: string;
  /** Holds the holder's log and the files bound over /etc/resolv.conf and /proc/sys entries. */
  dir: string;
  /**
   * A node: a pid namespace too, fresh tmpfs on /run, /var/lib and /var/log (so the node sees only its own
   * state there) with `binds` made on top, and the kubelet's kernel settings. Otherwise a network namespace
   * with its own mount namespace only for /etc/resolv.conf (the cluster's: bridge, control plane, forwarders).
   */
  node?: { binds: readonly BindMount[] };
}

/**
 * The host-wide kernel settings the kubelet insists on (it writes them when they differ). Inside a node they
 * read as the kubelet wants from files bound over /proc/sys, so the kubelet never changes the machine's own.
 */
const KUBELET_SYSCTLS: Readonly<Record<string, string>> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
    });
  });
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Exited: no longer in /proc, or a zombie nobody has reaped yet. */
function gone(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

function childOf(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
    return first === undefined || first === '' ? undefined : Number(first);
  } catch {
    return undefined;
  }
}

/**
 * Network and mount namespaces (plus a pid namespace for a node), held by a process that sleeps in them. Name
 * lookups inside go to the namespace's own loopback (/etc/resolv.conf is replaced), never to the machine's
 * resolver, so even a stray lookup sends nothing outside the harness's namespaces.
 */
export async function startNamespaces(opts: NamespaceOptions): Promise<Namespaces> {
  const ready = join(opts.dir, `${opts.name}-namespaces-ready`);
  const resolvConf = join(opts.dir, `${opts.name}-resolv.conf`);
  writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
  // Before /run is replaced: on some machines /etc/resolv.conf links into /run.
  const lines = ['set -e', `mount --bind ${shellQuote(resolvConf)} /etc/resolv.conf`];
  if (opts.node !== undefined) {
    lines.push('for d in /run /var/lib /var/log; do mount -t tmpfs -o mode=0755 kwarm-node "$d"; done');
    for (const [key, value] of Object.entries(KUBELET_SYSCTLS)) {
      const file = join(opts.dir, `sysctl-${key.replace(/\//g, '.')}`);
      writeFileSync(file, `${value}\n`);
      lines.push(`mount --bind ${shellQuote(file)} /proc/sys/${key}`);
    }
    for (const b of opts.node.binds) lines.push(`mkdir -p ${shellQuote(b.target)}`, `mount --bind ${shellQuote(b.source)} ${shellQuote(b.target)}`);
  }
  lines.push(`touch ${shellQuote(ready)}`, 'exec sleep infinity');
  const node = opts.node !== undefined;
  const holder = ManagedProcess.start({
    name: `${opts.name}-namespaces`,
    command: 'unshare',
    // A node's: --kill-child, so that when unshare dies (its watchdog, or stop()) the node's init gets SIGKILL,
    // and with it every process in the node's pid namespace.
    args: [
      '--net', '--mount', '--propagation', 'private',
      ...(node ? ['--pid', '--fork', '--kill-child', '--mount-proc'] : []),
      '--', 'sh', '-c', lines.join('\n'),
    ],
    logFile: join(opts.dir, `${opts.name}-namespaces.log`),
  });
  const outer = holder.pid;
  if (outer === undefined) throw new Error(`unshare for ${opts.name} did not start: ${holder.tail()}`);
  let pid: number;
  try {
    pid = await waitFor(() => {
      if (!holder.running) throw new Error(`the namespace holder exited: ${holder.tail()}`);
      if (!existsSync(ready)) return undefined;
      return node ? childOf(outer) : outer;
    }, { what: `the namespaces of ${opts.name}`, timeoutMs: 10_000, intervalMs: 10 });
  } catch (err) {
    await holder.stop();
    throw err;
  }
  await run('nsenter', [`--target=${pid}`, '--net', 'ip', 'link', 'set', 'lo', 'up']);
  const enter = [`--target=${pid}`, '--net', '--mount', ...(node ? ['--pid'] : [])];
  return {
    pid,
    exec: (command, args) => run('nsenter', [...enter, '--', command, ...args]),
    // nsenter forks to enter a pid namespace: then signals must reach its child, the real server.
    start: (sopts) => ManagedProcess.start({ ...sopts, command: 'nsenter', args: [...enter, '--', sopts.command, ...sopts.args], signalsToChild: node }),
    // SIGKILL: unshare ignores SIGTERM while it waits for a node's init; nothing inside needs a grace period.
    stop: async () => {
      holder.signal('SIGKILL');
      await holder.stop();
      // The init learns of unshare's death a moment later, and exits only once the kernel has killed every
      // process of its pid namespace: after that, the node's cgroups are empty and its mounts gone.
      if (node) await waitFor(() => gone(pid), { what: `the processes of ${opts.name} to exit`, timeoutMs: 30_000, intervalMs: 20 });
    },
  };
}
