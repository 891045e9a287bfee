// Where the harness finds the real binaries: the Go-built cache (build-binaries.sh) and the
// Debian packages installed by setup.sh. A missing binary fails the test with the fix to apply.
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export type CachedBinary = 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kubelet' | 'kube-proxy' | 'kubectl' | 'etcd' | 'helm' | 'prometheus';
export type SystemBinary = 'containerd' | 'docker-registry' | 'htpasswd' | 'runc';

export function cacheDir(): string {
  return process.env.KWARM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kwarm');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A binary built from its Go module by local-cluster/tools/build-binaries.sh. */
export function cachedBinary(name: CachedBinary): string {
  const path = join(cacheDir(), 'bin', name);
  if (!executable(path)) {
    const how = name === 'prometheus' ? "run 'npm run test:prometheus' (it builds prometheus from its Go module first)" : "run 'npm run setup' (local-cluster/tools/setup.sh builds it from its Go module)";
    throw new Error(`${name} not found at ${path}: ${how}`);
  }
  return path;
}

/** A binary from a Debian package, looked up on PATH (and the sbin directories). */
export function systemBinary(name: SystemBinary): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const dir of dirs) {
    if (dir !== '' && executable(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found on PATH: run 'npm run setup' (local-cluster/tools/setup.sh installs its Debian package)`);
}
