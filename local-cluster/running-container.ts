// A real container on a test containerd, started the way the kubelet would through CRI: a pod sandbox in
// the host's network namespace (no CNI needed) and one container in it, from an image already on the node.
// The sandbox image comes from the node's containerd config (startContainerd's sandboxImage).
// Its processes (and the runc shim holding them) get the harness's watchdog: containerd's shims outlive
// containerd, so without it a crashed test run would leave the container running. (The sandbox's shm and
// the container's rootfs mounts under containerd's state dir are not undone after a crash.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { grpcTargetOf } from '../agent/cri/endpoint.ts';
import { startWatchdog } from './process.ts';
import { makeTempDir, removeDir } from './tmp.ts';

const PROTO = join(import.meta.dirname, 'cri-pods.proto');

export interface RunningContainer {
  readonly sandboxId: string;
  readonly containerId: string;
  /** What the container wrote to stdout and stderr so far (CRI log format: time, stream, tag, line). */
  logText(): string;
  /** Stops and removes the container and its sandbox. */
  remove(): Promise<void>;
}

export interface ContainerMount {
  hostPath: string;
  containerPath: string;
  readonly?: boolean;
}

export interface RunContainerOptions {
  /** The node's CRI socket. */
  socket: string;
  /** Pod name (also the container's and the sandbox's). */
  name: string;
  image: string;
  /** Overrides the image's entrypoint. */
  command?: readonly string[];
  /** Arguments to the entrypoint (the image's Cmd otherwise). */
  args?: readonly string[];
  env?: Readonly<Record<string, string>>;
  mounts?: readonly ContainerMount[];
  /** Overrides the image's USER (as a pod's securityContext.runAsUser does). */
  runAsUser?: number;
  readonlyRootfs?: boolean;
  signal?: AbortSignal;
}

type Unary = (method: string, request: object) => Promise<Record<string, unknown>>;

function client(socket: string): { call: Unary; close: () => void } {
  const pkg = protoLoader.loadSync(PROTO, { keepCase: false, longs: String, enums: String, defaults: true });
  const service = pkg['runtime.v1.RuntimeService'];
  if (service === undefined || 'format' in service) throw new Error(`${PROTO} has no runtime.v1.RuntimeService`);
  const c = new grpc.Client(grpcTargetOf(socket), grpc.credentials.createInsecure());
  const call: Unary = (method, request) => new Promise((resolve, reject) => {
    const def = service[method];
    if (def === undefined) {
      reject(new Error(`no method ${method}`));
      return;
    }
    c.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, new grpc.Metadata(), { deadline: Date.now() + 120_000 },
      (err: grpc.ServiceError | null, value?: unknown) => {
        if (err !== null) reject(new Error(`CRI ${method}: ${err.details}`, { cause: err }));
        else resolve((value ?? {}) as Record<string, unknown>);
      });
  });
  return { call, close: () => { c.close(); } };
}

export async function runContainer(opts: RunContainerOptions): Promise<RunningContainer> {
  const { call, close } = client(opts.socket);
  const logDir = makeTempDir(`pod-${opts.name}`);
  const hostNamespaces = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' };
  const sandboxConfig = {
    metadata: { name: opts.name, uid: `uid-${opts.name}`, namespace: 'kwarm-test', attempt: 0 },
    logDirectory: logDir,
    labels: { 'io.kubernetes.pod.name': opts.name },
    linux: { securityContext: { namespaceOptions: hostNamespaces } },
  };
  let sandboxId = '';
  let containerId = '';
  const logText = (): string => {
    try {
      return readFileSync(join(logDir, `${opts.name}.log`), 'utf8');
    } catch {
      return '';
    }
  };
  const remove = async (): Promise<void> => {
    try {
      if (containerId !== '') {
        await call('StopContainer', { containerId, timeout: '1' }).catch(() => undefined);
        await call('RemoveContainer', { containerId }).catch(() => undefined);
      }
      if (sandboxId !== '') {
        await call('StopPodSandbox', { podSandboxId: sandboxId }).catch(() => undefined);
        await call('RemovePodSandbox', { podSandboxId: sandboxId }).catch(() => undefined);
      }
    } finally {
      close();
      removeDir(logDir);
    }
  };
  try {
    sandboxId = String((await call('RunPodSandbox', { config: sandboxConfig })).podSandboxId);
    // The sandbox's process and its shim (the parent) first, then the container's.
    const sandboxPid = processId(await call('PodSandboxStatus', { podSandboxId: sandboxId, verbose: true }));
    for (const pid of [sandboxPid, parentOf(sandboxPid)]) if (pid !== undefined && pid > 1) startWatchdog(pid);
    const created = await call('CreateContainer', {
      podSandboxId: sandboxId,
      config: {
        metadata: { name: opts.name, attempt: 0 },
        image: { image: opts.image },
        command: [...(opts.command ?? [])],
        args: [...(opts.args ?? [])],
        envs: Object.entries(opts.env ?? {}).map(([key, value]) => ({ key, value })),
        mounts: (opts.mounts ?? []).map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly ?? false })),
        logPath: `${opts.name}.log`,
        labels: { 'io.kubernetes.container.name': opts.name },
        linux: {
          securityContext: {
            namespaceOptions: hostNamespaces,
            ...(opts.runAsUser !== undefined ? { runAsUser: { value: String(opts.runAsUser) } } : {}),
            readonlyRootfs: opts.readonlyRootfs ?? false,
          },
        },
      },
      sandboxConfig,
    });
    containerId = String(created.containerId);
    await call('StartContainer', { containerId });
    const containerPid = processId(await call('ContainerStatus', { containerId, verbose: true }));
    if (containerPid !== undefined) startWatchdog(containerPid);
  } catch (err) {
    await remove();
    throw err;
  }
  return { sandboxId, containerId, logText, remove };
}

/** The process id in containerd's verbose status info (JSON under "info"). */
function processId(status: Record<string, unknown>): number | undefined {
  const info = status.info;
  if (typeof info !== 'object' || info === null || !('info' in info) || typeof info.info !== 'string') return undefined;
  const parsed: unknown = JSON.parse(info.info);
  return typeof parsed === 'object' && parsed !== null && 'pid' in parsed && typeof parsed.pid === 'number' && parsed.pid > 0 ? parsed.pid : undefined;
}

/** The parent of a process (for a container's init: its runc shim), from /proc. */
function parentOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}
