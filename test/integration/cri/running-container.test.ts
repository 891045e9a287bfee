// The harness can run a real container through CRI on a test containerd (host network, runc): the purge
// tests need one to show that an image a container uses is kept. ListContainers reports it running with
// the image it was created from.
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { runContainer, type RunningContainer } from '../../../local-cluster/running-container.ts';

describe('a real container through CRI', function () {
  this.timeout(120_000);
  let registry: TestRegistry | undefined;
  let node: TestContainerd | undefined;
  let cri: GrpcImageRuntime | undefined;
  let running: RunningContainer | undefined;

  after(async () => {
    await running?.remove();
    cri?.close();
    await node?.dispose();
    await registry?.dispose();
  });

  it('starts a pod sandbox and a container from a local image; ListContainers shows it running, and no more once removed', async () => {
    registry = await startRegistry({ name: 'run-container' });
    const pause = await pushSleeperImage(registry, 'kwarm/pause', '1', 0);
    const app = await pushSleeperImage(registry, 'kwarm/sleeper', 'v1');
    node = await startContainerd({ name: 'run-node', registries: [registry], sandboxImage: pause.reference });
    cri = new GrpcImageRuntime({ endpoint: node.socket });
    const opts = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(60_000) });
    await cri.pullImage(app.reference, undefined, opts());
    const started = Date.now();
    running = await runContainer({ socket: node.socket, name: 'sleeper', image: app.reference });
    console.log(`      [figures] sandbox + container running in ${Date.now() - started} ms`);
    const containers = await cri.listContainers(opts());
    const c = containers.find((x) => x.id === running?.containerId);
    expect(c, JSON.stringify(containers)).to.not.equal(undefined);
    expect(c!.state).to.equal('running');
    expect([c!.imageId, c!.imageRef, c!.image]).to.include(app.configDigest);
    await running.remove();
    running = undefined;
    expect((await cri.listContainers(opts())).map((x) => x.id)).to.not.include(c!.id);
  });
});
