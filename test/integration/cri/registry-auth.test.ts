// Pulls through containerd's CRI from a registry behind htpasswd basic auth: the credentials in
// the CRI AuthConfig decide whether the pull succeeds.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import type { RegistryAuth } from '../../../agent/cri/runtime.ts';
import { criRejection, startCriNode, type CriNode } from '../../../local-cluster/cri-node.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import type { TestRegistry } from '../../../local-cluster/registry.ts';

const USER = 'kwarm-puller';
const PASSWORD = 'correct horse battery staple';

describe('CRI pulls from an htpasswd registry', function () {
  this.timeout(120_000);
  let setup: CriNode | undefined;
  let registry: TestRegistry;
  let cri: GrpcImageRuntime;
  let image: PushedImage;
  const opts = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(60_000) });

  before(async () => {
    setup = await startCriNode({ name: 'cri-auth', registry: { auth: { username: USER, password: PASSWORD } } });
    ({ registry, cri } = setup);
    console.log(`      [figures] docker-registry (htpasswd) ready in ${registry.startupMs} ms`);
    image = await buildAndPushImage(registry, { repository: 'private/app', tag: 'v1', layers: [32 * 1024] });
  });

  after(async () => {
    await setup?.dispose();
  });

  afterEach(async () => {
    await cri.removeImage(image.reference, opts());
  });

  it('the registry itself refuses a push with a wrong password', async () => {
    let failure: unknown;
    try {
      await buildAndPushImage(registry, { repository: 'private/other', tag: 'v1', layers: [16], auth: { username: USER, password: 'nope' } });
    } catch (err) {
      failure = err;
    }
    expect(String(failure)).to.match(/HTTP 401/);
  });

  it('pulls with the right username and password', async () => {
    const auth: RegistryAuth = { username: USER, password: PASSWORD, serverAddress: registry.host };
    expect(await cri.pullImage(image.reference, auth, opts())).to.equal(image.configDigest);
    expect((await cri.imageStatus(image.reference, opts()))?.repoDigests).to.include(image.digestReference);
  });

  it('pulls with the server address written as a URL too', async () => {
    const auth: RegistryAuth = { username: USER, password: PASSWORD, serverAddress: `http://${registry.host}/v2/` };
    expect(await cri.pullImage(image.reference, auth, opts())).to.equal(image.configDigest);
  });

  it('does not send credentials meant for another registry', async () => {
    const auth: RegistryAuth = { username: USER, password: PASSWORD, serverAddress: 'other-registry.example.com' };
    const err = await criRejection(cri.pullImage(image.reference, auth, opts()));
    expect(err.details).to.match(/401 Unauthorized/);
  });

  it('pulls with the docker-config "auth" form of the same credentials', async () => {
    const auth: RegistryAuth = { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') };
    expect(await cri.pullImage(image.reference, auth, opts())).to.equal(image.configDigest);
  });

  it('fails with a wrong password, saying unauthorized, and pulls nothing', async () => {
    const err = await criRejection(cri.pullImage(image.reference, { username: USER, password: 'wrong password' }, opts()));
    expect(err.method).to.equal('PullImage');
    expect(err.codeName).to.equal('UNKNOWN');
    expect(err.details).to.match(/401 Unauthorized/);
    expect(err.message).to.not.include('wrong password');
    console.log(`      [observed] containerd, wrong password: ${err.codeName}: ${err.details}`);
    expect(await cri.imageStatus(image.reference, opts())).to.equal(undefined);
  });

  it('fails without credentials, saying unauthorized', async () => {
    const err = await criRejection(cri.pullImage(image.reference, undefined, opts()));
    expect(err.codeName).to.equal('UNKNOWN');
    expect(err.details).to.match(/401 Unauthorized/);
    console.log(`      [observed] containerd, no credentials: ${err.codeName}: ${err.details}`);
    expect(await cri.imageStatus(image.reference, opts())).to.equal(undefined);
  });
});
