// The mutating webhook's route /mutate-pods: a pod being created gets kwarm's scheduling gate when it belongs to a
// Deployment or StatefulSet whose images a policy with rolloutGate.enabled pre-pulls, and they are not warm yet.
// It never refuses a pod, and fails open: any lookup that fails or takes longer than the budget (well inside the
// webhook's 2 s timeout) means no gate. The lookups (admission-lookups.ts) read caches every replica keeps. Agents are taken to report here (a node still pulling holds the gate);
// the release loop, which watches the agents' heartbeats, lets go of pods held by a node without a working agent.
import type { Logger } from 'winston';
import { errorText } from '../../lib/errors.ts';
import { admissionResponse, decodeAdmissionRequest } from './admission-review.ts';
import { addGatePatch, neverGated, podWarmth, podWorkload } from './gate-decision.ts';
import type { AdmissionLookups } from './admission-lookups.ts';
import { decodeGatePod, hasRolloutGate } from './views.ts';

export const MUTATE_PODS_PATH = '/mutate-pods';

/** How long an admission may spend on lookups before it lets the pod through ungated. */
export const ADMISSION_LOOKUP_BUDGET_MS = 1500;

export interface AdmissionOptions {
  readonly lookups: AdmissionLookups;
  readonly log: Logger;
  /** kwarm's namespace, never gated. */
  readonly namespace: string;
  readonly budgetMs?: number;
  /** Called with every outcome, for metrics and tests. */
  readonly onDecision?: (outcome: AdmissionOutcome) => void;
}

/**
 * gated: created with kwarm's gate. warm: selected, images warm, no gate. not-selected: no gate-enabled policy covers
 * the pod's workload. skipped: never gated (not a CREATE, a namespace or owner kind kwarm does not gate, already bound).
 * error: a lookup failed or ran out of budget; admitted ungated (failed open).
 */
export const ADMISSION_OUTCOMES = ['gated', 'warm', 'not-selected', 'skipped', 'error'] as const;
export type AdmissionOutcome = (typeof ADMISSION_OUTCOMES)[number];

/** The route handler: an AdmissionReview in, an AdmissionReview out. Throws only on a body that is not one. */
export function mutatePodsHandler(o: AdmissionOptions): (body: unknown) => Promise<unknown> {
  return async (body) => {
    const req = decodeAdmissionRequest(body);
    if (req === undefined) throw new Error('the request body is not an admission.k8s.io/v1 AdmissionReview with a request uid');
    const { outcome, patch } = await decide(o, req.operation, req.object, req.namespace);
    o.onDecision?.(outcome);
    return admissionResponse(req.uid, patch);
  };
}

async function decide(o: AdmissionOptions, operation: string, object: unknown, namespace: string | undefined): Promise<{ outcome: AdmissionOutcome; patch?: unknown[] }> {
  const pod = decodeGatePod(object, namespace);
  if (operation !== 'CREATE' || pod === undefined || neverGated(pod.namespace, o.namespace) || pod.nodeName !== undefined || hasRolloutGate(pod)) {
    return { outcome: 'skipped' };
  }
  if (pod.owner?.kind !== 'ReplicaSet' && pod.owner?.kind !== 'StatefulSet') return { outcome: 'skipped' };
  const signal = AbortSignal.timeout(o.budgetMs ?? ADMISSION_LOOKUP_BUDGET_MS);
  try {
    const policies = await o.lookups.policies(signal);
    const enabled = [...policies.values()].filter((p) => p.enabled).map((p) => p.name);
    if (enabled.length === 0) return { outcome: 'not-selected' };
    const rsOwner = pod.owner.kind === 'ReplicaSet' ? await o.lookups.replicaSetOwner(pod.namespace, pod.owner, signal) : undefined;
    const workload = podWorkload(pod, rsOwner);
    if (workload === undefined) return { outcome: 'not-selected' };
    const images = await o.lookups.images(pod.namespace, enabled, signal);
    const w = podWarmth(pod, workload, { images, policies, agentReports: () => true });
    switch (w.kind) {
      case 'NotSelected':
        return { outcome: 'not-selected' };
      case 'Warm':
        return { outcome: 'warm' };
      case 'Cold':
        o.log.info('rollout gate: pod created gated', { namespace: pod.namespace, pod: pod.name, workload: `${workload.kind}/${workload.name}`, policy: w.policy.name, waiting: w.waiting.slice(0, 3) });
        return { outcome: 'gated', patch: addGatePatch(pod) };
      default: {
        const unreachable: never = w;
        return unreachable;
      }
    }
  } catch (err) {
    // Fail open: a pod must never wait on kwarm being slow or broken.
    o.log.warn('rollout gate: lookup failed; pod admitted without the gate', { namespace: pod.namespace, pod: pod.name, error: errorText(err) });
    return { outcome: 'error' };
  }
}
