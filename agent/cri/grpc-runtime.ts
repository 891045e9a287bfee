// ImageRuntime over the CRI gRPC API on a unix socket (@grpc/grpc-js, messages from proto/ loaded
// at runtime by @grpc/proto-loader). Every call is cancelled when its AbortSignal fires and carries
// a gRPC deadline; failures surface as CriError with the runtime's status code and message.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  decodeImageFsInfo,
  decodeImageStatus,
  decodeListContainers,
  decodeListImages,
  decodePullImage,
  decodeSandboxImage,
  decodeVersion,
} from './decode.ts';
import { encodeAuth, encodeContainerFilter } from './encode.ts';
import { grpcTargetOf, socketPathOf } from './endpoint.ts';
import {
  CriError,
  type CallOptions,
  type ContainerFilter,
  type ContainerInfo,
  type ImageFsInfo,
  type ImageInfo,
  type ImageRuntime,
  type PullOptions,
  type RegistryAuth,
  type RuntimeVersion,
} from './runtime.ts';
import { errorText } from '../../lib/errors.ts';

/** The CRI API version kwarm speaks, sent in VersionRequest. */
export const CRI_API_VERSION = 'v1';

const PROTO_RELATIVE = join('proto', 'runtime', 'v1', 'api.proto');

/** How the proto is decoded; decode.ts relies on these (camelCase keys, 64-bit ints as strings). */
export const CRI_PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: false,
};

export interface CriProto {
  file: string;
  imageService: protoLoader.ServiceDefinition;
  runtimeService: protoLoader.ServiceDefinition;
}

/**
 * The proto file, found by walking up from this module: the same lookup works from the source tree
 * (agent/cri/) and from a build output (dist/agent/cri/) with proto/ shipped next to it.
 */
