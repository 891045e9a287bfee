// Installs kwarm's CRDs (deploy/crds, as committed) into a test control plane and waits until the API
// server serves them.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_FILE_PATTERN } from '../api/generated-files.ts';
import { crdName } from '../api/crd.ts';
import { API_VERSION, kinds, nodeImageSetDefinition } from '../api/v1alpha1/index.ts';
import type { KubeClient } from '../lib/kube-client.ts';
import type { ControlPlane } from './control-plane.ts';
import { errorText } from '../lib/errors.ts';
import { waitFor } from './wait.ts';

const CRD_DIR = join(import.meta.dirname, '..', 'deploy', 'crds');

export function crdFiles(): string[] {
  return readdirSync(CRD_DIR).filter((n) => CRD_FILE_PATTERN.test(n)).sort().map((n) => join(CRD_DIR, n));
}

function servedResources(discovery: string): Set<string> {
  const parsed: unknown = JSON.parse(discovery);
  const names = new Set<string>();
  if (typeof parsed === 'object' && parsed !== null && 'resources' in parsed && Array.isArray(parsed.resources)) {
    for (const r of parsed.resources as unknown[]) {
      if (typeof r === 'object' && r !== null && 'name' in r && typeof r.name === 'string') names.add(r.name);
    }
  }
  return names;
}

async function install(cp: ControlPlane): Promise<void> {
  const files = crdFiles();
  if (files.length !== kinds.length) {
    throw new Error(`expected ${kinds.length} CRD files in ${CRD_DIR}, found ${files.length}: run npm run crds`);
  }
  await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '--force-conflicts', ...files.flatMap((f) => ['-f', f])]);
  // kubectl wait fails at once (".status.conditions accessor error") when it reads a CRD before the API server
  // wrote its first status, as happens under load: ask again until Established or the minute is up.
  let last = '';
  await waitFor(async () => {
    const r = await cp.kubectl(['wait', '--for=condition=Established', '--timeout=10s', ...kinds.map((k) => `crd/${crdName(k.names)}`)], { allowFailure: true });
    last = r.stderr.trim();
    return r.code === 0;
  }, { what: 'kwarm\'s CRDs Established', timeoutMs: 60_000, intervalMs: 200 }).catch((err: unknown) => {
    throw new Error(`${errorText(err)}; kubectl wait said: ${last}`);
  });
  // Established comes a moment before discovery lists the resources; kubectl needs discovery.
  await waitFor(async () => {
    const { stdout, code } = await cp.kubectl(['get', '--raw', `/apis/${API_VERSION}`], { allowFailure: true });
    if (code !== 0) return false;
    const served = servedResources(stdout);
    return kinds.every((k) => served.has(k.names.plural));
  }, { what: `discovery of ${API_VERSION} listing ${kinds.map((k) => k.names.plural).join(', ')}`, timeoutMs: 30_000, intervalMs: 200 });
}

const installed = new WeakMap<ControlPlane, Promise<void>>();

/**
 * Applies deploy/crds/*.yaml server-side and waits until each CRD is Established and served.
 * Once per control plane; later calls wait for the first.
 */
export function installCrds(cp: ControlPlane): Promise<void> {
  let done = installed.get(cp);
  if (done === undefined) {
    done = install(cp);
    installed.set(cp, done);
    // A failed install may be retried by the next caller.
    done.catch(() => { installed.delete(cp); });
  }
  return done;
}

type SchemaNode = { properties?: Record<string, SchemaNode>; items?: SchemaNode } & Record<string, unknown>;

/** A CustomResourceDefinition as the API server returns it, read only as far as keyedNodeImageSetCrd needs. */
export interface CrdObject { spec: { versions: { schema: { openAPIV3Schema: SchemaNode } }[] } & Record<string, unknown> }

/**
 * kwarm's NodeImageSet CRD (`crd`, as the API server returns it) under another `group`, with the lists that
 * decision 0019 made atomic keyed per entry as before: for benchmarks that compare both layouts side by side,
 * and for tests of the upgrade from one to the other.
 */
function keyedNodeImageSetCrd(crd: CrdObject, group: string): unknown {
  const spec = structuredClone(crd.spec);
  for (const v of spec.versions) {
    const root = v.schema.openAPIV3Schema.properties;
    const lists: [SchemaNode | undefined, string[] | undefined][] = [
      [root?.spec?.properties?.images?.items?.properties?.sources, ['namespace', 'name']],
      [root?.spec?.properties?.removals?.items?.properties?.sources, ['namespace', 'name']],
      [root?.status?.properties?.images, ['image']],
      [root?.status?.properties?.removals, ['image']],
      [root?.status?.properties?.pulledImageIds, undefined],
    ];
    for (const [list, keys] of lists) {
      if (list === undefined) throw new Error('the NodeImageSet schema has changed: a list decision 0019 made atomic is gone');
      list['x-kubernetes-list-type'] = keys === undefined ? 'set' : 'map';
      if (keys !== undefined) list['x-kubernetes-list-map-keys'] = keys;
    }
  }
  // Without kwarm's short name and category, so that kubectl still finds only kwarm's own kind by them.
  const { shortNames: _short, categories: _categories, ...names } = spec['names'] as Record<string, unknown>;
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `nodeimagesets.${group}` }, spec: { ...spec, group, names },
  };
}

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

/** kwarm's NodeImageSet CRD as the API server serves it (installCrds first). */
export async function installedNodeImageSetCrd(client: KubeClient, signal: AbortSignal): Promise<CrdObject> {
  return await client.get(`${CRDS}/${crdName(nodeImageSetDefinition.names)}`, signal) as CrdObject;
}

/**
 * Creates kwarm's NodeImageSet CRD under `group` with the lists keyed per entry (keyedNodeImageSetCrd), waits
 * until the API server serves it, and returns its collection path.
 */
export async function createKeyedNodeImageSetCrd(client: KubeClient, group: string, signal: AbortSignal): Promise<string> {
  await client.create(CRDS, keyedNodeImageSetCrd(await installedNodeImageSetCrd(client, signal), group), signal);
  const path = `/apis/${group}/v1alpha1/${nodeImageSetDefinition.names.plural}`;
  await waitFor(() => client.get(path, signal).then(() => true), { what: `${path} served`, timeoutMs: 30_000 });
  return path;
}
