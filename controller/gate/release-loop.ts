// The rollout gate's release loop, run by the leader only: list-watch caches of unscheduled pods, derived
// PrePullImages, PrePullPolicies and the agents' heartbeats (NodeImageSets), each projected to what the decision
// reads. Every gated pod is decided (gate-decision.ts decideRelease) when anything it depends on changes and at its
// timeout, and released with a JSON patch and an Event. The pods themselves hold the state (the gate and their
// creation time), so a restarted or newly elected controller releases whatever is due.
import type { Logger } from 'winston';
import { backoffDelaySeconds, type RandomSource } from '../../lib/backoff.ts';
import { errorText } from '../../lib/errors.ts';
import { isNotFound, type KubeClient } from '../../lib/kube-client.ts';
import type { ListWatch } from '../../lib/list-watch.ts';
import { WorkSchedule } from '../../lib/work-schedule.ts';
import { projectedWatch } from '../sources/projected-watch.ts';
import { AGENT_STALE_MS } from '../warmup/barrier-decision.ts';
import { agentReportsAt, decideRelease, podWorkload, releaseEvent, type PodWorkload, type ReleaseDecision } from './gate-decision.ts';
import { gatePaths, releasePod, UNSCHEDULED_PODS } from './gate-api.ts';
import { ReplicaSetOwners } from './replicaset-owners.ts';
import { POLICY_LABEL } from '../../api/v1alpha1/index.ts';
import {
  decodeGateAgent, decodeGateImage, decodeGatePod, decodeGatePolicy, hasRolloutGate, imagesByNamespace, keepUnchanged,
  type GateAgentView, type GateImageView, type GatePodView, type GatePolicyView,
} from './views.ts';

export interface ReleaseLoopOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** The controller's identity, as the Events' reportingInstance. */
  readonly instance: string;
  /** Epoch milliseconds; Date.now in production. */
  readonly now: () => number;
  /** A heartbeat older than this makes a node's agent count as not reporting (default AGENT_STALE_MS). */
  readonly agentStaleMs?: number;
  readonly random?: RandomSource;
  /** Called after each release, for logs, metrics and tests. */
  readonly onRelease?: (pod: GatePodView, decision: Extract<ReleaseDecision, { release: true }>) => void;
  /** Called after each pass with the number of pods carrying the gate, and with 0 when the loop stops (no longer leader). */
  readonly onGatedPods?: (count: number) => void;
}

const RETRY = { baseSeconds: 1, capSeconds: 60, jitter: 'full' } as const;

export class ReleaseLoop {
  readonly #o: ReleaseLoopOptions;
  readonly #pods: ListWatch<GatePodView>;
  readonly #images: ListWatch<GateImageView>;
  readonly #policies: ListWatch<GatePolicyView>;
  readonly #agents: ListWatch<GateAgentView>;
  /** Everything is decided again: a pod, PrePullImage, policy or agent changed (gated pods are few). */
  #all = true;
  /** Pods due again although nothing changed (their timeout, a retry). */
  readonly #work = new WorkSchedule();
  /** Pod key → the cached view a release was computed from; skipped until the watch shows the write. */
  readonly #written = new Map<string, GatePodView>();
  readonly #failures = new Map<string, number>();
  readonly #rsOwners: ReplicaSetOwners;
  #byNamespace: Map<string, GateImageView[]> | undefined;

