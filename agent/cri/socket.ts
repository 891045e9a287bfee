// Finding the CRI socket: the one given by --cri-socket, or the first of the usual paths that
// answers Version. A socket file alone proves nothing (a stale file from a stopped runtime, or a
// non-CRI containerd socket), so each candidate is confirmed with a real call.
import { realpath, stat } from 'node:fs/promises';
import { GrpcImageRuntime } from './grpc-runtime.ts';
import { socketPathOf } from './endpoint.ts';
import type { ImageRuntime, RuntimeVersion } from './runtime.ts';
import { errorText } from '../../lib/errors.ts';

/** Where the common runtimes put their CRI socket, in the order they are tried. */
export const DEFAULT_CRI_SOCKETS: readonly string[] = [
  '/run/containerd/containerd.sock',
  '/var/run/containerd/containerd.sock',
  '/run/crio/crio.sock',
  '/var/run/crio/crio.sock',
  '/run/k3s/containerd/containerd.sock',
  '/var/run/k3s/containerd/containerd.sock',
];

export interface DetectOptions {
  /** --cri-socket: when set, only this endpoint is tried. */
  explicit?: string;
  /** Paths tried in order when `explicit` is not set. */
  candidates?: readonly string[];
  /** Opens a runtime on a socket path; injectable for tests. */
  connect?: (socketPath: string) => ImageRuntime;
  /** Time each candidate gets to answer Version. */
  probeTimeoutMs?: number;
  signal: AbortSignal;
}

export interface DetectedRuntime {
  socketPath: string;
  /** Open; the caller closes it. */
  runtime: ImageRuntime;
  version: RuntimeVersion;
}

/** Why a candidate was passed over, for the error message when none answers. */
interface Rejection {
  path: string;
  reason: string;
}

async function isSocket(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).isSocket() ? undefined : 'not a socket';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : String(err);
  }
}

async function probe(socketPath: string, opts: DetectOptions): Promise<DetectedRuntime | Rejection> {
  const notSocket = await isSocket(socketPath);
  if (notSocket !== undefined) return { path: socketPath, reason: notSocket };
  const connect = opts.connect ?? ((path: string) => new GrpcImageRuntime({ endpoint: path }));
  const runtime = connect(socketPath);
  try {
    const version = await runtime.version({
      signal: AbortSignal.any([opts.signal, AbortSignal.timeout(opts.probeTimeoutMs ?? 5000)]),
    });
    return { socketPath, runtime, version };
  } catch (err) {
    runtime.close();
    opts.signal.throwIfAborted();
    return { path: socketPath, reason: errorText(err) };
  }
}

/**
 * The runtime to use: `explicit` confirmed with Version, or else the first candidate that answers
 * Version. Throws, listing every path tried and why it was passed over, when none answers.
 */
export async function detectCriRuntime(opts: DetectOptions): Promise<DetectedRuntime> {
  const paths = opts.explicit !== undefined ? [socketPathOf(opts.explicit)] : (opts.candidates ?? DEFAULT_CRI_SOCKETS);
  const rejections: Rejection[] = [];
  const seen = new Set<string>();
  for (const path of paths) {
    // /var/run is usually a link to /run: probe each real socket once.
    const real = await realpath(path).catch(() => path);
    if (seen.has(real)) continue;
    seen.add(real);
    const result = await probe(path, opts);
    if ('runtime' in result) return result;
    rejections.push(result);
  }
  const tried = rejections.map((r) => `${r.path}: ${r.reason}`).join('; ');
  const how = opts.explicit !== undefined ? '--cri-socket' : 'no CRI socket found (set --cri-socket)';
  throw new Error(`${how}: ${tried === '' ? 'no candidates' : tried}`);
}
