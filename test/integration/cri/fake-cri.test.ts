// The gRPC CRI client against the scripted fake CRI: cancellation by AbortSignal and by deadline
// reaches the server, and runtime errors surface with their gRPC code and message.
import { status } from '@grpc/grpc-js';
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { criRejection } from '../../../local-cluster/cri-node.ts';
import { FakeCri } from '../../support/fake-cri.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

describe('CRI client against the scripted fake CRI', function () {
  this.timeout(30_000);
  let fake: FakeCri | undefined;
  let cri: GrpcImageRuntime;
  const opts = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(10_000) });

  beforeEach(async () => {
    fake = await FakeCri.start({ runtimeName: 'fake-cri', runtimeVersion: '9.9.9' });
    cri = new GrpcImageRuntime({ endpoint: `unix://${fake.socket}` });
  });

  afterEach(async () => {
    cri.close();
    await fake?.stop();
  });

  it('answers Version through the same proto', async () => {
    expect(await cri.version(opts())).to.deep.equal({ version: '0.1.0', runtimeName: 'fake-cri', runtimeVersion: '9.9.9', runtimeApiVersion: 'v1' });
  });

  it('cancels a stalled pull when the AbortSignal fires, and the server sees the cancellation', async () => {
    fake!.script('r.example/stall:1', { kind: 'stall' });
    const ac = new AbortController();
    const pull = criRejection(cri.pullImage('r.example/stall:1', undefined, { signal: ac.signal }));
    await waitFor(() => fake!.activePulls === 1, { what: 'the pull to reach the fake', timeoutMs: 5000 });
    const t = Date.now();
    ac.abort(new Error('pull timeout'));
    const err = await pull;
    expect(Date.now() - t).to.be.lessThan(1000);
    expect(err.codeName).to.equal('CANCELLED');
    expect(err.method).to.equal('PullImage');
    expect(err.cause).to.be.instanceOf(Error);
    expect((err.cause as Error).message).to.equal('pull timeout');
    await waitFor(() => fake!.activePulls === 0, { what: 'the fake to release the pull', timeoutMs: 5000 });
    expect(fake!.callsOf('PullImage', 'r.example/stall:1').map((c) => c.outcome)).to.deep.equal(['cancelled']);
  });

  it('ends a stalled pull at its gRPC deadline', async () => {
    fake!.script('r.example/stall:2', { kind: 'stall' });
    const t = Date.now();
    const err = await criRejection(cri.pullImage('r.example/stall:2', undefined, { signal: new AbortController().signal, deadline: Date.now() + 300 }));
    const elapsed = Date.now() - t;
    expect(err.codeName).to.equal('DEADLINE_EXCEEDED');
    expect(elapsed).to.be.within(250, 2000);
    await waitFor(() => fake!.activePulls === 0, { what: 'the fake to release the pull', timeoutMs: 5000 });
    expect(fake!.callsOf('PullImage', 'r.example/stall:2')[0]?.outcome).to.equal('cancelled');
  });

  it('ends a stalled pull at an AbortSignal.timeout', async () => {
    fake!.script('r.example/stall:3', { kind: 'stall' });
    const err = await criRejection(cri.pullImage('r.example/stall:3', undefined, { signal: AbortSignal.timeout(200) }));
    expect(err.codeName).to.equal('CANCELLED');
    expect((err.cause as Error).name).to.equal('TimeoutError');
  });

  it('does not call the runtime when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await criRejection(cri.pullImage('r.example/never:1', undefined, { signal: ac.signal }));
    expect(err.codeName).to.equal('CANCELLED');
    expect(fake!.callsOf('PullImage')).to.deep.equal([]);
  });

  it('surfaces a scripted error with its gRPC code and message', async () => {
    const message = 'failed to pull and unpack image "r.example/app:1": failed to resolve reference: r.example/app:1: not found';
    fake!.script('r.example/app:1', { kind: 'fail', code: status.NOT_FOUND, message });
    const err = await criRejection(cri.pullImage('r.example/app:1', undefined, opts()));
    expect(err.code).to.equal(status.NOT_FOUND);
    expect(err.codeName).to.equal('NOT_FOUND');
    expect(err.details).to.equal(message);
    expect(err.message).to.equal(`CRI PullImage: NOT_FOUND: ${message}`);

    fake!.script('r.example/app:2', { kind: 'fail', code: status.UNKNOWN, message: 'unexpected status: 503 Service Unavailable' });
    const err2 = await criRejection(cri.pullImage('r.example/app:2', undefined, opts()));
    expect([err2.codeName, err2.details]).to.deep.equal(['UNKNOWN', 'unexpected status: 503 Service Unavailable']);
  });

  it('surfaces errors of the other calls the same way', async () => {
    fake!.failMethod('ImageStatus', { code: status.UNAVAILABLE, message: 'runtime is restarting' });
    const err = await criRejection(cri.imageStatus('r.example/a:1', opts()));
    expect([err.method, err.codeName, err.details]).to.deep.equal(['ImageStatus', 'UNAVAILABLE', 'runtime is restarting']);
    fake!.failMethod('ImageStatus', undefined);
    expect(await cri.imageStatus('r.example/a:1', opts())).to.equal(undefined);
  });

  it('fails N times, then succeeds, as scripted; the image then shows up', async () => {
    fake!.script('r.example/flaky:1', { kind: 'failTimes', times: 2, code: status.UNAVAILABLE, message: 'connection reset' });
    for (let i = 0; i < 2; i++) {
      expect((await criRejection(cri.pullImage('r.example/flaky:1', undefined, opts()))).codeName).to.equal('UNAVAILABLE');
    }
    const id = await cri.pullImage('r.example/flaky:1', undefined, opts());
    expect(id).to.match(/^sha256:[0-9a-f]{64}$/);
    expect((await cri.imageStatus('r.example/flaky:1', opts()))?.id).to.equal(id);
    expect((await cri.listImages(opts())).map((i) => i.id)).to.deep.equal([id]);
    await cri.removeImage('r.example/flaky:1', opts());
    expect(await cri.imageStatus('r.example/flaky:1', opts())).to.equal(undefined);
  });

  it('passes credentials through unchanged apart from the server address scheme', async () => {
    await cri.pullImage('r.example/private:1', { username: 'u', password: 'p', serverAddress: 'r.example' }, opts());
    expect(fake!.callsOf('PullImage', 'r.example/private:1')[0]?.auth).to.include({ username: 'u', password: 'p', serverAddress: 'https://r.example' });
  });

  it('counts current and maximum concurrent pulls', async () => {
    for (const n of [1, 2, 3]) fake!.script(`r.example/slow:${n}`, { kind: 'succeed', delayMs: 300 });
    const pulls = [1, 2, 3].map((n) => cri.pullImage(`r.example/slow:${n}`, undefined, opts()));
    await waitFor(() => fake!.activePulls === 3, { what: 'three pulls in flight', timeoutMs: 5000 });
    await Promise.all(pulls);
    expect(fake!.activePulls).to.equal(0);
    expect(fake!.maxActivePulls).to.equal(3);
  });

  it('reports image filesystem usage and scripted containers', async () => {
    fake!.addImage('r.example/a:1', 1000);
    fake!.addImage('r.example/b@sha256:' + 'b'.repeat(64), 500);
    const fs = await cri.imageFsInfo(opts());
    expect(fs.imageFilesystems.map((f) => [f.usedBytes, f.inodesUsed])).to.deep.equal([[1500, 2]]);
    fake!.setContainers([{ id: 'c1', name: 'app', image: 'r.example/a:1', imageRef: 'sha256:aa', state: 'CONTAINER_RUNNING' }]);
    const containers = await cri.listContainers(opts());
    expect(containers.map((c) => [c.id, c.name, c.image, c.state])).to.deep.equal([['c1', 'app', 'r.example/a:1', 'running']]);
  });

  it('lets calls in flight finish on close() and refuses later ones with CANCELLED', async () => {
    const own = new GrpcImageRuntime({ endpoint: fake!.socket });
    fake!.script('r.example/closing:1', { kind: 'succeed', delayMs: 300 });
    const inFlight = own.pullImage('r.example/closing:1', undefined, opts());
    await waitFor(() => fake!.activePulls === 1, { what: 'the pull to reach the fake', timeoutMs: 5000 });
    own.close();
    expect(await inFlight).to.match(/^sha256:/);
    const err = await criRejection(own.version(opts()));
    expect(err.codeName).to.equal('CANCELLED');
    expect(err.details).to.match(/^not sent: /);
  });

  it('fails fast with UNAVAILABLE when nothing listens on the socket', async () => {
    const gone = new GrpcImageRuntime({ endpoint: `${fake!.socket}.missing` });
    try {
      const t = Date.now();
      const err = await criRejection(gone.version(opts()));
      expect(err.codeName).to.equal('UNAVAILABLE');
      expect(Date.now() - t).to.be.lessThan(2000);
    } finally {
      gone.close();
    }
  });
});
