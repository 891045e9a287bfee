// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: expiry is judged by when *we*
// last saw the lease change (our clock), never by comparing the holder's timestamps with our clock.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'winston';
import { isConflict, isNotFound, type KubeClient } from './kube-client.ts';
import { systemClock, type Clock } from './token-bucket.ts';
import { errorText } from './errors.ts';

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

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'clock'>> & { clock: Clock };
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private leading = false;

  constructor(opts: LeaderElectionOptions) {
    this.o = {
      leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, clock: systemClock, ...opts,
    };
    if (this.o.renewDeadlineMs >= this.o.leaseDurationSeconds * 1000) {
      throw new Error('leader election: the renew deadline must be shorter than the lease duration');
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases/${this.o.name}`;
  }

  /** One attempt to take or keep the lease. True when we hold it afterwards. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, identity, leaseDurationSeconds, clock } = this.o;
    const now = clock.now();
    const raw = await client.getOptional(this.path, signal);
    if (raw === undefined) {
      try {
        await client.create(`/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
        }, signal);
        this.observed = { holder: identity, renewTime: microTime(now), at: now };
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    const lease = decodeLease(raw);
    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ?? '';
    if (this.observed?.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: now };
    }
    const duration = (lease.spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    const heldByOther = holder !== '' && holder !== identity;
    if (heldByOther && this.observed.at + duration > now) return false;

    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: microTime(now),
      acquireTime: holder === identity && lease.spec.acquireTime !== undefined ? lease.spec.acquireTime : microTime(now),
      leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
    };
    try {
      // PUT with the resourceVersion we read: a concurrent writer makes this fail with 409 instead of both winning.
      await client.request({
        method: 'PUT', path: this.path, signal,
        body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: lease.metadata, spec },
      });
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
    this.observed = { holder: identity, renewTime: spec.renewTime ?? '', at: now };
    return true;
  }

  private async attempt(signal: AbortSignal): Promise<boolean> {
    try {
      return await this.tryAcquireOrRenew(AbortSignal.any([signal, AbortSignal.timeout(this.o.retryPeriodMs * 2)]));
    } catch (err) {
      if (signal.aborted) return false;
      this.o.log.warn('leader election: lease request failed', { lease: `${this.o.namespace}/${this.o.name}`, error: errorText(err) });
      return false;
    }
  }

  /**
   * Waits for the lease, runs `lead` with a signal that aborts when leadership is lost or `signal` aborts,
   * and returns why it ended. On `signal` abort the lease is released so another replica takes over at once.
   */
  async run(signal: AbortSignal, lead: (leaderSignal: AbortSignal) => Promise<void>): Promise<ElectionOutcome> {
    const { retryPeriodMs, renewDeadlineMs, clock, log } = this.o;
    while (!(await this.attempt(signal))) {
      if (aborted(signal)) return 'stopped';
      await sleep(retryPeriodMs, undefined, { signal }).catch(() => undefined);
      if (aborted(signal)) return 'stopped';
    }
    this.leading = true;
    log.info('became leader', { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity });
    const leadership = new AbortController();
    const stopLeading = (): void => { leadership.abort(new Error('leadership ended')); };
    signal.addEventListener('abort', stopLeading, { once: true });
    const work = lead(leadership.signal);
    let outcome: ElectionOutcome = 'stopped';
    let lastRenew = clock.now();
    while (!aborted(leadership.signal)) {
      await sleep(retryPeriodMs, undefined, { signal: leadership.signal }).catch(() => undefined);
      if (aborted(leadership.signal)) break;
      if (await this.attempt(leadership.signal)) {
        lastRenew = clock.now();
      } else if (clock.now() - lastRenew > renewDeadlineMs) {
        log.error('lost leadership: could not renew the lease in time', { lease: `${this.o.namespace}/${this.o.name}` });
        outcome = 'lost';
        stopLeading();
      }
    }
    signal.removeEventListener('abort', stopLeading);
    this.leading = false;
    await work.catch((err: unknown) => { log.error('leader work failed', { error: errorText(err) }); });
    if (outcome === 'stopped') await this.release();
    return outcome;
  }

  private async release(): Promise<void> {
    try {
      const raw = await this.o.client.get(this.path, AbortSignal.timeout(5000));
      const lease = decodeLease(raw);
      if (lease.spec.holderIdentity !== this.o.identity) return;
      await this.o.client.request({
        method: 'PUT', path: this.path, signal: AbortSignal.timeout(5000),
        body: {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: lease.metadata,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(this.o.clock.now()) },
        },
      });
      this.o.log.info('released the lease', { lease: `${this.o.namespace}/${this.o.name}` });
    } catch (err) {
      this.o.log.warn('could not release the lease', { error: errorText(err) });
    }
  }
}
