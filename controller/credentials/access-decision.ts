// Who may read which pull-secret copy: the boundary the kubelet's Node authorizer gives, for kwarm's copies. An
// agent proves its node with its pod-bound ServiceAccount token (the API server's TokenReview names the node the
// pod is bound to); it gets only the copies its own node's NodeImageSet names. Pure: the server does the I/O.
import { DOCKER_CONFIG_JSON_TYPE, DOCKERCFG_TYPE } from '../../lib/docker-config.ts';
import { field, isRecord, str } from '../../lib/raw.ts';

/** The extra a TokenReview carries for a token bound to a pod on a node (Kubernetes >= 1.30). */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** A request's answer as the server sends it: the copies in Secret form (data base64), and the names not found. */
export interface CredentialsAnswer {
  readonly secrets: readonly { name: string; type: string; data: Record<string, string>; resourceVersion?: string }[];
  readonly missing: readonly string[];
}

export type Refusal = { readonly status: 400 | 401 | 403; readonly reason: string };

/** Most names one request may ask for (a NodeImageSet entry names a handful; this only bounds the work). */
export const MAX_NAMES = 64;

/** The names asked for, or why the body is wrong. */
export function requestedNames(body: unknown): string[] | Refusal {
  const names = field(body, 'names');
  if (!Array.isArray(names) || names.length === 0 || names.length > MAX_NAMES || !names.every((n) => typeof n === 'string' && n !== '' && n.length <= 253)) {
    return { status: 400, reason: `the body must be {"names": [...]} with 1 to ${MAX_NAMES} Secret names` };
  }
  return [...new Set(names as string[])];
}

/** The token from an Authorization header, or undefined when there is none of the Bearer kind. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/**
 * The node of the caller from the TokenReview's status, when the token is the agent ServiceAccount's
 * (`system:serviceaccount:<namespace>:<serviceAccount>`) and bound to a pod on a node.
 */
export function callerNode(reviewStatus: unknown, namespace: string, serviceAccount: string): { node: string } | Refusal {
  if (field(reviewStatus, 'authenticated') !== true) {
    const why = str(field(reviewStatus, 'error'));
    return { status: 401, reason: `the token was not accepted by the API server${why === undefined ? '' : `: ${why}`}` };
  }
  const expected = `system:serviceaccount:${namespace}:${serviceAccount}`;
  const user = str(field(reviewStatus, 'user', 'username')) ?? '';
  if (user !== expected) return { status: 403, reason: `only ${expected} may read pull credentials, not ${user}` };
  const extra = field(reviewStatus, 'user', 'extra', NODE_NAME_EXTRA);
  const node = Array.isArray(extra) && extra.length === 1 ? str(extra[0]) : undefined;
  if (node === undefined || node === '') {
    return { status: 403, reason: `the token is not bound to a pod on a node (no ${NODE_NAME_EXTRA}): use the pod's projected token (Kubernetes >= 1.30)` };
  }
  return { node };
}

/** Every pull secret the NodeImageSet's spec names (spec.images[].pullSecrets). */
export function referencedSecrets(nodeImageSet: unknown): Set<string> {
  const out = new Set<string>();
  const images = field(nodeImageSet, 'spec', 'images');
  if (!Array.isArray(images)) return out;
  for (const image of images as unknown[]) {
    const names = field(image, 'pullSecrets');
    if (!Array.isArray(names)) continue;
    for (const n of names as unknown[]) if (typeof n === 'string') out.add(n);
  }
  return out;
}

/** Undefined when every name is referenced by the node's NodeImageSet; else the refusal naming the others. */
export function refuseUnreferenced(node: string, names: readonly string[], referenced: ReadonlySet<string>): Refusal | undefined {
  const others = names.filter((n) => !referenced.has(n));
  if (others.length === 0) return undefined;
  return { status: 403, reason: `node ${node}'s NodeImageSet does not name ${others.join(', ')}` };
}

/**
 * A Secret object in the form it is served, or a refusal when it is not a pull secret (the TLS or Helm Secrets
 * of kwarm's namespace are never served, whatever a NodeImageSet names).
 */
export function servedSecret(name: string, raw: unknown): CredentialsAnswer['secrets'][number] | Refusal {
  const type = str(field(raw, 'type')) ?? '';
  if (type !== DOCKER_CONFIG_JSON_TYPE && type !== DOCKERCFG_TYPE) return { status: 403, reason: `Secret ${name} is of type ${type || '(none)'}, not a pull secret` };
  const data: Record<string, string> = {};
  const d = field(raw, 'data');
  if (isRecord(d)) for (const [k, v] of Object.entries(d)) if (typeof v === 'string') data[k] = v;
  const resourceVersion = str(field(raw, 'metadata', 'resourceVersion'));
  return { name, type, data, ...(resourceVersion === undefined ? {} : { resourceVersion }) };
}

export function isRefusal(v: unknown): v is Refusal {
  return isRecord(v) && typeof v.status === 'number' && typeof v.reason === 'string';
}
