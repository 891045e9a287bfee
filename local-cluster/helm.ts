// helm (built by local-cluster/tools/build-binaries.sh) run against a test control plane.
import { execFile } from 'node:child_process';
import { cachedBinary } from './binaries.ts';
import type { ControlPlane, KubectlResult } from './control-plane.ts';

export function helm(args: readonly string[], opts: { cp?: ControlPlane; allowFailure?: boolean } = {}): Promise<KubectlResult> {
  const kube = opts.cp === undefined ? [] : [`--kubeconfig=${opts.cp.adminKubeconfig}`];
  return new Promise((resolve, reject) => {
    execFile(cachedBinary('helm'), [...args, ...kube], { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, KUBECONFIG: '' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      if (code !== 0 && opts.allowFailure !== true) reject(new Error(`helm ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      else resolve({ stdout, stderr, code });
    });
  });
}
