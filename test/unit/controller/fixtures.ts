// Test fixtures written as plain object literals and decoded by client-node's own deserializer, so the
// code under test sees the same class instances the controller gets from the API client.
import { loadYaml, type V1Node, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';

/** The JSON shape of a client-node model: the same fields, as plain objects (dates as strings). */
export type Plain<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Plain<U>[]
    : T extends object
      ? { [K in keyof T]: Plain<T[K]> }
      : T;

/** Decodes an object that names its apiVersion and kind, as loadYaml does for a manifest. */
export function decode<T>(object: Plain<T> & { apiVersion: string; kind: string }): T {
  return loadYaml<T>(JSON.stringify(object));
}

export function node(fields: Omit<Plain<V1Node>, 'apiVersion' | 'kind'>): V1Node {
  return decode<V1Node>({ apiVersion: 'v1', kind: 'Node', ...fields });
}

export function podSpec(spec: Plain<V1PodSpec>): V1PodSpec {
  const pod = decode<V1Pod>({ apiVersion: 'v1', kind: 'Pod', spec });
  if (pod.spec === undefined) throw new Error('pod spec did not decode');
  return pod.spec;
}
