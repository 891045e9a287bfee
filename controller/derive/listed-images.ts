// PrePullImages from image lists rather than workloads: a policy's static `spec.images` and the ConfigMaps
// its `spec.configMaps` selects. Pure: no I/O, no clock. The reconciler merges these with the workload
// images of desired-images.ts.
import { createHash } from 'node:crypto';
import { API_VERSION, type PrePullPolicy } from '../../api/v1alpha1/index.ts';
import { configMapImages, labelSelectorQuery, type ConfigMapImages, type ConfigMapView } from './configmap-image-lists.ts';
import { derivationKey, managedSpec, policyNodes, prePullImageKey, type DesiredPrePullImage, type ManagedPrePullImageSpec } from './desired-images.ts';
import { PRE_PULL_IMAGE_NAME_MAX } from './workload-images.ts';
import { CONFIGMAP_KEYS_ANNOTATION, SOURCE_ANNOTATION } from '../../api/v1alpha1/labels.ts';

export const STATIC_SOURCE = 'static';
export const CONFIGMAP_SOURCE = 'configmap';

const HASH_LENGTH = 10;

/**
 * `<prefix>.<owner>.<hash>`, e.g. `static.warm.3f2a9c01b7`: the hash is of owner and image, so names are
 * stable and distinct even when a long owner name is cut to keep the whole within 63 characters.
 */
export function listedImageName(prefix: string, owner: string, image: string): string {
  const hash = createHash('sha256').update(`${owner}\n${image}`).digest('hex').slice(0, HASH_LENGTH);
  const room = PRE_PULL_IMAGE_NAME_MAX - prefix.length - HASH_LENGTH - 2;
  // Owner names are DNS subdomains already; a cut may leave a trailing '.' or '-', which a name may not have there.
  const middle = owner.slice(0, room).replace(/[-.]+$/u, '');
  return middle === '' ? `${prefix}.${hash}` : `${prefix}.${middle}.${hash}`;
}

/**
 * A policy's spec.configMaps as far as the ConfigMap watches are concerned: the label selector query, and the
 * list-watches it needs (configMapWatchKey), one per namespace when `namespaces` is set (finding 15 of the
 * review: a cluster-wide watch filtered afterwards cached every selected ConfigMap of the cluster).
 */
export type ConfigMapWatch =
  | { readonly kind: 'none' }
  | { readonly kind: 'invalid'; readonly error: string }
  | { readonly kind: 'selector'; readonly query: string; readonly keys: readonly string[] };

/** One ConfigMap list-watch: a namespace ('' for the whole cluster) and a label selector query. */
export interface ConfigMapWatchScope {
  readonly namespace: string;
  readonly query: string;
}

/** `<namespace>/<query>`, with an empty namespace for the whole cluster (namespaces contain no '/'). */
export function configMapWatchKey(scope: ConfigMapWatchScope): string {
  return `${scope.namespace}/${scope.query}`;
}

export function configMapWatchScope(key: string): ConfigMapWatchScope {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), query: key.slice(slash + 1) };
}

export function configMapWatchOf(policy: PrePullPolicy): ConfigMapWatch {
  const source = policy.spec.configMaps;
  if (source === undefined) return { kind: 'none' };
  const query = labelSelectorQuery(source.selector);
  if (!query.ok) return { kind: 'invalid', error: `configMaps.selector: ${query.error}` };
  const namespaces = source.namespaces === undefined ? [''] : [...new Set(source.namespaces)].sort();
  return { kind: 'selector', query: query.value, keys: namespaces.map((namespace) => configMapWatchKey({ namespace, query: query.value })) };
}

export interface ConfigMapProblem {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly key: string;
  readonly message: string;
}

