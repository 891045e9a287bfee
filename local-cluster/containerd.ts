// Real containerd (Debian package, CRI plugin built in) for tests, one instance per simulated node:
// each has its own root, state dir, gRPC and ttrpc sockets, CRI stream port and registry hosts
// config, so several run side by side without touching the host's /run/containerd or /var/lib.
// Pulls only: the native snapshotter works everywhere, and no CNI network is needed. A real node
// (real-node.ts) runs one inside its namespaces instead, at the standard paths with the bridge CNI.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GrpcImageRuntime, loadCriProto, type CriProto } from '../agent/cri/grpc-runtime.ts';
import { systemBinary } from './binaries.ts';
import { ManagedProcess, type StartOptions } from './process.ts';
import type { RegistryEndpoint } from './registry.ts';
import { makeTempDir, removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface ContainerdOptions {
  /** Names the node: temp dir, process name, log lines. */
  name: string;
  /** Registries reached over plain HTTP (hosts.toml per host). */
  registries: readonly RegistryEndpoint[];
  /** How long to wait for the CRI socket to answer Version. */
  readyTimeoutMs?: number;
  /** The pod sandbox ("pause") image, for tests that run containers; it must come from one of `registries`. */
  sandboxImage?: string;
  /** Run inside a real node's namespaces rather than beside the test process. */
  placement?: ContainerdPlacement;
  /**
   * The CRI snapshotter (default native, which works on any file system). overlayfs needs a root on a file
   * system overlayfs accepts as upper (not overlayfs itself) but unpacks each layer once and creates a
   * container without copying its image: see overlayfsWorks().
   */
  snapshotter?: 'native' | 'overlayfs';
}

/** A containerd of a real node: standard paths inside the node, backed by host directories. */
export interface ContainerdPlacement {
  /** Starts a process inside the node. */
  start(opts: StartOptions): ManagedProcess;
  /** The host directory the node sees at /var/lib/containerd. */
  root: string;
  /** The host directory the node sees at /run/containerd (the socket is reachable from outside through it). */
  state: string;
  /** CNI network configs (the plugins are Debian's, in /usr/lib/cni). */
  cniConfDir: string;
}

export interface TestContainerd {
  name: string;
  /** The CRI (and containerd API) socket path. */
  socket: string;
  root: string;
  state: string;
  logFile: string;
  /** The current process; replaced by restart(). */
  readonly process: ManagedProcess;
  /** Milliseconds from spawn to CRI Version answering, for the last start. */
  startupMs: number;
  /** SIGTERM; root and state are kept for restart(). */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash; root and state are kept for restart(). */
  kill(): Promise<void>;
  /** Stops it if running, starts it again on the same dirs and waits for CRI. */
  restart(): Promise<void>;
  /** Stops it and removes all its files. */
  dispose(): Promise<void>;
}

// Snapshotters that need kernel features or devices this environment does not have; left enabled
// they only log errors, but disabling them keeps the log about what matters.
const DISABLED_PLUGINS = [
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
];

const toml = (s: string): string => JSON.stringify(s);

let overlayfsAnswer: Promise<boolean> | undefined;

/**
 * Whether an overlayfs mount works with its upper and work dirs in `dir` (as root, on a file system overlayfs
 * accepts: ext4 or xfs yes, overlayfs itself, as in many containers, no). Asked once per process: every node
 * of a run keeps its files in the same temp dir.
 */
export function overlayfsWorks(dir: string): Promise<boolean> {
  overlayfsAnswer ??= (async () => {
    const probe = mkdtempSync(join(dir, '.overlay-probe-'));
    const sub = (name: string): string => { const d = join(probe, name); mkdirSync(d); return d; };
    const [lower, upper, work, merged] = [sub('lower'), sub('upper'), sub('work'), sub('merged')];
    try {
      await promisify(execFile)('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
    } catch {
      rmSync(probe, { recursive: true, force: true });
      return false;
    }
    await promisify(execFile)('umount', [merged]);
    rmSync(probe, { recursive: true, force: true });
    return true;
  })();
  return overlayfsAnswer;
}

interface ConfigDirs { root: string; state: string; socket: string; hostsDir: string; cniBinDir: string; cniConfDir: string }

function configToml(dirs: ConfigDirs, sandboxImage: string | undefined, snapshotter: 'native' | 'overlayfs'): string {
  const cri = '[plugins."io.containerd.grpc.v1.cri"]';
  return `version = 2
root = ${toml(dirs.root)}
state = ${toml(dirs.state)}
disabled_plugins = [${DISABLED_PLUGINS.map(toml).join(', ')}]

[grpc]
  address = ${toml(dirs.socket)}

[ttrpc]
  address = ${toml(`${dirs.socket}.ttrpc`)}

[debug]
  level = "info"

# The default is /opt/containerd, shared by every instance on the host.
[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(join(dirs.root, 'opt'))}

${cri}
  # Port 0: each instance gets its own stream server port (the old fixed 10010 would collide).
  # Inside a node, 127.0.0.1 is the node's: the kubelet beside it streams exec and logs from there.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Sandboxes ask for oom_score_adj -998, which this environment does not permit (runc then fails with
  # "can't get final child's PID"); never lower than containerd's own is allowed.
  restrict_oom_score_adj = true
${sandboxImage === undefined ? '' : `  sandbox_image = ${toml(sandboxImage)}\n`}  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = ${toml(snapshotter)}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${toml(dirs.cniBinDir)}
    conf_dir = ${toml(dirs.cniConfDir)}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ${toml(dirs.hostsDir)}
`;
}

/** certs.d/<host>/hosts.toml: the registry speaks plain HTTP. */
function writeHostsConfig(hostsDir: string, registry: RegistryEndpoint): void {
  const dir = join(hostsDir, registry.host);
  mkdirSync(dir, { recursive: true });
  const url = `http://${registry.host}`;
  writeFileSync(
    join(dir, 'hosts.toml'),
    `server = ${toml(url)}\n\n[host.${toml(url)}]\n  capabilities = ["pull", "resolve"]\n`,
  );
}

export async function startContainerd(opts: ContainerdOptions): Promise<TestContainerd> {
  const safeName = opts.name.replace(/[^a-zA-Z0-9-]/g, '-');
  const dir = makeTempDir(`containerd-${safeName}`);
  const placement = opts.placement;
  const root = placement?.root ?? join(dir, 'root');
  const state = placement?.state ?? join(dir, 'state');
  // The path the test process dials; inside a node the same socket is /run/containerd/containerd.sock.
  const socket = join(state, 'containerd.sock');
  const hostsDir = join(dir, 'certs.d');
  const cniBinDir = placement === undefined ? join(dir, 'cni', 'bin') : '/usr/lib/cni';
  const cniConfDir = placement?.cniConfDir ?? join(dir, 'cni', 'net.d');
  for (const d of [root, state, hostsDir, cniConfDir]) mkdirSync(d, { recursive: true });
  if (placement === undefined) mkdirSync(cniBinDir, { recursive: true });
  for (const r of opts.registries) writeHostsConfig(hostsDir, r);
  const configFile = join(dir, 'config.toml');
  const dirs: ConfigDirs = placement === undefined
    ? { root, state, socket, hostsDir, cniBinDir, cniConfDir }
    : { root: '/var/lib/containerd', state: '/run/containerd', socket: '/run/containerd/containerd.sock', hostsDir, cniBinDir, cniConfDir };
  writeFileSync(configFile, configToml(dirs, opts.sandboxImage, opts.snapshotter ?? 'native'));
  const logFile = join(dir, 'containerd.log');
  const command = systemBinary('containerd');
  const proto: CriProto = loadCriProto();
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const procName = `containerd-${safeName}`;

  let proc: ManagedProcess | undefined;
  // One ManagedProcess.stop() per process, however stop/kill/restart/dispose calls follow or overlap.
  let stopping: Promise<void> | undefined;
  const stopProc = (): Promise<void> => (stopping ??= proc?.stop() ?? Promise.resolve());

  const launch = async (): Promise<number> => {
    const started = Date.now();
    const startOpts = { name: procName, command, args: ['--config', configFile], logFile };
    const p = placement === undefined ? ManagedProcess.start(startOpts) : placement.start(startOpts);
    proc = p;
    stopping = undefined;
    try {
      await waitFor(
        async () => {
          if (!p.running) throw new Error(`exited with code ${String(await p.wait())}`);
          // A fresh client each time: a channel that failed once waits out its reconnect back-off.
          const cri = new GrpcImageRuntime({ endpoint: socket, proto });
          try {
            await cri.version({ signal: AbortSignal.timeout(2000) });
          } finally {
            cri.close();
          }
          return true;
        },
        { what: `${procName} CRI Version on ${socket}`, timeoutMs: readyTimeoutMs, intervalMs: 25 },
      );
    } catch (err) {
      await stopProc();
      throw new Error(`${procName} did not start: ${(err as Error).message}\n--- ${logFile} ---\n${p.tail()}`);
    }
    return Date.now() - started;
  };

  const current = (): ManagedProcess => {
    if (proc === undefined) throw new Error(`${procName} was never started`);
    return proc;
  };

  const instance: TestContainerd = {
    name: opts.name,
    socket,
    root,
    state,
    logFile,
    get process() {
      return current();
    },
    startupMs: 0,
    async stop() {
      await stopProc();
    },
    async kill() {
      const p = current();
      p.signal('SIGKILL');
      await p.wait();
      await stopProc();
    },
    async restart() {
      await stopProc();
      instance.startupMs = await launch();
    },
    async dispose() {
      await stopProc();
      removeDir(dir);
    },
  };
  try {
    instance.startupMs = await launch();
  } catch (err) {
    removeDir(dir);
    throw err;
  }
  return instance;
}
