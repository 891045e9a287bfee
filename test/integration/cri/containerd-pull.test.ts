// The gRPC CRI client against a real containerd pulling from a real (plain HTTP) registry.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import type { TestContainerd } from '../../../local-cluster/containerd.ts';
import { criRejection, startCriNode, type CriNode } from '../../../local-cluster/cri-node.ts';
import { buildAndPushImage, type PushedImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';

const MiB = 1024 * 1024;

function signal(ms = 60_000): AbortSignal {
  return AbortSignal.timeout(ms);
}

describe('CRI client against containerd and a plain registry', function () {
  this.timeout(180_000);
  let setup: CriNode | undefined;
  let registry: TestRegistry;
  let node: TestContainerd;
  let cri: GrpcImageRuntime;
  let small: PushedImage;

  before(async () => {
    setup = await startCriNode({ name: 'cri-a' });
    ({ registry, containerd: node, cri } = setup);
    console.log(`      [figures] docker-registry (plain) ready in ${registry.startupMs} ms`);
    console.log(`      [figures] containerd ready (CRI Version answers) in ${node.startupMs} ms`);
    small = await buildAndPushImage(registry, { repository: 'kwarm/small', tag: 'v1', layers: [64 * 1024, 1024] });
  });

  after(async () => {
    await setup?.dispose();
  });

  it('reports containerd as the runtime, speaking CRI v1', async () => {
    const v = await cri.version({ signal: signal() });
    expect(v.runtimeName).to.equal('containerd');
    expect(v.runtimeVersion).to.match(/^v?1\.6\./);
    expect(v.runtimeApiVersion).to.equal('v1');
  });

  it('pulls an image, shows it with the pushed manifest digest, and removes it', async () => {
    expect(await cri.imageStatus(small.reference, { signal: signal() })).to.equal(undefined);

    const ref = await cri.pullImage(small.reference, undefined, { signal: signal() });
    expect(ref).to.equal(small.configDigest);

    const status = await cri.imageStatus(small.reference, { signal: signal() });
    expect(status, 'ImageStatus after pull').to.not.equal(undefined);
    expect(status!.id).to.equal(small.configDigest);
    expect(status!.repoTags).to.include(small.reference);
    expect(status!.repoDigests).to.include(small.digestReference);
    expect(status!.sizeBytes).to.be.greaterThan(64 * 1024);

    // The digest reference and the id find the same image.
    expect((await cri.imageStatus(small.digestReference, { signal: signal() }))?.id).to.equal(small.configDigest);
    expect((await cri.imageStatus(small.configDigest, { signal: signal() }))?.id).to.equal(small.configDigest);

    const listed = (await cri.listImages({ signal: signal() })).find((i) => i.id === small.configDigest);
    expect(listed, 'ListImages after pull').to.not.equal(undefined);
    expect(listed!.repoDigests).to.include(small.digestReference);

    await cri.removeImage(small.reference, { signal: signal() });
    expect(await cri.imageStatus(small.reference, { signal: signal() })).to.equal(undefined);
    expect((await cri.listImages({ signal: signal() })).map((i) => i.id)).to.not.include(small.configDigest);
    // Removing what is gone succeeds.
    await cri.removeImage(small.reference, { signal: signal() });
  });

  it('pulls by digest reference, passed through unchanged', async () => {
    const img = await buildAndPushImage(registry, { repository: 'kwarm/by-digest', tag: 'v1', layers: [4096] });
    expect(await cri.pullImage(img.digestReference, undefined, { signal: signal() })).to.equal(img.configDigest);
    const status = await cri.imageStatus(img.digestReference, { signal: signal() });
    expect(status?.repoDigests).to.include(img.digestReference);
  });

  it('fails a pull of a tag the registry does not have, saying "not found"', async () => {
    const err = await criRejection(cri.pullImage(`${registry.host}/kwarm/small:no-such-tag`, undefined, { signal: signal() }));
    expect(err.method).to.equal('PullImage');
    expect(err.codeName).to.equal('NOT_FOUND');
    expect(err.details).to.match(/not found/);
    console.log(`      [observed] containerd, missing tag: ${err.codeName}: ${err.details}`);
  });

  it('fails a pull from a registry that is down with a connection error', async () => {
    const down = await startRegistry({ name: 'registry-down' });
    const ref = `${down.host}/kwarm/x:v1`;
    await down.dispose();
    const err = await criRejection(cri.pullImage(ref, undefined, { signal: signal() }));
    expect(err.codeName).to.equal('UNKNOWN');
    expect(err.details).to.match(/connection refused/);
    console.log(`      [observed] containerd, registry down: ${err.codeName}: ${err.details}`);
  });

  it('pulls again once a stopped registry is back on the same port with the same content', async () => {
    const img = await buildAndPushImage(registry, { repository: 'kwarm/comeback', tag: 'v1', layers: [4096] });
    await registry.stop();
    const err = await criRejection(cri.pullImage(img.reference, undefined, { signal: signal() }));
    expect(err.details).to.match(/connection refused/);
    await registry.start();
    console.log(`      [figures] docker-registry restart ready in ${registry.startupMs} ms`);
    expect(await cri.pullImage(img.reference, undefined, { signal: signal() })).to.equal(img.configDigest);
  });

  it('reports the image filesystem and an empty container list', async () => {
    const fs = await cri.imageFsInfo({ signal: signal() });
    expect(fs.imageFilesystems).to.have.length.greaterThan(0);
    const first = fs.imageFilesystems[0]!;
    expect(first.mountpoint.startsWith(node.root), first.mountpoint).to.equal(true);
    expect(first.usedBytes).to.be.a('number');
    expect(Math.abs(first.timestamp.getTime() - Date.now())).to.be.lessThan(10 * 60_000);
    expect(await cri.listContainers({ signal: signal() })).to.deep.equal([]);
    expect(await cri.listContainers({ signal: signal(), filter: { state: 'running' } })).to.deep.equal([]);
  });

  it('builds, pushes and pulls a 50 MB image (figures)', async () => {
    let t = Date.now();
    const big = await buildAndPushImage(registry, { repository: 'kwarm/big', tag: '50mb', layers: [30 * MiB, 20 * MiB] });
    const buildPushMs = Date.now() - t;
    expect(big.totalBytes).to.be.greaterThan(50 * MiB);
    t = Date.now();
    expect(await cri.pullImage(big.reference, undefined, { signal: signal(120_000) })).to.equal(big.configDigest);
    const pullMs = Date.now() - t;
    console.log(`      [figures] 50 MiB image (2 layers, ${(big.totalBytes / MiB).toFixed(1)} MiB): build+push ${buildPushMs} ms, CRI PullImage ${pullMs} ms`);
    const status = await cri.imageStatus(big.reference, { signal: signal() });
    expect(status?.sizeBytes).to.be.greaterThan(50 * MiB);
  });

  it('gives up a pull when its deadline passes', async () => {
    const img = await buildAndPushImage(registry, { repository: 'kwarm/deadline', tag: 'v1', layers: [8 * MiB] });
    const err = await criRejection(cri.pullImage(img.reference, undefined, { signal: signal(), deadline: Date.now() + 5 }));
    expect(err.codeName).to.equal('DEADLINE_EXCEEDED');
  });
});