/** How a policy's ConfigMap source stands. */
export type ConfigMapsState =
  | { readonly kind: 'unset' }
  | { readonly kind: 'invalidSelector'; readonly error: string }
  /** The list-watch for the selector has not listed yet: nothing is known, nothing may be removed. `error`: why the list failed. */
  | { readonly kind: 'pending'; readonly error: string | undefined }
  | { readonly kind: 'watched'; readonly configMaps: number; readonly problems: readonly ConfigMapProblem[] };

export interface ListedEvaluation {
  /** Keys of the PrePullImages from spec.images. */
  readonly staticImages: readonly string[];
  /** Keys of the PrePullImages from ConfigMaps this policy owns (the first policy by name selecting a ConfigMap owns its images). */
  readonly configMapImages: readonly string[];
  readonly configMaps: ConfigMapsState;
}

export interface ListedImages {
  /** By `namespace/name`. */
  readonly images: ReadonlyMap<string, DesiredPrePullImage>;
  readonly policies: ReadonlyMap<string, ListedEvaluation>;
}

/**
 * Parsed ConfigMaps and derived images by cached object (informers replace an object that changes), so an
 * unchanged policy or ConfigMap yields the very same objects and callers can remember what they computed
 * from them. Only a cache: the result is the same without it.
 */
export class ListedImagesMemo {
  readonly parsed = new WeakMap<ConfigMapView, ConfigMapImages>();
  /** By policy name, with the policy's derivationKey. */
  statics = new Map<string, { readonly policy: string; readonly images: readonly DesiredPrePullImage[] }>();
  readonly fromConfigMap = new WeakMap<ConfigMapView, { readonly policy: string; readonly images: readonly DesiredPrePullImage[] }>();
}

/** The spec of every listed image of a policy but the image itself; one `nodes` object shared by all. */
function specFor(policy: PrePullPolicy): (image: string) => ManagedPrePullImageSpec {
  const nodes = policyNodes(policy);
  const secrets = policy.spec.imagePullSecrets.additional.map((r) => ({ name: r.name }));
  return (image) => managedSpec(policy, image, nodes, secrets);
}

function staticImages(policy: PrePullPolicy, namespace: string): DesiredPrePullImage[] {
  const name = policy.metadata.name ?? '';
  const spec = specFor(policy);
  return [...new Set(policy.spec.images ?? [])].map((image) => ({
    namespace,
    name: listedImageName(STATIC_SOURCE, name, image),
    policy: name,
    // A namespaced dependent of a cluster-scoped owner: deleting the policy deletes its static images.
    owner: { apiVersion: API_VERSION, kind: 'PrePullPolicy', name, uid: policy.metadata.uid ?? '' },
    annotations: { [SOURCE_ANNOTATION]: STATIC_SOURCE },
    spec: spec(image),
    placement: undefined,
  }));
}

function configMapDerived(policy: PrePullPolicy, cm: ConfigMapView, parsed: ConfigMapImages): DesiredPrePullImage[] {
  const spec = specFor(policy);
  return [...parsed.images].map(([image, keys]) => ({
    namespace: cm.namespace,
    name: listedImageName(CONFIGMAP_SOURCE, cm.name, image),
    policy: policy.metadata.name ?? '',
    owner: { apiVersion: 'v1', kind: 'ConfigMap', name: cm.name, uid: cm.uid },
    annotations: { [SOURCE_ANNOTATION]: CONFIGMAP_SOURCE, [CONFIGMAP_KEYS_ANNOTATION]: keys.join(',') },
    spec: spec(image),
    placement: undefined,
  }));
}

