// Decoding of CRI responses, as @grpc/proto-loader hands them over (plain objects, camelCase keys,
// 64-bit integers as decimal strings, enums as names), into the typed values of runtime.ts.
// Pure: the wire gives `unknown`, this module gives types or throws CriDecodeError.
import type {
  ContainerInfo,
  ContainerState,
  FilesystemUsage,
  ImageFsInfo,
  ImageInfo,
  RuntimeVersion,
} from './runtime.ts';

/** A response that does not have the shape the CRI specifies. */
export class CriDecodeError extends Error {
  constructor(message: string) {
    super(`malformed CRI response: ${message}`);
    this.name = 'CriDecodeError';
  }
}

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A message field; unset sub-messages arrive as null or undefined. */
function message(v: unknown, path: string): Obj | undefined {
  if (v === null || v === undefined) return undefined;
  if (!isObj(v)) throw new CriDecodeError(`${path} is not a message`);
  return v;
}

function requireMessage(v: unknown, path: string): Obj {
  return message(v, path) ?? {};
}

function str(o: Obj, key: string, path: string): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new CriDecodeError(`${path}.${key} is not a string`);
  return v;
}

function bool(o: Obj, key: string, path: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new CriDecodeError(`${path}.${key} is not a boolean`);
  return v;
}

function strList(o: Obj, key: string, path: string): string[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CriDecodeError(`${path}.${key} is not a list`);
  return v.map((item: unknown, i) => {
    if (typeof item !== 'string') throw new CriDecodeError(`${path}.${key}[${i}] is not a string`);
    return item;
  });
}

function list(o: Obj, key: string, path: string): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CriDecodeError(`${path}.${key} is not a list`);
  return v as unknown[];
}

function strMap(o: Obj, key: string, path: string): Record<string, string> {
  const v = o[key];
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new CriDecodeError(`${path}.${key} is not a map`);
  const out: Record<string, string> = {};
  for (const [k, item] of Object.entries(v)) {
    if (typeof item !== 'string') throw new CriDecodeError(`${path}.${key}[${k}] is not a string`);
    out[k] = item;
  }
  return out;
}

/** A 64-bit integer as proto-loader gives it with `longs: String` (numbers accepted too). */
function int64(v: unknown, path: string, unsigned: boolean): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || (unsigned && v < 0)) throw new CriDecodeError(`${path} is not a ${unsigned ? 'uint64' : 'int64'}`);
    return BigInt(v);
  }
  if (typeof v === 'string' && (unsigned ? /^\d+$/ : /^-?\d+$/).test(v)) return BigInt(v);
  throw new CriDecodeError(`${path} is not a ${unsigned ? 'uint64' : 'int64'}`);
}

/**
 * uint64 → number. Byte and inode counts stay exact up to 2^53 (8 PiB); above that the nearest
 * double is returned rather than failing, since the figures only feed thresholds and metrics.
 */
export function uint64ToNumber(v: unknown, path = 'value'): number {
  return Number(int64(v, path, true));
}

/** int64 nanoseconds since the epoch → Date (millisecond precision). */
export function nanosToDate(v: unknown, path = 'timestamp'): Date {
  return new Date(Number(int64(v, path, false) / 1_000_000n));
}

export function decodeVersion(v: unknown): RuntimeVersion {
  const o = requireMessage(v, 'VersionResponse');
  const p = 'VersionResponse';
  return {
    version: str(o, 'version', p),
    runtimeName: str(o, 'runtimeName', p),
    runtimeVersion: str(o, 'runtimeVersion', p),
    runtimeApiVersion: str(o, 'runtimeApiVersion', p),
  };
}

/**
 * The pod sandbox image named in a verbose StatusResponse, if the runtime names one: containerd puts its
 * CRI configuration as JSON under info.config, with `sandboxImage`. Other runtimes: undefined.
 */
export function decodeSandboxImage(v: unknown): string | undefined {
  const o = requireMessage(v, 'StatusResponse');
  const info = message(o.info, 'StatusResponse.info');
  const config = info?.config;
  if (typeof config !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(config);
  } catch {
    return undefined;
  }
  const image = isObj(parsed) ? parsed.sandboxImage : undefined;
  return typeof image === 'string' && image !== '' ? image : undefined;
}

export function decodeImage(v: unknown, path = 'Image'): ImageInfo {
  const o = requireMessage(v, path);
  const info: ImageInfo = {
    id: str(o, 'id', path),
    repoTags: strList(o, 'repoTags', path),
    repoDigests: strList(o, 'repoDigests', path),
    sizeBytes: uint64ToNumber(o.size, `${path}.size`),
    pinned: bool(o, 'pinned', path),
    username: str(o, 'username', path),
  };
  const uid = message(o.uid, `${path}.uid`);
  if (uid !== undefined) info.uid = Number(int64(uid.value, `${path}.uid.value`, false));
  return info;
}

