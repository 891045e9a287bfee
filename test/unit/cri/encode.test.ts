import { expect } from 'chai';
import { criServerAddress, encodeAuth, encodeContainerFilter } from '../../../agent/cri/encode.ts';

describe('cri/encode', () => {
  it('gives a scheme-less server address the https:// that containerd needs to match it', () => {
    expect(criServerAddress('registry.example.com')).to.equal('https://registry.example.com');
    expect(criServerAddress('127.0.0.1:5000')).to.equal('https://127.0.0.1:5000');
    expect(criServerAddress('http://127.0.0.1:5000')).to.equal('http://127.0.0.1:5000');
    expect(criServerAddress('https://index.docker.io/v1/')).to.equal('https://index.docker.io/v1/');
    expect(criServerAddress('')).to.equal('');
  });

  it('encodes only the credential fields that are set', () => {
    expect(encodeAuth({ username: 'u', password: 'p', serverAddress: 'r.example:5000' })).to.deep.equal({
      username: 'u',
      password: 'p',
      serverAddress: 'https://r.example:5000',
    });
    expect(encodeAuth({ auth: 'dTpw' })).to.deep.equal({ auth: 'dTpw' });
    expect(encodeAuth({ identityToken: 'i', registryToken: 't' })).to.deep.equal({ identityToken: 'i', registryToken: 't' });
  });

  it('encodes container filters with state names on the wire', () => {
    expect(encodeContainerFilter({})).to.deep.equal({});
    expect(encodeContainerFilter({ state: 'running', labelSelector: { a: 'b' }, id: 'c', podSandboxId: 'p' })).to.deep.equal({
      id: 'c',
      state: { state: 'CONTAINER_RUNNING' },
      podSandboxId: 'p',
      labelSelector: { a: 'b' },
    });
    expect(encodeContainerFilter({ state: 'exited' }).state).to.deep.equal({ state: 'CONTAINER_EXITED' });
  });
});
