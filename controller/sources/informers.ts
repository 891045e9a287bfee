// Everything the controller reads from the API server: one projected list-watch per collection, the
// ConfigMap watches the policies ask for and the Argo Workflows source. Any change only calls `onChange`;
// the caches are read by the next pass.
import type { Logger } from 'winston';
import type { PrePullImage, PrePullPolicy } from '../../api/v1alpha1/index.ts';
import { SECRET_COPY_LABEL } from '../../api/v1alpha1/labels.ts';
import type { KubeClient } from '../../lib/kube-client.ts';
import type { ListWatch } from '../../lib/list-watch.ts';
import { ArgoSource } from './argo-source.ts';
import { ConfigMapWatches } from './configmap-watches.ts';
import {
  decodeNode,
  decodeNodeImageSet,
  decodePolicy,
  decodePrePullImage,
  decodeRuntimeClass,
  decodeSecret,
  decodeServiceAccount,
  SharedValues,
  workloadDecoder,
} from './decode.ts';
import { projectedWatch } from './projected-watch.ts';
import { argoKindsNamed, builtinKindsNamed, type ServiceAccountView, type WorkloadView } from '../derive/desired-images.ts';
import { configMapWatchOf } from '../derive/listed-images.ts';
import { namespacesWithPullSecrets, type SecretView, type SourceSecret } from '../derive/pull-secrets.ts';
import { builtinWorkloadKinds, type BuiltinWorkloadKind } from '../derive/workload-images.ts';
import { KeyedWatches } from './keyed-watches.ts';
import type { UndecodableKind } from '../metrics.ts';
import { SecretWatches } from './secret-watches.ts';
import type { NodeView } from '../plan/node-eligibility.ts';
import { withRuntimeClass, type RuntimeClassView } from '../plan/runtime-class.ts';
import type { NodeImageSetView } from '../plan/node-image-set-view.ts';
import { paths } from '../write/api-objects.ts';

/** RuntimeClasses (cluster-scoped): their `scheduling` decides where pods naming them run. */
export const RUNTIME_CLASSES_PATH = '/apis/node.k8s.io/v1/runtimeclasses';

/** How long the first pass waits for the ConfigMap lists; after that, policies whose list is missing keep their ConfigMap images as they are. */
const CONFIGMAP_SYNC_WAIT_MS = 30_000;
/**
 * How long the first pass waits for the pull Secrets of the namespaces existing PrePullImages reference; after
 * that, a namespace still not listed is 'unknown' and its copies stay as they are.
 */
const SECRET_SYNC_WAIT_MS = 30_000;
/** The first pass waits at most this long for the Argo kinds' discovery and lists. */
const ARGO_SETTLE_TIMEOUT_MS = 30_000;

export interface InformersOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** kwarm's namespace: pull secret copies live here. */
  readonly namespace: string;
  readonly onChange: () => void;
  readonly argoDiscoveryIntervalMs: number;
}

export class Informers {
  readonly policies: ListWatch<PrePullPolicy>;
  readonly prePullImages: ListWatch<PrePullImage>;
  readonly nodeImageSets: ListWatch<NodeImageSetView>;
  readonly nodes: ListWatch<NodeView>;
  readonly serviceAccounts: ListWatch<ServiceAccountView>;
  readonly secretCopies: ListWatch<SecretView>;
  /** By kind: only the kinds some policy names are watched (finding 15). */
  readonly workloads: KeyedWatches<WorkloadView>;
  readonly runtimeClasses: ListWatch<RuntimeClassView>;
  readonly configMapWatches: ConfigMapWatches;
  readonly argo: ArgoSource;
  /** Pull Secrets, only in the namespaces whose PrePullImages name some (finding 15). */
  readonly secretSources: SecretWatches;
  private readonly all: ListWatch<unknown>[];
  /** A workload naming a RuntimeClass, as handed out with that class merged in; valid while both are the same objects. */
  private readonly resolved = new WeakMap<WorkloadView, { readonly runtimeClass: RuntimeClassView | undefined; readonly view: WorkloadView }>();

