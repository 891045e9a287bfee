// Durations in Go's notation ("90s", "10m", "1h30m"), the form CEL's duration() parses on the API server.
import * as s from '../schema.ts';

// At most three parts of at most five integer digits: enough for any sane timeout, and duration()
// can never overflow on a value that passes the pattern.
export const DURATION_PATTERN = '^([0-9]{1,5}([.][0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$';
export const DURATION_MESSAGE = 'must be a duration such as 90s, 10m or 1h30m (units ns, us, ms, s, m, h)';

const durationRe = new RegExp(DURATION_PATTERN, 'u');
const PART = /([0-9]+(?:[.][0-9]+)?)(ns|us|ms|s|m|h)/gu;
const UNIT_MS = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

function isUnit(u: string): u is keyof typeof UNIT_MS {
  return Object.hasOwn(UNIT_MS, u);
}

/** Milliseconds in a duration such as "1h30m", or undefined when it is not one. */
export function durationMilliseconds(text: string): number | undefined {
  if (!durationRe.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) {
    if (amount === undefined || unit === undefined || !isUnit(unit)) return undefined;
    total += Number(amount) * UNIT_MS[unit];
  }
  return total;
}

/** A duration string bounded to [min, max], both written as durations. */
export function boundedDuration(min: string, max: string, description: string): s.Schema<string> {
  const minMs = durationMilliseconds(min);
  const maxMs = durationMilliseconds(max);
  if (minMs === undefined || maxMs === undefined) throw new Error(`bad duration bounds ${min}..${max}`);
  return s.string({ maxLength: 32, description }).validate(
    { rule: `self.matches('${DURATION_PATTERN}')`, message: DURATION_MESSAGE, check: (v) => durationRe.test(v) },
    {
      // Guarded by the pattern so duration() never sees a string it cannot parse.
      rule: `!self.matches('${DURATION_PATTERN}') || (duration(self) >= duration('${min}') && duration(self) <= duration('${max}'))`,
      message: `must be between ${min} and ${max}`,
      check: (v) => {
        const ms = durationMilliseconds(v);
        return ms === undefined || (ms >= minMs && ms <= maxMs);
      },
    },
  );
}
