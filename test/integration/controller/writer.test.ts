// The controller's one writer against a real API server: steps run in order, successful writes land in the
// overlays, a finalizer stays while the status recording its purge failed, and a step that needs everything
// before it written is skipped after a failure. The failure is injected (the API server cannot be told to
// refuse one request); every other request is real.
import { expect } from 'chai';
import winston from 'winston';
import type { PrePullImage } from '../../../api/v1alpha1/index.ts';
import { PURGE_FINALIZER } from '../../../api/v1alpha1/labels.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { getPrePullImage } from '../../../local-cluster/cluster-fixtures.ts';
import { ControllerMetrics } from '../../../controller/metrics.ts';
import { Overlays } from '../../../controller/write/overlays.ts';
import { Writer, type ApiWriter } from '../../../controller/write/writer.ts';
import type { WritePlan } from '../../../controller/write/writes.ts';

const NS = 'writer-test';
const KWARM = '/apis/kwarm.io/v1alpha1';

/** The real client, except that writes to `refused` paths fail as a broken API server would; `sent` counts requests by path. */
function refusing(client: KubeClient, refused: Set<string>, sent = new Map<string, number>()): ApiWriter {
  const check = (path: string): void => {
    sent.set(path, (sent.get(path) ?? 0) + 1);
    if (refused.has(path)) throw new Error(`injected: ${path} refused`);
  };
  return {
    apply: async (path, body, manager, signal) => { check(path); return client.apply(path, body, manager, signal); },
    patch: async (path, type, body, signal, manager) => { check(path); return client.patch(path, type, body, signal, manager); },
    create: async (path, body, signal) => { check(path); return client.create(path, body, signal); },
    delete: async (path, signal, body) => { check(path); await client.delete(path, signal, body); },
  };
}

