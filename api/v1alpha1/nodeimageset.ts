// NodeImageSet: the per-node contract, named after its Node. kwarm-controller owns spec (the images
// wanted there), the node's kwarm-agent owns status (what it did) through the status subresource.
// A list with one writer and no rule per entry is atomic (status.images, status.removals, pulledImageIds, the
// entries' sources): managedFields then name the list once instead of every field of every entry, which made
// each write cost the API server almost twice the CPU (decision 0019). spec.images keeps its map type: its
// entries' `round >= oldSelf` rule and the API server's one-entry-per-image check need it.
import * as s from '../schema.ts';
import type { Infer, Input } from '../schema.ts';
import type { KindDefinition } from '../crd.ts';
import { imageDigest, imageReference } from './image-reference.ts';
import { DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, resourceSchema } from './meta.ts';
import { NODE_PULL_PHASES, REMOVAL_RESULTS } from './prepullimage.ts';
import { retrySchema, timeoutSchema } from './pull-settings.ts';

export const nodeImageSetNames = {
  kind: 'NodeImageSet',
  listKind: 'NodeImageSetList',
  plural: 'nodeimagesets',
  singular: 'nodeimageset',
  shortNames: ['nis'],
  scope: 'Cluster',
} as const;

export const DEFAULT_MAX_CONCURRENT_PULLS = 2;
/** Images per node. The controller also bounds a NodeImageSet by bytes (controller/plan/size-bound.ts). */
export const MAX_NODE_IMAGES = 512;
/**
 * PrePullImages listed per entry. Only informative (status comes from the PrePullImages themselves), and
 * each one is repeated in managedFields: 16 of them made an entry several KB.
 */
export const MAX_IMAGE_SOURCES = 4;
export const MAX_NODE_REMOVALS = 128;
/** Image ids remembered as pulled by the agent; the oldest are forgotten first (and then never removed). */
export const MAX_PULLED_IMAGE_IDS = 512;
/**
 * status.images[].reason of an image that was Completed and is gone from the runtime (kubelet image GC), held
 * by an agent running with --repull-after-gc=wait until the controller raises its round within the budget.
 */
export const REMOVED_FROM_RUNTIME = 'RemovedFromRuntime';

const imageSourcesSchema = s.array(s.object({
  namespace: s.string({ maxLength: 63, pattern: DNS_LABEL_PATTERN, description: 'Namespace of the PrePullImage.' }),
  name: s.string({ maxLength: 253, description: 'Name of the PrePullImage.' }),
}), {
  maxItems: MAX_IMAGE_SOURCES,
  listType: 'atomic',
  description: `PrePullImages behind this entry (at most ${MAX_IMAGE_SOURCES} are listed).`,
}).default([]);

export const nodeImageSetSpecSchema = s.object({
  maxConcurrentPulls: s.integer({
    minimum: 1,
    maximum: 64,
    format: 'int32',
    description: 'Pulls the agent runs at once on this node (the controller\'s --max-pulls-per-node).',
  }).default(DEFAULT_MAX_CONCURRENT_PULLS),
  images: s.array(s.object({
    image: imageReference('Image reference, passed to the runtime unchanged.'),
    imageDigest: imageDigest('Expected digest (sha256:<64 hex>); a pull resolving to another digest fails.').optional(),
    pullSecrets: s.array(s.string({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN }), {
      maxItems: 16,
      listType: 'set',
      description: 'Names of Secrets in kwarm\'s namespace (copies made by the controller) to authenticate with.',
    }).default([]),
    timeout: timeoutSchema,
    retry: retrySchema.default({}),
    round: s.integer({
      minimum: 0,
      format: 'int64',
      description: 'Version token: raising it makes the agent pull again even if it has already finished this image.',
    }).default(0).validate({ rule: 'self >= oldSelf', message: 'must not decrease' }),
    sources: imageSourcesSchema,
    gatesNode: s.boolean({
      description: `A PrePullImage behind this entry has gateNewNodes: the node's warm-up taint stays until this image is Completed (absent: false).`,
    }).optional(),
  }), {
    maxItems: MAX_NODE_IMAGES,
    listType: { map: ['image'] },
    description: 'Images wanted on this node, one entry per image reference.',
  }).default([]),
  gatingImages: s.integer({
    minimum: 0,
    maximum: MAX_NODE_IMAGES,
    format: 'int32',
    description: 'Images that gate the node\'s warm-up, those in spec.images with gatesNode and those still waiting for the cluster-wide pull budget; the warm-up taint comes off when this many gating entries are Completed. Absent: 0.',
  }).optional(),
  removals: s.array(s.object({
    image: imageReference('Image reference to remove from the node.'),
    sources: imageSourcesSchema,
  }), {
    maxItems: MAX_NODE_REMOVALS,
    listType: { map: ['image'] },
    description: 'Images to remove from this node through CRI RemoveImage. The agent keeps an image that spec.images also lists or that a container on the node uses, and says so in status.removals.',
  }).default([]),
}, { description: 'Written by kwarm-controller only.' }).validate({
  rule: "!has(self.gatingImages) || self.gatingImages >= self.images.filter(e, has(e.gatesNode) && e.gatesNode).size()",
  message: 'must count at least the entries of spec.images with gatesNode',
  fieldPath: '.gatingImages',
  check: (spec) => spec.gatingImages === undefined || spec.gatingImages >= spec.images.filter((e) => e.gatesNode === true).length,
});

