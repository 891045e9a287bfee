// Pull secrets: the Secrets PrePullImages name live in the workloads' namespaces, but the agent reads only
// kwarm's namespace. The controller keeps one copy per source Secret there, under a name derived from the
// source, in sync with it, and removes copies nothing references. Pure: no I/O.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../write/canonical-json.ts';
import { SECRET_COPY_LABEL, SECRET_SOURCE_ANNOTATION } from '../../api/v1alpha1/labels.ts';
import { DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE as DOCKER_CONFIG_JSON, DOCKERCFG_KEY, DOCKERCFG_TYPE as DOCKER_CFG, type PullSecretType } from '../../lib/docker-config.ts';

/** What the controller keeps of a Secret. `data` values are base64, as the API serves them. */
export interface SecretView {
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  readonly data: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export function secretKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

const COPY_PREFIX = 'kwarm-pull';
const MAX_NAME = 253;

/**
 * `kwarm-pull.<namespace>.<name>`: namespaces cannot contain dots, so distinct sources never share a
 * copy. Names that would be too long are cut and end in a hash of the source.
 */
export function secretCopyName(namespace: string, name: string): string {
  const full = `${COPY_PREFIX}.${namespace}.${name}`;
  if (full.length <= MAX_NAME) return full;
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 16);
  return `${full.slice(0, MAX_NAME - hash.length - 1).replace(/[-.]+$/, '')}-${hash}`;
}

export type SecretProblemReason = 'SecretNotFound' | 'SecretMalformed';

export type SecretCheck =
  | { readonly ok: true; readonly type: PullSecretType }
  | { readonly ok: false; readonly reason: SecretProblemReason; readonly message: string };

function jsonObjectIn(base64: string | undefined): Record<string, unknown> | undefined {
  if (base64 === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a Secret can serve as registry credentials, as the kubelet reads them. */
export function checkPullSecret(secret: SecretView | undefined, ref: string): SecretCheck {
  if (secret === undefined) {
    return { ok: false, reason: 'SecretNotFound', message: `Secret ${ref} does not exist (as type ${DOCKER_CONFIG_JSON} or ${DOCKER_CFG})` };
  }
  switch (secret.type) {
    case DOCKER_CONFIG_JSON: {
      const cfg = jsonObjectIn(secret.data[DOCKER_CONFIG_JSON_KEY]);
      const auths = cfg?.auths;
      if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
        return { ok: false, reason: 'SecretMalformed', message: `Secret ${ref}: ${DOCKER_CONFIG_JSON_KEY} is not a JSON object with "auths"` };
      }
      return { ok: true, type: DOCKER_CONFIG_JSON };
    }
    case DOCKER_CFG:
      if (jsonObjectIn(secret.data[DOCKERCFG_KEY]) === undefined) {
        return { ok: false, reason: 'SecretMalformed', message: `Secret ${ref}: ${DOCKERCFG_KEY} is not a JSON object` };
      }
      return { ok: true, type: DOCKER_CFG };
    default:
      return { ok: false, reason: 'SecretMalformed', message: `Secret ${ref} has type ${secret.type}, not ${DOCKER_CONFIG_JSON} or ${DOCKER_CFG}` };
  }
}

/**
 * What the controller knows of a source Secret: the Secret, `undefined` when it is known not to exist, or
 * `'unknown'` while its namespace's Secrets have not been listed yet (a namespace newly referenced, a list that
 * keeps failing). Unknown is not absent: taking it for absent would delete copies agents are using.
 */
export type SourceSecret = SecretView | undefined | 'unknown';

/**
 * Namespaces whose Secrets the controller must watch: those of PrePullImages naming pull secrets (the ones
 * wanted and the ones that exist, so a copy stays known until nothing references it).
 */
export function namespacesWithPullSecrets(
  prePullImages: Iterable<{ readonly namespace: string | undefined; readonly imagePullSecrets: readonly unknown[] | undefined }>,
): Set<string> {
  const out = new Set<string>();
  for (const p of prePullImages) if (p.namespace !== undefined && (p.imagePullSecrets?.length ?? 0) > 0) out.add(p.namespace);
  return out;
}

/** A copy as the controller writes it. */
export interface SecretCopy {
  readonly name: string;
  readonly source: string;
  readonly type: string;
  readonly data: Readonly<Record<string, string>>;
}

export interface SecretPlan {
  /** Source `namespace/name` → copy name, for every usable referenced Secret. */
  readonly copyNames: ReadonlyMap<string, string>;
  /** Source `namespace/name` → why it cannot be used. */
  readonly problems: ReadonlyMap<string, { readonly reason: SecretProblemReason; readonly message: string }>;
  /**
   * Source `namespace/name` keys whose Secret is not known yet (SourceSecret 'unknown') and that have no copy in
   * place: nothing usable yet, and no problem known. One with a copy from before is in copyNames (the copy stays).
   */
  readonly unknown: ReadonlySet<string>;
  /** Copies to create or update. */
  readonly apply: readonly SecretCopy[];
  /** Names of copies nothing references any more. */
  readonly remove: readonly string[];
}

export function copyMatches(copy: SecretView | undefined, want: SecretCopy): boolean {
  return copy !== undefined && copy.type === want.type && copy.annotations[SECRET_SOURCE_ANNOTATION] === want.source &&
    copy.labels[SECRET_COPY_LABEL] === 'true' && canonicalJson(copy.data) === canonicalJson(want.data);
}

/**
 * `references`: source `namespace/name` keys in use. `sources` finds a Secret in a workload namespace;
 * `copies`: the labelled copies now in kwarm's namespace, by name.
 */
export function planSecretCopies(
  references: Iterable<string>,
  sources: (key: string) => SourceSecret,
  copies: ReadonlyMap<string, SecretView>,
): SecretPlan {
  const copyNames = new Map<string, string>();
  const problems = new Map<string, { reason: SecretProblemReason; message: string }>();
  const apply: SecretCopy[] = [];
  const unknown = new Set<string>();
  for (const key of new Set(references)) {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const source = sources(key);
    if (source === 'unknown') {
      // Neither copied nor reported: an existing copy of it stays named and in place until the source is known.
      const copyName = secretCopyName(namespace, name);
      if (copies.get(copyName)?.annotations[SECRET_SOURCE_ANNOTATION] === key) copyNames.set(key, copyName);
      else unknown.add(key);
      continue;
    }
    const check = checkPullSecret(source, key);
    if (!check.ok || source === undefined) {
      if (!check.ok) problems.set(key, { reason: check.reason, message: check.message });
      continue;
    }
    const copyName = secretCopyName(namespace, name);
    copyNames.set(key, copyName);
    const want: SecretCopy = { name: copyName, source: key, type: check.type, data: source.data };
    if (!copyMatches(copies.get(copyName), want)) apply.push(want);
  }
  const used = new Set(copyNames.values());
  const remove = [...copies.keys()].filter((n) => !used.has(n)).sort();
  return { copyNames, problems, unknown, apply, remove };
}
