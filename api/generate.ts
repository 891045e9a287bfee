// Writes the CRDs (deploy/crds, charts/kwarm/crds), docs/api-reference.md and the README's API tables from api/v1alpha1.
//   node api/generate.ts          write them
//   node api/generate.ts --check  exit 1 listing the files that differ from what would be written
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CRD_DIRECTORIES, CRD_FILE_PATTERN, README_PATH, generatedFiles } from './generated-files.ts';

const root = join(import.meta.dirname, '..');
const check = process.argv.includes('--check');
const files = generatedFiles(readFileSync(join(root, README_PATH), 'utf8'));
const wanted = new Set(files.map((f) => f.path));

// Generated CRDs of kinds that no longer exist.
const stale = CRD_DIRECTORIES.flatMap((dir) =>
  existsSync(join(root, dir)) ? readdirSync(join(root, dir)).filter((n) => CRD_FILE_PATTERN.test(n)).map((n) => `${dir}/${n}`) : [],
).filter((p) => !wanted.has(p));

const drifted = files.filter((f) => {
  const path = join(root, f.path);
  return !existsSync(path) || readFileSync(path, 'utf8') !== f.content;
});

if (check) {
  if (drifted.length > 0 || stale.length > 0) {
    for (const f of drifted) console.error(`drifted: ${f.path}`);
    for (const p of stale) console.error(`stale: ${p}`);
    console.error('The committed API files differ from api/v1alpha1: run `npm run crds` and commit the result.');
    process.exit(1);
  }
  console.log(`${files.length} generated API files are up to date`);
} else {
  for (const f of drifted) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true });
    writeFileSync(join(root, f.path), f.content);
    console.log(`wrote ${f.path}`);
  }
  for (const p of stale) {
    rmSync(join(root, p));
    console.log(`removed ${p}`);
  }
  if (drifted.length === 0 && stale.length === 0) console.log(`${files.length} generated API files are up to date`);
}