  constructor(opts: ReleaseLoopOptions) {
    this.#o = opts;
    const { client, log } = opts;
    this.#rsOwners = new ReplicaSetOwners(client);
    const everything = (): void => { this.#all = true; this.#work.wake(); };
    this.#pods = projectedWatch({
      client, log, path: gatePaths.pods, fieldSelector: UNSCHEDULED_PODS, decode: keepUnchanged((raw) => decodeGatePod(raw)),
      onChange: everything,
    });
    this.#images = projectedWatch({ client, log, path: gatePaths.prePullImages, labelSelector: POLICY_LABEL, decode: keepUnchanged(decodeGateImage), onChange: everything });
    this.#policies = projectedWatch({ client, log, path: gatePaths.policies, decode: keepUnchanged(decodeGatePolicy), onChange: everything });
    this.#agents = projectedWatch({ client, log, path: gatePaths.nodeImageSets, decode: keepUnchanged(decodeGateAgent), onChange: everything });
  }

  get synced(): boolean {
    return this.#pods.synced && this.#images.synced && this.#policies.synced && this.#agents.synced;
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const all = [this.#pods, this.#images, this.#policies, this.#agents];
    const watches = Promise.all(all.map((w) => w.run(signal)));
    try {
      await Promise.all(all.map((w) => w.waitForSync(signal)));
      while (!signal.aborted) {
        await this.#pass(signal);
        if (this.#o.onGatedPods !== undefined) {
          let gated = 0;
          for (const pod of this.#pods.values()) if (hasRolloutGate(pod)) gated++;
          this.#o.onGatedPods(gated);
        }
        await this.#work.wait(this.#o.now(), signal, this.#all);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      await watches;
      this.#o.onGatedPods?.(0);
    }
  }

  async #pass(signal: AbortSignal): Promise<void> {
    const now = this.#o.now();
    this.#byNamespace = undefined;
    const keys = this.#work.take(now);
    if (this.#all) {
      this.#all = false;
      for (const [key, pod] of this.#pods.entries()) if (hasRolloutGate(pod)) keys.add(key);
    }
    for (const key of [...this.#written.keys()]) if (this.#pods.get(key) === undefined) this.#written.delete(key);
    for (const key of keys) {
      if (signal.aborted) return;
      await this.#decide(key, signal);
    }
  }

  /** The derived PrePullImages of one namespace, indexed once per pass. */
  #imagesIn(namespace: string): readonly GateImageView[] {
    this.#byNamespace ??= imagesByNamespace(this.#images.values());
    return this.#byNamespace.get(namespace) ?? [];
  }

  async #workload(pod: GatePodView, signal: AbortSignal): Promise<PodWorkload> {
    if (pod.owner?.kind !== 'ReplicaSet') return podWorkload(pod, undefined);
    return podWorkload(pod, await this.#rsOwners.get(pod.namespace, pod.owner, signal));
  }

  async #decide(key: string, signal: AbortSignal): Promise<void> {
    const pod = this.#pods.get(key);
    if (pod === undefined || !hasRolloutGate(pod)) {
      this.#work.forget(key);
      this.#failures.delete(key);
      return;
    }
    if (this.#written.get(key) === pod) return;
    this.#written.delete(key);
    const now = this.#o.now();
    try {
      const workload = await this.#workload(pod, signal);
      const staleMs = this.#o.agentStaleMs ?? AGENT_STALE_MS;
      const decision = decideRelease(pod, workload, {
        images: this.#imagesIn(pod.namespace),
        policies: new Map([...this.#policies.values()].map((p) => [p.name, p])),
        agentReports: (node) => agentReportsAt(this.#agents.get(node)?.heartbeatTime, now, staleMs),
      }, now);
      if (!decision.release) {
        this.#work.dueAt(key, decision.recheckAtMs);
        return;
      }
      this.#work.forget(key);
      await releasePod(this.#o.client, pod, releaseEvent(decision), this.#o.instance, new Date(now), signal);
      this.#written.set(key, pod);
      this.#failures.delete(key);
      this.#o.log.info('rollout gate: pod released', { namespace: pod.namespace, pod: pod.name, reason: decision.reason, message: decision.message });
      this.#o.onRelease?.(pod, decision);
    } catch (err) {
      if (signal.aborted) return;
      // Gone meanwhile: the watch will say so.
      if (isNotFound(err)) return;
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      const delayMs = 1000 * backoffDelaySeconds(RETRY, failures, this.#o.random ?? Math.random);
      this.#work.dueBy(key, now + delayMs);
      this.#o.log.warn('rollout gate: release failed; retrying', { namespace: pod.namespace, pod: pod.name, error: errorText(err), retryInMs: Math.round(delayMs) });
    }
  }
}

/**
 * Removes kwarm's gate from every pod that carries it, whatever the policies say, and returns how many were
 * released: `kwarm-controller --release-rollout-gates`, run by the chart's pre-delete hook so that uninstalling
 * kwarm leaves no pod gated. A pod whose gates changed meanwhile is read again and retried.
 */
export async function releaseAllGates(client: KubeClient, log: Logger, instance: string, now: () => number, signal: AbortSignal): Promise<number> {
  const event = releaseEvent({ release: true, reason: 'Uninstalled', message: 'kwarm is being uninstalled' });
  let released = 0;
  for await (const page of client.listPages(gatePaths.pods, { fieldSelector: UNSCHEDULED_PODS }, signal)) {
    for (const raw of page.items) {
      let pod = decodeGatePod(raw);
      for (let attempt = 1; pod !== undefined && hasRolloutGate(pod); attempt++) {
        try {
          if (await releasePod(client, pod, event, instance, new Date(now()), signal)) released++;
          break;
        } catch (err) {
          if (isNotFound(err)) break;
          if (attempt >= 5) throw new Error(`releasing ${pod.namespace}/${pod.name}: ${errorText(err)}`);
          log.warn('rollout gate: release failed; reading the pod again', { namespace: pod.namespace, pod: pod.name, error: errorText(err) });
          pod = decodeGatePod(await client.getOptional(gatePaths.pod(pod.namespace, pod.name), signal));
        }
      }
    }
  }
  return released;
}
