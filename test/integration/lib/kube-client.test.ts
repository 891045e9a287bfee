// KubeClient's paged list against a real API server: pages as they arrive, one resourceVersion, and items
// without managedFields (the server sends them; nothing in kwarm reads them).
import { expect } from 'chai';
import { KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';

describe('lib: KubeClient lists page by page', function () {
  this.timeout(120_000);
  const path = '/api/v1/namespaces/kube-client-pages/configmaps';
  let client: KubeClient;

  before(async () => {
    const cp = await sharedControlPlane();
    client = new KubeClient(cp.kubeConfig());
    const signal = AbortSignal.timeout(30_000);
    await client.create('/api/v1/namespaces', { metadata: { name: 'kube-client-pages' } }, signal).catch(() => undefined);
    for (let i = 0; i < 5; i++) {
      await client.apply(`${path}/cm-${i}`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` }, data: { i: String(i) } }, 'kwarm-test', signal);
    }
  });

  after(() => { client.close(); });

  it('yields each page as it arrives, all with the list\'s resourceVersion, items without managedFields', async () => {
    const signal = AbortSignal.timeout(30_000);
    const server = await client.get(`${path}/cm-0`, signal) as { metadata: { managedFields?: unknown[] } };
    expect(server.metadata.managedFields, 'the server does send managedFields').to.have.length.greaterThan(0);

    const sizes: number[] = [];
    const versions = new Set<string>();
    const names: string[] = [];
    for await (const page of client.listPages(path, { limit: 2 }, signal)) {
      sizes.push(page.items.length);
      versions.add(page.resourceVersion);
      for (const item of page.items) {
        const meta = (item as { metadata: { name: string; managedFields?: unknown } }).metadata;
        expect(meta.managedFields).to.equal(undefined);
        names.push(meta.name);
      }
    }
    expect(sizes).to.deep.equal([2, 2, 1]);
    expect(versions.size).to.equal(1);
    expect([...versions][0]).to.match(/^\d+$/);
    expect(names).to.deep.equal(['cm-0', 'cm-1', 'cm-2', 'cm-3', 'cm-4']);

    const all = await client.list(path, { limit: 2 }, signal);
    expect(all.items).to.have.length(5);
    expect(all.resourceVersion).to.match(/^\d+$/);
  });
});
