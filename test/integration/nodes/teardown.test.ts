// A real cluster leaves nothing behind: not after stop(), not after Ctrl-C on `npm run cluster`, not when the
// process that started it is killed outright. And while it runs, the machine's own network namespace keeps
// exactly the interfaces and addresses it had: everything of the cluster lives in namespaces the harness made.
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cachedBinary } from '../../../local-cluster/binaries.ts';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { startRealCluster } from '../../../local-cluster/real-cluster.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

const CLI = join(import.meta.dirname, '../../../local-cluster/cluster-main.ts');

function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, (err, stdout) => { if (err === null) resolve(stdout); else reject(new Error(`ip ${args.join(' ')}: ${err.message}`)); });
  });
}

/** The machine's own interfaces and addresses, without counters that change by themselves. */
async function rootNetwork(): Promise<string[]> {
  const links = (await ip(['-o', 'link'])).split('\n').map((l) => l.replace(/^\d+: /, '').split(' ')[0] ?? '');
  const addrs = (await ip(['-o', 'addr'])).split('\n').map((l) => l.split(/\s+/).slice(1, 4).join(' '));
  return [...links, ...addrs].filter((l) => l !== '').sort();
}

function pids(): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
}

function readOr(path: string, fallback: string, link = false): string {
  try {
    return link ? readlinkSync(path) : readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

const commandLine = (pid: number): string => `${pid}: ${readOr(`/proc/${pid}/cmdline`, '(gone)').replace(/\0/g, ' ').slice(0, 200)}`;

/** Processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  return pids().filter((p) => p !== process.pid && readOr(`/proc/${p}/cmdline`, '').replace(/\0/g, ' ').includes(text));
}

/** The network namespaces (net:[inode]) of the given processes, the machine's own left out. */
function netNamespaces(of: readonly number[]): Set<string> {
  const own = readOr('/proc/self/ns/net', '', true);
  return new Set(of.map((p) => readOr(`/proc/${p}/ns/net`, '', true)).filter((ns) => ns !== '' && ns !== own));
}

/** Every process below `root` (containerd, kubelet, shims, pods' processes of a node below its init). */
function descendantsOf(root: number): number[] {
  const parent = new Map(pids().map((p) => [p, Number(/^PPid:\s+(\d+)/m.exec(readOr(`/proc/${p}/status`, ''))?.[1] ?? 0)]));
  const below = (p: number): boolean => {
    for (let q = parent.get(p); q !== undefined && q > 1; q = parent.get(q)) if (q === root) return true;
    return false;
  };
  return [...parent.keys()].filter(below);
}

/** Processes still in any of these network namespaces. */
function processesIn(namespaces: ReadonlySet<string>): number[] {
  return pids().filter((p) => namespaces.has(readOr(`/proc/${p}/ns/net`, '', true)));
}

/** The cgroups runc made for the node's containers: /sys/fs/cgroup/<hierarchy>/k8s.io/<id>, from the task bundles. */
function containerCgroups(nodeDir: string): string[] {
  const tasks = join(nodeDir, 'run-containerd', 'io.containerd.runtime.v2.task', 'k8s.io');
  const ids = existsSync(tasks) ? readdirSync(tasks) : [];
  const roots = ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((d) => join('/sys/fs/cgroup', d))];
  return roots.flatMap((r) => ids.map((id) => join(r, 'k8s.io', id))).filter((d) => existsSync(d));
}

function rootMountsMentioning(text: string): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(text));
}

/** Starts `npm run cluster`'s script with one node and resolves with its dir once it says the cluster is up. */
async function startCli(): Promise<{ child: ChildProcess; dir: string; output: () => string }> {
  const env = { ...process.env };
  delete env.KWARM_KEEP_TEST_DIRS;
  const child = spawn(process.execPath, [CLI, '--nodes', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
  const dir = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`cluster-main exited ${child.exitCode}:\n${out}`);
    return /KWARM_CLUSTER_READY dir=(\S+)/.exec(out)?.[1];
  }, { what: 'npm run cluster to print KWARM_CLUSTER_READY', timeoutMs: 120_000, intervalMs: 200 });
  return { child, dir, output: () => out };
}

