import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml } from '@kubernetes/client-node';
import { customResourceDefinition } from '../../../api/crd.ts';
import { API_REFERENCE_PATH, CRD_DIRECTORIES, CRD_FILE_PATTERN, crdFileName, generatedFiles } from '../../../api/generated-files.ts';
import { decode, walk } from '../../../api/schema.ts';
import { kinds } from '../../../api/v1alpha1/index.ts';

const root = join(import.meta.dirname, '..', '..', '..');

function read(path: string): string | undefined {
  const full = join(root, path);
  return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
}

// loadYaml would turn a CRD into client-node's model classes; wrapped under a key it stays plain JSON.
function parseYaml(text: string): unknown {
  const wrapped = `doc:\n${text.split('\n').map((l) => `  ${l}`).join('\n')}`;
  const parsed = loadYaml<unknown>(wrapped);
  return typeof parsed === 'object' && parsed !== null && 'doc' in parsed ? parsed.doc : undefined;
}

function kindNamed(kind: string): (typeof kinds)[number] {
  const def = kinds.find((k) => k.names.kind === kind);
  if (def === undefined) throw new Error(`no kind ${kind}`);
  return def;
}

describe('api/generate: committed files', () => {
  it('match what api/v1alpha1 generates (run `npm run crds` when this fails)', () => {
    const drifted = generatedFiles(read('README.md')).filter((f) => read(f.path) !== f.content).map((f) => f.path);
    expect(drifted, 'drifted files').to.deep.equal([]);
  });

  it('include the README, whose API section carries every spec field', () => {
    const readme = generatedFiles(read('README.md')).find((f) => f.path === 'README.md');
    expect(readme?.content).to.include('`spec.selector.matchLabels`').and.include('`spec.imageDigest`').and.include('`spec.maxConcurrentPulls`');
  });

  it('leave no CRD file of a kind that no longer exists', () => {
    const wanted = new Set(generatedFiles().map((f) => f.path));
    const stale = CRD_DIRECTORIES.flatMap((dir) => readdirSync(join(root, dir)).filter((n) => CRD_FILE_PATTERN.test(n)).map((n) => `${dir}/${n}`))
      .filter((p) => !wanted.has(p));
    expect(stale).to.deep.equal([]);
  });

  it('give the chart byte-identical copies of the CRDs', () => {
    for (const def of kinds) {
      const [first, ...others] = CRD_DIRECTORIES.map((dir) => read(`${dir}/${crdFileName(def)}`));
      expect(first, crdFileName(def)).to.be.a('string');
      for (const other of others) expect(other).to.equal(first);
    }
  });

  it('parse back to exactly the CRD objects', () => {
    for (const def of kinds) {
      const text = read(`${CRD_DIRECTORIES[0]}/${crdFileName(def)}`) ?? '';
      expect(parseYaml(text)).to.deep.equal(customResourceDefinition(def));
    }
  });

  it('document every spec and status field in the API reference', () => {
    const doc = read(API_REFERENCE_PATH) ?? '';
    for (const def of kinds) {
      for (const [part, schema] of [['spec', def.spec], ['status', def.status]] as const) {
        for (const { path } of walk(schema)) {
          if (path === '' || path.endsWith('[]') || path.endsWith('[*]')) continue;
          expect(doc, `${def.names.kind} ${part}.${path}`).to.include(`| \`${part}.${path}\` |`);
        }
      }
    }
    expect(doc).to.include('no effect');
  });
});

describe('api/v1alpha1 CRD schemas', () => {
  it('bound every list, map and free-form string so CEL cost estimates stay low', () => {
    const unbounded: string[] = [];
    for (const def of kinds) {
      for (const [part, schema] of [['spec', def.spec], ['status', def.status]] as const) {
        for (const { path, schema: node } of walk(schema)) {
          const d = node.def;
          const where = `${def.names.kind}.${part}.${path}`;
          if (d.kind === 'array' && d.maxItems === undefined) unbounded.push(`${where} (maxItems)`);
          if (d.kind === 'map' && d.maxProperties === undefined) unbounded.push(`${where} (maxProperties)`);
          if (d.kind === 'string' && d.values === undefined && d.format === undefined && d.maxLength === undefined) unbounded.push(`${where} (maxLength)`);
          if (d.kind === 'int-or-string' && d.maxLength === undefined) unbounded.push(`${where} (maxLength)`);
        }
      }
    }
    expect(unbounded).to.deep.equal([]);
  });

  it('describe every field, so kubectl explain has something to show', () => {
    const undocumented: string[] = [];
    for (const def of kinds) {
      for (const [part, schema] of [['spec', def.spec], ['status', def.status]] as const) {
        for (const { path, schema: node } of walk(schema)) {
          if (path.endsWith('[]') || path.endsWith('[*]')) continue;
          if (node.common.description === undefined) undocumented.push(`${def.names.kind}.${part}.${path}`);
        }
      }
    }
    expect(undocumented).to.deep.equal([]);
  });

  it('have defaults that are valid values of their own fields', () => {
    for (const def of kinds) {
      for (const schema of [def.spec, def.status]) {
        for (const { path, schema: node } of walk(schema)) {
          if (node.common.defaultValue === undefined) continue;
          const r = decode(node, node.common.defaultValue);
          expect(r.ok ? [] : r.errors, `${def.names.kind} ${path}`).to.deep.equal([]);
        }
      }
    }
  });

  it('name the kinds, scopes, short names and category as the README and DESIGN say', () => {
    const summary = kinds.map((k) => {
      const crd = customResourceDefinition(k) as { spec: { scope: string; names: { shortNames: string[]; categories: string[] } } };
      return [k.names.kind, crd.spec.scope, crd.spec.names.shortNames, crd.spec.names.categories];
    });
    expect(summary).to.deep.equal([
      ['PrePullPolicy', 'Cluster', ['ppp'], ['kwarm']],
      ['PrePullImage', 'Namespaced', ['ppi'], ['kwarm']],
      ['NodeImageSet', 'Cluster', ['nis'], ['kwarm']],
    ]);
  });

  it('print the columns DESIGN.md asks for', () => {
    const columns = (kind: string): string[] => {
      const crd = customResourceDefinition(kindNamed(kind)) as { spec: { versions: { additionalPrinterColumns: { name: string }[] }[] } };
      return crd.spec.versions[0]?.additionalPrinterColumns.map((c) => c.name.toUpperCase()) ?? [];
    };
    // Plus the container starts (issue 13), shown with -o wide.
    expect(columns('PrePullImage')).to.deep.equal(['IMAGE', 'READY', 'PHASE', 'WARM', 'COLD', 'SAVED', 'AGE']);
    expect(columns('NodeImageSet')).to.deep.equal(['DESIRED', 'READY', 'PULLING', 'FAILED', 'AGE']);
    expect(columns('PrePullPolicy')).to.deep.equal(['WORKLOADS', 'READY', 'AGE']);
  });

  it('serve and store v1alpha1 with a status subresource', () => {
    for (const def of kinds) {
      const crd = customResourceDefinition(def) as { spec: { versions: Record<string, unknown>[] } };
      expect(crd.spec.versions).to.have.length(1);
      expect(crd.spec.versions[0]).to.include({ name: 'v1alpha1', served: true, storage: true });
      expect(crd.spec.versions[0]?.subresources).to.deep.equal({ status: {} });
    }
  });
});
