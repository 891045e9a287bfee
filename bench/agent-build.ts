// The agent as it ships: `npm run build`'s output (dist/, next to proto/ so the CRI proto is found),
// built here so benchmarks time the compiled JavaScript that Dockerfile.agent runs.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

export async function compiledAgent(): Promise<string> {
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const entry = join(ROOT, 'dist', 'agent', 'main.js');
  await new Promise<void>((resolve, reject) => {
    execFile(tsc, ['-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT }, (err, stdout) => {
      // Type errors elsewhere in the tree do not stop emitting; a missing output does.
      if (err !== null && !existsSync(entry)) reject(new Error(`tsc failed: ${stdout}`));
      else resolve();
    });
  });
  return entry;
}
