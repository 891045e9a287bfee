// A real container on a test containerd, started the way the kubelet would through CRI: a pod sandbox in
// the host's network namespace (no CNI needed) and one container in it, from an image already on the node.
// The sandbox image comes from the node's containerd config (startContainerd's sandboxImage).
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { grpcTargetOf } from '../agent/cri/endpoint.ts';
import { makeTempDir, removeDir } from './tmp.ts';

const PROTO = join(import.meta.dirname, 'cri-pods.proto');

export interface RunningContainer {
  readonly sandboxId: string;
  readonly containerId: string;
  /** Stops and removes the container and its sandbox. */
  remove(): Promise<void>;
}

export interface RunContainerOptions {
  /** The node's CRI socket. */
  socket: string;
  /** Pod name (also the container's and the sandbox's). */
  name: string;
  image: string;
  /** Overrides the image's entrypoint. */
  command?: readonly string[];
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
    const created = await call('CreateContainer', {
      podSandboxId: sandboxId,
      config: {
        metadata: { name: opts.name, attempt: 0 },
        image: { image: opts.image },
        command: [...(opts.command ?? [])],
        logPath: `${opts.name}.log`,
        labels: { 'io.kubernetes.container.name': opts.name },
        linux: { securityContext: { namespaceOptions: hostNamespaces } },
      },
      sandboxConfig,
    });
    containerId = String(created.containerId);
    await call('StartContainer', { containerId });
  } catch (err) {
    await remove();
    throw err;
  }
  return { sandboxId, containerId, remove };
}
