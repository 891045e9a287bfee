// Rules on metadata.name (finding 7): a PrePullPolicy's name becomes a label value, so it is bounded at 63.
import { expect } from 'chai';
import { customResourceDefinition } from '../../../api/crd.ts';
import { MAX_POLICY_NAME_LENGTH, POLICY_NAME_MESSAGE, prePullImageDefinition, prePullPolicyDefinition } from '../../../api/v1alpha1/index.ts';

function rootValidations(def: typeof prePullPolicyDefinition): unknown {
  const crd = customResourceDefinition(def) as { spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] } };
  return crd.spec.versions[0]?.schema.openAPIV3Schema['x-kubernetes-validations'];
}

describe('api: metadata.name rules', () => {
  it('the PrePullPolicy CRD refuses names longer than a label value at the root, naming metadata.name', () => {
    expect(rootValidations(prePullPolicyDefinition)).to.deep.equal([
      { rule: `size(self.metadata.name) <= ${MAX_POLICY_NAME_LENGTH}`, message: POLICY_NAME_MESSAGE, fieldPath: '.metadata.name' },
    ]);
    const rule = prePullPolicyDefinition.nameRules?.[0];
    expect(rule?.check('p'.repeat(63))).to.equal(true);
    expect(rule?.check('p'.repeat(64))).to.equal(false);
  });

  it('kinds without name rules get no root validations', () => {
    expect(rootValidations(prePullImageDefinition)).to.equal(undefined);
  });
});
