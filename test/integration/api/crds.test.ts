// The kwarm.io/v1alpha1 CRDs on a real kube-apiserver: install, defaults, printer columns, explain,
// and rejection of bad input by the schemas and CEL rules.
import { expect } from 'chai';
import { join } from 'node:path';
import { crdName } from '../../../api/crd.ts';
import { decode, type AnySchema } from '../../../api/schema.ts';
import { AGENT_FIELD_MANAGER, CONTROLLER_FIELD_MANAGER } from '../../../api/v1alpha1/labels.ts';
import {
  kinds,
  nodeImageSetSchema,
  prePullImageSchema,
  prePullPolicySchema,
  prePullPolicySpecSchema,
} from '../../../api/v1alpha1/index.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { createKeyedNodeImageSetCrd, installCrds, installedNodeImageSetCrd } from '../../../local-cluster/crds.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import {
  invalidCases,
  invalidImageReferences,
  validImage,
  validImageReferences,
  validNodeImageSet,
  validPolicy,
  type KindName,
} from '../../unit/api/validation-cases.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const samplesDir = join(root, 'deploy', 'samples');

const schemas: Record<KindName, AnySchema> = {
  PrePullPolicy: prePullPolicySchema,
  PrePullImage: prePullImageSchema,
  NodeImageSet: nodeImageSetSchema,
};

function parseJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

function decodedOrThrow(schema: AnySchema, value: unknown): unknown {
  const r = decode(schema, value);
  if (!r.ok) throw new Error(`does not decode:\n${r.errors.join('\n')}`);
  return r.value;
}

function specOf(value: unknown): unknown {
  return typeof value === 'object' && value !== null && 'spec' in value ? value.spec : undefined;
}

/** The sample as a JSON object, through kubectl's own YAML reader. */
async function sampleObject(cp: ControlPlane, file: string): Promise<unknown> {
  const { stdout } = await cp.kubectl(['create', '--dry-run=client', '-o', 'json', '-f', join(samplesDir, file)]);
  return parseJson(stdout);
}

/** True when `stderr` names `field` and says `message` about it. */
function namesField(stderr: string, field: string, message: string): boolean {
  const at = stderr.indexOf(`${field}: `);
  return at >= 0 && stderr.indexOf(message, at) > at;
}

/** Whitespace collapsed, so text kubectl wraps still matches. */
function squash(text: string): string {
  return text.replace(/\s+/gu, ' ');
}

