// What a workload may hand kwarm that the PrePullImage API cannot hold: an image reference the CRD's pattern
// rejects (uppercase path, @sha512, IPv6 literal, over 512 characters), more pull secrets than the CRD's 32,
// secret names that are not DNS names. The API server accepts all of these in a pod template, so the
// controller checks derived PrePullImages with the same decoder as hand-written ones: an invalid one is left
// out and reported on its policy instead of being applied (and refused) on every pass. Pure: no I/O.
import { decode } from '../../api/schema.ts';
import {
  DNS_SUBDOMAIN_PATTERN,
  MAX_PULL_SECRETS,
  prePullImageSpecSchema,
  prePullPolicyConditionTypes,
  type Condition,
} from '../../api/v1alpha1/index.ts';

const DNS_SUBDOMAIN = new RegExp(DNS_SUBDOMAIN_PATTERN, 'u');
const MAX_SECRET_NAME = 253;
/** Long inputs are shown cut in a condition message; the workload itself has the full text. */
const SHOWN_CHARS = 120;
/** Problems named in the condition message; the rest are counted. */
const MAX_PROBLEMS_SHOWN = 10;
/** Well under metav1.Condition's 32768. */
const MAX_MESSAGE = 16_000;

function shown(text: string): string {
  return text.length <= SHOWN_CHARS ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, SHOWN_CHARS))}... (${text.length} characters)`;
}

export interface BoundedSecrets {
  /** Valid names, in order, at most MAX_PULL_SECRETS. */
  readonly names: string[];
  /** Why some names were left out; undefined when none were. */
  readonly problem: string | undefined;
}

/** The pull secret names a derived PrePullImage can carry: DNS-valid ones, the first MAX_PULL_SECRETS of them. */
export function boundPullSecrets(names: readonly string[]): BoundedSecrets {
  const invalid = names.filter((n) => n.length > MAX_SECRET_NAME || !DNS_SUBDOMAIN.test(n));
  const valid = names.filter((n) => n.length <= MAX_SECRET_NAME && DNS_SUBDOMAIN.test(n));
  const over = valid.slice(MAX_PULL_SECRETS);
  const parts: string[] = [];
  if (invalid.length > 0) parts.push(`left out pull secret names that are not DNS subdomain names: ${invalid.slice(0, MAX_PROBLEMS_SHOWN).map(shown).join(', ')}`);
  if (over.length > 0) {
    parts.push(`${valid.length} pull secrets, a PrePullImage holds at most ${MAX_PULL_SECRETS}: left out ${over.slice(0, MAX_PROBLEMS_SHOWN).join(', ')}${over.length > MAX_PROBLEMS_SHOWN ? ` and ${over.length - MAX_PROBLEMS_SHOWN} more` : ''}`);
  }
  return { names: valid.slice(0, MAX_PULL_SECRETS), problem: parts.length === 0 ? undefined : parts.join('; ') };
}

/** Why a derived spec would be refused by the API server (the CRD's rules, run by the decoder); undefined when it fits. */
export function derivedSpecProblem(spec: { readonly image: string }): string | undefined {
  const r = decode(prePullImageSpecSchema, spec);
  if (r.ok) return undefined;
  return `image ${shown(spec.image)} does not fit the PrePullImage API (${r.errors.join('; ')}); not pre-pulled`;
}

/**
 * InputsValid: False naming the workloads whose images or pull secrets kwarm had to leave out; True once
 * there are none, but only on a policy that had the condition before (so policies that never had a
 * problem do not grow a condition).
 */
export function inputsCondition(
  problems: readonly string[],
  previous: readonly Condition[] | undefined,
  generation: number,
): Omit<Condition, 'lastTransitionTime'> | undefined {
  const type = prePullPolicyConditionTypes.InputsValid;
  const base = { type, observedGeneration: generation };
  if (problems.length === 0) {
    if (previous?.some((c) => c.type === type) !== true) return undefined;
    return { ...base, status: 'True', reason: 'InputsValid', message: 'every image and pull secret of the selected workloads fits the PrePullImage API' };
  }
  const more = problems.length > MAX_PROBLEMS_SHOWN ? `; and ${problems.length - MAX_PROBLEMS_SHOWN} more` : '';
  const message = `${problems.slice(0, MAX_PROBLEMS_SHOWN).join('; ')}${more}`;
  return { ...base, status: 'False', reason: 'InvalidInputs', message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message };
}
