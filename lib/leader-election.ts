// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: expiry is judged by when *we*
// last saw the lease change (our clock), never by comparing the holder's timestamps with our clock. The
// timing rules, and why they keep two leaders from acting at once, are in lease-timing.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { isConflict, isNotFound, type KubeClient } from './kube-client.ts';
import { monotonicClock, type Clock } from './clock.ts';
import { errorText } from './errors.ts';
import { leaseExpired, leaseTimingProblem, renewAttemptBudgetMs, stepDownAt, type LeaseTiming } from './lease-timing.ts';


export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  leaseDurationSeconds?: number;
  /** Give up leadership when no renewal succeeded for this long. Must be below the lease duration. */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Monotonic; default performance.now(). */
  clock?: Clock;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

function decodeLease(raw: unknown): Lease {
  if (typeof raw !== 'object' || raw === null || !('metadata' in raw)) throw new Error('lease response is not an object');
  const meta = raw.metadata as Lease['metadata'];
  const spec = ('spec' in raw && typeof raw.spec === 'object' && raw.spec !== null ? raw.spec : {}) as LeaseSpec;
  return { metadata: meta, spec };
}

/** metav1.MicroTime wants six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Reads `aborted` through a call so TypeScript does not keep a narrowing across awaits. */
const aborted = (s: AbortSignal): boolean => s.aborted;

export type ElectionOutcome = 'stopped' | 'lost';