describe('real nodes: nothing left behind', function () {
  this.timeout(240_000);

  it('stop() leaves no process, namespace, mount, interface or file, and the machine\'s own network namespace never changes', async () => {
    const before = await rootNetwork();
    const cluster = await startRealCluster({ nodes: 1, log: () => undefined });
    const node = cluster.nodes[0];
    if (node === undefined) throw new Error('no node');
    let stopped = false;
    try {
      // A running pod, so there is a shim, a pod network namespace with a CNI veth and the kubelet's tmpfs mounts.
      const image = cluster.nodeImage((await pushSleeperImage(cluster.registry, 'kwarm/teardown', '1')).reference);
      await cluster.controlPlane.apply(JSON.stringify({
        apiVersion: 'v1', kind: 'Pod', metadata: { name: 'teardown', namespace: 'default' },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image }] },
      }));
      await cluster.controlPlane.waitFor('pod/teardown', 'condition=Ready', { namespace: 'default', timeoutSeconds: 120 });
      const mountsInside = readFileSync(`/proc/${node.namespaces.pid}/mounts`, 'utf8');
      expect(mountsInside).to.match(/\/var\/lib\/kubelet\/pods\/\S+ tmpfs/);
      expect(await rootNetwork()).to.deep.equal(before);

      const namespaces = netNamespaces([...descendantsOf(node.namespaces.pid), ...processesMentioning(cluster.dir)]);
      // The cluster's namespace, the node's, and the pod's.
      expect(namespaces.size).to.be.at.least(3);
      const dirs = [cluster.dir, cluster.controlPlane.dir, dirname(node.containerd.logFile), dirname(cluster.registry.storageDir)];
      const cgroups = containerCgroups(node.dir);
      expect(cgroups).to.not.deep.equal([]);
      await cluster.stop();
      stopped = true;

      // A watchdog ends within its poll interval once what it guards is gone: CI once listed one that was exiting
      // (its command line already empty) right after stop(). Processes still there after 5 s are left behind.
      const settled = Date.now() + 5000;
      while (Date.now() < settled && processesIn(namespaces).length + processesMentioning(cluster.dir).length > 0) await sleep(200);
      expect(processesIn(namespaces).map(commandLine), 'processes in the cluster\'s namespaces').to.deep.equal([]);
      expect(processesMentioning(cluster.dir).map(commandLine), 'processes of the cluster').to.deep.equal([]);
      for (const d of dirs) expect(existsSync(d), d).to.equal(false);
      expect(rootMountsMentioning('kwarm')).to.deep.equal([]);
      expect(cgroups.filter((d) => existsSync(d)), 'container cgroups').to.deep.equal([]);
      expect(await rootNetwork()).to.deep.equal(before);
    } finally {
      if (!stopped) await cluster.stop();
    }
  });

  it('npm run cluster stops on Ctrl-C (SIGINT) and removes everything', async () => {
    const { child, dir, output } = await startCli();
    const namespaces = netNamespaces(processesMentioning(dir));
    expect(namespaces.size).to.be.at.least(2);
    expect(output()).to.match(/export KUBECONFIG=\S+/);
    const exited = new Promise<number | null>((resolve) => { child.once('exit', resolve); });
    child.kill('SIGINT');
    expect(await exited).to.equal(0);
    expect(output()).to.include('stopped');
    expect(processesIn(namespaces)).to.deep.equal([]);
    expect(existsSync(dir)).to.equal(false);
  });

  it('a killed test process leaves nothing behind: watchdogs kill the namespaces\' holders, a janitor removes the files', async () => {
    const { child, dir, output } = await startCli();
    // A running pod (the sandbox image sleeps too), so containers and their cgroups exist when the process dies.
    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(output())?.[1] ?? '';
    const kubectl = (args: readonly string[]): Promise<string> => new Promise((resolve, reject) => {
      execFile(cachedBinary('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], (err, stdout, stderr) => {
        if (err === null) resolve(stdout); else reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`));
      });
    });
    await kubectl(['run', 'crash', '--image=10.250.0.1:5000/kwarm/pause:1']);
    await kubectl(['wait', '--for=condition=Ready', 'pod/crash', '--timeout=120s']);
    const cgroups = containerCgroups(join(dir, 'node-1'));
    expect(cgroups).to.not.deep.equal([]);
    const namespaces = netNamespaces(processesMentioning(dir));
    expect(namespaces.size).to.be.at.least(2);
    // The control plane's, registry's, containerd's and PKI's temp dirs, listed for the janitor.
    const others = readFileSync(join(dir, 'dirs'), 'utf8').split('\n').filter((d) => d !== '');
    expect(others.length).to.be.at.least(4);
    child.kill('SIGKILL');
    // Watchdogs poll every second; the janitor then waits 3 s for the namespaces to go before removing files.
    await waitFor(() => processesIn(namespaces).length === 0 && processesMentioning(dir).length === 0 && !existsSync(dir),
      { what: `the killed cluster's processes, namespaces and ${dir} to go`, timeoutMs: 30_000, intervalMs: 250 });
    expect(rootMountsMentioning(dir)).to.deep.equal([]);
    for (const d of others) expect(existsSync(d), d).to.equal(false);
    expect(cgroups.filter((d) => existsSync(d)), 'container cgroups').to.deep.equal([]);
  });
});
