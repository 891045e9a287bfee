// A scripted CRI server for fault injection only (stalls, error codes, flaky pulls, concurrency
// accounting) where a real containerd cannot be made to misbehave on cue. It serves the same proto
// as the agent's client on a temp unix socket. Image matching is by exact reference or id: it does
// not normalise "nginx" to "docker.io/library/nginx:latest" the way real runtimes do.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { loadCriProto } from '../../agent/cri/grpc-runtime.ts';
import { makeTempDir, removeDir } from '../../local-cluster/tmp.ts';

/** What PullImage does for one image. */
export type PullBehaviour =
  /** Answer after `delayMs` (default 0) and add the image. */
  | { kind: 'succeed'; delayMs?: number; sizeBytes?: number }
  /** Never answer: ends only when the client cancels or its deadline passes. */
  | { kind: 'stall' }
  /** Answer with this gRPC status after `delayMs`. */
  | { kind: 'fail'; code: grpc.status; message: string; delayMs?: number }
  /** Fail the first `times` pulls of the image like `fail`, then succeed. */
  | { kind: 'failTimes'; times: number; code: grpc.status; message: string; delayMs?: number; sizeBytes?: number };

export type CallOutcome = 'ok' | 'error' | 'cancelled';

export interface RecordedCall {
  method: string;
  /** The image of ImageStatus, PullImage and RemoveImage requests. */
  image?: string;
  /** PullImage credentials exactly as received (this is a test fake; real secrets never reach it). */
  auth?: Readonly<Record<string, unknown>>;
  startedAt: number;
  endedAt?: number;
  outcome?: CallOutcome;
  /** gRPC code sent back on error. */
  code?: number;
}

export interface FakeImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  sizeBytes: number;
}

export interface FakeContainer {
  id: string;
  name: string;
  image: string;
  imageRef: string;
  state: 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
}

export interface FakeCriOptions {
  runtimeName?: string;
  runtimeVersion?: string;
  /** Behaviour for images without a script; default: succeed at once. */
  defaultPull?: PullBehaviour;
}

type Obj = Readonly<Record<string, unknown>>;

function field(v: unknown, key: string): unknown {
  return typeof v === 'object' && v !== null ? (v as Obj)[key] : undefined;
}

/** request.image.image of the image calls. */
function requestedImage(request: unknown): string {
  const image = field(field(request, 'image'), 'image');
  return typeof image === 'string' ? image : '';
}

function imageIdFor(ref: string): string {
  return `sha256:${createHash('sha256').update(ref).digest('hex')}`;
}

function wireImage(img: FakeImage): Obj {
  return { id: img.id, repoTags: img.repoTags, repoDigests: img.repoDigests, size: String(img.sizeBytes), pinned: false, username: '' };
}

export class FakeCri {
  readonly socket: string;
  /** Every call received, in arrival order. */
  readonly calls: RecordedCall[] = [];
  /** PullImage calls currently being served. */
  activePulls = 0;
  /** The most PullImage calls ever served at once. */
  maxActivePulls = 0;
  private readonly dir: string;
  private readonly server: grpc.Server;
  private readonly scripts = new Map<string, PullBehaviour>();
  private readonly failuresSoFar = new Map<string, number>();
  private readonly images = new Map<string, FakeImage>();
  private readonly methodFailures = new Map<string, { code: grpc.status; message: string }>();
  private containers: FakeContainer[] = [];
  private readonly opts: FakeCriOptions;

