// PrePullPolicy: which workloads kwarm watches, and how their images are pre-pulled onto which nodes.
import * as s from '../schema.ts';
import type { Infer, Input } from '../schema.ts';
import type { KindDefinition } from '../crd.ts';
import { imageReference } from './image-reference.ts';
import { conditions, DNS_LABEL_PATTERN, labelMap, labelSelector, labelSelectorRequirementSchema, resourceSchema } from './meta.ts';
import { nodeAffinity, tolerations } from './node-targeting.ts';
import { pullSecretReferences, refreshIntervalSchema, resourcesSchema, retrySchema, timeoutSchema } from './pull-settings.ts';
import { gateNewNodes } from './warmup.ts';
import { rolloutGateSchema } from './rollout-gate.ts';

export const prePullPolicyNames = {
  kind: 'PrePullPolicy',
  listKind: 'PrePullPolicyList',
  plural: 'prepullpolicies',
  singular: 'prepullpolicy',
  shortNames: ['ppp'],
  scope: 'Cluster',
} as const;

export const KUBERNETES_WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'] as const;
/** Argo Workflows kinds (argoproj.io/v1alpha1), used only when their CRDs are installed. */
export const ARGO_WORKLOAD_KINDS = ['WorkflowTemplate', 'ClusterWorkflowTemplate', 'CronWorkflow'] as const;
export const WORKLOAD_KINDS = [...KUBERNETES_WORKLOAD_KINDS, ...ARGO_WORKLOAD_KINDS] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export const MAX_STATIC_IMAGES = 256;

/**
 * A policy's name is the value of the kwarm.io/policy label on every PrePullImage it derives, and label
 * values have at most 63 characters: a longer name could never be written, so the API refuses it.
 */
export const MAX_POLICY_NAME_LENGTH = 63;
export const POLICY_NAME_MESSAGE =
  `must be at most ${MAX_POLICY_NAME_LENGTH} characters: kwarm writes the policy's name into the kwarm.io/policy label of every PrePullImage it derives, and label values are limited to ${MAX_POLICY_NAME_LENGTH}`;

/** Condition types the controller sets on a PrePullPolicy. */
export const prePullPolicyConditionTypes = {
  /** The policy is valid and its workloads' images are pre-pulled on their target nodes. */
  Ready: 'Ready',
  /** spec.resources is set; it has no effect (no pull jobs exist). */
  ResourcesIgnored: 'ResourcesIgnored',
  /** spec.configMaps is set: False while a selected ConfigMap has a key that is not an image list (the message names it). */
  ConfigMapsValid: 'ConfigMapsValid',
  /** spec.workloadKinds names an Argo kind: False (reason NotInstalled) while the cluster does not serve it. */
  ArgoSourceActive: 'ArgoSourceActive',
  /** False while a selected workload has an image or pull secrets the PrePullImage API cannot hold (the message names them); those are left out. */
  InputsValid: 'InputsValid',
} as const;

