// lib/kube-client.ts and lib/list-watch.ts against a real API server, including a restart of the API server.
import { expect } from 'chai';
import winston from 'winston';
import { KubeClient, KubeApiError } from '../../../lib/kube-client.ts';
import { ListWatch } from '../../../lib/list-watch.ts';
import { startControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

interface Projected { name: string; value: string | undefined }

function decode(raw: unknown): Projected | undefined {
  if (typeof raw !== 'object' || raw === null || !('metadata' in raw)) return undefined;
  const meta = raw.metadata as { name?: unknown; managedFields?: unknown };
  if (meta.managedFields !== undefined) throw new Error('managedFields reached decode');
  const data = 'data' in raw ? (raw.data as Record<string, string> | undefined) : undefined;
  return typeof meta.name === 'string' ? { name: meta.name, value: data?.value } : undefined;
}

describe('lib: KubeClient and ListWatch on a real API server', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let client: KubeClient;
  const ac = new AbortController();
  const log = winston.createLogger({ silent: true });
  const path = '/api/v1/namespaces/lw/configmaps';

  before(async () => {
    cp = await startControlPlane();
    client = new KubeClient(cp.kubeConfig());
    await client.create('/api/v1/namespaces', { metadata: { name: 'lw' } }, ac.signal);
  });

  after(async () => {
    ac.abort();
    client.close();
    await cp.stop();
  });

  it('creates, applies, patches, reads and deletes with typed errors', async () => {
    await client.create(path, { metadata: { name: 'a' }, data: { value: '1' } }, ac.signal);
    await client.apply(`${path}/b`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' }, data: { value: '2' } }, 'kwarm-test', ac.signal);
    await client.patch(`${path}/a`, 'merge', { data: { value: '3' } }, ac.signal);
    const a = await client.get(`${path}/a`, ac.signal) as { data: { value: string } };
    expect(a.data.value).to.equal('3');
    expect(await client.getOptional(`${path}/missing`, ac.signal)).to.equal(undefined);
    const err = await client.create(path, { metadata: { name: 'a' } }, ac.signal).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(KubeApiError);
    expect((err as KubeApiError).status).to.equal(409);
    await client.delete(`${path}/b`, ac.signal);
    await client.delete(`${path}/b`, ac.signal); // 404 is success
    const page = await client.list(path, { limit: 1 }, ac.signal);
    expect(page.items).to.have.length(1);
  });

  it('keeps a projected cache in step, across an API server restart', async () => {
    const changes: string[] = [];
    const lw = new ListWatch<Projected>({
      client, path, decode, log, initialBackoffMs: 100, maxBackoffMs: 1000,
      onChange: (key, obj) => { changes.push(`${key}=${obj?.value ?? '<deleted>'}`); },
    });
    const running = lw.run(ac.signal);
    await lw.waitForSync(ac.signal);
    expect(lw.get('lw/a')?.value).to.equal('3');

    await client.create(path, { metadata: { name: 'c' }, data: { value: 'x' } }, ac.signal);
    await waitFor(() => lw.get('lw/c')?.value === 'x', { what: 'watch to deliver c' });
    await client.delete(`${path}/a`, ac.signal);
    await waitFor(() => lw.get('lw/a') === undefined, { what: 'watch to deliver the deletion of a' });

    await cp.restartApiServer();
    await client.patch(`${path}/c`, 'merge', { data: { value: 'after-restart' } }, ac.signal);
    await waitFor(() => lw.get('lw/c')?.value === 'after-restart', { what: 'the change made after the restart', timeoutMs: 60_000 });
    await waitFor(() => lw.healthy, { what: 'the watch to be open again' });
    expect(changes).to.include('lw/a=<deleted>');
    ac.abort();
    await running;
  });
});
