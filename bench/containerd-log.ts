// When the runtime itself saw a PullImage call: containerd's CRI plugin logs every call at info
// level on entry ("PullImage \"ref\"") and on return, with its own nanosecond timestamps. Reading
// these times the pull from the runtime's side, independent of who made the call. Pure parsing.

export type PullLogKind = 'start' | 'return' | 'failed';

export interface PullLogEvent {
  kind: PullLogKind;
  image: string;
  /** Unix milliseconds (fractions kept from containerd's nanoseconds). */
  at: number;
}

// time="2026-11-21T23:42:22.687031923Z" level=info msg="PullImage \"127.0.0.1:42665/demo/my-app:v1\" returns image reference \"sha256:...\""
const LINE = /^time="([^"]+)" level=(\w+) msg="PullImage \\"((?:[^"\\]|\\.)*?)\\"( returns image reference| failed)?/;

/** Parses an RFC 3339 timestamp keeping sub-millisecond digits. */
export function parseTimestamp(text: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (m === null) throw new Error(`not an RFC 3339 timestamp: ${text}`);
  const whole = Date.parse(`${m[1]!}${m[3]!}`);
  const fraction = m[2] === undefined ? 0 : Number(`0.${m[2]}`);
  return whole + fraction * 1000;
}

export function pullLogEvents(log: string): PullLogEvent[] {
  const events: PullLogEvent[] = [];
  for (const line of log.split('\n')) {
    const m = LINE.exec(line);
    if (m === null) continue;
    const suffix = m[4];
    const kind: PullLogKind = suffix === undefined ? 'start' : suffix === ' failed' ? 'failed' : 'return';
    events.push({ kind, image: m[3]!, at: parseTimestamp(m[1]!) });
  }
  return events;
}

/** The first event of `kind` for `image` at or after `since` (ms), if any. */
export function firstPullEvent(events: readonly PullLogEvent[], image: string, kind: PullLogKind, since: number): PullLogEvent | undefined {
  return events.find((e) => e.kind === kind && e.image === image && e.at >= since);
}