export const nodeImageSetStatusSchema = s.object({
  observedGeneration: s.integer({ minimum: 0, format: 'int64', description: 'The metadata.generation this status describes.' }).optional(),
  runtime: s.object({
    name: s.string({ maxLength: 64, description: 'Runtime name from CRI Version, e.g. containerd.' }),
    version: s.string({ maxLength: 128, description: 'Runtime version from CRI Version.' }),
  }, { description: 'The container runtime the agent talks to.' }).optional(),
  heartbeatTime: s.dateTime({ description: 'Last time the agent confirmed it is alive and reconciling.' }).optional(),
  imageFs: s.object({
    usedBytes: s.integer({ minimum: 0, format: 'int64', description: 'Bytes used on the image filesystem.' }).optional(),
    capacityBytes: s.integer({ minimum: 0, format: 'int64', description: 'Size of the image filesystem.' }).optional(),
    usedPercent: s.integer({ minimum: 0, maximum: 100, format: 'int32', description: 'usedBytes as a percentage of capacityBytes.' }).optional(),
    pullsPaused: s.boolean({ description: 'True while new pulls wait because the disk guard threshold is exceeded.' }).optional(),
  }, { description: 'The runtime\'s image filesystem.' }).optional(),
  images: s.array(s.object({
    image: s.string({ maxLength: 512, description: 'The image reference from spec.' }),
    phase: s.enumeration(NODE_PULL_PHASES, { description: 'Pending, Pulling, Completed or Failed.' }),
    imageId: s.string({ maxLength: 512, description: 'Image id the runtime reports.' }).optional(),
    repoDigest: s.string({ maxLength: 512, description: 'Repository digest the runtime reports, repository@sha256:<hex>.' }).optional(),
    sizeBytes: s.integer({ minimum: 0, format: 'int64', description: 'Image size the runtime reports.' }).optional(),
    attempts: s.integer({ minimum: 0, format: 'int32', description: 'Pull attempts in this round.' }).optional(),
    round: s.integer({ minimum: 0, format: 'int64', description: 'The spec round this entry describes.' }).optional(),
    reason: s.string({ maxLength: 128, description: 'Why the last attempt failed: NotFound, Unauthorized, InvalidReference, NoMatchingPlatform or DigestMismatch (permanent), RateLimited, Timeout, RuntimeUnavailable, RegistryUnavailable, NoSpace, Cancelled or Unknown (retried).' }).optional(),
    message: s.string({ maxLength: 1024, description: 'Details of the last failure.' }).optional(),
    startedAt: s.dateTime({ description: 'When the current or last pull started.' }).optional(),
    finishedAt: s.dateTime({ description: 'When the last pull finished.' }).optional(),
    lastVerifiedAt: s.dateTime({ description: 'When the agent last recorded the image present: pulled, found at start, or found changed. Verify passes that find it unchanged do not touch it (status.heartbeatTime shows they run), so a quiet node writes no image entry.' }).optional(),
    secretsVersion: s.string({ maxLength: 64, description: 'A digest of the names and resourceVersions of the pull secrets the last attempt read (no secret content). An Unauthorized failure is retried once it changes, i.e. when a pull secret is rotated.' }).optional(),
    warmStarts: s.integer({ minimum: 0, format: 'int64', description: 'Containers of this image started on the node after kwarm had pulled it here (created after the entry appeared). Absent: 0.' }).optional(),
    coldStarts: s.integer({ minimum: 0, format: 'int64', description: 'Containers of this image started on the node while kwarm did not have it Completed here: the kubelet pulled it, or kwarm was late. Starts of an image kwarm found already present count neither way. Absent: 0.' }).optional(),
    pullMillisecondsSaved: s.integer({ minimum: 0, format: 'int64', description: 'kwarm\'s own pull time of this image on the node, added once per kwarm pull, at the first warm start after it. Absent: 0.' }).optional(),
    wantedSince: s.dateTime({ description: 'When the agent first saw this entry in spec; containers created before it are not counted.' }).optional(),
    readySince: s.dateTime({ description: 'Since when kwarm has had the image Completed (pulled or found present); absent while it is not present.' }).optional(),
    warmSince: s.dateTime({ description: 'When kwarm\'s own pull of the image on this node completed; absent when kwarm found it present, or while it is not present.' }).optional(),
    pullMilliseconds: s.integer({ minimum: 0, format: 'int64', description: 'How long the pull behind warmSince took.' }).optional(),
    pullCredited: s.boolean({ description: 'pullMilliseconds was already added to pullMillisecondsSaved.' }).optional(),
    timeToWarmMilliseconds: s.integer({ minimum: 0, format: 'int64', description: 'From wantedSince to the first time the image was Completed on this node.' }).optional(),
  }), {
    maxItems: MAX_NODE_IMAGES,
    listType: 'atomic',
    description: 'One entry per spec image.',
  }).optional(),
  removals: s.array(s.object({
    image: s.string({ maxLength: 512, description: 'The image reference from spec.removals.' }),
    result: s.enumeration(REMOVAL_RESULTS, { description: 'Removed, NotPresent, Kept or Failed.' }),
    reason: s.string({ maxLength: 128, description: 'When Kept: InUse (a container uses it), Wanted (spec.images lists it, or the same image under another name), NotPulledByKwarm (the agent did not bring it onto the node, see pulledImageIds), Pinned (the runtime pins it) or SandboxImage (the runtime\'s pod sandbox image); when Failed, a CRI failure reason as in status.images, or StillPresent (the runtime still reports it after RemoveImage).' }).optional(),
    message: s.string({ maxLength: 1024, description: 'Details for humans, e.g. the container using the image.' }).optional(),
    time: s.dateTime({ description: 'When the agent acted.' }).optional(),
  }), {
    maxItems: MAX_NODE_REMOVALS,
    listType: 'atomic',
    description: 'One entry per spec.removals image the agent has answered.',
  }).optional(),
  pulledImageIds: s.array(s.string({ maxLength: 512 }), {
    maxItems: MAX_PULLED_IMAGE_IDS,
    listType: 'atomic',
    description: `Ids of the images this node's agent brought onto the node itself (absent before its pull), oldest first, at most ${MAX_PULLED_IMAGE_IDS}. Removals only ever remove these.`,
  }).optional(),
  startsCountedUntil: s.dateTime({ description: 'Container starts on the node created at or before this time have been counted in status.images (warmStarts, coldStarts): the watermark that keeps a restarted agent from counting one twice.' }).optional(),
  desired: s.integer({ minimum: 0, format: 'int32', description: 'Images in spec.' }).optional(),
  ready: s.integer({ minimum: 0, format: 'int32', description: 'Images Completed.' }).optional(),
  pulling: s.integer({ minimum: 0, format: 'int32', description: 'Images Pulling.' }).optional(),
  failed: s.integer({ minimum: 0, format: 'int32', description: 'Images Failed.' }).optional(),
}, { description: 'Written by the node\'s kwarm-agent only, through the status subresource.' });