export const prePullPolicySpecSchema = s.object({
  selector: s.object({
    matchLabels: labelMap('Labels a workload must carry, all of them, to be watched.').validate({
      rule: 'size(self) > 0',
      message: 'must not be empty: a policy without labels would select every workload',
      check: (labels) => Object.keys(labels).length > 0,
    }),
    namespaces: s.array(s.string({ minLength: 1, maxLength: 63, pattern: DNS_LABEL_PATTERN }), {
      maxItems: 256,
      listType: 'set',
      description: 'Namespaces to watch. Absent: all namespaces.',
    }).optional(),
  }, { description: 'Which workloads the policy watches.' }),
  workloadKinds: s.array(s.enumeration(WORKLOAD_KINDS), {
    minItems: 1,
    maxItems: WORKLOAD_KINDS.length,
    listType: 'set',
    description: `Kinds of workload the selector applies to: ${WORKLOAD_KINDS.join(', ')}.`,
  }).default(['Deployment']),
  images: s.array(imageReference('An image to keep on the policy\'s nodes.'), {
    maxItems: MAX_STATIC_IMAGES,
    listType: 'set',
    description: 'Images kept warm on the policy\'s nodes with no workload needed, including nodes that join later (a static list, like kube-fledged\'s ImageCache or the Eclipse puller\'s IMAGES).',
  }).optional(),
  configMaps: s.object({
    selector: labelSelector('ConfigMaps whose labels match. Required; an empty selector matches every ConfigMap.'),
    namespaces: s.array(s.string({ minLength: 1, maxLength: 63, pattern: DNS_LABEL_PATTERN }), {
      maxItems: 256,
      listType: 'set',
      description: 'Namespaces to read ConfigMaps from. Absent: all namespaces.',
    }).optional(),
  }, {
    description: 'ConfigMaps that list images: every data key holds a JSON array of image references (image-cache-daemon\'s format) or one reference per line (blank lines and lines starting with # are skipped). Edits apply without restarts.',
  }).validate({
    // Finding 15 of the review: that pair would have the controller list-watch every ConfigMap of the cluster,
    // with its data. No TypeScript check: a policy stored before this rule still decodes and works.
    rule: 'has(self.namespaces) || (has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)',
    message: 'an empty selector without namespaces would read every ConfigMap of the cluster: give the selector labels or expressions, or list the namespaces',
  }).optional(),
  nodeSelector: s.object({
    matchLabels: labelMap('Labels a node must carry, all of them. Empty: all ready nodes.').default({}),
    matchExpressions: s.array(labelSelectorRequirementSchema, {
      maxItems: 32,
      description: 'Label requirements a node must also meet, all of them.',
    }).optional(),
  }, { description: 'Which nodes receive the images, in addition to where the workload can be scheduled.' }).default({}),
  affinity: nodeAffinity('Required node affinity the target nodes must also meet, as in a Pod spec; additive to nodeSelector.').optional(),
  tolerations: tolerations('Taints (NoSchedule, NoExecute) a target node may carry. Absent: the policy\'s static and ConfigMap images go to no node with such a taint (control-plane nodes included), as for a pod without tolerations, and workload images follow their pods\' tolerations. Set: a node with a taint none of these tolerate gets none of the policy\'s images.').optional(),
  refreshInterval: refreshIntervalSchema.optional(),
  purgeOnDelete: s.boolean({
    description: 'Remove an image from its nodes when its PrePullImage is deleted (the workload is deleted, or leaves the policy), where no other PrePullImage wants it and no container uses it.',
  }).default(false),
  gateNewNodes: gateNewNodes('Every image of the policy gates the warm-up of the nodes it targets.'),
  rolloutGate: rolloutGateSchema.optional(),
  resources: resourcesSchema.default({}),
  retry: retrySchema.default({}),
  timeout: timeoutSchema,
  imagePullSecrets: s.object({
    inherit: s.boolean({
      description: 'Also use the workload\'s imagePullSecrets and those of its ServiceAccount.',
    }).default(false),
    additional: pullSecretReferences('Further Secrets (type kubernetes.io/dockerconfigjson) in the workload\'s namespace.').default([]),
  }, { description: 'Credentials for private registries; kwarm copies the Secrets it uses into its own namespace.' }).default({}),
}, { description: 'What to watch and how to pre-pull.' });

export const prePullPolicyStatusSchema = s.object({
  observedGeneration: s.integer({ minimum: 0, format: 'int64', description: 'The metadata.generation this status describes.' }).optional(),
  watchedWorkloads: s.integer({ minimum: 0, format: 'int32', description: 'Workloads the policy currently selects.' }).optional(),
  watchedConfigMaps: s.integer({ minimum: 0, format: 'int32', description: 'ConfigMaps the policy currently reads images from.' }).optional(),
  images: s.integer({ minimum: 0, format: 'int32', description: 'PrePullImages derived through the policy, from every source.' }).optional(),
  conditions: conditions(
    'Ready: the policy\'s images are pre-pulled on their target nodes. ResourcesIgnored: spec.resources is set and has no effect. ConfigMapsValid: every selected ConfigMap lists images. ArgoSourceActive: the Argo kinds the policy names are served by the cluster. InputsValid: False while a selected workload has an image or pull secrets kwarm cannot write into a PrePullImage (left out, named in the message).',
  ).optional(),
}, { description: 'Written by kwarm-controller.' });

export const prePullPolicySchema = resourceSchema(prePullPolicyNames.kind, prePullPolicySpecSchema, prePullPolicyStatusSchema);

export type PrePullPolicy = Infer<typeof prePullPolicySchema>;
export type PrePullPolicySpec = Infer<typeof prePullPolicySpecSchema>;
export type PrePullPolicySpecInput = Input<typeof prePullPolicySpecSchema>;
export type PrePullPolicyStatus = Infer<typeof prePullPolicyStatusSchema>;

export const prePullPolicyDefinition: KindDefinition = {
  names: prePullPolicyNames,
  description: 'PrePullPolicy selects workloads by label; kwarm pre-pulls the images of their pod templates onto the nodes where their pods can run, before rollouts need them.',
  spec: prePullPolicySpecSchema,
  status: prePullPolicyStatusSchema,
  printerColumns: [
    { name: 'Workloads', type: 'integer', jsonPath: '.status.watchedWorkloads', description: 'Workloads the policy selects.' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Status of the Ready condition.' },
  ],
  nameRules: [{
    rule: `size(self.metadata.name) <= ${MAX_POLICY_NAME_LENGTH}`,
    message: POLICY_NAME_MESSAGE,
    fieldPath: '.metadata.name',
    check: (name) => name.length <= MAX_POLICY_NAME_LENGTH,
  }],
};
