// A harness process for temp-dirs.test.ts: makes one temp dir per prefix on the command line (local-cluster/tmp.ts,
// so its first one sweeps the lists of dead owners), writes a file in each, prints the dirs as one JSON line, then
// waits to be killed; with --exit it ends at once instead.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../../../local-cluster/tmp.ts';

const args = process.argv.slice(2);
const dirs = args.filter((a) => a !== '--exit').map((prefix) => {
  const dir = makeTempDir(prefix);
  writeFileSync(join(dir, 'data'), 'made by temp-dir-owner.ts\n');
  return dir;
});
console.log(JSON.stringify(dirs));
if (!args.includes('--exit')) setInterval(() => undefined, 60_000);