  constructor(opts: InformersOptions) {
    const { client, log, onChange } = opts;
    const shared = new SharedValues();
    const watch = <T>(
      path: string,
      decode: (raw: unknown, previous: T | undefined) => T | undefined,
      extra: { fieldSelector?: string; labelSelector?: string } = {},
    ): ListWatch<T> => projectedWatch<T>({ client, log, path, decode, onChange, ...extra });
    this.policies = watch(paths.policies, decodePolicy);
    this.prePullImages = watch(paths.prePullImages, decodePrePullImage);
    this.nodeImageSets = watch(paths.nodeImageSets, (raw, previous) => decodeNodeImageSet(raw, previous, shared));
    this.nodes = watch(paths.nodes, (raw, previous) => decodeNode(raw, previous, shared));
    this.serviceAccounts = watch(paths.serviceAccounts, decodeServiceAccount);
    this.secretSources = new SecretWatches({ client, log, onChange });
    this.secretCopies = watch(paths.namespacedSecrets(opts.namespace), decodeSecret, { labelSelector: `${SECRET_COPY_LABEL}=true` });
    this.workloads = workloadWatches(opts, shared);
    this.runtimeClasses = watch(RUNTIME_CLASSES_PATH, decodeRuntimeClass);
    this.configMapWatches = new ConfigMapWatches({ client, log, onChange });
    this.argo = new ArgoSource({ client, log, onChange, discoveryIntervalMs: opts.argoDiscoveryIntervalMs });
    this.all = [
      this.policies, this.prePullImages, this.nodeImageSets, this.nodes, this.serviceAccounts, this.secretCopies,
      this.runtimeClasses,
    ] as ListWatch<unknown>[];
  }

  /** Runs every list-watch and the Argo source until `signal` aborts; resolves once all have ended. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.allSettled([...this.all.map((i) => i.run(signal)), this.argo.run(signal)]);
    await Promise.all([this.configMapWatches.stop(), this.workloads.stop(), this.secretSources.stop()]);
  }

  /**
   * Resolves once every collection has listed, and then the policies' ConfigMaps, the referenced namespaces' pull
   * Secrets and Argo objects (each bounded), so the first pass removes nothing they list.
   */
  async waitForSync(signal: AbortSignal): Promise<void> {
    await Promise.all(this.all.map((i) => i.waitForSync(signal)));
    this.followPolicies(signal);
    // The namespaces the existing PrePullImages reference: their copies are checked in the first pass.
    this.followSecrets(namespacesWithPullSecrets([...this.prePullImages.values()].map((p) => ({ namespace: p.metadata.namespace, imagePullSecrets: p.spec.imagePullSecrets }))), signal);
    await Promise.all([
      this.workloads.waitForSync(signal), this.secretSources.waitForSync(signal, SECRET_SYNC_WAIT_MS), this.configMapWatches.waitForSync(signal, CONFIGMAP_SYNC_WAIT_MS), this.argo.settle(signal, ARGO_SETTLE_TIMEOUT_MS),
    ]);
  }

  /** Informers whose watch is down, for readiness. */
  unhealthy(): string[] {
    return [...this.all.filter((i) => !i.healthy).map((i) => i.lastError ?? 'not synced'), ...this.workloads.unhealthy(), ...this.configMapWatches.unhealthy(), ...this.secretSources.unhealthy()];
  }