/** What one attempt found. `sentAt`: when the successful write was sent (the leader's deadline counts from it). */
type Attempt =
  | { kind: 'held'; sentAt: number }
  | { kind: 'held-by-other'; holder: string }
  | { kind: 'failed' };

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'clock'>> & { clock: Clock };
  private readonly timing: LeaseTiming;
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private leading = false;
  /** Monotonic instant the current term ends unless renewed. */
  private termEndsAt = -Infinity;

  constructor(opts: LeaderElectionOptions) {
    this.o = {
      leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, clock: monotonicClock, ...opts,
    };
    this.timing = { leaseDurationMs: this.o.leaseDurationSeconds * 1000, renewDeadlineMs: this.o.renewDeadlineMs, retryPeriodMs: this.o.retryPeriodMs };
    const problem = leaseTimingProblem(this.timing);
    if (problem !== undefined) throw new Error(`leader election: ${problem}`);
  }

  /** Read from the clock, not only from the timer: true only before the current term's deadline. */
  get isLeader(): boolean {
    return this.leading && this.o.clock.now() < this.termEndsAt;
  }

  /**
   * Throws unless this replica leads right now. For the leader's writes: after an event-loop stall (a GC pause,
   * a frozen VM) callbacks that were waiting run before the deadline timer does, and must not write.
   */
  assertLeading(): void {
    if (!this.isLeader) throw new Error(`not the leader of lease ${this.lease} (any more): write refused`);
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases/${this.o.name}`;
  }

  private get lease(): string {
    return `${this.o.namespace}/${this.o.name}`;
  }

  /** One attempt to take or keep the lease. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    const { client, identity, leaseDurationSeconds, clock } = this.o;
    const raw = await client.getOptional(this.path, signal);
    if (raw === undefined) {
      const sentAt = clock.now();
      const now = microTime(Date.now());
      try {
        await client.request({
          method: 'POST', path: `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`, signal, unthrottled: true,
          body: {
            apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
            metadata: { name: this.o.name, namespace: this.o.namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        this.observed = { holder: identity, renewTime: now, at: sentAt };
        return { kind: 'held', sentAt };
      } catch (err) {
        if (isConflict(err)) return { kind: 'failed' };
        throw err;
      }
    }
    // Taken after the response, not before the request: a renewal committed while our GET was in flight must
    // count from a moment after its commit.
    const receivedAt = clock.now();
    const lease = decodeLease(raw);
    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ?? '';
    if (this.observed?.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: receivedAt };
    }
    const duration = (lease.spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    const heldByOther = holder !== '' && holder !== identity;
    if (heldByOther && !leaseExpired(duration, this.observed.at, receivedAt)) return { kind: 'held-by-other', holder };

    const now = microTime(Date.now());
    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: now,
      acquireTime: holder === identity && lease.spec.acquireTime !== undefined ? lease.spec.acquireTime : now,
      leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
    };
    const sentAt = clock.now();
    try {
      // PUT with the resourceVersion we read: a concurrent writer makes this fail with 409 instead of both winning.
      await client.request({
        method: 'PUT', path: this.path, signal, unthrottled: true,
        body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: lease.metadata, spec },
      });
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return { kind: 'failed' };
      throw err;
    }
    this.observed = { holder: identity, renewTime: now, at: sentAt };
    return { kind: 'held', sentAt };
  }

  /** An attempt that ends by `budgetMs`; errors are logged and count as a failed attempt. */
  private async attempt(signal: AbortSignal, budgetMs: number): Promise<Attempt> {
    try {
      return await this.tryAcquireOrRenew(AbortSignal.any([signal, AbortSignal.timeout(budgetMs)]));
    } catch (err) {
      if (!signal.aborted) this.o.log.warn('leader election: lease request failed', { lease: this.lease, error: errorText(err) });
      return { kind: 'failed' };
    }
  }

  /**
   * Waits for the lease, runs `lead` with a signal that aborts when leadership is lost or `signal` aborts,
   * and returns why it ended. Leadership is lost, and the signal aborted at once, when the renew deadline
   * passes (a timer, not a check after the next attempt) or when the lease shows another holder. On `signal`
   * abort the lease is released so another replica takes over at once.
   */
  async run(signal: AbortSignal, lead: (leaderSignal: AbortSignal) => Promise<void>): Promise<ElectionOutcome> {
    const { retryPeriodMs, clock, log } = this.o;
    let renewSentAt: number;
    for (;;) {
      const a = await this.attempt(signal, 2 * retryPeriodMs);
      if (a.kind === 'held') {
        renewSentAt = a.sentAt;
        break;
      }
      if (aborted(signal)) return 'stopped';
      await sleep(retryPeriodMs, undefined, { signal }).catch(() => undefined);
      if (aborted(signal)) return 'stopped';
    }
    const leadership = new AbortController();
    // An object, because `lose` runs from a timer and TypeScript would otherwise keep the initial narrowing.
    const term: { outcome: ElectionOutcome } = { outcome: 'stopped' };
    const lose = (why: string, fields: Record<string, unknown> = {}): void => {
      if (leadership.signal.aborted) return;
      term.outcome = 'lost';
      this.leading = false;
      log.error(`lost leadership: ${why}`, { lease: this.lease, ...fields });
      leadership.abort(new Error(`leadership lost: ${why}`));
    };
    let deadline: NodeJS.Timeout | undefined;
    const armDeadline = (): void => {
      this.termEndsAt = stepDownAt(this.timing, renewSentAt);
      clearTimeout(deadline);
      deadline = setTimeout(() => { lose('could not renew the lease in time'); }, Math.max(0, this.termEndsAt - clock.now()));
    };
    const stopLeading = (): void => { leadership.abort(new Error('leadership ended')); };
    armDeadline();
    this.leading = true;
    log.info('became leader', { lease: this.lease, identity: this.o.identity });
    signal.addEventListener('abort', stopLeading, { once: true });
    const work = lead(leadership.signal);
    while (!aborted(leadership.signal)) {
      await sleep(retryPeriodMs, undefined, { signal: leadership.signal }).catch(() => undefined);
      if (aborted(leadership.signal)) break;
      const budget = renewAttemptBudgetMs(this.timing, clock.now(), renewSentAt);
      if (budget === 0) {
        lose('could not renew the lease in time');
        break;
      }
      const a = await this.attempt(leadership.signal, budget);
      switch (a.kind) {
        case 'held':
          renewSentAt = a.sentAt;
          armDeadline();
          break;
        case 'held-by-other':
          lose('the lease shows another holder', { holder: a.holder });
          break;
        case 'failed':
          break;
        default: {
          const never: never = a;
          throw new Error(`unexpected attempt ${String(never)}`);
        }
      }
    }
    clearTimeout(deadline);
    signal.removeEventListener('abort', stopLeading);
    this.leading = false;
    await work.catch((err: unknown) => { log.error('leader work failed', { error: errorText(err) }); });
    if (term.outcome === 'stopped') await this.release();
    return term.outcome;
  }

  private async release(): Promise<void> {
    try {
      const raw = await this.o.client.get(this.path, AbortSignal.timeout(5000));
      const lease = decodeLease(raw);
      if (lease.spec.holderIdentity !== this.o.identity) return;
      await this.o.client.request({
        method: 'PUT', path: this.path, signal: AbortSignal.timeout(5000), unthrottled: true,
        body: {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: lease.metadata,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(Date.now()) },
        },
      });
      this.o.log.info('released the lease', { lease: this.lease });
    } catch (err) {
      this.o.log.warn('could not release the lease', { error: errorText(err) });
    }
  }
}
