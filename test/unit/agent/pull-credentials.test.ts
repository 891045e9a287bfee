import { expect } from 'chai';
import type { PullSecret } from '../../../agent/credentials.ts';
import { pullCredentials, secretsVersion } from '../../../agent/pull-credentials.ts';

function secret(name: string, registry: string, password: string, resourceVersion: string): PullSecret {
  const config = JSON.stringify({ auths: { [registry]: { username: 'puller', password } } });
  return { namespace: 'kwarm-system', name, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': config }, resourceVersion };
}

describe('agent/pull-credentials', () => {
  it('matches the secrets to the image registry, keeps what to redact, and anonymous when none matches', () => {
    const read = { secrets: [secret('a', 'registry.example', 'pw-aaaa', '1'), secret('b', 'other.example', 'pw-bbbb', '2')], missing: ['gone'] };
    const c = pullCredentials('registry.example/team/app:1', ['a', 'b', 'gone'], read);
    expect(c.candidates.map((x) => x?.source.name)).to.deep.equal(['a']);
    expect(c.secretValues).to.include('pw-aaaa').and.include('pw-bbbb');
    expect(c.missing).to.deep.equal(['gone']);
    expect(pullCredentials('elsewhere.example/x:1', ['a'], read).candidates).to.deep.equal([undefined]);
  });

  it('names unusable secrets without their content', () => {
    const bad: PullSecret = { namespace: 'kwarm-system', name: 'bad', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': '{not json pw-zzzz' } };
    const c = pullCredentials('registry.example/a:1', ['bad'], { secrets: [bad], missing: [] });
    expect(c.unusable).to.deep.equal(['pull secret kwarm-system/bad key .dockerconfigjson: not valid JSON']);
  });

  it('versions the secrets by name and resourceVersion: a rotation, a creation or a deletion changes it, the order does not', () => {
    const a1 = secret('a', 'r.example', 'x', '1');
    const b1 = secret('b', 'r.example', 'y', '7');
    const base = secretsVersion(['a', 'b'], { secrets: [a1, b1], missing: [] });
    expect(secretsVersion(['b', 'a'], { secrets: [b1, a1], missing: [] })).to.equal(base);
    expect(secretsVersion(['a', 'b'], { secrets: [{ ...a1, resourceVersion: '2' }, b1], missing: [] })).to.not.equal(base);
    expect(secretsVersion(['a', 'b'], { secrets: [a1], missing: ['b'] })).to.not.equal(base);
    expect(base).to.match(/^[0-9a-f]{16}$/);
  });
});
