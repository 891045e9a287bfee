// What the rollout benchmark reads from the kubelet and kwarm, as pure functions: how long a pod waited for its
// image (the kubelet's Pulled event), how long kwarm's rollout gate held it (kwarm's release Event), and the pod
// start histograms of the kubelet's /metrics. No I/O, no clock.

export interface KubeletEvent {
  reason?: string;
  message?: string;
  involvedObject: { kind?: string; name?: string };
  /** metav1.Time, whole seconds (kwarm's Events set it; so does the kubelet). */
  firstTimestamp?: string;
}

export type ImageWait =
  | { kind: 'present' }
  | { kind: 'pulled'; ms: number }
  /** No Pulled event (yet): the pod's wait is unknown. */
  | { kind: 'unknown' };

/** "1m2.5s", "7.123s", "850ms", "12µs" (Go's time.Duration text) in milliseconds; undefined if not one. */
export function goDurationMs(text: string): number | undefined {
  const units: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  return parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] ?? ''] ?? Number.NaN), 0);
}

/**
 * The pod's wait for `image` as its kubelet reported it. The kubelet's Pulled message gives the pull time and,
 * in brackets, the time "including waiting" for earlier pulls of that kubelet (it pulls one image at a time by
 * default): the latter is what the pod waited. "already present on machine" means it did not wait.
 */
export function imageWait(events: readonly KubeletEvent[], pod: string, image: string): ImageWait {
  const mine = events.filter((e) => e.involvedObject.kind === 'Pod' && e.involvedObject.name === pod && e.reason === 'Pulled'
    && (e.message ?? '').includes(image));
  for (const e of mine) {
    const m = e.message ?? '';
    if (m.includes('already present on machine')) return { kind: 'present' };
    const waited = /\(([0-9.hmsuµn]+) including waiting\)/.exec(m)?.[1] ?? / in ([0-9.hmsuµn]+)/.exec(m)?.[1];
    const ms = waited === undefined ? undefined : goDurationMs(waited);
    if (ms !== undefined) return { kind: 'pulled', ms };
  }
  return { kind: 'unknown' };
}

export type GateHold =
  /** No release Event: the webhook admitted the pod without kwarm's gate (its images were warm, or it failed open). */
  | { kind: 'never' }
  /** Pod creation to the gate's removal, in ms (whole seconds: both API timestamps are); timedOut: released at rolloutGate.timeout. */
  | { kind: 'held'; ms: number; timedOut: boolean };

/**
 * How long kwarm's rollout gate held the pod created at `podCreated` (RFC 3339), from the Event kwarm records
 * on the pod when it removes the gate: RolloutGateReleased (images warm) or RolloutGateTimedOut. Only kwarm
 * removes its gate, so a pod without either Event was never gated, provided the pod is scheduled.
 */
export function gateHold(events: readonly KubeletEvent[], pod: string, podCreated: string): GateHold {
  const created = Date.parse(podCreated);
  const release = events.find((e) => e.involvedObject.kind === 'Pod' && e.involvedObject.name === pod
    && (e.reason === 'RolloutGateReleased' || e.reason === 'RolloutGateTimedOut'));
  if (release === undefined) return { kind: 'never' };
  const at = Date.parse(release.firstTimestamp ?? '');
  if (!Number.isFinite(at) || !Number.isFinite(created)) throw new Error(`pod ${pod}: its creation (${podCreated}) or its ${release.reason ?? ''} Event's time (${release.firstTimestamp ?? 'none'}) is not a time`);
  return { kind: 'held', ms: Math.max(0, at - created), timedOut: release.reason === 'RolloutGateTimedOut' };
}

/** A histogram's running sum and count, summed over all its label sets. */
export interface HistogramTotals {
  sum: number;
  count: number;
}

/** `<name>_sum` and `<name>_count` of a Prometheus text exposition, over all label sets; zero if absent. */
export function histogramTotals(metricsText: string, name: string): HistogramTotals {
  let sum = 0;
  let count = 0;
  for (const line of metricsText.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === `${name}_sum`) sum += value;
    else if (m[1] === `${name}_count`) count += value;
  }
  return { sum, count };
}

/** Mean of the observations made between two readings of one histogram, in ms; undefined if none. */
export function meanBetweenMs(before: HistogramTotals, after: HistogramTotals): number | undefined {
  const n = after.count - before.count;
  return n > 0 ? ((after.sum - before.sum) / n) * 1000 : undefined;
}
