// PrePullPolicy: which workloads kwarm watches, and how their images are pre-pulled onto which nodes.
import * as s from '../schema.ts';
import type { Infer, Input } from '../schema.ts';
import type { KindDefinition } from '../crd.ts';
import { conditions, DNS_LABEL_PATTERN, labelMap, resourceSchema } from './meta.ts';
import { pullSecretReferences, resourcesSchema, retrySchema, timeoutSchema } from './pull-settings.ts';

export const prePullPolicyNames = {
  kind: 'PrePullPolicy',
  listKind: 'PrePullPolicyList',
  plural: 'prepullpolicies',
  singular: 'prepullpolicy',
  shortNames: ['ppp'],
  scope: 'Cluster',
} as const;

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/** Condition types the controller sets on a PrePullPolicy. */
export const prePullPolicyConditionTypes = {
  /** The policy is valid and its workloads' images are pre-pulled on their target nodes. */
  Ready: 'Ready',
  /** spec.resources is set; it has no effect (no pull jobs exist). */
  ResourcesIgnored: 'ResourcesIgnored',
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
  nodeSelector: s.object({
    matchLabels: labelMap('Labels a node must carry, all of them. Empty: all ready nodes.').default({}),
  }, { description: 'Which nodes receive the images, in addition to where the workload can be scheduled.' }).default({}),
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
  conditions: conditions(
    'Ready: the policy\'s images are pre-pulled on their target nodes. ResourcesIgnored: spec.resources is set and has no effect.',
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
};
