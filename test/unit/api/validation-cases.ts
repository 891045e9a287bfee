// Inputs the API must accept or reject: objects with the field the error must name, and image references.
// The unit tests run them through the decoder, the integration tests through the real API server, so both
// are shown to enforce the same rules.
import {
  DURATION_MESSAGE,
  IMAGE_DIGEST_MESSAGE,
  IMAGE_NAME_LENGTH_MESSAGE,
  IMAGE_REFERENCE_MESSAGE,
  MAX_NODE_IMAGES,
  MAX_NODE_NAMES,
  MAX_STATIC_IMAGES,
} from '../../../api/v1alpha1/index.ts';

export type KindName = 'PrePullPolicy' | 'PrePullImage' | 'NodeImageSet';

export interface InvalidCase {
  /** What is wrong, as the test title. */
  title: string;
  kind: KindName;
  /** The whole object, apiVersion to spec. */
  object: Record<string, unknown>;
  /** The JSON path the error must name, e.g. spec.image. */
  field: string;
  /** Text the API server's error must contain after the field. */
  server: string;
  /** Text the decoder's error for the field must contain. */
  decoder: string;
}

export const GOOD_IMAGE = 'registry.example.com/team/app:v1';
export const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

let serial = 0;
function name(): string {
  serial += 1;
  return `invalid-${serial}`;
}

export function validPolicy(spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'kwarm.io/v1alpha1',
    kind: 'PrePullPolicy',
    metadata: { name: name() },
    spec: { selector: { matchLabels: { app: 'web' } }, ...spec },
  };
}

export function validImage(spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'kwarm.io/v1alpha1',
    kind: 'PrePullImage',
    metadata: { name: name() },
    spec: { image: GOOD_IMAGE, ...spec },
  };
}

export function validNodeImageSet(spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'kwarm.io/v1alpha1',
    kind: 'NodeImageSet',
    metadata: { name: name() },
    spec: { images: [{ image: GOOD_IMAGE }], ...spec },
  };
}

function badImage(title: string, image: string, server = IMAGE_REFERENCE_MESSAGE, decoder = server): InvalidCase {
  return { title, kind: 'PrePullImage', object: validImage({ image }), field: 'spec.image', server, decoder };
}

const AFFINITY_TERMS = 'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms';

function affinity(term: Record<string, unknown>): Record<string, unknown> {
  return { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [term] } } };
}

const SCHEMA_MIN = (n: number): [string, string] => [`should be greater than or equal to ${n}`, `must be at least ${n}`];
const SCHEMA_MAX = (n: number): [string, string] => [`should be less than or equal to ${n}`, `must be at most ${n}`];

function retryCase(title: string, retry: Record<string, number>, field: string, [server, decoder]: [string, string]): InvalidCase {
  return { title, kind: 'PrePullPolicy', object: validPolicy({ retry }), field, server, decoder };
}

