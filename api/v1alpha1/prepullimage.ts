// PrePullImage: one image wanted on a set of nodes. Written by the controller for each container of a
// matched workload, or by hand.
import * as s from '../schema.ts';
import type { Infer, Input } from '../schema.ts';
import type { KindDefinition } from '../crd.ts';
import { imageDigest, imageReference } from './image-reference.ts';
import { conditions, DNS_SUBDOMAIN_PATTERN, labelSelector, resourceSchema } from './meta.ts';
import { nodeAffinity, tolerations } from './node-targeting.ts';
import { pullSecretReferences, refreshIntervalSchema, resourcesSchema, retrySchema, timeoutSchema } from './pull-settings.ts';
import { PURGE_FINALIZER, REFRESH_ANNOTATION } from './labels.ts';
import { gateNewNodes } from './warmup.ts';

export const prePullImageNames = {
  kind: 'PrePullImage',
  listKind: 'PrePullImageList',
  plural: 'prepullimages',
  singular: 'prepullimage',
  shortNames: ['ppi'],
  scope: 'Namespaced',
} as const;

export const PREPULLIMAGE_PHASES = ['Pending', 'InProgress', 'Completed', 'Failed'] as const;
export type PrePullImagePhase = (typeof PREPULLIMAGE_PHASES)[number];
export const NODE_PULL_PHASES = ['Pending', 'Pulling', 'Completed', 'Failed'] as const;
export type NodePullPhase = (typeof NODE_PULL_PHASES)[number];
export const IMAGE_STATES = ['Present', 'Absent'] as const;
export type ImageState = (typeof IMAGE_STATES)[number];
/** What an agent did with an image it was asked to remove. */
export const REMOVAL_RESULTS = ['Removed', 'NotPresent', 'Kept', 'Failed'] as const;
export type RemovalResult = (typeof REMOVAL_RESULTS)[number];
/** Why an agent kept an image it was asked to remove. */
export const REMOVAL_KEPT_REASONS = ['InUse', 'Wanted', 'NotPulledByKwarm', 'Pinned', 'SandboxImage'] as const;
export type RemovalKeptReason = (typeof REMOVAL_KEPT_REASONS)[number];


/** Condition types the controller sets on a PrePullImage. */
export const prePullImageConditionTypes = {
  /** True once the image is present on every target node; `kubectl wait --for=condition=Ready` uses it. */
  Ready: 'Ready',
} as const;

export const MAX_NODE_NAMES = 1000;
/** Per-node detail kept in PrePullImage status; the full per-node truth lives in NodeImageSets. */
export const MAX_STATUS_NODES = 20;

export const prePullImageSpecSchema = s.object({
  image: imageReference('The image to pre-pull, e.g. registry.example.com/team/app:v2 or with @sha256:<digest>. Planned, and passed to the runtime, fully qualified (nginx as docker.io/library/nginx:latest), which pulls the same image; every spelling of one image is one entry per node.'),
  imageDigest: imageDigest('Expected digest (sha256:<64 hex>). A pull that resolves to another digest fails.').optional(),
  nodes: s.object({
    names: s.array(s.string({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN }), {
      maxItems: MAX_NODE_NAMES,
      listType: 'set',
      description: 'Nodes by name.',
    }).optional(),
    selector: labelSelector('Nodes by label.').optional(),
    affinity: nodeAffinity('Required node affinity the nodes must also meet, as in a Pod spec.').optional(),
    tolerations: tolerations('Nodes with a NoSchedule or NoExecute taint none of these tolerate are left out, as for a pod. Absent: no taint is tolerated (a workload-derived image follows its pods\' tolerations instead), so tainted nodes such as control-plane ones get the image only when a toleration says so.').optional(),
  }, {
    description: 'Target nodes: those named plus those the selector matches, always only Ready ones. Neither set: all ready nodes.',
  }).default({}),
  imagePullSecrets: pullSecretReferences('Secrets (type kubernetes.io/dockerconfigjson) in this namespace holding registry credentials.').optional(),
  retry: retrySchema.default({}),
  timeout: timeoutSchema,
  resources: resourcesSchema.default({}),
  refreshInterval: refreshIntervalSchema.optional(),
  state: s.enumeration(IMAGE_STATES, {
    description: 'Present: pull the image onto the target nodes. Absent: remove it from them (purge), except where another PrePullImage wants it or a container uses it; status.purge reports each node.',
  }).default('Present'),
  purgeOnDelete: s.boolean({
    description: `On deletion, remove the image from the target nodes first, as state Absent does (the controller holds the ${PURGE_FINALIZER} finalizer until every node has answered).`,
  }).default(false),
  gateNewNodes: gateNewNodes('The image gates the warm-up of its target nodes.'),
}, { description: 'The image and where it is wanted.' }).validate({
  rule: "!has(self.imageDigest) || !self.image.contains('@') || self.image.endsWith('@' + self.imageDigest)",
  message: 'must match the digest in spec.image when the image reference has one',
  fieldPath: '.imageDigest',
  check: (spec) => spec.imageDigest === undefined || !spec.image.includes('@') || spec.image.endsWith(`@${spec.imageDigest}`),
});

