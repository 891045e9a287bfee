// Reaching the container runtime and keeping an eye on it: the agent starts even when the CRI
// socket is not there yet (it waits with back-off instead of crash-looping), and a periodic
// Version call tells readiness, liveness and status whether the runtime still answers. The gRPC
// channel dials the socket path again after every failure, so a runtime that restarts and makes a
// new socket at the same path is found again: that is why the chart mounts the socket's directory,
// not the socket file (a file bind mount keeps pointing at the old, unlinked socket).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import type { ImageRuntime, RuntimeVersion } from './cri/runtime.ts';
import { detectCriRuntime, type DetectOptions, type DetectedRuntime } from './cri/socket.ts';
import { backoffDelaySeconds } from '../lib/backoff.ts';
import { errorText } from '../lib/errors.ts';

export interface ConnectOptions {
  /** --cri-socket; auto-detection among `candidates` (or the usual paths) when absent. */
  explicit?: string;
  candidates?: readonly string[];
  connect?: DetectOptions['connect'];
  log: Logger;
  /** Told why each try failed (readiness and liveness show it). */
  onFailure?: (why: string) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Detects the runtime, retrying with back-off until it answers or `signal` aborts (then throws). */
export async function connectRuntime(opts: ConnectOptions, signal: AbortSignal): Promise<DetectedRuntime> {
  const initial = opts.initialBackoffMs ?? 500;
  const max = opts.maxBackoffMs ?? 10_000;
  let failures = 0;
  let lastWhy: string | undefined;
  for (;;) {
    signal.throwIfAborted();
    try {
      const found = await detectCriRuntime({
        ...(opts.explicit !== undefined ? { explicit: opts.explicit } : {}),
        ...(opts.candidates !== undefined ? { candidates: opts.candidates } : {}),
        ...(opts.connect !== undefined ? { connect: opts.connect } : {}),
        signal,
      });
      opts.log.info('container runtime found', {
        socket: found.socketPath,
        runtime: found.version.runtimeName,
        version: found.version.runtimeVersion,
        criVersion: found.version.runtimeApiVersion,
        afterAttempts: failures + 1,
      });
      return found;
    } catch (err) {
      signal.throwIfAborted();
      const why = errorText(err);
      opts.onFailure?.(why);
      const delay = backoffDelaySeconds({ baseSeconds: initial / 1000, capSeconds: max / 1000, jitter: 'none' }, Math.min(++failures, 11), Math.random) * 1000;
      // Logged when the reason changes, not on every try.
      if (why !== lastWhy) opts.log.warn('container runtime not reachable yet; waiting', { error: why, retryInMs: delay });
      lastWhy = why;
      await sleep(delay, undefined, { signal });
    }
  }
}

export type RuntimeState =
  | { readonly kind: 'ok'; readonly version: RuntimeVersion }
  | { readonly kind: 'unreachable'; readonly error: string };

/** Probes the runtime with Version every `intervalMs`; `state` is the last answer. */
export class RuntimeHealth {
  readonly #runtime: ImageRuntime;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #onChange: (state: RuntimeState) => void;
  readonly #now: () => number;
  #state: RuntimeState;
  #answeredAt: number;

  constructor(opts: { runtime: ImageRuntime; initial: RuntimeVersion; log: Logger; intervalMs: number; onChange: (state: RuntimeState) => void; now?: () => number }) {
    this.#runtime = opts.runtime;
    this.#log = opts.log;
    this.#intervalMs = opts.intervalMs;
    this.#onChange = opts.onChange;
    this.#now = opts.now ?? Date.now;
    this.#state = { kind: 'ok', version: opts.initial };
    this.#answeredAt = this.#now();
  }

  get state(): RuntimeState {
    return this.#state;
  }

  /** When the runtime last answered Version (epoch ms, from the clock given). */
  get answeredAt(): number {
    return this.#answeredAt;
  }

  async probe(signal: AbortSignal): Promise<RuntimeState> {
    let next: RuntimeState;
    try {
      next = { kind: 'ok', version: await this.#runtime.version({ signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) }) };
    } catch (err) {
      next = { kind: 'unreachable', error: errorText(err) };
    }
    if (signal.aborted) return this.#state;
    if (next.kind === 'ok') this.#answeredAt = this.#now();
    const before = this.#state;
    this.#state = next;
    if (before.kind !== next.kind) {
      if (next.kind === 'ok') this.#log.info('container runtime answers again', { runtime: next.version.runtimeName, version: next.version.runtimeVersion });
      else this.#log.warn('container runtime stopped answering', { error: next.error });
    }
    const changed = before.kind !== next.kind
      || (before.kind === 'ok' && next.kind === 'ok' && (before.version.runtimeName !== next.version.runtimeName || before.version.runtimeVersion !== next.version.runtimeVersion));
    if (changed) this.#onChange(next);
    return next;
  }

  async run(signal: AbortSignal): Promise<void> {
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      await sleep(this.#intervalMs, undefined, { signal }).catch(() => undefined);
      if (stopped()) break;
      await this.probe(signal);
    }
  }
}
