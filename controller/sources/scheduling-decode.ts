// Decoders of the scheduling parts of a pod spec (tolerations, node selector terms), shared by the workload
// decoder and the Argo Workflows decoder. From raw JSON to the planner's structural types; odd fields are skipped.
import { defined, field, isRecord, list, str, strings } from '../../lib/raw.ts';
import type { NodeSelectorRequirementSpec, NodeSelectorTermSpec, TolerationSpec } from '../plan/node-eligibility.ts';

export function tolerationOf(v: unknown): TolerationSpec | undefined {
  if (!isRecord(v)) return undefined;
  const seconds = v.tolerationSeconds;
  return defined({
    key: str(v.key),
    operator: str(v.operator),
    value: str(v.value),
    effect: str(v.effect),
    tolerationSeconds: typeof seconds === 'number' ? seconds : undefined,
  });
}

function requirementOf(v: unknown): NodeSelectorRequirementSpec | undefined {
  const key = str(field(v, 'key'));
  const operator = str(field(v, 'operator'));
  if (key === undefined || operator === undefined) return undefined;
  return { key, operator, ...defined({ values: strings(field(v, 'values')) }) };
}

export function termOf(v: unknown): NodeSelectorTermSpec | undefined {
  if (!isRecord(v)) return undefined;
  const matchExpressions = list(v.matchExpressions, requirementOf);
  const matchFields = list(v.matchFields, requirementOf);
  return {
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
    ...(matchFields.length > 0 ? { matchFields } : {}),
  };
}
