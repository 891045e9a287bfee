// Finding 7 (inputs): workload images and pull secrets the PrePullImage API cannot hold are left out of the
// derived PrePullImages and named on the policy, instead of being applied and refused on every pass.
import { expect } from 'chai';
import { decode } from '../../../../api/schema.ts';
import { MAX_PULL_SECRETS, prePullImageSchema } from '../../../../api/v1alpha1/index.ts';
import { boundPullSecrets, derivedSpecProblem, inputsCondition } from '../../../../controller/derive/derived-validation.ts';
import { desiredPrePullImages, serviceAccountKey, type ServiceAccountView } from '../../../../controller/derive/desired-images.ts';
import { prePullImageApplyBody } from '../../../../controller/write/api-objects.ts';
import { policy, workload } from '../planning-fixtures.ts';

const noSAs = new Map<string, ServiceAccountView>();
const selector = { matchLabels: { 'kwarm.io/enabled': 'true' } };

/** Images the API server takes in a pod template and the PrePullImage CRD refuses. */
const REFUSED = [
  'docker.io/MyOrg/app:v1',
  `r.example/app@sha512:${'ab'.repeat(64)}`,
  '[2001:db8::1]:5000/app:v1',
  `r.example/${'a'.repeat(520)}:v1`,
];

describe('controller/derive/derived-validation', () => {
  it('finds a problem in exactly the images the PrePullImage decoder refuses', () => {
    for (const image of REFUSED) expect(derivedSpecProblem({ image }), image).to.be.a('string').that.contains('not pre-pulled');
    for (const image of ['r.example/app:v1', 'nginx', `r.example/app@sha256:${'ab'.repeat(32)}`]) expect(derivedSpecProblem({ image }), image).to.equal(undefined);
  });

  it('keeps at most 32 DNS-valid pull secret names, in order, and says what it left out', () => {
    const names = [...Array.from({ length: 40 }, (_, i) => `s-${i}`), 'Bad_Name', 'a'.repeat(254)];
    const b = boundPullSecrets(names);
    expect(b.names).to.deep.equal(names.slice(0, MAX_PULL_SECRETS));
    expect(b.problem).to.contain('"Bad_Name"').and.to.contain('40 pull secrets').and.to.contain('at most 32').and.to.contain('s-32');
    expect(boundPullSecrets(['a', 'b'])).to.deep.equal({ names: ['a', 'b'], problem: undefined });
  });

  it('derives the valid containers of a workload, leaves out the others and reports each on the policy', () => {
    const p = policy('p', { selector });
    const w = workload({ name: 'mixed', podSpec: { containers: [{ name: 'good', image: 'r.example/ok:1' }, ...REFUSED.map((image, i) => ({ name: `bad${i}`, image }))] } });
    const { images, policies } = desiredPrePullImages([p], [w], noSAs);
    expect([...images.keys()]).to.deep.equal(['shop/deployment.mixed.good']);
    const problems = policies.get('p')!.inputProblems ?? [];
    expect(problems).to.have.length(REFUSED.length);
    REFUSED.forEach((_, i) => expect(problems[i]).to.contain(`Deployment shop/mixed container bad${i}: image`));
    // What is derived decodes as the API server would accept it.
    const written = decode(prePullImageSchema, prePullImageApplyBody(images.get('shop/deployment.mixed.good')!));
    expect(written.ok).to.equal(true);
  });

  it('caps the inherited secret union at 32 and drops names that are not DNS names, reporting both', () => {
    const p = policy('p', { selector, imagePullSecrets: { inherit: true, additional: [{ name: 'extra' }] } });
    const sas = new Map([[serviceAccountKey('shop', 'default'), { namespace: 'shop', name: 'default', imagePullSecrets: Array.from({ length: 20 }, (_, i) => `sa-${i}`) }]]);
    const w = workload({
      name: 'x',
      podSpec: { imagePullSecrets: [...Array.from({ length: 20 }, (_, i) => ({ name: `tpl-${i}` })), { name: 'Not_DNS' }], containers: [{ name: 'c', image: 'r.example/x:1' }] },
    });
    const { images, policies } = desiredPrePullImages([p], [w], sas);
    const secrets = images.get('shop/deployment.x.c')!.spec.imagePullSecrets.map((r) => r.name);
    expect(secrets).to.have.length(MAX_PULL_SECRETS);
    expect(secrets.slice(0, 20)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `tpl-${i}`));
    expect(secrets).to.not.include('Not_DNS');
    expect(policies.get('p')!.inputProblems).to.have.length(1);
    expect(policies.get('p')!.inputProblems![0]).to.contain('Deployment shop/x: ').and.to.contain('"Not_DNS"').and.to.contain('41 pull secrets');
  });

  it('InputsValid: absent on a policy that never had a problem, False naming them, True once fixed', () => {
    expect(inputsCondition([], undefined, 1)).to.equal(undefined);
    const bad = inputsCondition(['one', 'two'], undefined, 2)!;
    expect(bad).to.include({ type: 'InputsValid', status: 'False', reason: 'InvalidInputs', message: 'one; two', observedGeneration: 2 });
    const many = inputsCondition(Array.from({ length: 15 }, (_, i) => `p${i}`), undefined, 2)!;
    expect(many.message).to.contain('p9; and 5 more').and.not.contain('p10');
    const fixed = inputsCondition([], [{ ...bad, lastTransitionTime: '2026-01-01T00:00:00Z' }], 3)!;
    expect(fixed).to.include({ type: 'InputsValid', status: 'True', reason: 'InputsValid', observedGeneration: 3 });
  });
});
