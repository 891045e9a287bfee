// A harness process for temp-dirs.test.ts: makes one temp dir per prefix on the command line (local-cluster/tmp.ts,
// so its first one sweeps the lists of dead owners), writes a file in each, with --remove removes them again
// (removeDir, as a server's stop() does), prints the dirs as one JSON line, then waits to be killed; with --exit it
// ends at once instead.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';

const FLAGS = ['--exit', '--remove'];
const args = process.argv.slice(2);
const dirs = args.filter((a) => !FLAGS.includes(a)).map((prefix) => {
  const dir = makeTempDir(prefix);
  writeFileSync(join(dir, 'data'), 'made by temp-dir-owner.ts\n');
  return dir;
});
if (args.includes('--remove')) for (const d of dirs) removeDir(d);
console.log(JSON.stringify(dirs));
if (!args.includes('--exit')) setInterval(() => undefined, 60_000);