export const invalidCases: readonly InvalidCase[] = [
  badImage('image with an uppercase repository', 'registry.example.com/Team/App:v1'),
  badImage('image with an uppercase repository and no registry', 'MyApp:v1'),
  badImage('image with a space', 'registry.example.com/team/app :v1'),
  badImage('image with a shell command separator', 'nginx;rm -rf /'),
  badImage('image with a command substitution', 'nginx$(id)'),
  badImage('image with a pipe', 'nginx|cat'),
  badImage('image with backquotes', 'nginx`id`'),
  badImage('image with a name over 255 characters', `registry.example.com/${'a'.repeat(250)}:v1`, IMAGE_NAME_LENGTH_MESSAGE),
  badImage('image with a tag over 128 characters', `nginx:${'v'.repeat(129)}`),
  badImage('image with a tag starting with a dot', 'nginx:.hidden'),
  badImage('image with a short digest', 'nginx@sha256:abc123'),
  badImage('image with an uppercase digest', `nginx@sha256:${'ABCDEF0123456789'.repeat(4)}`),
  badImage('image with a digest of another algorithm', `nginx@md5:${'0'.repeat(32)}`),
  badImage('empty image', '', 'should be at least 1 chars long', 'must be at least 1 characters long'),
  {
    title: 'imageDigest that is not sha256 and 64 hex digits',
    kind: 'PrePullImage',
    object: validImage({ imageDigest: 'sha256:xyz' }),
    field: 'spec.imageDigest',
    server: IMAGE_DIGEST_MESSAGE,
    decoder: IMAGE_DIGEST_MESSAGE,
  },
  {
    title: 'imageDigest that contradicts the digest in the image',
    kind: 'PrePullImage',
    object: validImage({ image: `nginx@${DIGEST}`, imageDigest: `sha256:${'f'.repeat(64)}` }),
    field: 'spec.imageDigest',
    server: 'must match the digest in spec.image',
    decoder: 'must match the digest in spec.image',
  },
  {
    title: 'NodeImageSet image with shell characters',
    kind: 'NodeImageSet',
    object: validNodeImageSet({ images: [{ image: 'app && reboot' }] }),
    field: 'spec.images[0].image',
    server: IMAGE_REFERENCE_MESSAGE,
    decoder: IMAGE_REFERENCE_MESSAGE,
  },
  {
    title: 'unparseable timeout',
    kind: 'PrePullPolicy',
    object: validPolicy({ timeout: 'ten minutes' }),
    field: 'spec.timeout',
    server: DURATION_MESSAGE,
    decoder: DURATION_MESSAGE,
  },
  {
    title: 'timeout without a unit',
    kind: 'PrePullImage',
    object: validImage({ timeout: '600' }),
    field: 'spec.timeout',
    server: DURATION_MESSAGE,
    decoder: DURATION_MESSAGE,
  },
  {
    title: 'zero timeout',
    kind: 'PrePullPolicy',
    object: validPolicy({ timeout: '0s' }),
    field: 'spec.timeout',
    server: 'must be between 1s and 24h',
    decoder: 'must be between 1s and 24h',
  },
  {
    title: 'timeout over 24h',
    kind: 'NodeImageSet',
    object: validNodeImageSet({ images: [{ image: GOOD_IMAGE, timeout: '48h' }] }),
    field: 'spec.images[0].timeout',
    server: 'must be between 1s and 24h',
    decoder: 'must be between 1s and 24h',
  },
  retryCase('negative retry.maxAttempts', { maxAttempts: -1 }, 'spec.retry.maxAttempts', SCHEMA_MIN(1)),
  retryCase('zero retry.maxAttempts', { maxAttempts: 0 }, 'spec.retry.maxAttempts', SCHEMA_MIN(1)),
  retryCase('absurd retry.maxAttempts', { maxAttempts: 1_000_000 }, 'spec.retry.maxAttempts', SCHEMA_MAX(100)),
  retryCase('negative retry.backoffSeconds', { backoffSeconds: -30 }, 'spec.retry.backoffSeconds', SCHEMA_MIN(0)),
  retryCase('absurd retry.backoffSeconds', { backoffSeconds: 86_400 }, 'spec.retry.backoffSeconds', SCHEMA_MAX(3600)),
  {
    title: 'empty selector.matchLabels on a policy',
    kind: 'PrePullPolicy',
    object: validPolicy({ selector: { matchLabels: {} } }),
    field: 'spec.selector.matchLabels',
    server: 'must not be empty',
    decoder: 'must not be empty',
  },
  {
    title: 'policy without selector.matchLabels',
    kind: 'PrePullPolicy',
    object: validPolicy({ selector: { namespaces: ['default'] } }),
    field: 'spec.selector.matchLabels',
    server: 'Required value',
    decoder: 'required',
  },
  {
    title: 'unknown workload kind',
    kind: 'PrePullPolicy',
    object: validPolicy({ workloadKinds: ['Pod'] }),
    field: 'spec.workloadKinds[0]',
    server: 'Unsupported value: "Pod"',
    decoder: 'must be one of',
  },
  {
    title: 'duplicate workload kinds',
    kind: 'PrePullPolicy',
    object: validPolicy({ workloadKinds: ['Deployment', 'Deployment'] }),
    field: 'spec.workloadKinds[1]',
    server: 'Duplicate value',
    decoder: 'duplicate',
  },
  {
    title: 'In requirement without values',
    kind: 'PrePullImage',
    object: validImage({ nodes: { selector: { matchExpressions: [{ key: 'zone', operator: 'In' }] } } }),
    field: 'spec.nodes.selector.matchExpressions[0].values',
    server: 'In and NotIn need at least one value',
    decoder: 'In and NotIn need at least one value',
  },
  {
    title: 'maxConcurrentPulls of zero',
    kind: 'NodeImageSet',
    object: validNodeImageSet({ maxConcurrentPulls: 0 }),
    field: 'spec.maxConcurrentPulls',
    server: SCHEMA_MIN(1)[0],
    decoder: SCHEMA_MIN(1)[1],
  },
  {
    title: `more than ${MAX_NODE_NAMES} node names`,
    kind: 'PrePullImage',
    object: validImage({ nodes: { names: Array.from({ length: MAX_NODE_NAMES + 1 }, (_, i) => `node-${i}`) } }),
    field: 'spec.nodes.names',
    server: `must have at most ${MAX_NODE_NAMES} items`,
    decoder: `must have at most ${MAX_NODE_NAMES} items`,
  },
  {
    title: `more than ${MAX_NODE_IMAGES} images on a node`,
    kind: 'NodeImageSet',
    object: validNodeImageSet({ images: Array.from({ length: MAX_NODE_IMAGES + 1 }, (_, i) => ({ image: `registry.example.com/app-${i}:v1` })) }),
    field: 'spec.images',
    server: `must have at most ${MAX_NODE_IMAGES} items`,
    decoder: `must have at most ${MAX_NODE_IMAGES} items`,
  },
  {
    title: 'more than 64 selector labels',
    kind: 'PrePullPolicy',
    object: validPolicy({ selector: { matchLabels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`label-${i}`, 'x'])) } }),
    field: 'spec.selector.matchLabels',
    server: 'must have at most 64 items',
    decoder: 'must have at most 64 entries',
  },
  {
    title: 'a static image that is not an image reference',
    kind: 'PrePullPolicy',
    object: validPolicy({ images: ['alpine', 'Not An Image'] }),
    field: 'spec.images[1]',
    server: IMAGE_REFERENCE_MESSAGE,
    decoder: IMAGE_REFERENCE_MESSAGE,
  },
  {
    title: 'the same static image twice',
    kind: 'PrePullPolicy',
    object: validPolicy({ images: ['alpine', 'alpine'] }),
    field: 'spec.images[1]',
    server: 'Duplicate value',
    decoder: 'duplicate',
  },
  {
    title: `more than ${MAX_STATIC_IMAGES} static images`,
    kind: 'PrePullPolicy',
    object: validPolicy({ images: Array.from({ length: MAX_STATIC_IMAGES + 1 }, (_, i) => `registry.example.com/app-${i}:v1`) }),
    field: 'spec.images',
    server: `must have at most ${MAX_STATIC_IMAGES} items`,
    decoder: `must have at most ${MAX_STATIC_IMAGES} items`,
  },
  {
    title: 'a ConfigMap selector with an In requirement without values',
    kind: 'PrePullPolicy',
    object: validPolicy({ configMaps: { selector: { matchExpressions: [{ key: 'kwarm.io/images', operator: 'In' }] } } }),
    field: 'spec.configMaps.selector.matchExpressions[0].values',
    server: 'In and NotIn need at least one value',
    decoder: 'In and NotIn need at least one value',
  },
  {
    title: 'a Gt node affinity requirement whose value is not an integer',
    kind: 'PrePullPolicy',
    object: validPolicy({ affinity: affinity({ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['many'] }] }) }),
    field: `${AFFINITY_TERMS}[0].matchExpressions[0].values`,
    server: 'Gt and Lt exactly one integer',
    decoder: 'Gt and Lt exactly one integer',
  },
  {
    title: 'an Lt node affinity requirement with two values',
    kind: 'PrePullImage',
    object: validImage({ nodes: { affinity: affinity({ matchExpressions: [{ key: 'cores', operator: 'Lt', values: ['1', '2'] }] }) } }),
    field: `spec.nodes.${AFFINITY_TERMS.slice('spec.'.length)}[0].matchExpressions[0].values`,
    server: 'Gt and Lt exactly one integer',
    decoder: 'Gt and Lt exactly one integer',
  },
  {
    title: 'matchFields on a field nodes do not have',
    kind: 'PrePullPolicy',
    object: validPolicy({ affinity: affinity({ matchFields: [{ key: 'spec.unschedulable', operator: 'In', values: ['true'] }] }) }),
    field: `${AFFINITY_TERMS}[0].matchFields[0]`,
    server: 'matchFields supports only key metadata.name',
    decoder: 'matchFields supports only key metadata.name',
  },
  {
    title: 'matchFields with operator Exists',
    kind: 'PrePullImage',
    object: validImage({ nodes: { affinity: affinity({ matchFields: [{ key: 'metadata.name', operator: 'Exists' }] }) } }),
    field: `spec.nodes.${AFFINITY_TERMS.slice('spec.'.length)}[0].matchFields[0]`,
    server: 'matchFields supports only key metadata.name',
    decoder: 'matchFields supports only key metadata.name',
  },
  {
    title: 'node affinity without terms',
    kind: 'PrePullPolicy',
    object: validPolicy({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } } }),
    field: AFFINITY_TERMS,
    server: 'should have at least 1 items',
    decoder: 'must have at least 1 items',
  },
  {
    title: 'a toleration with an unknown effect',
    kind: 'PrePullPolicy',
    object: validPolicy({ tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoRun' }] }),
    field: 'spec.tolerations[0].effect',
    server: 'Unsupported value: "NoRun"',
    decoder: 'must be one of',
  },
  {
    title: 'gateNewNodes that is not a boolean on a policy',
    kind: 'PrePullPolicy',
    object: validPolicy({ gateNewNodes: 'yes' }),
    field: 'spec.gateNewNodes',
    server: 'must be of type boolean',
    decoder: 'must be a boolean',
  },
  {
    title: 'gateNewNodes that is not a boolean on a PrePullImage',
    kind: 'PrePullImage',
    object: validImage({ gateNewNodes: 1 }),
    field: 'spec.gateNewNodes',
    server: 'must be of type boolean',
    decoder: 'must be a boolean',
  },
  {
    title: 'a negative gatingImages on a node',
    kind: 'NodeImageSet',
    object: validNodeImageSet({ gatingImages: -1 }),
    field: 'spec.gatingImages',
    server: SCHEMA_MIN(0)[0],
    decoder: SCHEMA_MIN(0)[1],
  },
  {
    title: 'gatingImages below the gating entries of a node',
    kind: 'NodeImageSet',
    object: validNodeImageSet({
      gatingImages: 1,
      images: [{ image: GOOD_IMAGE, gatesNode: true }, { image: 'registry.example.com/team/other:v1', gatesNode: true }],
    }),
    field: 'spec.gatingImages',
    server: 'must count at least the entries of spec.images with gatesNode',
    decoder: 'must count at least the entries of spec.images with gatesNode',
  },
  {
    title: 'the same image twice on a node',
    kind: 'NodeImageSet',
    object: validNodeImageSet({ images: [{ image: GOOD_IMAGE }, { image: GOOD_IMAGE }] }),
    field: 'spec.images[1]',
    server: 'Duplicate value',
    decoder: 'duplicate',
  },
];

const DIGEST_A1 = `sha256:${'a1'.repeat(32)}`;

export const validImageReferences: readonly string[] = [
  'nginx',
  'nginx:1.27',
  'library/nginx:latest',
  'docker.io/library/nginx:1.27-alpine',
  'my-registry/my-app:v2',
  'localhost/app',
  'localhost:5000/team/app:v1',
  '127.0.0.1:5000/app:v1',
  'registry.example.com:443/a/b/c:V1.0_rc-1',
  'gcr.io/distroless/static-debian12:nonroot',
  'registry.example.com/team/app__x.y-z:tag',
  `nginx@${DIGEST_A1}`,
  `registry.example.com/team/app:v1@${DIGEST_A1}`,
  // A 255-character name with a 128-character tag: both at their limits.
  `registry.example.com/${'a'.repeat(234)}:${'t'.repeat(128)}`,
];

export const invalidImageReferences: readonly string[] = [
  '',
  'Nginx',
  'registry.example.com/Team/app',
  'MyRegistry/app',
  'nginx:latest ',
  ' nginx',
  'ngi nx',
  'nginx;id',
  'nginx&&id',
  'nginx$(id)',
  'nginx>out',
  "nginx'",
  'nginx"',
  'nginx\\',
  'nginx:',
  'nginx:-tag',
  `nginx:${'t'.repeat(129)}`,
  'nginx@sha256:abc',
  `nginx@sha256:${'A1'.repeat(32)}`,
  `nginx@sha512:${'a1'.repeat(64)}`,
  'registry.example.com//app',
  'app/',
  'app--x_',
  `registry.example.com/${'a'.repeat(235)}`,
];
