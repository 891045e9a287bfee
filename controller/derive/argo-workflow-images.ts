// From an Argo Workflows object (WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow) to what kwarm
// needs of it: who it is, its labels, the images of its templates with where each template's pods may run,
// and the names of the PrePullImages kwarm derives. Values come straight from the API (kwarm has no Argo
// types), so everything is decoded here from `unknown`; odd or missing fields are skipped, never thrown on.
// Pure: no I/O, no clock.
//
// Placement follows Argo's pod creation: a template's own nodeSelector, tolerations and affinity, where set,
// replace the workflow-level ones field by field (workflowSpec for a CronWorkflow). spec.templateDefaults and
// the Argo controller's workflowDefaults are not read.
import { createHash } from 'node:crypto';
import { ARGO_WORKLOAD_KINDS, isImageReference } from '../../api/v1alpha1/index.ts';
import { field, isRecord, list, sameProjection, str, stringMap } from '../../lib/raw.ts';
import { termOf, tolerationOf } from '../sources/scheduling-decode.ts';
import type { LabelSet } from '../plan/label-selector.ts';
import { compilePodPlacement, type AffinitySpec, type PodPlacement, type PodSchedulingSpec } from '../plan/node-eligibility.ts';
import { PRE_PULL_IMAGE_NAME_MAX, withHash } from './workload-images.ts';

export type ArgoKind = (typeof ARGO_WORKLOAD_KINDS)[number];

export const ARGO_GROUP_VERSION = 'argoproj.io/v1alpha1';

/** Resource names as the API serves them; ClusterWorkflowTemplates are cluster-scoped. */
export const argoResources: Readonly<Record<ArgoKind, { readonly plural: string; readonly namespaced: boolean }>> = {
  WorkflowTemplate: { plural: 'workflowtemplates', namespaced: true },
  ClusterWorkflowTemplate: { plural: 'clusterworkflowtemplates', namespaced: false },
  CronWorkflow: { plural: 'cronworkflows', namespaced: true },
};

export function isArgoKind(kind: string): kind is ArgoKind {
  return (ARGO_WORKLOAD_KINDS as readonly string[]).includes(kind);
}

/** Collection path for list and watch, across all namespaces. */
export function argoCollectionPath(kind: ArgoKind): string {
  return `/apis/${ARGO_GROUP_VERSION}/${argoResources[kind].plural}`;
}

export interface ArgoIdentity {
  readonly kind: ArgoKind;
  /** '' for a ClusterWorkflowTemplate. */
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** One container of one template. */
export interface ArgoContainerImage {
  readonly template: string;
  readonly container: string;
  readonly image: string;
  /** The workflow's scheduling fields, overridden by the template's own. */
  readonly scheduling: PodSchedulingSpec;
}

/** What the controller keeps of an Argo object. */
export interface ArgoWorkflowView {
  readonly identity: ArgoIdentity;
  readonly labels: LabelSet;
  /** In template order; containers without a pullable image (empty, or an Argo expression) are left out. */
  readonly containers: readonly ArgoContainerImage[];
  /** Names of the workflow's imagePullSecrets, de-duplicated, in order. */
  readonly imagePullSecrets: readonly string[];
  /** The workflow's service account ("default" when it names none). */
  readonly serviceAccountName: string;
}

// ---- decoding -----------------------------------------------------------------------------------------

/** The part holding templates and workflow-level settings: `spec`, or `spec.workflowSpec` of a CronWorkflow. */
export function workflowSpecOf(kind: ArgoKind, raw: unknown): unknown {
  switch (kind) {
    case 'WorkflowTemplate':
    case 'ClusterWorkflowTemplate':
      return field(raw, 'spec');
    case 'CronWorkflow':
      return field(raw, 'spec', 'workflowSpec');
    default: {
      const unreachable: never = kind;
      return unreachable;
    }
  }
}

function affinityOf(v: unknown): AffinitySpec | undefined {
  const required = field(v, 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution');
  // Only required node affinity constrains nodes; pod (anti-)affinity and preferences are ignored.
  if (!isRecord(required)) return isRecord(v) ? {} : undefined;
  return { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: list(required.nodeSelectorTerms, termOf) } } };
}

