// Kubernetes shapes the kwarm kinds share: object metadata, label selectors, conditions, object references.
import * as s from '../schema.ts';
import type { AnySchema, Infer } from '../schema.ts';
import { API_VERSION } from './group.ts';

/** DNS-1123 subdomain: names of namespaced objects, secrets, nodes. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** DNS-1123 label: namespace names. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';

export const MAX_LABELS = 64;

export function labelMap(description: string): s.Schema<Record<string, string>> {
  return s.map(s.string({ maxLength: 63, pattern: LABEL_VALUE_PATTERN }), { maxProperties: MAX_LABELS, description });
}

const requirementOperator = s.enumeration(['In', 'NotIn', 'Exists', 'DoesNotExist'], {
  description: 'How the key relates to the values: In, NotIn, Exists or DoesNotExist.',
});

export const labelSelectorRequirementSchema = s.object({
  key: s.string({ minLength: 1, maxLength: 317, description: 'The label key the requirement applies to.' }),
  operator: requirementOperator,
  values: s.array(s.string({ maxLength: 63 }), {
    maxItems: 64,
    description: 'Label values: at least one for In and NotIn, none for Exists and DoesNotExist.',
  }).optional(),
}, { description: 'A label requirement, as in a Kubernetes LabelSelector.' }).validate({
  rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
  message: 'In and NotIn need at least one value; Exists and DoesNotExist take none',
  fieldPath: '.values',
  check: (r) => (r.operator === 'In' || r.operator === 'NotIn' ? (r.values?.length ?? 0) > 0 : (r.values?.length ?? 0) === 0),
});

const labelSelectorShape = s.object({
  matchLabels: labelMap('Labels that must all be present with these values.').optional(),
  matchExpressions: s.array(labelSelectorRequirementSchema, {
    maxItems: 32,
    description: 'Requirements that must all hold.',
  }).optional(),
}, { mapType: 'atomic' });
export type LabelSelector = Infer<typeof labelSelectorShape>;

/** A full metav1.LabelSelector. An empty selector matches everything. */
export function labelSelector(description: string) {
  return labelSelectorShape.describe(description);
}

/** A reference to a Secret by name, as in a Pod's imagePullSecrets. */
export const localObjectReferenceSchema = s.object({
  name: s.string({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN, description: 'Name of the Secret.' }),
});
export type LocalObjectReference = Infer<typeof localObjectReferenceSchema>;

/** The metav1.Condition shape, so `kubectl wait --for=condition=Ready` works. */
export const conditionSchema = s.object({
  type: s.string({
    maxLength: 316,
    pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    description: 'Type of condition in CamelCase, e.g. Ready.',
  }),
  status: s.enumeration(['True', 'False', 'Unknown'], { description: 'True, False or Unknown.' }),
  observedGeneration: s.integer({ minimum: 0, format: 'int64', description: 'The metadata.generation the condition was set for.' }).optional(),
  lastTransitionTime: s.dateTime({ description: 'When the status last changed.' }),
  reason: s.string({
    minLength: 1,
    maxLength: 1024,
    pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    description: 'Why the condition is in this status, in CamelCase.',
  }),
  message: s.string({ maxLength: 32768, description: 'Details for humans.' }),
});
export type Condition = Infer<typeof conditionSchema>;

export function conditions(description: string): s.Schema<Condition[]> {
  return s.array(conditionSchema, { maxItems: 16, listType: { map: ['type'] }, description });
}

const ownerReferenceSchema = s.object({
  apiVersion: s.string(),
  kind: s.string(),
  name: s.string(),
  uid: s.string(),
  controller: s.boolean().optional(),
  blockOwnerDeletion: s.boolean().optional(),
});

/**
 * The parts of metav1.ObjectMeta kwarm reads. Only used for decoding (a CRD may not describe metadata);
 * managedFields are dropped on purpose, they are large and nothing in kwarm reads them.
 */
export const objectMetaSchema = s.object({
  name: s.string().optional(),
  generateName: s.string().optional(),
  namespace: s.string().optional(),
  uid: s.string().optional(),
  resourceVersion: s.string().optional(),
  generation: s.integer().optional(),
  creationTimestamp: s.dateTime().optional(),
  deletionTimestamp: s.dateTime().optional(),
  labels: s.map(s.string()).optional(),
  annotations: s.map(s.string()).optional(),
  ownerReferences: s.array(ownerReferenceSchema).optional(),
  finalizers: s.array(s.string()).optional(),
});
export type ObjectMeta = Infer<typeof objectMetaSchema>;

// A type alias, not an interface: only aliases satisfy the Shape index signature.
type ResourceShape<K extends string, Spec extends AnySchema, Status extends AnySchema> = {
  apiVersion: s.Schema<typeof API_VERSION>;
  kind: s.Schema<K>;
  metadata: typeof objectMetaSchema;
  spec: Spec;
  status: s.Schema<Infer<Status>, s.Input<Status>, 'optional'>;
};

/** The whole object of a kind, as read from the API server: what the controller and agent decode. */
export function resourceSchema<const K extends string, Spec extends AnySchema, Status extends AnySchema>(
  kind: K,
  spec: Spec,
  status: Status,
): s.Schema<s.ObjectOut<ResourceShape<K, Spec, Status>>, s.ObjectIn<ResourceShape<K, Spec, Status>>> {
  return s.object({
    apiVersion: s.enumeration([API_VERSION]),
    kind: s.enumeration([kind]),
    metadata: objectMetaSchema,
    spec,
    status: status.optional(),
  });
}
