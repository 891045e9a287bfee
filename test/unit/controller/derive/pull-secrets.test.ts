import { expect } from 'chai';
import { checkPullSecret, copyMatches, namespacesWithPullSecrets, planSecretCopies, secretCopyName, type SecretView, type SourceSecret } from '../../../../controller/derive/pull-secrets.ts';
import { DOCKER_CONFIG_JSON_TYPE as DOCKER_CONFIG_JSON } from '../../../../lib/docker-config.ts';
import { SECRET_COPY_LABEL, SECRET_SOURCE_ANNOTATION } from '../../../../api/v1alpha1/labels.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const config = b64(JSON.stringify({ auths: { 'r.example': { auth: b64('u:p') } } }));

function secret(namespace: string, name: string, over: Partial<SecretView> = {}): SecretView {
  return { namespace, name, type: DOCKER_CONFIG_JSON, data: { '.dockerconfigjson': config }, labels: {}, annotations: {}, ...over };
}

function copy(name: string, source: string, data: Record<string, string> = { '.dockerconfigjson': config }): SecretView {
  return { namespace: 'kwarm-system', name, type: DOCKER_CONFIG_JSON, data, labels: { [SECRET_COPY_LABEL]: 'true' }, annotations: { [SECRET_SOURCE_ANNOTATION]: source } };
}