export function findCriProtoFile(startDir: string = import.meta.dirname): string {
  for (let dir = startDir; ; dir = dirname(dir)) {
    const candidate = join(dir, PROTO_RELATIVE);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${PROTO_RELATIVE} not found above ${startDir}`);
  }
}

function serviceOf(pkg: protoLoader.PackageDefinition, name: string, file: string): protoLoader.ServiceDefinition {
  const def = pkg[name];
  // Message and enum definitions carry a `format` field; services are maps of methods.
  if (def === undefined || 'format' in def) throw new Error(`${file} does not define service ${name}`);
  return def;
}

export function loadCriProto(file: string = findCriProtoFile()): CriProto {
  const pkg = protoLoader.loadSync(file, CRI_PROTO_LOADER_OPTIONS);
  return {
    file,
    imageService: serviceOf(pkg, 'runtime.v1.ImageService', file),
    runtimeService: serviceOf(pkg, 'runtime.v1.RuntimeService', file),
  };
}

export interface GrpcRuntimeOptions {
  /** Socket path or unix:// URL. */
  endpoint: string;
  /** Parsed proto, to share one parse between several clients. */
  proto?: CriProto;
  /**
   * Deadline for calls other than PullImage when the caller gives none, so a wedged runtime cannot
   * hang a listing forever. Pulls have no default deadline: their timeout is the caller's policy.
   */
  defaultTimeoutMs?: number;
  /** Large nodes list many images; the gRPC default of 4 MiB is too small (the kubelet uses 16 MiB). */
  maxReceiveMessageBytes?: number;
}

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === 'number';
}

export class GrpcImageRuntime implements ImageRuntime {
  readonly socketPath: string;
  private readonly client: grpc.Client;
  private readonly proto: CriProto;
  private readonly defaultTimeoutMs: number;

  constructor(opts: GrpcRuntimeOptions) {
    this.socketPath = socketPathOf(opts.endpoint);
    this.proto = opts.proto ?? loadCriProto();
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 120_000;
    const maxBytes = opts.maxReceiveMessageBytes ?? 16 * 1024 * 1024;
    this.client = new grpc.Client(grpcTargetOf(this.socketPath), grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': maxBytes,
      // A local socket is cheap to retry; grpc-js defaults (1 s, growing to 120 s) would leave the
      // agent blind for minutes after the runtime restarts.
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5000,
    });
  }

  async version(opts: CallOptions): Promise<RuntimeVersion> {
    const res = await this.call(this.proto.runtimeService, 'Version', { version: CRI_API_VERSION }, opts, true);
    return decodeVersion(res);
  }

  async listImages(opts: CallOptions): Promise<ImageInfo[]> {
    return decodeListImages(await this.call(this.proto.imageService, 'ListImages', {}, opts, true));
  }

  async imageStatus(ref: string, opts: CallOptions): Promise<ImageInfo | undefined> {
    const res = await this.call(this.proto.imageService, 'ImageStatus', { image: { image: ref }, verbose: false }, opts, true);
    return decodeImageStatus(res);
  }

  async pullImage(ref: string, auth: RegistryAuth | undefined, opts: PullOptions): Promise<string> {
    const request: Record<string, unknown> = { image: { image: ref, annotations: opts.annotations ?? {} } };
    if (auth !== undefined) request.auth = encodeAuth(auth);
    return decodePullImage(await this.call(this.proto.imageService, 'PullImage', request, opts, false));
  }

  async removeImage(ref: string, opts: CallOptions): Promise<void> {
    await this.call(this.proto.imageService, 'RemoveImage', { image: { image: ref } }, opts, true);
  }

  async imageFsInfo(opts: CallOptions): Promise<ImageFsInfo> {
    return decodeImageFsInfo(await this.call(this.proto.imageService, 'ImageFsInfo', {}, opts, true));
  }

  async listContainers(opts: CallOptions & { filter?: ContainerFilter }): Promise<ContainerInfo[]> {
    const request = opts.filter === undefined ? {} : { filter: encodeContainerFilter(opts.filter) };
    return decodeListContainers(await this.call(this.proto.runtimeService, 'ListContainers', request, opts, true));
  }

  async sandboxImage(opts: CallOptions): Promise<string | undefined> {
    return decodeSandboxImage(await this.call(this.proto.runtimeService, 'Status', { verbose: true }, opts, true));
  }

  close(): void {
    this.client.close();
  }

  /** One unary call; resolves with the raw decoded message for decode.ts. */
  private call(
    service: protoLoader.ServiceDefinition,
    method: string,
    request: object,
    opts: CallOptions,
    defaultDeadline: boolean,
  ): Promise<unknown> {
    const def = service[method];
    if (def === undefined) return Promise.reject(new Error(`CRI proto has no method ${method}`));
    const { signal } = opts;
    if (signal.aborted) {
      return Promise.reject(new CriError(method, grpc.status.CANCELLED, 'cancelled before the call started', { cause: signal.reason }));
    }
    const deadline = opts.deadline ?? (defaultDeadline ? Date.now() + this.defaultTimeoutMs : Infinity);
    return new Promise((resolve, reject) => {
      let call: grpc.ClientUnaryCall | undefined;
      // Cancelling makes grpc-js call `done` with CANCELLED; `done` reports the caller's reason.
      const onAbort = (): void => {
        call?.cancel();
      };
      const done = (err: grpc.ServiceError | null, value?: unknown): void => {
        signal.removeEventListener('abort', onAbort);
        if (err === null) resolve(value);
        else if (signal.aborted) {
          reject(new CriError(method, grpc.status.CANCELLED, `cancelled by the caller: ${String(signal.reason)}`, { cause: signal.reason }));
        } else if (isServiceError(err)) reject(new CriError(method, err.code, err.details, { cause: err }));
        else reject(new CriError(method, grpc.status.UNKNOWN, String(err), { cause: err }));
      };
      try {
        const metadata = new grpc.Metadata();
        call = this.client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, metadata, { deadline }, done);
      } catch (err) {
        // grpc-js throws at once on a closed client.
        const why = errorText(err);
        reject(new CriError(method, grpc.status.CANCELLED, `not sent: ${why}`, { cause: err }));
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