/** nodeSelector, tolerations and required node affinity of a workflow spec or a template, as set there. */
export function schedulingOf(v: unknown): PodSchedulingSpec {
  if (!isRecord(v)) return {};
  const tolerations = Array.isArray(v.tolerations) ? list(v.tolerations, tolerationOf) : undefined;
  const affinity = affinityOf(v.affinity);
  return {
    ...(isRecord(v.nodeSelector) ? { nodeSelector: stringMap(v.nodeSelector) } : {}),
    ...(tolerations !== undefined ? { tolerations } : {}),
    ...(affinity !== undefined ? { affinity } : {}),
  };
}

/** Argo's rule: a template field that is set (non-empty) replaces the workflow's. */
export function combineScheduling(workflow: PodSchedulingSpec, template: PodSchedulingSpec): PodSchedulingSpec {
  const nodeSelector = template.nodeSelector !== undefined && Object.keys(template.nodeSelector).length > 0 ? template.nodeSelector : workflow.nodeSelector;
  const tolerations = template.tolerations !== undefined && template.tolerations.length > 0 ? template.tolerations : workflow.tolerations;
  const affinity = template.affinity ?? workflow.affinity;
  return {
    ...(nodeSelector !== undefined ? { nodeSelector } : {}),
    ...(tolerations !== undefined ? { tolerations } : {}),
    ...(affinity !== undefined ? { affinity } : {}),
  };
}

/** An image a node can pull: not empty, not an Argo expression such as {{inputs.parameters.image}}. */
function pullable(image: string | undefined): image is string {
  return image !== undefined && image !== '' && isImageReference(image);
}

/**
 * The containers of one template, in a fixed order: initContainers, container, script, containerSet
 * containers, sidecars. `container` and `script` run as Argo's "main" container.
 */
export function templateContainers(template: unknown): { container: string; image: string }[] {
  if (!isRecord(template)) return [];
  const out: { container: string; image: string }[] = [];
  const add = (c: unknown, fallbackName: string): void => {
    const image = str(field(c, 'image'));
    if (!pullable(image)) return;
    const name = str(field(c, 'name'));
    out.push({ container: name !== undefined && name !== '' ? name : fallbackName, image });
  };
  const each = (items: unknown, what: string): void => {
    if (Array.isArray(items)) (items as unknown[]).forEach((c, i) => { add(c, `${what}[${i}]`); });
  };
  each(template.initContainers, 'initContainers');
  if (isRecord(template.container)) add({ ...template.container, name: 'main' }, 'main');
  if (isRecord(template.script)) add({ ...template.script, name: 'main' }, 'main');
  each(field(template, 'containerSet', 'containers'), 'containerSet');
  each(template.sidecars, 'sidecars');
  return out;
}

/** Every container of every template of a workflow spec, each with its combined scheduling. */
export function workflowContainers(workflowSpec: unknown): ArgoContainerImage[] {
  const workflow = schedulingOf(workflowSpec);
  const templates = field(workflowSpec, 'templates');
  if (!Array.isArray(templates)) return [];
  const out: ArgoContainerImage[] = [];
  (templates as unknown[]).forEach((t, i) => {
    const name = str(field(t, 'name'));
    const template = name !== undefined && name !== '' ? name : `templates[${i}]`;
    const scheduling = combineScheduling(workflow, schedulingOf(t));
    for (const c of templateContainers(t)) out.push({ template, container: c.container, image: c.image, scheduling });
  });
  return out;
}

/**
 * An Argo object as the controller keeps it, or undefined when it has no identity. `previous` is returned
 * when nothing kept changed (a status update, a new CronWorkflow run), so no pass is needed.
 */
export function decodeArgoWorkflow(kind: ArgoKind, raw: unknown, previous?: ArgoWorkflowView): ArgoWorkflowView | undefined {
  const namespace = str(field(raw, 'metadata', 'namespace')) ?? '';
  const name = str(field(raw, 'metadata', 'name'));
  const uid = str(field(raw, 'metadata', 'uid'));
  if (name === undefined || name === '' || uid === undefined || uid === '') return undefined;
  if (argoResources[kind].namespaced === (namespace === '')) return undefined;
  const spec = workflowSpecOf(kind, raw);
  const secrets = list(field(spec, 'imagePullSecrets'), (r) => str(field(r, 'name')));
  const sa = str(field(spec, 'serviceAccountName'));
  const view: ArgoWorkflowView = {
    identity: { kind, namespace, name, uid },
    labels: stringMap(field(raw, 'metadata', 'labels')),
    containers: workflowContainers(spec),
    imagePullSecrets: [...new Set(secrets.filter((s) => s !== ''))],
    serviceAccountName: sa !== undefined && sa !== '' ? sa : 'default',
  };
  return previous !== undefined && sameProjection(previous, view) ? previous : view;
}