  private constructor(dir: string, opts: FakeCriOptions) {
    this.dir = dir;
    this.socket = join(dir, 'cri.sock');
    this.opts = opts;
    this.server = new grpc.Server();
    const proto = loadCriProto();
    this.server.addService(proto.runtimeService, {
      Version: this.unary('Version', () => ({
        version: '0.1.0',
        runtimeName: this.opts.runtimeName ?? 'fake-cri',
        runtimeVersion: this.opts.runtimeVersion ?? '0.0.0',
        runtimeApiVersion: 'v1',
      })),
      ListContainers: this.unary('ListContainers', () => ({
        containers: this.containers.map((c) => ({
          id: c.id,
          podSandboxId: `sandbox-${c.id}`,
          metadata: { name: c.name, attempt: 0 },
          image: { image: c.image },
          imageRef: c.imageRef,
          state: c.state,
          createdAt: String(BigInt(Date.now()) * 1_000_000n),
          labels: {},
          annotations: {},
        })),
      })),
    });
    this.server.addService(proto.imageService, {
      ListImages: this.unary('ListImages', () => ({ images: [...this.images.values()].map(wireImage) })),
      ImageStatus: this.unary('ImageStatus', (request) => {
        const img = this.findImage(requestedImage(request));
        return img === undefined ? {} : { image: wireImage(img) };
      }),
      RemoveImage: this.unary('RemoveImage', (request) => {
        this.removeImage(requestedImage(request));
        return {};
      }),
      ImageFsInfo: this.unary('ImageFsInfo', () => {
        const used = [...this.images.values()].reduce((n, i) => n + i.sizeBytes, 0);
        return {
          imageFilesystems: [
            {
              timestamp: String(BigInt(Date.now()) * 1_000_000n),
              fsId: { mountpoint: join(this.dir, 'images') },
              usedBytes: { value: String(used) },
              inodesUsed: { value: String(this.images.size) },
            },
          ],
          containerFilesystems: [],
        };
      }),
      PullImage: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        void this.pull(call, callback);
      },
    });
  }

  static async start(opts: FakeCriOptions = {}): Promise<FakeCri> {
    const fake = new FakeCri(makeTempDir('fake-cri'), opts);
    await new Promise<void>((resolve, reject) => {
      fake.server.bindAsync(`unix://${fake.socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err === null) resolve();
        else reject(new Error(`fake CRI could not listen on ${fake.socket}: ${err.message}`));
      });
    });
    return fake;
  }

  /** Sets what PullImage does for `image` (exact reference). */
  script(image: string, behaviour: PullBehaviour): void {
    this.scripts.set(image, behaviour);
    this.failuresSoFar.delete(image);
  }

  /** Makes every call of `method` (e.g. "Version", "ImageStatus") fail until cleared with undefined. */
  failMethod(method: string, failure: { code: grpc.status; message: string } | undefined): void {
    if (failure === undefined) this.methodFailures.delete(method);
    else this.methodFailures.set(method, failure);
  }

  /** Puts an image in place as if pulled earlier. */
  addImage(ref: string, sizeBytes = 1024): FakeImage {
    const img: FakeImage = {
      id: imageIdFor(ref),
      repoTags: ref.includes('@') ? [] : [ref],
      repoDigests: ref.includes('@') ? [ref] : [],
      sizeBytes,
    };
    this.images.set(img.id, img);
    return img;
  }

  /** Removes an image behind the client's back (like kubelet image GC). */
  removeImage(refOrId: string): void {
    const img = this.findImage(refOrId);
    if (img !== undefined) this.images.delete(img.id);
  }

  findImage(refOrId: string): FakeImage | undefined {
    for (const img of this.images.values()) {
      if (img.id === refOrId || img.repoTags.includes(refOrId) || img.repoDigests.includes(refOrId)) return img;
    }
    return undefined;
  }

  setContainers(containers: FakeContainer[]): void {
    this.containers = containers;
  }

  /** Recorded calls of one method, optionally for one image. */
  callsOf(method: string, image?: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && (image === undefined || c.image === image));
  }

  /** Drops every connection and call at once and removes the socket. */
  stop(): Promise<void> {
    this.server.forceShutdown();
    removeDir(this.dir);
    return Promise.resolve();
  }

  private record(method: string, request: unknown): RecordedCall {
    const rec: RecordedCall = { method, startedAt: Date.now() };
    const image = requestedImage(request);
    if (image !== '') rec.image = image;
    const auth = field(request, 'auth');
    if (typeof auth === 'object' && auth !== null) rec.auth = auth as Obj;
    this.calls.push(rec);
    return rec;
  }

  private static finish(rec: RecordedCall, outcome: CallOutcome, code?: number): void {
    if (rec.outcome !== undefined) return;
    rec.outcome = outcome;
    rec.endedAt = Date.now();
    if (code !== undefined) rec.code = code;
  }

  /** A handler for the calls that answer at once (or fail when failMethod says so). */
  private unary(method: string, answer: (request: unknown) => object): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      const rec = this.record(method, call.request);
      const failure = this.methodFailures.get(method);
      if (failure !== undefined) {
        FakeCri.finish(rec, 'error', failure.code);
        callback({ code: failure.code, details: failure.message });
        return;
      }
      FakeCri.finish(rec, 'ok');
      callback(null, answer(call.request));
    };
  }

  private async pull(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): Promise<void> {
    const rec = this.record('PullImage', call.request);
    const image = rec.image ?? '';
    this.activePulls++;
    this.maxActivePulls = Math.max(this.maxActivePulls, this.activePulls);
    const cancelled = new AbortController();
    const onCancel = (): void => {
      cancelled.abort();
    };
    // Fired when the client cancels, its deadline passes, or the connection drops.
    call.once('cancelled', onCancel);
    try {
      const failure = this.methodFailures.get('PullImage');
      const behaviour: PullBehaviour = failure
        ? { kind: 'fail', ...failure }
        : (this.scripts.get(image) ?? this.opts.defaultPull ?? { kind: 'succeed' });
      const result = await this.runPull(image, behaviour, cancelled.signal);
      if (result.ok) {
        FakeCri.finish(rec, 'ok');
        callback(null, { imageRef: result.imageRef });
      } else {
        FakeCri.finish(rec, 'error', result.code);
        callback({ code: result.code, details: result.message });
      }
    } catch {
      // Aborted: the client is gone, nobody reads an answer.
      FakeCri.finish(rec, 'cancelled');
    } finally {
      call.removeListener('cancelled', onCancel);
      this.activePulls--;
    }
  }

  private async runPull(
    image: string,
    behaviour: PullBehaviour,
    signal: AbortSignal,
  ): Promise<{ ok: true; imageRef: string } | { ok: false; code: grpc.status; message: string }> {
    switch (behaviour.kind) {
      case 'succeed':
        await sleep(behaviour.delayMs ?? 0, undefined, { signal });
        return { ok: true, imageRef: this.addImage(image, behaviour.sizeBytes).id };
      case 'stall':
        return new Promise<never>((_resolve, reject) => {
          const stop = (): void => { reject(new Error('cancelled')); };
          if (signal.aborted) stop();
          else signal.addEventListener('abort', stop, { once: true });
        });
      case 'fail':
        await sleep(behaviour.delayMs ?? 0, undefined, { signal });
        return { ok: false, code: behaviour.code, message: behaviour.message };
      case 'failTimes': {
        await sleep(behaviour.delayMs ?? 0, undefined, { signal });
        const failed = this.failuresSoFar.get(image) ?? 0;
        if (failed < behaviour.times) {
          this.failuresSoFar.set(image, failed + 1);
          return { ok: false, code: behaviour.code, message: behaviour.message };
        }
        return { ok: true, imageRef: this.addImage(image, behaviour.sizeBytes).id };
      }
      default: {
        const never: never = behaviour;
        throw new Error(`unhandled pull behaviour ${JSON.stringify(never)}`);
      }
    }
  }
}
