// Finding 6 of the expert review asked for an admission policy template that lets admins bound `timeout`,
// `retry` and `nodes` of PrePullImages in non-admin namespaces. Here the sample in deploy/samples/admission is
// applied to a real API server as a user would (kubectl apply -k), and server-side dry runs show what it refuses
// and what it lets through. It is removed again after the test, so later tests on this API server do not see it.
import { expect } from 'chai';
import { join } from 'node:path';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const SAMPLE = join(import.meta.dirname, '..', '..', '..', 'deploy', 'samples', 'admission');
const TENANT = 'f06-vap-tenant';
const ADMIN = 'f06-vap-admin';

describe('finding 06: the sample admission policy bounds PrePullImages outside admin namespaces', function () {
  this.timeout(120_000);
  let cp: ControlPlane;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
    await cp.kubectl(['create', 'namespace', TENANT]);
    await cp.kubectl(['create', 'namespace', ADMIN]);
    await cp.kubectl(['label', 'namespace', ADMIN, 'kwarm.io/prepull-admin=true']);
    await cp.kubectl(['apply', '-k', SAMPLE]);
  });

  after(async () => {
    await cp.kubectl(['delete', '-k', SAMPLE, '--wait=true'], { allowFailure: true });
    for (const ns of [TENANT, ADMIN]) await cp.kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
  });

  /** A server-side dry-run create: admission runs, nothing is stored. Returns kubectl's error text, or '' when accepted. */
  async function tryCreate(ns: string, spec: Record<string, unknown>): Promise<string> {
    const r = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], {
      allowFailure: true,
      input: JSON.stringify({ apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { name: 'probe', namespace: ns }, spec: { image: 'registry.invalid/f06/app:1', ...spec } }),
    });
    return r.code === 0 ? '' : r.stderr;
  }

  const within = { nodes: { selector: { matchLabels: { pool: 'web' } } }, timeout: '15m', retry: { maxAttempts: 3, backoffSeconds: 30 } };

  it('refuses a long timeout, many attempts, no back-off and every node in a tenant namespace; accepts what is within bounds', async () => {
    // The API server picks a new policy up asynchronously: wait until it refuses.
    await waitFor(async () => (await tryCreate(TENANT, { ...within, timeout: '24h' })).includes('spec.timeout may be at most 30m'), { what: 'the policy to refuse a 24h timeout', timeoutMs: 60_000 });
    expect(await tryCreate(TENANT, { ...within, retry: { maxAttempts: 100, backoffSeconds: 30 } })).to.contain('spec.retry.maxAttempts may be at most 5');
    expect(await tryCreate(TENANT, { ...within, retry: { maxAttempts: 3, backoffSeconds: 0 } })).to.contain('spec.retry.backoffSeconds must be at least 10');
    expect(await tryCreate(TENANT, { ...within, nodes: {} })).to.contain('spec.nodes must name at most 50 nodes');
    expect(await tryCreate(TENANT, { ...within, nodes: { names: Array.from({ length: 51 }, (_, i) => `n${i}`) } })).to.contain('spec.nodes must name at most 50 nodes');
    // Defaults (10m, 3 attempts, 30 s) are within bounds.
    expect(await tryCreate(TENANT, { nodes: { names: ['n1'] } })).to.equal('');
    expect(await tryCreate(TENANT, within)).to.equal('');
  });

  it('does not bind namespaces labelled kwarm.io/prepull-admin=true', async () => {
    expect(await tryCreate(ADMIN, { timeout: '24h', retry: { maxAttempts: 100, backoffSeconds: 0 } })).to.equal('');
  });
});