function byName(a: PrePullPolicy, b: PrePullPolicy): number {
  const x = a.metadata.name ?? '';
  const y = b.metadata.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface ListedImagesInput {
  readonly policies: Iterable<PrePullPolicy>;
  /** The ConfigMaps each list-watch holds, by configMapWatchKey; a key missing here has not listed yet. */
  readonly configMaps: ReadonlyMap<string, Iterable<ConfigMapView>>;
  /** Why a list-watch that has not listed yet failed, by configMapWatchKey. */
  readonly listErrors?: ReadonlyMap<string, string>;
  /** kwarm's own namespace: static images live there. */
  readonly namespace: string;
  readonly memo?: ListedImagesMemo;
}

export function desiredListedImages(input: ListedImagesInput): ListedImages {
  const images = new Map<string, DesiredPrePullImage>();
  const policies = new Map<string, ListedEvaluation>();
  const parse = (cm: ConfigMapView): ConfigMapImages => {
    let parsed = input.memo?.parsed.get(cm);
    if (parsed === undefined) {
      parsed = configMapImages(cm);
      input.memo?.parsed.set(cm, parsed);
    }
    return parsed;
  };
  const claimed = new Set<string>();
  const live = [...input.policies].filter((p) => p.metadata.deletionTimestamp === undefined).sort(byName);
  const staticsNow = new Map<string, { readonly policy: string; readonly images: readonly DesiredPrePullImage[] }>();
  for (const policy of live) {
    const name = policy.metadata.name ?? '';
    const staticKeys: string[] = [];
    const policyKey = derivationKey(policy);
    const known = input.memo?.statics.get(name);
    const statics = known?.policy === policyKey ? known.images : staticImages(policy, input.namespace);
    staticsNow.set(name, { policy: policyKey, images: statics });
    for (const d of statics) {
      const key = prePullImageKey(d.namespace, d.name);
      images.set(key, d);
      staticKeys.push(key);
    }

    const watch = configMapWatchOf(policy);
    const owned: string[] = [];
    let state: ConfigMapsState;
    switch (watch.kind) {
      case 'none':
        state = { kind: 'unset' };
        break;
      case 'invalid':
        state = { kind: 'invalidSelector', error: watch.error };
        break;
      case 'selector': {
        const lists = watch.keys.map((k) => input.configMaps.get(k));
        const missing = watch.keys.filter((_, i) => lists[i] === undefined);
        if (missing.length > 0) {
          state = { kind: 'pending', error: missing.map((k) => input.listErrors?.get(k)).find((e) => e !== undefined) };
          break;
        }
        const listed = lists.flatMap((l) => [...(l ?? [])]);
        const namespaces = policy.spec.configMaps?.namespaces;
        const allowed = namespaces === undefined ? undefined : new Set(namespaces);
        let count = 0;
        const problems: ConfigMapProblem[] = [];
        for (const cm of listed) {
          if (allowed !== undefined && !allowed.has(cm.namespace)) continue;
          count++;
          const parsed = parse(cm);
          for (const p of parsed.problems) {
            problems.push({ namespace: cm.namespace, name: cm.name, uid: cm.uid, resourceVersion: cm.resourceVersion, key: p.key, message: p.message });
          }
          // Two policies selecting one ConfigMap: the first by name owns its images, as with workloads.
          const id = `${cm.namespace}/${cm.name}`;
          if (claimed.has(id)) continue;
          claimed.add(id);
          const known = input.memo?.fromConfigMap.get(cm);
          const derived = known?.policy === derivationKey(policy) ? known.images : configMapDerived(policy, cm, parsed);
          input.memo?.fromConfigMap.set(cm, { policy: derivationKey(policy), images: derived });
          for (const d of derived) {
            const key = prePullImageKey(d.namespace, d.name);
            images.set(key, d);
            owned.push(key);
          }
        }
        problems.sort((a, b) => `${a.namespace}/${a.name}\n${a.key}`.localeCompare(`${b.namespace}/${b.name}\n${b.key}`));
        state = { kind: 'watched', configMaps: count, problems };
        break;
      }
      default: {
        const unreachable: never = watch;
        return unreachable;
      }
    }
    policies.set(name, { staticImages: staticKeys, configMapImages: owned, configMaps: state });
  }
  if (input.memo !== undefined) input.memo.statics = staticsNow;
  return { images, policies };
}