export function decodeListImages(v: unknown): ImageInfo[] {
  const o = requireMessage(v, 'ListImagesResponse');
  return list(o, 'images', 'ListImagesResponse').map((img, i) => decodeImage(img, `ListImagesResponse.images[${i}]`));
}

/** Undefined when the runtime does not have the image (the `image` field is unset or empty). */
export function decodeImageStatus(v: unknown): ImageInfo | undefined {
  const o = requireMessage(v, 'ImageStatusResponse');
  const img = message(o.image, 'ImageStatusResponse.image');
  if (img === undefined) return undefined;
  const info = decodeImage(img, 'ImageStatusResponse.image');
  // proto3 cannot tell an unset message from an empty one; an image always has an id.
  return info.id === '' ? undefined : info;
}

export function decodePullImage(v: unknown): string {
  const o = requireMessage(v, 'PullImageResponse');
  return str(o, 'imageRef', 'PullImageResponse');
}

function decodeFilesystemUsage(v: unknown, path: string): FilesystemUsage {
  const o = requireMessage(v, path);
  const wrapped = (key: string): number | undefined => {
    const w = message(o[key], `${path}.${key}`);
    return w === undefined ? undefined : uint64ToNumber(w.value, `${path}.${key}.value`);
  };
  return {
    timestamp: nanosToDate(o.timestamp, `${path}.timestamp`),
    mountpoint: str(message(o.fsId, `${path}.fsId`) ?? {}, 'mountpoint', `${path}.fsId`),
    usedBytes: wrapped('usedBytes'),
    inodesUsed: wrapped('inodesUsed'),
  };
}

export function decodeImageFsInfo(v: unknown): ImageFsInfo {
  const o = requireMessage(v, 'ImageFsInfoResponse');
  const p = 'ImageFsInfoResponse';
  return {
    imageFilesystems: list(o, 'imageFilesystems', p).map((fs, i) => decodeFilesystemUsage(fs, `${p}.imageFilesystems[${i}]`)),
    containerFilesystems: list(o, 'containerFilesystems', p).map((fs, i) =>
      decodeFilesystemUsage(fs, `${p}.containerFilesystems[${i}]`),
    ),
  };
}

const CONTAINER_STATES: Readonly<Record<string, ContainerState>> = {
  CONTAINER_CREATED: 'created',
  CONTAINER_RUNNING: 'running',
  CONTAINER_EXITED: 'exited',
  CONTAINER_UNKNOWN: 'unknown',
};

/** The wire name of a container state, for filters. */
export function containerStateName(state: ContainerState): string {
  switch (state) {
    case 'created':
      return 'CONTAINER_CREATED';
    case 'running':
      return 'CONTAINER_RUNNING';
    case 'exited':
      return 'CONTAINER_EXITED';
    case 'unknown':
      return 'CONTAINER_UNKNOWN';
    default: {
      const never: never = state;
      throw new Error(`unhandled container state ${String(never)}`);
    }
  }
}

function decodeContainerState(v: unknown, path: string): ContainerState {
  if (v === undefined || v === null) return 'created';
  // A state added by a newer runtime arrives as its number; it is none of the four we know.
  if (typeof v === 'number') return 'unknown';
  if (typeof v !== 'string') throw new CriDecodeError(`${path} is not a container state`);
  return CONTAINER_STATES[v] ?? 'unknown';
}

export function decodeContainer(v: unknown, path = 'Container'): ContainerInfo {
  const o = requireMessage(v, path);
  const meta = message(o.metadata, `${path}.metadata`) ?? {};
  const spec = message(o.image, `${path}.image`) ?? {};
  return {
    id: str(o, 'id', path),
    podSandboxId: str(o, 'podSandboxId', path),
    name: str(meta, 'name', `${path}.metadata`),
    attempt: meta.attempt === undefined || meta.attempt === null ? 0 : uint64ToNumber(meta.attempt, `${path}.metadata.attempt`),
    image: str(spec, 'image', `${path}.image`),
    imageRef: str(o, 'imageRef', path),
    imageId: str(o, 'imageId', path),
    state: decodeContainerState(o.state, `${path}.state`),
    createdAt: nanosToDate(o.createdAt, `${path}.createdAt`),
    labels: strMap(o, 'labels', path),
  };
}

export function decodeListContainers(v: unknown): ContainerInfo[] {
  const o = requireMessage(v, 'ListContainersResponse');
  return list(o, 'containers', 'ListContainersResponse').map((c, i) => decodeContainer(c, `ListContainersResponse.containers[${i}]`));
}
