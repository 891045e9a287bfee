// Two containerd instances side by side, as two simulated nodes: separate sockets, stores and
// stream ports, each pulling on its own at the same time.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { buildAndPushImage } from '../../../local-cluster/oci-image.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

describe('two containerd instances at once', function () {
  this.timeout(120_000);
  let registry: TestRegistry | undefined;
  const nodes: TestContainerd[] = [];
  const clients: GrpcImageRuntime[] = [];

  before(async () => {
    registry = await startRegistry();
    const started = Date.now();
    nodes.push(...(await Promise.all(['node-1', 'node-2'].map((name) => startContainerd({ name, registries: [registry!] })))));
    console.log(`      [figures] two containerd instances ready in ${Date.now() - started} ms (started together)`);
    clients.push(...nodes.map((n) => new GrpcImageRuntime({ endpoint: n.socket })));
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.dispose()));
    await registry?.dispose();
  });

  it('keeps their sockets and stores apart', () => {
    const [a, b] = nodes;
    expect(a!.socket).to.not.equal(b!.socket);
    expect(a!.root).to.not.equal(b!.root);
    expect(a!.state).to.not.equal(b!.state);
    expect(a!.process.running && b!.process.running).to.equal(true);
  });

  it('pulls independently and concurrently; each node has only what it pulled', async () => {
    const [one, two, shared] = await Promise.all([
      buildAndPushImage(registry!, { repository: 'kwarm/only-one', tag: 'v1', layers: [2 * 1024 * 1024] }),
      buildAndPushImage(registry!, { repository: 'kwarm/only-two', tag: 'v1', layers: [2 * 1024 * 1024] }),
      buildAndPushImage(registry!, { repository: 'kwarm/shared', tag: 'v1', layers: [1024 * 1024, 4096] }),
    ]);
    const [c1, c2] = clients;
    const opts = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(60_000) });
    const refs = await Promise.all([
      c1!.pullImage(one.reference, undefined, opts()),
      c2!.pullImage(two.reference, undefined, opts()),
      c1!.pullImage(shared.reference, undefined, opts()),
      c2!.pullImage(shared.reference, undefined, opts()),
    ]);
    expect(refs).to.deep.equal([one.configDigest, two.configDigest, shared.configDigest, shared.configDigest]);

    const ids1 = (await c1!.listImages(opts())).map((i) => i.id);
    const ids2 = (await c2!.listImages(opts())).map((i) => i.id);
    expect(ids1).to.include.members([one.configDigest, shared.configDigest]).and.not.include(two.configDigest);
    expect(ids2).to.include.members([two.configDigest, shared.configDigest]).and.not.include(one.configDigest);

    // Removing on one node leaves the other's copy alone.
    await c1!.removeImage(shared.reference, opts());
    expect(await c1!.imageStatus(shared.reference, opts())).to.equal(undefined);
    expect((await c2!.imageStatus(shared.reference, opts()))?.id).to.equal(shared.configDigest);
  });

  it('survives a SIGKILL and restart of one node with its images, while the other keeps serving', async () => {
    const img = await buildAndPushImage(registry!, { repository: 'kwarm/persist', tag: 'v1', layers: [4096] });
    const [n1] = nodes;
    const [c1, c2] = clients;
    const opts = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(30_000) });
    await c1!.pullImage(img.reference, undefined, opts());
    await n1!.kill();
    expect(n1!.process.running).to.equal(false);
    await c2!.version(opts());
    await n1!.restart();
    console.log(`      [figures] containerd restart after SIGKILL ready in ${n1!.startupMs} ms`);
    // The long-lived client reconnects by itself (within its reconnect back-off).
    const status = await waitFor(() => c1!.imageStatus(img.reference, opts()), {
      what: 'the old client to see the image after the restart',
      timeoutMs: 10_000,
    });
    expect(status.id).to.equal(img.configDigest);
  });
});
