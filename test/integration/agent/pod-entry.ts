// Entry point that runs kwarm-agent the way its DaemonSet pod sees the node: startAgentProcess (in-cluster mode)
// starts it in a private mount namespace whose /run is a fresh tmpfs, like a container's own /run; this script
// then makes the chart's hostPath mounts there (a host directory or file bound at the pod's mountPath,
// read-only when the chart says so) and hands over to agent/main.ts with the same arguments.
// The mounts come as JSON in KWARM_TEST_POD_MOUNTS (a list of PodMount). Refuses to run in the host's mount
// namespace, and mounts only below /run, so nothing it does is visible outside the agent's process.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { POD_MOUNTS_ENV, TEST_MOUNT_NAMESPACE_ENV, type PodMount } from './chart-agent.ts';

function mountAll(mounts: readonly PodMount[], testMountNamespace: string | undefined): void {
  if (testMountNamespace === undefined || readlinkSync('/proc/self/ns/mnt') === testMountNamespace) {
    throw new Error('pod-entry: not in a private mount namespace; refusing to mount anything');
  }
  for (const m of mounts) {
    if (!m.target.startsWith('/run/')) throw new Error(`pod-entry: mount target ${m.target} is not below /run (the private tmpfs)`);
    // As the kubelet's runtime does: the mount point is a directory for a directory, an empty file otherwise.
    if (statSync(m.source).isDirectory()) mkdirSync(m.target, { recursive: true });
    else {
      mkdirSync(dirname(m.target), { recursive: true });
      writeFileSync(m.target, '');
    }
    execFileSync('mount', ['--bind', m.source, m.target]);
    if (m.readOnly) execFileSync('mount', ['-o', 'remount,bind,ro', m.target]);
  }
}

const raw = process.env[POD_MOUNTS_ENV];
if (raw !== undefined) {
  mountAll(JSON.parse(raw) as PodMount[], process.env[TEST_MOUNT_NAMESPACE_ENV]);
  await import('../../../agent/main.ts');
}