export const nodeImageSetSchema = resourceSchema(nodeImageSetNames.kind, nodeImageSetSpecSchema, nodeImageSetStatusSchema);

export type NodeImageSet = Infer<typeof nodeImageSetSchema>;
export type NodeImageSetSpec = Infer<typeof nodeImageSetSpecSchema>;
export type NodeImageSetSpecInput = Input<typeof nodeImageSetSpecSchema>;
export type NodeImage = NodeImageSetSpec['images'][number];
export type NodeImageSetStatus = Infer<typeof nodeImageSetStatusSchema>;
export type NodeImageStatus = NonNullable<NodeImageSetStatus['images']>[number];

export const nodeImageSetDefinition: KindDefinition = {
  names: nodeImageSetNames,
  description: 'NodeImageSet lists the images wanted on one node (it is named after the Node) and, in status, what that node\'s kwarm-agent did about them.',
  spec: nodeImageSetSpecSchema,
  status: nodeImageSetStatusSchema,
  printerColumns: [
    { name: 'Desired', type: 'integer', jsonPath: '.status.desired', description: 'Images in spec.' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.ready', description: 'Images present on the node.' },
    { name: 'Pulling', type: 'integer', jsonPath: '.status.pulling', description: 'Images being pulled.' },
    { name: 'Failed', type: 'integer', jsonPath: '.status.failed', description: 'Images that failed.' },
  ],
};