describe('kwarm.io/v1alpha1 CRDs on a real API server', function () {
  this.timeout(180_000);
  let cp: ControlPlane;

  before(async function () {
    cp = await sharedControlPlane();
    const started = Date.now();
    await installCrds(cp);
    console.log(`    [api] ${kinds.length} CRDs applied and served in ${Date.now() - started} ms`);
  });

  it('installs every CRD, Established with its names accepted', async () => {
    for (const def of kinds) {
      const { stdout } = await cp.kubectl(['get', 'crd', crdName(def.names), '-o', 'json']);
      const crd = parseJson(stdout) as { status: { conditions: { type: string; status: string }[]; acceptedNames: { shortNames: string[]; categories: string[] } } };
      const status = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
      expect(status, def.names.kind).to.include({ Established: 'True', NamesAccepted: 'True' });
      expect(crd.status.acceptedNames.shortNames).to.deep.equal([...def.names.shortNames]);
      expect(crd.status.acceptedNames.categories).to.deep.equal(['kwarm']);
    }
    // Short names and the category resolve.
    await cp.kubectl(['get', 'ppp,ppi,nis', '-A']);
    await cp.kubectl(['get', 'kwarm', '-A']);
  });

  describe('samples', () => {
    const files = ['prepullpolicy_basic.yaml', 'prepullpolicy_full.yaml', 'prepullimage_manual.yaml'] as const;
    const kindOf = { 'prepullpolicy_basic.yaml': 'PrePullPolicy', 'prepullpolicy_full.yaml': 'PrePullPolicy', 'prepullimage_manual.yaml': 'PrePullImage' } as const;

    after(async () => {
      for (const file of [...files, 'deployment_example.yaml']) {
        await cp.kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', join(samplesDir, file)]);
      }
    });

    for (const file of files) {
      it(`${file} applies unchanged and reads back with the defaults the decoder fills in`, async () => {
        const path = join(samplesDir, file);
        await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '-f', path]);
        const { stdout } = await cp.kubectl(['get', '-f', path, '-o', 'json']);
        const stored = parseJson(stdout);
        const schema = schemas[kindOf[file]];
        // The server's defaulting and the decoder's agree, and the stored object decodes.
        expect(specOf(stored)).to.deep.equal(specOf(decodedOrThrow(schema, await sampleObject(cp, file))));
        decodedOrThrow(schema, stored);
      });
    }

    it('prepullpolicy_basic.yaml gets the README defaults it leaves out', async () => {
      await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '-f', join(samplesDir, 'prepullpolicy_basic.yaml')]);
      const { stdout } = await cp.kubectl(['get', 'prepullpolicy', 'default', '-o', 'jsonpath={.spec.imagePullSecrets}|{.spec.workloadKinds}']);
      expect(stdout).to.equal('{"additional":[],"inherit":false}|["Deployment"]');
    });

    it('deployment_example.yaml applies unchanged and carries the label the basic policy selects', async () => {
      const path = join(samplesDir, 'deployment_example.yaml');
      await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '-f', path]);
      const { stdout } = await cp.kubectl(['get', '-f', path, '-o', 'jsonpath={.metadata.namespace}|{.metadata.labels.kwarm\\.io/enabled}']);
      expect(stdout).to.equal('default|true');
    });

    it('the kustomization builds every sample', async () => {
      const { stdout } = await cp.kubectl(['kustomize', samplesDir]);
      const kindsBuilt = [...stdout.matchAll(/^kind: (\w+)$/gmu)].map((m) => m[1]).sort();
      expect(kindsBuilt).to.deep.equal(['Deployment', 'PrePullImage', 'PrePullPolicy', 'PrePullPolicy']);
      await cp.kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=kwarm-tests', '-k', samplesDir]);
    });
  });

  describe('defaults', () => {
    const created: string[][] = [];
    after(async () => {
      for (const args of created) await cp.kubectl(['delete', '--ignore-not-found', '--wait=false', ...args]);
    });

    it('fills every README default into a PrePullPolicy that only sets its selector', async () => {
      const policy = validPolicy();
      await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(policy) });
      const name = (policy.metadata as { name: string }).name;
      created.push(['prepullpolicy', name]);
      const { stdout } = await cp.kubectl(['get', 'prepullpolicy', name, '-o', 'json']);
      expect(specOf(parseJson(stdout))).to.deep.equal({
        selector: { matchLabels: { app: 'web' } },
        workloadKinds: ['Deployment'],
        nodeSelector: { matchLabels: {} },
        resources: { requests: { memory: '64Mi', cpu: '100m' } },
        retry: { maxAttempts: 3, backoffSeconds: 30 },
        timeout: '10m',
        imagePullSecrets: { inherit: false, additional: [] },
        purgeOnDelete: false,
        gateNewNodes: false,
      });
      expect(specOf(parseJson(stdout))).to.deep.equal(decodedOrThrow(prePullPolicySpecSchema, policy.spec));
    });

    for (const [kind, object, resource] of [
      ['PrePullImage', validImage(), 'prepullimage'],
      ['NodeImageSet', validNodeImageSet(), 'nodeimageset'],
    ] as const) {
      it(`fills the same defaults into a minimal ${kind} as the decoder`, async () => {
        await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(object) });
        const name = (object.metadata as { name: string }).name;
        created.push([resource, name]);
        const { stdout } = await cp.kubectl(['get', resource, name, '-o', 'json']);
        expect(specOf(parseJson(stdout))).to.deep.equal(specOf(decodedOrThrow(schemas[kind], object)));
      });
    }
  });

  describe('kubectl output', () => {
    before(async () => {
      const objects = [
        { ...validPolicy(), metadata: { name: 'columns-policy' } },
        { ...validImage({ image: 'registry.example.com/team/columns:v1' }), metadata: { name: 'columns-image', namespace: 'default' } },
        { ...validNodeImageSet(), metadata: { name: 'columns-node' } },
      ];
      await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
      const now = new Date().toISOString().replace(/\.\d+Z$/u, 'Z');
      const statuses: [string, unknown][] = [
        ['prepullpolicy/columns-policy', { watchedWorkloads: 2, conditions: [{ type: 'Ready', status: 'True', reason: 'Prepulled', message: 'all images present', lastTransitionTime: now }] }],
        ['prepullimage/columns-image', { phase: 'InProgress', ready: '1/3', summary: { total: 3, pending: 1, pulling: 1, completed: 1, failed: 0 } }],
        ['nodeimageset/columns-node', { desired: 4, ready: 2, pulling: 1, failed: 1 }],
      ];
      for (const [target, status] of statuses) {
        await cp.kubectl(['patch', target, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
      }
    });

    after(async () => {
      await cp.kubectl(['delete', '--ignore-not-found', '--wait=false', 'prepullpolicy/columns-policy', 'nodeimageset/columns-node']);
      await cp.kubectl(['delete', '--ignore-not-found', '--wait=false', '-n', 'default', 'prepullimage/columns-image']);
    });

    it('kubectl get prepullimages,prepullpolicies,nodeimagesets prints the columns', async () => {
      const { stdout } = await cp.kubectl(['get', 'prepullimages,prepullpolicies,nodeimagesets']);
      const tables = stdout.trim().split(/\n\s*\n/u).map((t) => t.split('\n').map((line) => line.trim().split(/\s{2,}/u)));
      const table = (header: string[]): Map<string, string[]> => {
        const found = tables.find((t) => JSON.stringify(t[0]) === JSON.stringify(header));
        expect(found, `a table headed ${header.join(' ')} in:\n${stdout}`).to.not.equal(undefined);
        return new Map((found ?? []).slice(1).map((row) => [row[0] ?? '', row.slice(1)]));
      };
      const images = table(['NAME', 'IMAGE', 'READY', 'PHASE', 'AGE']);
      expect(images.get('prepullimage.kwarm.io/columns-image')?.slice(0, 3)).to.deep.equal(['registry.example.com/team/columns:v1', '1/3', 'InProgress']);
      const policies = table(['NAME', 'WORKLOADS', 'READY', 'AGE']);
      expect(policies.get('prepullpolicy.kwarm.io/columns-policy')?.slice(0, 2)).to.deep.equal(['2', 'True']);
      const sets = table(['NAME', 'DESIRED', 'READY', 'PULLING', 'FAILED', 'AGE']);
      expect(sets.get('nodeimageset.kwarm.io/columns-node')?.slice(0, 4)).to.deep.equal(['4', '2', '1', '1']);
    });

    it('kubectl wait can wait for a PrePullImage Ready condition', async () => {
      const now = new Date().toISOString().replace(/\.\d+Z$/u, 'Z');
      const status = { phase: 'Completed', ready: '3/3', conditions: [{ type: 'Ready', status: 'True', reason: 'AllNodesReady', message: '3/3 nodes', lastTransitionTime: now }] };
      await cp.kubectl(['patch', '-n', 'default', 'prepullimage/columns-image', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
      const { stdout } = await cp.kubectl(['wait', '-n', 'default', '--for=condition=Ready', '--timeout=10s', 'prepullimage/columns-image']);
      expect(stdout).to.include('condition met');
    });

    it('kubectl explain prepullpolicy.spec shows every field with its description', async () => {
      const { stdout } = await cp.kubectl(['explain', 'prepullpolicy.spec']);
      const text = squash(stdout);
      const shape = prePullPolicySpecSchema.def.kind === 'object' ? prePullPolicySpecSchema.def.shape : {};
      const fields = Object.entries(shape);
      expect(fields.length).to.be.greaterThan(5);
      for (const [field, schema] of fields) {
        expect(stdout, field).to.match(new RegExp(`^\\s+${field}\\s+<`, 'mu'));
        expect(text, field).to.include(squash(schema.common.description ?? `no description for ${field}`));
      }
      const resources = await cp.kubectl(['explain', 'prepullpolicy.spec.resources']);
      expect(squash(resources.stdout)).to.include('has no effect');
    });
  });

  describe('rejects bad input with a message naming the field', () => {
    it('accepts the valid objects the bad ones are made from', async () => {
      for (const object of [validPolicy(), validImage(), validNodeImageSet()]) {
        await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(object) });
      }
    });

    it('refuses a configMaps selector that would read every ConfigMap of the cluster (finding 15), and accepts it with labels or namespaces', async () => {
      const create = (configMaps: unknown): Promise<{ code: number; stderr: string }> =>
        cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(validPolicy({ configMaps })), allowFailure: true });
      const everything = await create({ selector: {} });
      expect(everything.code, 'kubectl exit code').to.not.equal(0);
      expect(everything.stderr).to.contain('spec.configMaps: Invalid value').and.to.contain('would read every ConfigMap of the cluster');
      for (const ok of [{ selector: {}, namespaces: ['ci'] }, { selector: { matchLabels: { images: 'true' } } }, { selector: { matchExpressions: [{ key: 'images', operator: 'Exists' }] } }]) {
        const r = await create(ok);
        expect(r.code, `${JSON.stringify(ok)}: ${r.stderr}`).to.equal(0);
      }
    });

    for (const c of invalidCases) {
      it(`rejects ${c.title} (${c.field})`, async () => {
        const { code, stderr } = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(c.object), allowFailure: true });
        expect(code, 'kubectl exit code').to.not.equal(0);
        expect(namesField(stderr, c.field, c.server), `expected "${c.field}: … ${c.server}" in:\n${stderr}`).to.equal(true);
      });
    }

    it('agrees with the decoder on which image references are valid', async () => {
      const verdicts: string[] = [];
      for (const [image, valid] of [...validImageReferences.map((r) => [r, true] as const), ...invalidImageReferences.map((r) => [r, false] as const)]) {
        const { code, stderr } = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(validImage({ image })), allowFailure: true });
        if ((code === 0) !== valid) verdicts.push(`${JSON.stringify(image)}: expected ${valid ? 'accepted' : 'rejected'}; ${stderr.trim()}`);
        if (!valid && code !== 0 && !stderr.includes('spec.image: ')) verdicts.push(`${JSON.stringify(image)}: error does not name spec.image: ${stderr.trim()}`);
      }
      expect(verdicts).to.deep.equal([]);
    });

    it('rejects lowering a NodeImageSet image round', async () => {
      const object = validNodeImageSet({ images: [{ image: 'registry.example.com/team/app:v1', round: 2 }] });
      const name = (object.metadata as { name: string }).name;
      await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(object) });
      try {
        const lower = { spec: { images: [{ image: 'registry.example.com/team/app:v1', round: 1 }] } };
        const { code, stderr } = await cp.kubectl(['patch', 'nodeimageset', name, '--type=merge', '-p', JSON.stringify(lower)], { allowFailure: true });
        expect(code).to.not.equal(0);
        expect(namesField(stderr, 'spec.images[0].round', 'must not decrease'), stderr).to.equal(true);
        const raise = { spec: { images: [{ image: 'registry.example.com/team/app:v1', round: 3 }] } };
        await cp.kubectl(['patch', 'nodeimageset', name, '--type=merge', '-p', JSON.stringify(raise)]);
      } finally {
        await cp.kubectl(['delete', '--ignore-not-found', '--wait=false', 'nodeimageset', name]);
      }
    });
  });

  describe('upgrade from the NodeImageSet lists keyed per entry (decision 0019)', () => {
    const GROUP = 'upgrade.kwarm-tests.io';
    const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
    const NAME = 'node-upgraded';
    const IMAGES = ['registry.example.com/team/a:v1', 'registry.example.com/team/b:v1'];

    /** The fields each manager owns, as JSON text, by manager. */
    function owned(o: unknown): Map<string, string> {
      const fields = (o as { metadata: { managedFields?: { manager: string; fieldsV1?: unknown }[] } }).metadata.managedFields ?? [];
      return new Map(fields.map((f) => [f.manager, JSON.stringify(f.fieldsV1)]));
    }

    it('keeps an object written with keyed lists writable by both binaries, and its managedFields shrink at their next writes', async () => {
      const client = new KubeClient(cp.kubeConfig(), { timeoutMs: 30_000 });
      const signal = AbortSignal.timeout(150_000);
      const path = `/apis/${GROUP}/v1alpha1/nodeimagesets/${NAME}`;
      const installed = await installedNodeImageSetCrd(client, signal);
      let round = 0;
      // As the controller applies a spec and the agent patches its status (controller/write, agent/status-reporter).
      const writeBoth = async (): Promise<unknown> => {
        round++;
        const images = IMAGES.map((image, i) => ({ image, round, sources: [{ namespace: 'team', name: `app-${i}` }, { namespace: 'team', name: 'shared' }] }));
        await client.apply(path, { apiVersion: `${GROUP}/v1alpha1`, kind: 'NodeImageSet', metadata: { name: NAME }, spec: { maxConcurrentPulls: 2, images, removals: [] } }, CONTROLLER_FIELD_MANAGER, signal);
        const at = new Date(Date.UTC(2026, 0, 1, 0, 0, round)).toISOString().replace(/\.\d+Z$/u, 'Z');
        const status = {
          images: IMAGES.map((image) => ({ image, phase: 'Completed', round, finishedAt: at })),
          pulledImageIds: IMAGES.map((_, i) => `sha256:${String(i).repeat(64)}`),
        };
        await client.patch(`${path}/status`, 'merge', { status }, signal, AGENT_FIELD_MANAGER);
        return client.get(path, signal);
      };
      try {
        await createKeyedNodeImageSetCrd(client, GROUP, signal);
        const before = await writeBoth();
        const keyed = owned(before);
        expect(keyed.get(AGENT_FIELD_MANAGER), 'the agent owns each status entry by its key').to.contain('k:{\\"image\\"').and.to.contain('v:\\"sha256:');
        expect(keyed.get(CONTROLLER_FIELD_MANAGER), 'the controller owns each source by its key').to.contain('k:{\\"name\\"');

        // The upgrade: the CRD takes today's schema. The API server reloads it on its own time, so both write again
        // until their managedFields show the atomic lists.
        await client.patch(`${CRDS}/nodeimagesets.${GROUP}`, 'merge', { spec: { versions: installed.spec.versions } }, signal);
        const after = await waitFor(async () => {
          const o = await writeBoth();
          const f = owned(o);
          return f.get(AGENT_FIELD_MANAGER)?.includes('k:{') === false && f.get(CONTROLLER_FIELD_MANAGER)?.includes('k:{\\"name\\"') === false ? o : undefined;
        }, { what: 'managedFields without per-entry keys in the atomic lists', timeoutMs: 60_000, intervalMs: 500 });
        const atomic = owned(after);
        expect(atomic.get(AGENT_FIELD_MANAGER)).to.contain('"f:images":{}').and.to.contain('"f:pulledImageIds":{}');
        expect((atomic.get(AGENT_FIELD_MANAGER) ?? '').length).to.be.below((keyed.get(AGENT_FIELD_MANAGER) ?? '').length);
        expect((atomic.get(CONTROLLER_FIELD_MANAGER) ?? '').length).to.be.below((keyed.get(CONTROLLER_FIELD_MANAGER) ?? '').length);
        // Both writers' data is all there, as written last.
        const o = after as { spec: { images: { image: string; round: number; sources: unknown[] }[] }; status: { images: { image: string; round: number }[]; pulledImageIds: string[] } };
        expect(o.spec.images.map((e) => [e.image, e.round, e.sources.length])).to.deep.equal(IMAGES.map((image) => [image, round, 2]));
        expect(o.status.images.map((e) => [e.image, e.round])).to.deep.equal(IMAGES.map((image) => [image, round]));
        expect(o.status.pulledImageIds).to.have.length(IMAGES.length);
      } finally {
        await client.delete(`${CRDS}/nodeimagesets.${GROUP}`, AbortSignal.timeout(30_000)).catch(() => undefined);
        client.close();
      }
    });
  });
});
