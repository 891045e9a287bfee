// The binaries as they ship: `npm run build`'s output (dist/, next to proto/ so the agent finds the CRI
// proto), built here so benchmarks measure the compiled JavaScript that the Dockerfiles run, not Node's
// type stripping (which alone adds about 27 MiB of RSS).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

export function compiledAgent(): Promise<string> {
  return compiled('agent');
}

export function compiledController(): Promise<string> {
  return compiled('controller');
}

async function compiled(binary: 'agent' | 'controller'): Promise<string> {
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const entry = join(ROOT, 'dist', binary, 'main.js');
  await new Promise<void>((resolve, reject) => {
    execFile(tsc, ['-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT }, (err, stdout) => {
      // Type errors elsewhere in the tree do not stop emitting; a missing output does.
      if (err !== null && !existsSync(entry)) reject(new Error(`tsc failed: ${stdout}`));
      else resolve();
    });
  });
  return entry;
}