export const prePullImageStatusSchema = s.object({
  observedGeneration: s.integer({ minimum: 0, format: 'int64', description: 'The metadata.generation this status describes.' }).optional(),
  phase: s.enumeration(PREPULLIMAGE_PHASES, {
    description: 'Pending: no node has started. InProgress: pulls are under way. Completed: present on every target node. Failed: some node gave up after its retries.',
  }).optional(),
  summary: s.object({
    total: s.integer({ minimum: 0, format: 'int32', description: 'Target nodes.' }),
    pending: s.integer({ minimum: 0, format: 'int32', description: 'Nodes that have not started.' }),
    pulling: s.integer({ minimum: 0, format: 'int32', description: 'Nodes pulling now or waiting to retry.' }),
    completed: s.integer({ minimum: 0, format: 'int32', description: 'Nodes that have the image.' }),
    failed: s.integer({ minimum: 0, format: 'int32', description: 'Nodes that gave up.' }),
  }, { description: 'Target nodes by state.' }).optional(),
  ready: s.string({ maxLength: 32, description: 'completed/total, for the READY column.' }).optional(),
  conditions: conditions('Ready: the image is present on every target node.').optional(),
  startTime: s.dateTime({ description: 'When the first node started pulling.' }).optional(),
  completionTime: s.dateTime({ description: 'When the last target node completed.' }).optional(),
  refresh: s.object({
    requested: s.string({ maxLength: 256, description: `The ${REFRESH_ANNOTATION} annotation value last acted on.` }).optional(),
    lastTime: s.dateTime({ description: 'When the last refresh was requested from the nodes (by annotation or refreshInterval).' }),
  }, { description: 'The last refresh: every target node re-resolved the image and pulled it again if it had moved.' }).optional(),
  purge: s.object({
    total: s.integer({ minimum: 0, format: 'int32', description: 'Nodes asked to remove the image.' }),
    removed: s.integer({ minimum: 0, format: 'int32', description: 'Nodes that removed it, or never had it.' }),
    kept: s.integer({ minimum: 0, format: 'int32', description: 'Nodes that kept it because a container uses it or another PrePullImage wants it.' }),
    failed: s.integer({ minimum: 0, format: 'int32', description: 'Nodes where removing it failed.' }),
    pending: s.integer({ minimum: 0, format: 'int32', description: 'Nodes that have not answered yet.' }),
    nodes: s.array(s.object({
      node: s.string({ maxLength: 253, description: 'Node name.' }),
      result: s.enumeration(REMOVAL_RESULTS, { description: 'Removed, NotPresent, Kept or Failed.' }),
      reason: s.string({ maxLength: 128, description: 'InUse or Wanted when Kept; when Failed, the node\'s failure reason, or NoAnswer (no answer within spec.timeout of the deletion).' }).optional(),
      message: s.string({ maxLength: 1024, description: 'Details for humans, e.g. the container using the image.' }).optional(),
    }), {
      maxItems: MAX_STATUS_NODES,
      listType: { map: ['node'] },
      description: `A few nodes, kept and failed ones first, at most ${MAX_STATUS_NODES}; the NodeImageSet named after a node has its full detail.`,
    }).optional(),
  }, { description: 'Removal from the target nodes (state Absent, or deletion with purgeOnDelete).' }).optional(),
  warmStarts: s.integer({ minimum: 0, format: 'int64', description: 'Containers of this image started on the target nodes after kwarm had pulled it there (summed from the NodeImageSets). Absent until a start is counted.' }).optional(),
  coldStarts: s.integer({ minimum: 0, format: 'int64', description: 'Containers of this image started on the target nodes before kwarm had it there: the kubelet pulled it, or kwarm was late. Starts of an image kwarm found already present count neither way.' }).optional(),
  pullSecondsSaved: s.integer({ minimum: 0, format: 'int64', description: 'Pull time kwarm saved on the target nodes, in seconds: on each node, kwarm\'s own pull time of the image, counted at the first warm start after that pull.' }).optional(),
  nodes: s.array(s.object({
    node: s.string({ maxLength: 253, description: 'Node name.' }),
    phase: s.enumeration(NODE_PULL_PHASES, { description: 'State of the pull on this node.' }),
    reason: s.string({ maxLength: 128, description: 'Machine-readable reason of the last failure on that node, as in its NodeImageSet (NotFound, Unauthorized, DigestMismatch, Timeout, ...).' }).optional(),
    message: s.string({ maxLength: 1024, description: 'Details for humans.' }).optional(),
  }), {
    maxItems: MAX_STATUS_NODES,
    listType: { map: ['node'] },
    description: `A few nodes worth a look, failed ones first, at most ${MAX_STATUS_NODES}; the NodeImageSet named after a node has its full detail.`,
  }).optional(),
}, { description: 'Written by kwarm-controller from the NodeImageSets of the target nodes.' });

export const prePullImageSchema = resourceSchema(prePullImageNames.kind, prePullImageSpecSchema, prePullImageStatusSchema);

export type PrePullImage = Infer<typeof prePullImageSchema>;
export type PrePullImageSpec = Infer<typeof prePullImageSpecSchema>;
export type PrePullImageSpecInput = Input<typeof prePullImageSpecSchema>;
export type PrePullImageStatus = Infer<typeof prePullImageStatusSchema>;

export const prePullImageDefinition: KindDefinition = {
  names: prePullImageNames,
  description: 'PrePullImage asks for one image to be present on a set of nodes. kwarm-controller writes one per container of each workload a PrePullPolicy selects; it can also be written by hand.',
  spec: prePullImageSpecSchema,
  status: prePullImageStatusSchema,
  printerColumns: [
    { name: 'Image', type: 'string', jsonPath: '.spec.image', description: 'The image to pre-pull.' },
    { name: 'Ready', type: 'string', jsonPath: '.status.ready', description: 'Nodes that have the image / target nodes.' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Pending, InProgress, Completed or Failed.' },
    { name: 'Warm', type: 'integer', jsonPath: '.status.warmStarts', description: 'Container starts that found the image pulled by kwarm.', priority: 1 },
    { name: 'Cold', type: 'integer', jsonPath: '.status.coldStarts', description: 'Container starts before kwarm had the image.', priority: 1 },
    { name: 'Saved', type: 'integer', jsonPath: '.status.pullSecondsSaved', description: 'Pull seconds saved.', priority: 1 },
  ],
};
