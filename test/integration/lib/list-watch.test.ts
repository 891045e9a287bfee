// lib/kube-client.ts and lib/list-watch.ts against a real API server: a restart of the API server, bookmarks
// on a quiet watch, and a connection that goes silent without closing (through a proxy, the one fault the
// real server cannot produce on demand).
import { expect } from 'chai';
import winston from 'winston';
import { KubeClient, KubeApiError, type ListPage, type ListQuery, type WatchEvent, type WatchHooks } from '../../../lib/kube-client.ts';
import { ListWatch } from '../../../lib/list-watch.ts';
import { startControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { startHalfOpenProxy } from './half-open-proxy.ts';

interface Projected { name: string; value: string | undefined }

function decode(raw: unknown): Projected | undefined {
  if (typeof raw !== 'object' || raw === null || !('metadata' in raw)) return undefined;
  const meta = raw.metadata as { name?: unknown; managedFields?: unknown };
  if (meta.managedFields !== undefined) throw new Error('managedFields reached decode');
  const data = 'data' in raw ? (raw.data as Record<string, string> | undefined) : undefined;
  return typeof meta.name === 'string' ? { name: meta.name, value: data?.value } : undefined;
}

/** The real client, counting its lists and recording the resourceVersion each watch starts from. */
class RecordingClient extends KubeClient {
  lists = 0;
  readonly watchedFrom: string[] = [];
  /** Whatever the test wants noted when each watch starts. */
  readonly notes: number[] = [];
  note: () => number = () => 0;

  override listPages(path: string, query: ListQuery, signal: AbortSignal): AsyncGenerator<ListPage, void, undefined> {
    this.lists++;
    return super.listPages(path, query, signal);
  }

  override watch(
    path: string,
    query: { resourceVersion: string; labelSelector?: string; fieldSelector?: string; timeoutSeconds?: number },
    onEvent: (ev: WatchEvent) => void,
    signal: AbortSignal,
    hooks?: WatchHooks,
  ): Promise<void> {
    this.watchedFrom.push(query.resourceVersion);
    this.notes.push(this.note());
    return super.watch(path, query, onEvent, signal, hooks);
  }
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

  it('follows bookmarks on a quiet watch, so the next watch resumes from a recent resourceVersion without a list', async () => {
    const signal = AbortSignal.timeout(120_000);
    const stop = new AbortController();
    await client.create('/api/v1/namespaces', { metadata: { name: 'lw-quiet' } }, signal);
    await client.create('/api/v1/namespaces', { metadata: { name: 'lw-busy' } }, signal);
    const recording = new RecordingClient(cp.kubeConfig());
    // 3-5 s watches: the API server sends a bookmark 2 s before each one times out.
    const lw = new ListWatch<Projected>({
      client: recording, path: '/api/v1/namespaces/lw-quiet/configmaps', decode, log, watchTimeoutSeconds: 3,
      onChange: () => undefined,
    });
    // Other namespaces keep changing the same resource; nothing this watch selects changes.
    let lastBusyRv = 0;
    recording.note = () => lastBusyRv;
    const writing = new AbortController();
    const writer = (async () => {
      for (let i = 0; !writing.signal.aborted; i++) {
        const cm = await client.apply(`/api/v1/namespaces/lw-busy/configmaps/busy`, {
          apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'busy' }, data: { i: String(i) },
        }, 'kwarm-test', signal) as { metadata: { resourceVersion: string } };
        lastBusyRv = Number(cm.metadata.resourceVersion);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const running = lw.run(AbortSignal.any([signal, stop.signal]));
    // Four watches: each but the last ends by its server-side timeout, after a bookmark.
    await waitFor(() => recording.watchedFrom.length >= 4, { what: 'four watches', timeoutMs: 60_000 });
    writing.abort();
    await writer;
    const from = recording.watchedFrom.map(Number);
    const story = `watches started from ${from.join(', ')}; writes elsewhere had reached ${recording.notes.join(', ')}`;
    // Without bookmarks every watch resumes from the list's resourceVersion, however far the resource has moved on.
    for (let i = 1; i < 4; i++) expect(from[i], story).to.be.at.least(recording.notes[i - 1] ?? Infinity);
    expect(from[3], story).to.be.greaterThan(from[0] ?? Infinity);
    expect(recording.lists, 'lists').to.equal(1);

    // And the quiet watch still delivers what it selects.
    await client.create('/api/v1/namespaces/lw-quiet/configmaps', { metadata: { name: 'q' }, data: { value: 'quiet' } }, signal);
    await waitFor(() => lw.get('lw-quiet/q')?.value === 'quiet', { what: 'the quiet watch to deliver q' });
    stop.abort();
    await running;
    recording.close();
  });

  it('tears down a watch whose connection goes silent, reports it unhealthy, and resumes without losing a change', async () => {
    const signal = AbortSignal.timeout(120_000);
    const stop = new AbortController();
    await client.create('/api/v1/namespaces', { metadata: { name: 'lw-silent' } }, signal);
    const proxy = await startHalfOpenProxy(new URL(cp.server));
    const viaProxy = new KubeClient(cp.kubeConfig(proxy.kubeconfig(cp.adminKubeconfig, cp.dir)), { watchIdleTimeoutMs: 3000, timeoutMs: 3000 });
    const lw = new ListWatch<Projected>({
      client: viaProxy, path: '/api/v1/namespaces/lw-silent/configmaps', decode, log, initialBackoffMs: 200, maxBackoffMs: 1000,
      onChange: () => undefined,
    });
    const running = lw.run(AbortSignal.any([signal, stop.signal]));
    try {
      await lw.waitForSync(signal);
      await client.create('/api/v1/namespaces/lw-silent/configmaps', { metadata: { name: 'before' }, data: { value: '1' } }, signal);
      await waitFor(() => lw.get('lw-silent/before')?.value === '1' && lw.healthy, { what: 'the watch to be open and deliver "before"' });

      proxy.freeze();
      const frozenAt = Date.now();
      await client.create('/api/v1/namespaces/lw-silent/configmaps', { metadata: { name: 'during' }, data: { value: '2' } }, signal);
      // Idle timeout 3 s on the stream, then 3 s on a reconnect that gets no answer.
      await waitFor(() => !lw.healthy, { what: 'the silent watch to be reported unhealthy', timeoutMs: 20_000 });
      expect(Date.now() - frozenAt).to.be.lessThan(15_000);
      expect(lw.lastError).to.match(/nothing received|no response|timed? ?out|aborted/i);
      expect(lw.get('lw-silent/during')).to.equal(undefined);

      proxy.thaw();
      await waitFor(() => lw.get('lw-silent/during')?.value === '2' && lw.healthy, { what: 'the watch to resume and deliver "during"', timeoutMs: 30_000 });
    } finally {
      stop.abort();
      await running;
      viaProxy.close();
      await proxy.stop();
    }
  });
});
