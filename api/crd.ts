// CustomResourceDefinition manifests built from the kind definitions in api/v1alpha1.
import { toOpenAPI, type AnySchema, type JsonObject } from './schema.ts';
import { API_VERSION, CATEGORY, GROUP, VERSION } from './v1alpha1/group.ts';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface KindNames {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  scope: 'Cluster' | 'Namespaced';
}

/**
 * A CEL rule on the whole object, for what only the root can see: `self.metadata.name` (the one metadata
 * field besides generateName that CRD validation rules may read).
 */
export interface RootRule {
  rule: string;
  message: string;
  fieldPath: string;
  /** The same check in TypeScript, for the unit tests and the reference doc. */
  check: (name: string) => boolean;
}

/** Everything a CRD and the API reference need to know about one kind. */
export interface KindDefinition {
  names: KindNames;
  description: string;
  spec: AnySchema;
  status: AnySchema;
  printerColumns: readonly PrinterColumn[];
  /** Rules on metadata.name, checked by the API server at admission. */
  nameRules?: readonly RootRule[];
}

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' };

export function crdName(names: KindNames): string {
  return `${names.plural}.${GROUP}`;
}

/** The root schema: apiVersion, kind and metadata as every kind has them, then spec and status. */
export function rootSchema(def: KindDefinition): JsonObject {
  return {
    description: def.description,
    type: 'object',
    properties: {
      apiVersion: { description: `APIVersion of this object, ${API_VERSION}.`, type: 'string' },
      kind: { description: `Kind of this object, ${def.names.kind}.`, type: 'string' },
      // A rule's fieldPath must name a declared property; name is the one a CRD may describe (besides generateName).
      metadata: def.nameRules === undefined || def.nameRules.length === 0 ? { type: 'object' } : { type: 'object', properties: { name: { type: 'string' } } },
      spec: toOpenAPI(def.spec),
      status: toOpenAPI(def.status),
    },
    required: ['spec'],
    ...(def.nameRules === undefined || def.nameRules.length === 0
      ? {}
      : { 'x-kubernetes-validations': def.nameRules.map((r) => ({ rule: r.rule, message: r.message, fieldPath: r.fieldPath })) }),
  };
}

export function customResourceDefinition(def: KindDefinition): JsonObject {
  const { names } = def;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: crdName(names),
      labels: { 'app.kubernetes.io/name': 'kwarm', 'app.kubernetes.io/part-of': 'kwarm' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: names.kind,
        listKind: names.listKind,
        plural: names.plural,
        singular: names.singular,
        shortNames: [...names.shortNames],
        categories: [CATEGORY],
      },
      scope: names.scope,
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [...def.printerColumns, AGE].map((c) => {
          const col: JsonObject = { name: c.name, type: c.type, jsonPath: c.jsonPath, description: c.description };
          if (c.priority !== undefined) col.priority = c.priority;
          return col;
        }),
        schema: { openAPIV3Schema: rootSchema(def) },
      }],
    },
  };
}
