// The credentials for one pull attempt, from the pull secrets a NodeImageSet entry names (copies in kwarm's
// namespace, read by the caller): decoded, matched to the image's registry as the kubelet matches them, with
// the values a failure message must not show and a version of what was read, so that a rotated Secret can
// be told from the one an Unauthorized pull used. Pure: the secrets come in already read.
import { createHash } from 'node:crypto';
import { decodePullSecrets, matchCredentials, type RegistryCredential } from './credentials.ts';
import { parsedReference } from './image-record.ts';
import { secretForms } from './redaction.ts';
import type { ReadSecrets } from './secret-reader.ts';

export interface PullCredentials {
  /** In the order to try; `[undefined]` means anonymous (no secret matches the registry). */
  readonly candidates: readonly (RegistryCredential | undefined)[];
  /** Every form of every secret value in play, for `redact`. */
  readonly secretValues: readonly string[];
  /** Named secrets that do not exist. */
  readonly missing: readonly string[];
  /** Why some secrets cannot be used; names the secret and key, never the content. */
  readonly unusable: readonly string[];
  /** Changes whenever one of the named secrets is created, updated or deleted. */
  readonly version: string;
}

/**
 * A short digest of which named secrets exist and at which resourceVersion. Not secret itself (resource
 * versions and names only), so it may appear in status.
 */
export function secretsVersion(names: readonly string[], read: ReadSecrets): string {
  const rv = new Map(read.secrets.map((s) => [s.name, s.resourceVersion ?? '?']));
  const parts = [...names].sort().map((n) => [n, rv.get(n) ?? '']);
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

export function pullCredentials(image: string, names: readonly string[], read: ReadSecrets): PullCredentials {
  const decoded = decodePullSecrets(read.secrets);
  const ref = parsedReference(image);
  const matched = ref === undefined ? [] : matchCredentials(decoded.credentials, ref);
  return {
    candidates: matched.length > 0 ? matched : [undefined],
    secretValues: decoded.credentials.flatMap((c) => secretForms(c.username, c.password, [c.identityToken, c.registryToken])),
    missing: read.missing,
    unusable: decoded.errors.map((e) => e.message),
    version: secretsVersion(names, read),
  };
}