  /**
   * Objects that exist but do not decode, by kind (finding 11): the caches keep their last good version or, if
   * none, nothing, and treat them as unknown. For the `kwarm_undecodable_objects` metric.
   */
  undecodableByKind(): Map<UndecodableKind, number> {
    const out = new Map<UndecodableKind, number>([
      ['PrePullPolicy', this.policies.undecodableKeys().size],
      ['PrePullImage', this.prePullImages.undecodableKeys().size],
      ['NodeImageSet', this.nodeImageSets.undecodableKeys().size],
      ['Node', this.nodes.undecodableKeys().size],
      ['ServiceAccount', this.serviceAccounts.undecodableKeys().size],
      ['Secret', this.secretCopies.undecodableKeys().size + this.secretSources.undecodableCount()],
      ['RuntimeClass', this.runtimeClasses.undecodableKeys().size],
      ['ConfigMap', this.configMapWatches.undecodableCount()],
    ]);
    for (const kind of builtinWorkloadKinds) out.set(kind, this.workloads.get(kind)?.undecodableKeys().size ?? 0);
    for (const [kind, n] of this.argo.undecodableByKind()) out.set(kind, n);
    return out;
  }

  /** Starts and stops the ConfigMap watches and Argo kinds the current policies name. */
  followPolicies(signal: AbortSignal): void {
    this.argo.want(argoKindsNamed(this.policies.values()));
    this.workloads.update(builtinKindsNamed(this.policies.values()), signal);
    const queries = new Set<string>();
    for (const p of this.policies.values()) {
      if (p.metadata.deletionTimestamp !== undefined) continue;
      const w = configMapWatchOf(p);
      if (w.kind === 'selector') for (const key of w.keys) queries.add(key);
    }
    this.configMapWatches.update(queries, signal);
  }

  /** Watches pull Secrets in exactly these namespaces (see namespacesWithPullSecrets). */
  followSecrets(namespaces: ReadonlySet<string>, signal: AbortSignal): void {
    this.secretSources.update(namespaces, signal);
  }

  /**
   * Waits, at most `timeoutMs`, for the Secret lists of namespaces just referenced: they take a round trip, and a
   * pass planned before they arrive would release a new image to the nodes without its pull secret.
   */
  async waitForSecrets(signal: AbortSignal, timeoutMs: number): Promise<void> {
    await this.secretSources.waitForSync(signal, timeoutMs);
  }

  /**
   * A Secret a PrePullImage may name, by `namespace/name`; the controller's own copies are never one.
   * 'unknown' while its namespace is not watched or not listed yet.
   */
  sourceSecret(key: string): SourceSecret {
    return this.secretSources.get(key);
  }

  /**
   * The workloads, each as its pods are scheduled: one naming a RuntimeClass gets that class's `scheduling`
   * merged into its scheduling spec, as the RuntimeClass admission plugin does to its pods. The same object
   * is handed out while the workload and its class are unchanged, so the derivation memo keeps working.
   */
  workloadViews(): WorkloadView[] {
    return [...this.workloads.values()].map((w) => this.withRuntimeClass(w));
  }

  private withRuntimeClass(w: WorkloadView): WorkloadView {
    const name = w.template.podSpec.runtimeClassName;
    if (name === undefined || name === '') return w;
    const runtimeClass = this.runtimeClasses.get(name);
    const known = this.resolved.get(w);
    if (known !== undefined && known.runtimeClass === runtimeClass) return known.view;
    const view: WorkloadView = { ...w, template: { ...w.template, schedulingSpec: withRuntimeClass(w.template.schedulingSpec, name, runtimeClass) } };
    this.resolved.set(w, { runtimeClass, view });
    return view;
  }
}

function isBuiltinKind(key: string): key is BuiltinWorkloadKind {
  return (builtinWorkloadKinds as readonly string[]).includes(key);
}

function workloadWatches(opts: InformersOptions, shared: SharedValues): KeyedWatches<WorkloadView> {
  const { client, log, onChange } = opts;
  return new KeyedWatches<WorkloadView>({
    log, what: 'workloads', onChange,
    watch: (kind) => {
      if (!isBuiltinKind(kind)) throw new Error(`not a built-in workload kind: ${kind}`);
      return projectedWatch<WorkloadView>({ client, log, path: paths.workloads[kind], decode: workloadDecoder(kind, shared), onChange });
    },
  });
}
