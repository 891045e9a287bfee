import { expect } from 'chai';
import { redact, secretForms } from '../../../agent/redaction.ts';

describe('agent/redaction', () => {
  it('replaces each secret and the base64 of user:password wherever they appear', () => {
    const forms = secretForms('puller', 's3cret-pass', ['tok-abcdef', '']);
    const auth = Buffer.from('puller:s3cret-pass').toString('base64');
    const out = redact(`denied for s3cret-pass (auth ${auth}) token tok-abcdef; s3cret-pass again`, forms);
    expect(out).to.not.include('s3cret-pass').and.not.include(auth).and.not.include('tok-abcdef');
    expect(out.match(/\[redacted\]/g)).to.have.length(4);
  });

  it('leaves messages without secrets and ignores too-short values', () => {
    expect(redact('401 Unauthorized', ['abc', ''])).to.equal('401 Unauthorized');
  });
});
