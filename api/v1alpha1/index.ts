// kwarm.io/v1alpha1: the kinds, their schemas and types, and the shapes they share.
import type { KindDefinition } from '../crd.ts';
import { nodeImageSetDefinition } from './nodeimageset.ts';
import { prePullImageDefinition } from './prepullimage.ts';
import { prePullPolicyDefinition } from './prepullpolicy.ts';

export * from './group.ts';
export * from './meta.ts';
export * from './duration.ts';
export * from './image-reference.ts';
export * from './pull-settings.ts';
export * from './node-targeting.ts';
export * from './prepullpolicy.ts';
export * from './prepullimage.ts';
export * from './nodeimageset.ts';
export * from './labels.ts';
export * from './warmup.ts';
export * from './rollout-gate.ts';

/** Every kind of the version, in the order the generated files list them. */
export const kinds: readonly KindDefinition[] = [prePullPolicyDefinition, prePullImageDefinition, nodeImageSetDefinition];
