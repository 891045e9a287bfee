// The binaries as they ship: `npm run build`'s output (dist/, next to proto/ so the agent finds the CRI
// proto), built here so benchmarks measure the compiled JavaScript that the Dockerfiles run, not Node's
// type stripping (which alone adds about 27 MiB of RSS).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { load as loadYaml } from 'js-yaml';
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

/** The Node flags the chart gives the controller by default (values.yaml controller.maxHeapMiB). */
export function chartControllerNodeArgs(): string[] {
  const values: unknown = loadYaml(readFileSync(join(ROOT, 'charts', 'kwarm', 'values.yaml'), 'utf8'));
  const controller = typeof values === 'object' && values !== null && 'controller' in values ? values.controller : undefined;
  const heap = typeof controller === 'object' && controller !== null && 'maxHeapMiB' in controller ? controller.maxHeapMiB : undefined;
  if (typeof heap !== 'number') throw new Error('charts/kwarm/values.yaml: controller.maxHeapMiB is not a number');
  return heap > 0 ? [`--max-old-space-size=${String(heap)}`] : [];
}
