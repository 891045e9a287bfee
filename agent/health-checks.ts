// What the agent's probes answer, decided from plain values. Readiness (/readyz) says whether the agent
// can do its work right now: the runtime answers and the NodeImageSet watch is open. Liveness (/healthz)
// says whether restarting the container would help: only when the runtime has not answered for longer
// than the limit. A restart gives the pod fresh mounts and a fresh gRPC channel, which cures a socket
// that went stale under the agent; a short runtime restart is waited out instead. Pure: the time comes in.
import type { Check } from '../lib/endpoints.ts';

export type CheckResult = ReturnType<Check>;

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

export interface RuntimeLivenessInput {
  /** When the runtime last answered (or when the agent started, if it never did); epoch ms. */
  readonly answeredAtMs: number;
  readonly nowMs: number;
  /** --runtime-unreachable-timeout; 0 = never fail liveness for the runtime. */
  readonly limitMs: number;
  /** The last error seen talking to the runtime, if any. */
  readonly lastError: string | undefined;
}

export function runtimeLiveness(input: RuntimeLivenessInput): CheckResult {
  if (input.limitMs <= 0) return { ok: true };
  const silentMs = input.nowMs - input.answeredAtMs;
  if (silentMs <= input.limitMs) return { ok: true };
  const why = input.lastError === undefined ? '' : `: ${input.lastError}`;
  return {
    ok: false,
    reason: `container runtime has not answered for ${seconds(silentMs)} (--runtime-unreachable-timeout ${seconds(input.limitMs)})${why}`,
  };
}

export type RuntimeReachability =
  | { readonly kind: 'connecting'; readonly lastError: string | undefined }
  | { readonly kind: 'ok' }
  | { readonly kind: 'unreachable'; readonly error: string };

export function runtimeReadiness(state: RuntimeReachability): CheckResult {
  switch (state.kind) {
    case 'connecting':
      return { ok: false, reason: `container runtime not connected yet${state.lastError === undefined ? '' : `: ${state.lastError}`}` };
    case 'ok':
      return { ok: true };
    case 'unreachable':
      return { ok: false, reason: `container runtime unreachable: ${state.error}` };
    default: {
      const never: never = state;
      throw new Error(`unhandled runtime state ${JSON.stringify(never)}`);
    }
  }
}
