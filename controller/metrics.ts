// The controller's Prometheus metrics, on a registry of their own (no global default registry).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PREPULLIMAGE_PHASES, type PrePullImagePhase } from '../api/v1alpha1/index.ts';
import type { HttpMethod } from '../lib/kube-client.ts';
import { ADMISSION_OUTCOMES, type AdmissionOutcome } from './gate/admission.ts';
import { RELEASE_REASONS, type ReleaseReason } from './gate/gate-decision.ts';
import { ARGO_WORKLOAD_KINDS } from '../api/v1alpha1/index.ts';
import { builtinWorkloadKinds } from './derive/workload-images.ts';

/** Every kind the controller list-watches: the label values of `kwarm_undecodable_objects`, all present from the start. */
export const UNDECODABLE_KINDS = [
  'PrePullPolicy', 'PrePullImage', 'NodeImageSet', 'Node', 'ServiceAccount', 'Secret', 'RuntimeClass', 'ConfigMap',
  ...builtinWorkloadKinds, ...ARGO_WORKLOAD_KINDS,
] as const;
export type UndecodableKind = (typeof UNDECODABLE_KINDS)[number];

/** `prepullimages/status`, `nodeimagesets`, `events`… from an API path: a bounded label. */
export function resourceOfPath(path: string): string {
  const parts = (path.split('?')[0] ?? '').split('/').filter((p) => p !== '');
  let i = parts[0] === 'api' ? 2 : 3;
  if (parts[i] === 'namespaces' && parts.length > i + 2) i += 2;
  const resource = parts[i] ?? 'unknown';
  const sub = parts[i + 2];
  return sub === undefined ? resource : `${resource}/${sub}`;
}

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly prePullImagesByPhase: Gauge<'phase'>;
  readonly watchedDeployments: Gauge<'policy'>;
  readonly watchedWorkloads: Gauge<'policy' | 'kind'>;
  readonly reconcileDuration: Histogram;
  readonly planDuration: Histogram;
  readonly apiWrites: Counter<'kind'>;
  readonly apiErrors: Counter<'kind'>;
  readonly unfinishedPulls: Gauge;
  readonly heldPulls: Gauge;
  readonly refreshes: Counter<'trigger'>;
  readonly leader: Gauge;
  readonly gateAdmissions: Counter<'outcome'>;
  readonly gateReleases: Counter<'reason'>;
  readonly gatedPods: Gauge;
  readonly undecodableObjects: Gauge<'kind'>;
  /** Read at each scrape; until trackUndecodable is called, every kind reads 0. */
  private undecodableSource: () => ReadonlyMap<UndecodableKind, number> = () => new Map();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'kwarm_controller_' });
    this.prePullImagesByPhase = new Gauge({ name: 'kwarm_prepullimages_by_phase', help: 'PrePullImages by phase.', labelNames: ['phase'], registers });
    this.watchedDeployments = new Gauge({ name: 'kwarm_watched_deployments', help: 'Deployments each PrePullPolicy selects.', labelNames: ['policy'], registers });
    this.watchedWorkloads = new Gauge({ name: 'kwarm_watched_workloads', help: 'Workloads each PrePullPolicy selects, by kind.', labelNames: ['policy', 'kind'], registers });
    this.reconcileDuration = new Histogram({
      name: 'kwarm_reconcile_duration_seconds', help: 'Duration of one reconcile pass over the whole cluster.', registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.planDuration = new Histogram({
      name: 'kwarm_reconcile_plan_duration_seconds', help: 'Time one reconcile pass spends computing (without waiting for API writes).', registers,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    this.apiWrites = new Counter({ name: 'kwarm_api_writes_total', help: 'Write requests sent to the API server, by resource.', labelNames: ['kind'], registers });
    this.apiErrors = new Counter({ name: 'kwarm_api_write_errors_total', help: 'Write requests the API server refused, by resource.', labelNames: ['kind'], registers });
    this.unfinishedPulls = new Gauge({ name: 'kwarm_unfinished_pulls', help: '(node, image) pairs released to agents and not finished, as the budget counts them (not those in retry back-off).', registers });
    this.heldPulls = new Gauge({ name: 'kwarm_held_pulls', help: '(node, image) pairs waiting for the --max-concurrent-pulls budget.', registers });
    this.refreshes = new Counter({ name: 'kwarm_refreshes_total', help: 'Refreshes recorded on PrePullImages, by trigger (Annotation, Interval).', labelNames: ['trigger'], registers });
    this.leader = new Gauge({ name: 'kwarm_controller_leader', help: '1 while this replica holds the leader Lease (or runs without election).', registers });
    this.gateAdmissions = new Counter({
      name: 'kwarm_rollout_gate_admissions_total', registers, labelNames: ['outcome'],
      help: 'Pods the rollout gate webhook admitted, by outcome (gated, warm, not-selected, skipped; error: a lookup failed, admitted ungated).',
    });
    this.gateReleases = new Counter({
      name: 'kwarm_rollout_gate_releases_total', registers, labelNames: ['reason'],
      help: 'Pods the rollout gate released, by reason (ImagesWarm, TimedOut, NotSelected, Uninstalled).',
    });
    this.gatedPods = new Gauge({ name: 'kwarm_rollout_gate_gated_pods', help: 'Pods carrying kwarm\'s scheduling gate now, as the leader sees them (0 on a standby).', registers });
    const undecodable = (): ReadonlyMap<UndecodableKind, number> => this.undecodableSource();
    this.undecodableObjects = new Gauge({
      name: 'kwarm_undecodable_objects', registers, labelNames: ['kind'],
      help: 'Objects the controller watches that this build cannot decode (for example a newer CRD\'s value), by kind: kept as last seen, or ignored, never taken for deleted.',
      collect() {
        const counts = undecodable();
        for (const kind of UNDECODABLE_KINDS) this.set({ kind }, counts.get(kind) ?? 0);
      },
    });
    for (const phase of PREPULLIMAGE_PHASES) this.prePullImagesByPhase.set({ phase }, 0);
    // Every series from the start, so rate() and alerts see a first increment.
    for (const outcome of ADMISSION_OUTCOMES) this.gateAdmissions.inc({ outcome }, 0);
    for (const reason of RELEASE_REASONS) this.gateReleases.inc({ reason }, 0);
  }

  /** Where `kwarm_undecodable_objects` reads its counts at each scrape (the controller's caches). */
  trackUndecodable(source: () => ReadonlyMap<UndecodableKind, number>): void {
    this.undecodableSource = source;
  }

  admitted(outcome: AdmissionOutcome): void {
    this.gateAdmissions.inc({ outcome });
  }

  released(reason: ReleaseReason): void {
    this.gateReleases.inc({ reason });
  }

  /** The KubeClient `observe` hook. */
  observeRequest(method: HttpMethod, path: string, status: number): void {
    if (method === 'GET') return;
    const kind = resourceOfPath(path);
    this.apiWrites.inc({ kind });
    if (status < 200 || status >= 300) this.apiErrors.inc({ kind });
  }

  setPhases(counts: Readonly<Record<PrePullImagePhase, number>>): void {
    for (const phase of PREPULLIMAGE_PHASES) this.prePullImagesByPhase.set({ phase }, counts[phase]);
  }
}
