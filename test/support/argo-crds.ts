// Argo Workflows' kinds for tests, from CRDs kwarm's tests define themselves (test/support/argo-crds/*.yaml:
// only the fields kwarm reads are typed, the rest preserved). Installed and removed on a control plane,
// each call waiting until discovery agrees.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlPlane } from '../../local-cluster/control-plane.ts';
import { waitFor } from '../../local-cluster/wait.ts';

const DIR = join(import.meta.dirname, 'argo-crds');
const GROUP_VERSION = 'argoproj.io/v1alpha1';
export const ARGO_TEST_RESOURCES = ['workflowtemplates', 'clusterworkflowtemplates', 'cronworkflows'] as const;

function argoCrdFiles(): string[] {
  return readdirSync(DIR).filter((n) => n.endsWith('.yaml')).sort().map((n) => join(DIR, n));
}

/** Resources the API server lists for argoproj.io/v1alpha1 (none when the group is not served). */
async function servedArgoResources(cp: ControlPlane): Promise<Set<string>> {
  const { stdout, code } = await cp.kubectl(['get', '--raw', `/apis/${GROUP_VERSION}`], { allowFailure: true });
  if (code !== 0) return new Set();
  const parsed: unknown = JSON.parse(stdout);
  const names = new Set<string>();
  if (typeof parsed === 'object' && parsed !== null && 'resources' in parsed && Array.isArray(parsed.resources)) {
    for (const r of parsed.resources as unknown[]) {
      if (typeof r === 'object' && r !== null && 'name' in r && typeof r.name === 'string') names.add(r.name);
    }
  }
  return names;
}

/** Applies the three Argo CRDs and waits until they are Established and served. */
export async function installArgoCrds(cp: ControlPlane): Promise<void> {
  const files = argoCrdFiles();
  if (files.length !== ARGO_TEST_RESOURCES.length) throw new Error(`expected ${ARGO_TEST_RESOURCES.length} CRD files in ${DIR}, found ${files.length}`);
  await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', ...files.flatMap((f) => ['-f', f])]);
  await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...ARGO_TEST_RESOURCES.map((r) => `crd/${r}.argoproj.io`)]);
  await waitFor(async () => {
    const served = await servedArgoResources(cp);
    return ARGO_TEST_RESOURCES.every((r) => served.has(r));
  }, { what: `discovery of ${GROUP_VERSION} listing ${ARGO_TEST_RESOURCES.join(', ')}`, timeoutMs: 30_000, intervalMs: 200 });
}

/** Deletes the Argo CRDs (and with them every Argo object) and waits until discovery no longer lists them. */
export async function removeArgoCrds(cp: ControlPlane): Promise<void> {
  await cp.kubectl(['delete', '--ignore-not-found', '--wait=true', '--timeout=60s', ...ARGO_TEST_RESOURCES.map((r) => `crd/${r}.argoproj.io`)]);
  await waitFor(async () => (await servedArgoResources(cp)).size === 0, {
    what: `discovery of ${GROUP_VERSION} to list nothing`, timeoutMs: 30_000, intervalMs: 200,
  });
}
