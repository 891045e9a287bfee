// Node targeting beyond matchLabels: required node affinity and tolerations, in the shapes of a Pod spec so
// users can paste what they already have (the Eclipse image puller's AFFINITY, a DaemonSet's tolerations).
import * as s from '../schema.ts';
import type { Infer } from '../schema.ts';

const NODE_SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const;

const nodeSelectorRequirementSchema = s.object({
  key: s.string({ minLength: 1, maxLength: 317, description: 'The label (or field) key the requirement applies to.' }),
  operator: s.enumeration(NODE_SELECTOR_OPERATORS, { description: 'In, NotIn, Exists, DoesNotExist, Gt or Lt.' }),
  values: s.array(s.string({ maxLength: 63 }), {
    maxItems: 64,
    description: 'At least one value for In and NotIn, exactly one integer for Gt and Lt, none for Exists and DoesNotExist.',
  }).optional(),
}, { description: 'A node selector requirement, as in a Pod\'s node affinity.' }).validate({
  rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : self.operator in ['Gt', 'Lt'] ? (has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]+$')) : (!has(self.values) || size(self.values) == 0)",
  message: 'In and NotIn need at least one value, Gt and Lt exactly one integer, Exists and DoesNotExist none',
  fieldPath: '.values',
  check: (r) => {
    const n = r.values?.length ?? 0;
    if (r.operator === 'In' || r.operator === 'NotIn') return n > 0;
    if (r.operator === 'Gt' || r.operator === 'Lt') return n === 1 && /^-?[0-9]+$/u.test(r.values?.[0] ?? '');
    return n === 0;
  },
});

// Nodes have one selectable field, and the scheduler accepts only In and NotIn with one value for it:
// anything else would never match, so it is refused at admission rather than silently selecting nothing.
const nodeFieldRequirementSchema = nodeSelectorRequirementSchema.validate({
  rule: "self.key == 'metadata.name' && self.operator in ['In', 'NotIn'] && has(self.values) && size(self.values) == 1",
  message: 'matchFields supports only key metadata.name with operator In or NotIn and exactly one value',
  check: (r) => r.key === 'metadata.name' && (r.operator === 'In' || r.operator === 'NotIn') && r.values?.length === 1,
});

export const nodeSelectorTermsSchema = s.object({
  nodeSelectorTerms: s.array(s.object({
    matchExpressions: s.array(nodeSelectorRequirementSchema, { maxItems: 32, description: 'Requirements on node labels; all must hold.' }).optional(),
    matchFields: s.array(nodeFieldRequirementSchema, { maxItems: 8, description: 'Requirements on node fields (metadata.name); all must hold.' }).optional(),
  }, { description: 'One term: all of its requirements must hold.' }), {
    minItems: 1,
    maxItems: 16,
    description: 'A node matches when any term matches.',
  }),
}, { description: 'Node selector terms, as in requiredDuringSchedulingIgnoredDuringExecution.' });
export type NodeSelectorTerms = Infer<typeof nodeSelectorTermsSchema>;

/** `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`, the part of a Pod's affinity that decides where it may run. */
export function nodeAffinity(description: string) {
  return s.object({
    nodeAffinity: s.object({
      requiredDuringSchedulingIgnoredDuringExecution: nodeSelectorTermsSchema,
    }, { description: 'Only the required part: a preference says nothing about where an image is needed.' }),
  }, { description });
}

const tolerationSchema = s.object({
  key: s.string({ maxLength: 317, description: 'Taint key; empty with operator Exists tolerates every taint.' }).optional(),
  operator: s.enumeration(['Exists', 'Equal'], { description: 'Exists or Equal (the default).' }).optional(),
  value: s.string({ maxLength: 63, description: 'Taint value, for operator Equal.' }).optional(),
  effect: s.enumeration(['NoSchedule', 'PreferNoSchedule', 'NoExecute'], { description: 'Taint effect to tolerate; empty: all effects.' }).optional(),
}, { description: 'A toleration, as in a Pod spec (tolerationSeconds has no meaning here).' });
export type Toleration = Infer<typeof tolerationSchema>;

export function tolerations(description: string) {
  return s.array(tolerationSchema, { maxItems: 32, description });
}