describe('controller/pull-secrets', () => {
  it('names copies deterministically, distinctly, and within 253 characters', () => {
    expect(secretCopyName('shop', 'regcred')).to.equal('kwarm-pull.shop.regcred');
    expect(secretCopyName('shop', 'regcred')).to.equal(secretCopyName('shop', 'regcred'));
    expect(secretCopyName('a', 'b-c')).to.not.equal(secretCopyName('a-b', 'c'));
    expect(secretCopyName('a', 'b.c')).to.not.equal(secretCopyName('a-b', 'c'));
    const long1 = secretCopyName('ns', `${'x'.repeat(250)}1`);
    const long2 = secretCopyName('ns', `${'x'.repeat(250)}2`);
    expect(long1.length).to.be.at.most(253);
    expect(long1).to.not.equal(long2);
  });

  it('accepts dockerconfigjson and dockercfg secrets and explains the rest', () => {
    expect(checkPullSecret(secret('shop', 'ok'), 'shop/ok').ok).to.equal(true);
    expect(checkPullSecret(secret('shop', 'old', { type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64('{"r.example":{}}') } }), 'shop/old').ok).to.equal(true);
    expect(checkPullSecret(undefined, 'shop/none')).to.deep.include({ ok: false, reason: 'SecretNotFound' });
    expect(checkPullSecret(secret('shop', 'opaque', { type: 'Opaque' }), 'shop/opaque')).to.deep.include({ ok: false, reason: 'SecretMalformed' });
    expect(checkPullSecret(secret('shop', 'bad', { data: { '.dockerconfigjson': b64('not json') } }), 'shop/bad')).to.deep.include({ ok: false, reason: 'SecretMalformed' });
    expect(checkPullSecret(secret('shop', 'noauths', { data: { '.dockerconfigjson': b64('{"x":1}') } }), 'shop/noauths')).to.deep.include({ ok: false, reason: 'SecretMalformed' });
  });

  it('copies referenced secrets, leaves up-to-date copies alone, updates stale ones and removes unreferenced ones', () => {
    const sources = new Map([
      ['shop/a', secret('shop', 'a')],
      ['shop/b', secret('shop', 'b')],
      ['shop/c', secret('shop', 'c')],
      ['shop/bad', secret('shop', 'bad', { type: 'Opaque' })],
    ]);
    const copies = new Map([
      ['kwarm-pull.shop.a', copy('kwarm-pull.shop.a', 'shop/a')],
      ['kwarm-pull.shop.b', copy('kwarm-pull.shop.b', 'shop/b', { '.dockerconfigjson': b64('{"auths":{}}') })],
      ['kwarm-pull.old.x', copy('kwarm-pull.old.x', 'old/x')],
    ]);
    const plan = planSecretCopies(['shop/a', 'shop/b', 'shop/c', 'shop/a', 'shop/bad', 'shop/missing'], (k) => sources.get(k), copies);
    expect([...plan.copyNames]).to.deep.equal([['shop/a', 'kwarm-pull.shop.a'], ['shop/b', 'kwarm-pull.shop.b'], ['shop/c', 'kwarm-pull.shop.c']]);
    expect(plan.apply.map((c) => c.name)).to.deep.equal(['kwarm-pull.shop.b', 'kwarm-pull.shop.c']);
    expect(plan.remove).to.deep.equal(['kwarm-pull.old.x']);
    expect(plan.problems.get('shop/bad')?.reason).to.equal('SecretMalformed');
    expect(plan.problems.get('shop/missing')?.reason).to.equal('SecretNotFound');
    expect(copyMatches(copies.get('kwarm-pull.shop.a'), plan.apply[0]!)).to.equal(false);
  });

  it('keeps the copy of a Secret whose namespace is not listed yet, and neither copies nor reports it', () => {
    // A namespace newly referenced: its Secret watch has not listed. Taking that for "no such Secret" would
    // remove the copy agents pull with (and report SecretNotFound) until the list comes back.
    const sources = new Map<string, SourceSecret>([['shop/a', 'unknown'], ['new/b', 'unknown'], ['shop/c', secret('shop', 'c')]]);
    const copies = new Map([
      ['kwarm-pull.shop.a', copy('kwarm-pull.shop.a', 'shop/a', { '.dockerconfigjson': b64('{"auths":{}}') })],
      ['kwarm-pull.shop.c', copy('kwarm-pull.shop.c', 'shop/c')],
      ['kwarm-pull.gone.x', copy('kwarm-pull.gone.x', 'gone/x')],
    ]);
    const plan = planSecretCopies(['shop/a', 'new/b', 'shop/c'], (k) => sources.get(k), copies);
    expect([...plan.copyNames]).to.deep.equal([['shop/a', 'kwarm-pull.shop.a'], ['shop/c', 'kwarm-pull.shop.c']]);
    // Not rewritten either: what the copy should hold is not known yet.
    expect(plan.apply).to.deep.equal([]);
    expect(plan.remove).to.deep.equal(['kwarm-pull.gone.x']);
    expect([...plan.problems.keys()]).to.deep.equal([]);

    // Once listed and absent, it is reported and its copy removed.
    const listed = planSecretCopies(['shop/a'], () => undefined, copies);
    expect(listed.problems.get('shop/a')?.reason).to.equal('SecretNotFound');
    expect(listed.remove).to.include('kwarm-pull.shop.a');
  });

  it('does not take a copy of another source for the unknown one', () => {
    // Same name, another source annotation (cannot come from secretCopyName, but a hand-edited copy could say so).
    const copies = new Map([['kwarm-pull.shop.a', copy('kwarm-pull.shop.a', 'other/a')]]);
    const plan = planSecretCopies(['shop/a'], () => 'unknown', copies);
    expect([...plan.copyNames]).to.deep.equal([]);
    expect(plan.remove).to.deep.equal(['kwarm-pull.shop.a']);
  });

  it('lists the sources not known yet and without a copy, apart from the usable ones and the problems', () => {
    const sources = new Map<string, SourceSecret>([['shop/a', 'unknown'], ['shop/kept', 'unknown'], ['shop/missing', undefined]]);
    const copies = new Map([['kwarm-pull.shop.kept', copy('kwarm-pull.shop.kept', 'shop/kept')]]);
    const plan = planSecretCopies(['shop/a', 'shop/missing', 'shop/a', 'shop/kept'], (k) => sources.get(k), copies);
    expect([...plan.unknown]).to.deep.equal(['shop/a']);
    expect([...plan.problems.keys()]).to.deep.equal(['shop/missing']);
    expect([...plan.copyNames]).to.deep.equal([['shop/kept', 'kwarm-pull.shop.kept']]);
  });

  it('watches Secrets only in namespaces whose PrePullImages name pull secrets', () => {
    const ns = namespacesWithPullSecrets([
      { namespace: 'shop', imagePullSecrets: [{ name: 'regcred' }] },
      { namespace: 'quiet', imagePullSecrets: [] },
      { namespace: 'none', imagePullSecrets: undefined },
      { namespace: undefined, imagePullSecrets: [{ name: 'x' }] },
      { namespace: 'shop', imagePullSecrets: [{ name: 'other' }] },
    ]);
    expect([...ns]).to.deep.equal(['shop']);
  });
});
