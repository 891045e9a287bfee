// The container runtime as the agent sees it: a small interface over the CRI image calls, with
// results already decoded into plain typed values. The gRPC implementation is in grpc-runtime.ts.

/** Per-call options: every call can block on the runtime, so every call can be cancelled. */
export interface CallOptions {
  signal: AbortSignal;
  /** Absolute deadline, sent to the runtime as the gRPC deadline. */
  deadline?: Date | number;
}

export interface RuntimeVersion {
  /** The kubelet-runtime API version the runtime implements, e.g. "0.1.0". */
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface ImageInfo {
  /** Image id, normally the config digest "sha256:…". */
  id: string;
  repoTags: string[];
  /** "repository@sha256:…" references; the digest is the manifest's (or index's) digest. */
  repoDigests: string[];
  sizeBytes: number;
  pinned: boolean;
  /** The user the image runs as, when given by name. */
  username: string;
  /** The user the image runs as, when given as a number. */
  uid?: number;
}

/**
 * Registry credentials for one pull, in the CRI AuthConfig shape. Kept out of logs: callers must
 * never format it; errors from this module never include it.
 */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64("username:password") as found in a docker config file. */
  auth?: string;
  /**
   * The registry the credentials are for ("host[:port]" or a URL); runtimes use them only for that
   * registry. Sent with "https://" when it has no scheme, the form containerd can match.
   */
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface PullOptions extends CallOptions {
  /** Passed to the runtime with the image spec (the kubelet uses these for pod-level hints). */
  annotations?: Record<string, string>;
}

export interface FilesystemUsage {
  /** When the runtime collected the figures. */
  timestamp: Date;
  mountpoint: string;
  /** Undefined when the runtime does not report it. */
  usedBytes: number | undefined;
  inodesUsed: number | undefined;
}

export interface ImageFsInfo {
  imageFilesystems: FilesystemUsage[];
  containerFilesystems: FilesystemUsage[];
}

export type ContainerState = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerInfo {
  id: string;
  podSandboxId: string;
  name: string;
  attempt: number;
  /** The image as written in the container spec. */
  image: string;
  /** The resolved image reference. */
  imageRef: string;
  /** The image id; empty from runtimes that predate the field. */
  imageId: string;
  state: ContainerState;
  createdAt: Date;
  labels: Record<string, string>;
}

export interface ContainerFilter {
  id?: string;
  state?: ContainerState;
  podSandboxId?: string;
  labelSelector?: Record<string, string>;
}

export interface ImageRuntime {
  version(opts: CallOptions): Promise<RuntimeVersion>;
  listImages(opts: CallOptions): Promise<ImageInfo[]>;
  /** Undefined when the runtime does not have the image. */
  imageStatus(ref: string, opts: CallOptions): Promise<ImageInfo | undefined>;
  /**
   * Pulls `ref` exactly as given (tag or digest) and returns the runtime's reference to the result,
   * usually the image id.
   */
  pullImage(ref: string, auth: RegistryAuth | undefined, opts: PullOptions): Promise<string>;
  /** Succeeds when the image is already gone. */
  removeImage(ref: string, opts: CallOptions): Promise<void>;
  imageFsInfo(opts: CallOptions): Promise<ImageFsInfo>;
  listContainers(opts: CallOptions & { filter?: ContainerFilter }): Promise<ContainerInfo[]>;
  /** The pod sandbox image the runtime says it uses (CRI Status, verbose); undefined when it does not say. */
  sandboxImage(opts: CallOptions): Promise<string | undefined>;
  /** Closes the connection: calls in flight run to completion, later calls fail with CANCELLED. */
  close(): void;
}

/** gRPC status codes by name (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GRPC_CODE_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type GrpcCodeName = (typeof GRPC_CODE_NAMES)[number];

export function grpcCodeName(code: number): GrpcCodeName {
  return GRPC_CODE_NAMES[code] ?? 'UNKNOWN';
}

/**
 * A failed CRI call, with the gRPC status as the runtime (or the client library) reported it.
 * Classifying it (permanent or transient) is the caller's business.
 */
export class CriError extends Error {
  /** The CRI method, e.g. "PullImage". */
  readonly method: string;
  /** Numeric gRPC status code. */
  readonly code: number;
  readonly codeName: GrpcCodeName;
  /** The status message from the runtime, e.g. containerd's "failed to pull and unpack image …". */
  readonly details: string;

  constructor(method: string, code: number, details: string, options?: ErrorOptions) {
    const codeName = grpcCodeName(code);
    super(`CRI ${method}: ${codeName}: ${details}`, options);
    this.name = 'CriError';
    this.method = method;
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }
}