describe('controller/write/writer on a real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let admin: KubeClient;
  const ac = new AbortController();
  const signal = ac.signal;
  const log = winston.createLogger({ silent: true });

  async function handWritten(name: string): Promise<PrePullImage> {
    await admin.create(`${KWARM}/namespaces/${NS}/prepullimages`, {
      apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage',
      metadata: { name, namespace: NS, finalizers: [PURGE_FINALIZER] },
      spec: { image: `r.example/${name}:1` },
    }, signal);
    const p = await getPrePullImage(admin, NS, name, signal);
    if (p === undefined) throw new Error(`${name} not created`);
    return p;
  }

  function writer(client: ApiWriter, overlays: Overlays): Writer {
    return new Writer({
      client, log, metrics: new ControllerMetrics(), namespace: NS, identity: 'writer-test', concurrency: 4, overlays, statusWrittenAt: new Map(),
    });
  }

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    admin = new KubeClient(cp.kubeConfig());
    await cp.kubectl(['create', 'namespace', NS]);
  });

  after(async () => {
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) {
      await admin.patch(`${KWARM}/namespaces/${NS}/prepullimages/${name}`, 'merge', { metadata: { finalizers: null } }, signal).catch(() => undefined);
    }
    await cp.kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFailure: true });
    ac.abort();
    admin.close();
  });

  it('keeps a finalizer whose status write failed, skips what needs a clean run, and records only what was written', async () => {
    const a = await handWritten('a');
    const b = await handWritten('b');
    const overlays = new Overlays();
    const refused = new Set([`${KWARM}/namespaces/${NS}/prepullimages/a/status`]);
    const status = { observedGeneration: 1, phase: 'Completed' as const };
    const event = { type: 'Normal' as const, reason: 'Purged' as const, message: 'test' };
    const plan: WritePlan = [
      { writes: [a, b].map((ppi) => ({ kind: 'prePullImageStatus' as const, key: `${NS}/${ppi.metadata.name ?? ''}`, ppi, status, events: [event] })) },
      { writes: [a, b].map((ppi) => ({ kind: 'releaseFinalizer' as const, key: `${NS}/${ppi.metadata.name ?? ''}`, ppi })) },
      {
        writes: [{ kind: 'event', subject: { namespace: NS, name: 'b', uid: b.metadata.uid ?? '' }, involved: { apiVersion: 'v1', kind: 'ConfigMap' }, event }],
        onlyIfNoFailure: true,
      },
    ];
    const result = await writer(refusing(admin, refused), overlays).apply(plan, Date.now(), signal);
    expect(result.failed).to.equal(true);
    expect([...result.skipped]).to.deep.equal([2]);

    const [afterA, afterB] = await Promise.all([getPrePullImage(admin, NS, 'a', signal), getPrePullImage(admin, NS, 'b', signal)]);
    expect(afterA?.metadata.finalizers).to.deep.equal([PURGE_FINALIZER]);
    expect(afterA?.status?.phase).to.equal(undefined);
    expect(afterB?.metadata.finalizers ?? []).to.deep.equal([]);
    expect(afterB?.status?.phase).to.equal('Completed');
    // b's status is remembered until the cache shows it; a's was never written.
    expect(overlays.prePullImageStatus(`${NS}/b`, b)?.phase).to.equal('Completed');
    expect(overlays.prePullImageStatus(`${NS}/a`, a)).to.equal(undefined);
    const events = await admin.get(`/api/v1/namespaces/${NS}/events`, signal) as { items: { reason: string; involvedObject: { kind: string; name: string } }[] };
    expect(events.items.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name}/${e.reason}`)).to.deep.equal(['PrePullImage/b/Purged']);
  });

  it('counts an object already gone as done, and remembers the delete until the cache drops it', async () => {
    const overlays = new Overlays();
    const gone = { apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { namespace: NS, name: 'never-there' }, spec: { image: 'r.example/x:1' } } as unknown as PrePullImage;
    const result = await writer(admin, overlays).apply([{ writes: [{ kind: 'deletePrePullImage', key: `${NS}/never-there`, ppi: gone }] }], Date.now(), signal);
    expect(result.failed).to.equal(false);
    expect(overlays.deletions.unshown(`${NS}/never-there`, gone)).to.equal(true);
    expect(overlays.deletions.unshown(`${NS}/never-there`, undefined)).to.equal(undefined);
  });

  it('holds a failed write back until its own back-off passes, sends the others, and sends a changed write at once', async () => {
    const c = await handWritten('c');
    const d = await handWritten('d');
    const statusPath = (name: string): string => `${KWARM}/namespaces/${NS}/prepullimages/${name}/status`;
    const refused = new Set([statusPath('c')]);
    const sent = new Map<string, number>();
    const w = writer(refusing(admin, refused, sent), new Overlays());
    const plan = (phase: 'InProgress' | 'Completed'): WritePlan => [
      { writes: [c, d].map((ppi) => ({ kind: 'prePullImageStatus' as const, key: `${NS}/${ppi.metadata.name ?? ''}`, ppi, status: { observedGeneration: 1, phase }, events: [] })) },
    ];
    const t0 = Date.now();
    const first = await w.apply(plan('InProgress'), t0, signal);
    expect(first.failed).to.equal(true);
    // The first back-off: 0.4 s.
    expect(first.retryAtMs).to.equal(t0 + 400);
    // Before it is due, c is not sent again; d is.
    const second = await w.apply(plan('InProgress'), t0 + 100, signal);
    expect(second.failed).to.equal(true);
    expect(second.retryAtMs).to.equal(t0 + 400);
    expect(sent.get(statusPath('c'))).to.equal(1);
    expect(sent.get(statusPath('d'))).to.equal(2);
    // Due: sent, refused again, and the next back-off doubles.
    const third = await w.apply(plan('InProgress'), t0 + 400, signal);
    expect(sent.get(statusPath('c'))).to.equal(2);
    expect(third.retryAtMs).to.equal(t0 + 400 + 800);
    // A changed write is a new one: sent at once, and it lands once the API server accepts it.
    refused.clear();
    const changed = await w.apply(plan('Completed'), t0 + 500, signal);
    expect(sent.get(statusPath('c'))).to.equal(3);
    expect(changed).to.include({ failed: false, retryAtMs: undefined });
    expect((await getPrePullImage(admin, NS, 'c', signal))?.status?.phase).to.equal('Completed');
  });

  it('leaves progress-only status writes for the next pass while new work waits, but never in two applies in a row', async () => {
    const e = await handWritten('e');
    const f = await handWritten('f');
    const statusPath = (name: string): string => `${KWARM}/namespaces/${NS}/prepullimages/${name}/status`;
    const sent = new Map<string, number>();
    const w = writer(refusing(admin, new Set(), sent), new Overlays());
    const event = { type: 'Normal' as const, reason: 'Purged' as const, message: 'test' };
    // e only counts progress; f records a transition with an Event, which is never deferred.
    const plan: WritePlan = [{
      writes: [
        { kind: 'prePullImageStatus', key: `${NS}/e`, ppi: e, status: { observedGeneration: 1, phase: 'InProgress' }, events: [] },
        { kind: 'prePullImageStatus', key: `${NS}/f`, ppi: f, status: { observedGeneration: 1, phase: 'Completed' }, events: [event] },
      ],
    }];
    const t0 = Date.now();
    const first = await w.apply(plan, t0, signal, false, () => true);
    expect(first).to.include({ deferred: 1, failed: true, retryAtMs: t0 });
    expect(sent.get(statusPath('e'))).to.equal(undefined);
    expect(sent.get(statusPath('f'))).to.equal(1);
    // New work still waits, but the last apply deferred: this one writes everything.
    const second = await w.apply(plan, t0 + 10, signal, false, () => true);
    expect(second).to.include({ deferred: 0, failed: false });
    expect(sent.get(statusPath('e'))).to.equal(1);
    expect((await getPrePullImage(admin, NS, 'e', signal))?.status?.phase).to.equal('InProgress');
    // Without waiting work nothing is deferred.
    const third = await w.apply(plan, t0 + 20, signal, false, () => false);
    expect(third.deferred).to.equal(0);
    expect(sent.get(statusPath('e'))).to.equal(2);
  });
});
