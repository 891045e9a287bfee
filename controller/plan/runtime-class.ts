// RuntimeClass scheduling (finding 22 of the review): what the RuntimeClass admission plugin does to a pod that
// names a class, applied to a workload's pod template so targeting sees the pods as they will be. Pure.
import { normalizedToleration, type PodSchedulingSpec, type TolerationSpec } from './node-eligibility.ts';

/** A RuntimeClass's `scheduling`, which the RuntimeClass admission plugin merges into every pod that names it. */
export interface RuntimeClassView {
  readonly name: string;
  readonly nodeSelector?: Readonly<Record<string, string>>;
  readonly tolerations?: readonly TolerationSpec[];
}

/**
 * The pod spec as the RuntimeClass admission plugin leaves it for pods naming `runtimeClassName`: the
 * class's nodeSelector merged in (a key the pod sets to another value is a conflict: the pod is refused),
 * its tolerations added where the pod does not have them. A class that does not exist refuses the pod too.
 * Refused pods run nowhere, so the result carries `rejection` and selects no node.
 */
export function withRuntimeClass(spec: PodSchedulingSpec, runtimeClassName: string, runtimeClass: RuntimeClassView | undefined): PodSchedulingSpec {
  if (runtimeClass === undefined) return { ...spec, rejection: `RuntimeClass ${JSON.stringify(runtimeClassName)} does not exist, so admission refuses the pods` };
  const nodeSelector: Record<string, string> = { ...spec.nodeSelector };
  for (const [k, v] of Object.entries(runtimeClass.nodeSelector ?? {})) {
    const own = nodeSelector[k];
    if (own !== undefined && own !== v) {
      return { ...spec, rejection: `nodeSelector ${k}=${own} conflicts with RuntimeClass ${JSON.stringify(runtimeClassName)}'s ${k}=${v}, so admission refuses the pods` };
    }
    nodeSelector[k] = v;
  }
  const tolerations = [...(spec.tolerations ?? [])];
  for (const t of runtimeClass.tolerations ?? []) {
    const n = normalizedToleration(t).join('\n');
    if (!tolerations.some((own) => normalizedToleration(own).join('\n') === n)) tolerations.push(t);
  }
  return {
    ...spec,
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    ...(tolerations.length > 0 ? { tolerations } : {}),
  };
}