// ---- one PrePullImage per distinct image and placement ------------------------------------------------

export interface ArgoImageGroup {
  /** The PrePullImage's name. */
  readonly name: string;
  readonly image: string;
  readonly placement: PodPlacement;
  /** `template/container` of every use, in template order. */
  readonly users: readonly string[];
}

const HASH_LENGTH = 10;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The last path component of the repository, without tag or digest: `alpine` for `docker.io/library/alpine:3`. */
function shortImageName(image: string): string {
  const withoutDigest = image.split('@')[0] ?? image;
  const last = withoutDigest.split('/').pop() ?? withoutDigest;
  return last.split(':')[0] ?? last;
}

/**
 * `<kind>.<object>.<image>-<hash>`, e.g. `workflowtemplate.ci.alpine-3f9a8b7c6d`: stable while the image
 * stays in the object, whatever template uses it. The hash covers the object and the image reference,
 * plus the placement when one object places the same image differently (then there is one PrePullImage
 * per placement). Too long or not a valid name: cleaned and cut, the hash keeps names distinct.
 */
export function argoPrePullImageName(id: Pick<ArgoIdentity, 'kind' | 'namespace' | 'name'>, image: string, placementKey?: string): string {
  const hashInput = `${id.kind}/${id.namespace}/${id.name}\n${image}${placementKey === undefined ? '' : `\n${placementKey}`}`;
  const hash = createHash('sha256').update(hashInput).digest('hex').slice(0, HASH_LENGTH);
  const prefix = `${id.kind.toLowerCase()}.${id.name}.${shortImageName(image)}`;
  const full = `${prefix}-${hash}`;
  if (full.length <= PRE_PULL_IMAGE_NAME_MAX && DNS1123_SUBDOMAIN.test(full)) return full;
  return withHash(prefix, hash);
}

/** The object's containers grouped by (image, placement), each group one PrePullImage, sorted by name. */
export function argoImageGroups(view: ArgoWorkflowView): ArgoImageGroup[] {
  const byKey = new Map<string, { image: string; placement: PodPlacement; users: string[] }>();
  const placementsOf = new Map<string, Set<string>>();
  for (const c of view.containers) {
    const placement = compilePodPlacement(c.scheduling);
    const key = `${c.image}\n${placement.key}`;
    let g = byKey.get(key);
    if (g === undefined) byKey.set(key, (g = { image: c.image, placement, users: [] }));
    const user = `${c.template}/${c.container}`;
    if (!g.users.includes(user)) g.users.push(user);
    let keys = placementsOf.get(c.image);
    if (keys === undefined) placementsOf.set(c.image, (keys = new Set()));
    keys.add(placement.key);
  }
  const groups = [...byKey.values()].map((g): ArgoImageGroup => {
    const several = (placementsOf.get(g.image)?.size ?? 0) > 1;
    return { name: argoPrePullImageName(view.identity, g.image, several ? g.placement.key : undefined), image: g.image, placement: g.placement, users: g.users };
  });
  return groups.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** For the container annotation: the first few uses, and how many more there are. */
export function describeUsers(users: readonly string[], max = 5): string {
  const shown = users.slice(0, max).join(',');
  return users.length > max ? `${shown},+${users.length - max} more` : shown;
}

// ---- discovery ------------------------------------------------------------------------------------------

/** Path of the API group version's resource list (discovery). */
export const ARGO_DISCOVERY_PATH = `/apis/${ARGO_GROUP_VERSION}`;

/** The Argo kinds an APIResourceList (GET /apis/argoproj.io/v1alpha1) says the cluster serves. */
export function servedArgoKinds(discovery: unknown): Set<ArgoKind> {
  const served = new Set<ArgoKind>();
  for (const r of list(field(discovery, 'resources'), (x) => (isRecord(x) ? x : undefined))) {
    for (const kind of ARGO_WORKLOAD_KINDS) {
      if (r.name === argoResources[kind].plural && r.kind === kind) served.add(kind);
    }
  }
  return served;
}
