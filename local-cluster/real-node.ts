// One real node of the local cluster, like a kind node without Docker: network, mount and pid namespaces
// made by the harness (namespaces.ts), a veth to the cluster's bridge, and inside them containerd at the
// standard /run/containerd/containerd.sock, the kubelet and kube-proxy (iptables mode). Pods get addresses
// from the bridge CNI plugin in the node's own pod subnet.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachedBinary } from './binaries.ts';
import { overlayfsWorks, startContainerd, type TestContainerd } from './containerd.ts';
import { startNamespaces, type Namespaces } from './namespaces.ts';
import type { CertPair, Pki } from './pki.ts';
import type { ManagedProcess } from './process.ts';
import { waitFor } from './wait.ts';
import type { RegistryEndpoint } from './registry.ts';
import { BRIDGE, CLUSTER_ADDRESS, CLUSTER_CIDR, nodeAddress, podSubnet, type NodeSlot } from './cluster-network.ts';

/** What every node shares: the cluster's namespace with its bridge, the API server and the registry. */
export interface NodeCluster {
  /** The cluster's network namespace, where the bridge is. */
  namespaces: Namespaces;
  /** https://<cluster address>:6443 */
  server: string;
  pki: Pki;
  /** kube-proxy's client certificate (user system:kube-proxy, bound to system:node-proxier by default RBAC). */
  kubeProxyCert: CertPair;
  /** Registries as the node reaches them. */
  registries: readonly RegistryEndpoint[];
  /** The pod sandbox image, from one of `registries`. */
  sandboxImage: string;
}

export interface RealNodeOptions {
  slot: NodeSlot;
  /** The node's directory (created here). */
  dir: string;
  cluster: NodeCluster;
  /** How this node differs when it joins (none: the harness's defaults). */
  join?: JoinOptions;
}

/** A taint as the kubelet registers it (KubeletConfiguration `registerWithTaints`). */
export interface NodeTaint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** What a node that joins may differ in; the harness's defaults otherwise. */
export interface JoinOptions {
  /**
   * Taints the node registers with (kubelet `--register-with-taints`), as Karpenter's startupTaints or a
   * cluster autoscaler's startup taints put on a new node.
   */
  registerWithTaints?: readonly NodeTaint[];
  /**
   * Runs once the node's namespaces and containerd are up and before its kubelet starts (so before the node
   * registers and can get pods): what must be on the node before any pod lands, such as a registry link.
   */
  beforeKubelet?: (node: NodeBeforeKubelet) => Promise<void>;
}

/** The parts of a RealNode that exist before its kubelet starts. */
export type NodeBeforeKubelet = Pick<RealNode, 'name' | 'namespaces' | 'containerd'>;

/** The KubeletConfiguration fields a JoinOptions sets. */
function joinKubeletFields(opts: JoinOptions): Record<string, unknown> {
  return opts.registerWithTaints === undefined ? {} : { registerWithTaints: opts.registerWithTaints };
}

export interface RealNode {
  readonly name: string;
  /** The node's InternalIP on the cluster bridge. */
  readonly address: string;
  /** Its pod subnet (bridge CNI, host-local IPAM). */
  readonly podSubnet: string;
  readonly dir: string;
  readonly namespaces: Namespaces;
  /** containerd; `socket` is the host path of the node's /run/containerd/containerd.sock. */
  readonly containerd: TestContainerd;
  /** The current kubelet process; replaced by restartKubelet(). */
  readonly kubelet: ManagedProcess;
  readonly kubeProxy: ManagedProcess;
  /**
   * Stops the kubelet and starts it again, with these KubeletConfiguration fields over the harness's own (none:
   * the harness's own, plus those of the node's JoinOptions), and waits until its /healthz answers.
   * Pods keep running meanwhile.
   */
  restartKubelet(overrides?: Readonly<Record<string, unknown>>): Promise<void>;
  /**
   * The kubelet's own image garbage collection, as under disk pressure: restarts the kubelet with image GC
   * thresholds of 1 % / 0 % and no minimum age, so that its pass at start-up removes every image no container
   * uses; waits until `done()` holds (e.g. an image is gone from the runtime), then restores the harness's
   * settings. Seconds, not the kubelet's 5-minute GC period (see IMAGE_GC_NOW).
   */
  collectImages(done: () => Promise<boolean>, opts?: { timeoutMs?: number }): Promise<void>;
  /** Stops every process of the node; its namespaces, mounts and veth vanish with them. Files stay in `dir`. */
  stop(): Promise<void>;
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

function certKubeconfig(path: string, server: string, caFile: string, user: string, cert: CertPair): void {
  writeFileSync(path, json({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'kwarm-local', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { 'client-certificate': cert.cert, 'client-key': cert.key } }],
    contexts: [{ name: user, context: { cluster: 'kwarm-local', user } }],
    'current-context': user,
  }), { mode: 0o600 });
}

/** The bridge CNI plugin with the node's pod subnet; IPAM state in the node's directory, not the host's. */
function cniConfig(subnet: string, ipamDir: string): string {
  return json({
    cniVersion: '0.4.0',
    name: 'kwarm-pods',
    plugins: [
      {
        type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  });
}

function kubeletConfig(o: { address: string; caFile: string; resolvConf: string }, overrides: Readonly<Record<string, unknown>>): string {
  return json({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine: cgroup v1, no systemd as PID 1, swap allowed, cgroups not split per QoS class.
    cgroupDriver: 'cgroupfs',
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    failCgroupV1: false,
    // The kernel settings the kubelet wants are what the node sees (namespaces.ts): check, never write.
    protectKernelDefaults: true,
    containerRuntimeEndpoint: 'unix:///run/containerd/containerd.sock',
    address: o.address,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: o.caFile } },
    authorization: { mode: 'Webhook' },
    // No cluster DNS: pods reach the API server by the KUBERNETES_SERVICE_HOST the kubelet gives them, and a
    // name lookup goes to the pod's own loopback, never to the machine's resolver.
    resolvConf: o.resolvConf,
    clusterDomain: 'cluster.local',
    // The machine's disk is shared with everything else: only tests decide when images are collected.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    serializeImagePulls: false,
    ...overrides,
  });
}

function kubeProxyConfig(o: { kubeconfig: string; name: string }): string {
  return json({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: o.kubeconfig },
    mode: 'iptables',
    clusterCIDR: CLUSTER_CIDR,
    hostnameOverride: o.name,
    metricsBindAddress: '127.0.0.1:10249',
    // Zeros: leave the conntrack table size and timeouts alone (host-wide settings, read-only in a namespace).
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  });
}

/** The host's cgroup hierarchies (v1: one per controller; v2: the root itself). */
function cgroupRoots(): string[] {
  try {
    return ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((d) => join('/sys/fs/cgroup', d))];
  } catch {
    return [];
  }
}

/**
 * The cgroups runc made for the node's containers (containerd's default parent, /k8s.io/<container id>). The
 * containers die with the node's pid namespace, never through runc, so nobody else removes the (empty) cgroups.
 * The ids are the task bundles left in the node's containerd state.
 */
export function removeContainerCgroups(containerdState: string): void {
  let ids: string[];
  try {
    ids = readdirSync(join(containerdState, 'io.containerd.runtime.v2.task', 'k8s.io'));
  } catch {
    return;
  }
  for (const root of cgroupRoots()) {
    for (const id of ids) {
      try {
        rmdirSync(join(root, 'k8s.io', id));
      } catch {
        // Not in this hierarchy, or already removed.
      }
    }
  }
}

/**
 * Every image no container uses is over the line, whatever its age (see RealNode.collectImages). The kubelet
 * collects once as it starts and then every 5 minutes. That first pass records each image it lists with "first
 * seen now", so any positive minimum age (and 0, which the kubelet defaults to 2 minutes) spares them all and
 * the collection waited 5 minutes for the second pass; a negative minimum makes the first pass collect. The
 * first pass also fails when it runs before the image filesystem's stats are ready: collectImages then starts
 * the kubelet again rather than wait 5 minutes.
 */
const IMAGE_GC_NOW = { imageGCHighThresholdPercent: 1, imageGCLowThresholdPercent: 0, imageMinimumGCAge: '-1s' };
/**
 * What the kubelet logs at the end of its pass at start-up (kubelet.go). With a low threshold of 0 % the pass
 * always falls short of its goal (the whole disk), so it always says "failed", also when it removed images.
 */
const STARTUP_GC_PASS = /Image garbage collection failed once[^\n]*/u;

/** The part of a file from byte `from` on. */
function readFrom(file: string, from: number): string {
  return readFileSync(file).subarray(from).toString('utf8');
}

export async function startRealNode(opts: RealNodeOptions): Promise<RealNode> {
  const { slot, dir, cluster } = opts;
  const name = slot.name;
  const address = nodeAddress(slot);
  const subnet = podSubnet(slot);
  const paths = {
    containerdRoot: join(dir, 'var-lib-containerd'),
    containerdState: join(dir, 'run-containerd'),
    kubelet: join(dir, 'var-lib-kubelet'),
    podLogs: join(dir, 'var-log-pods'),
    cniConf: join(dir, 'cni-net.d'),
    cniIpam: join(dir, 'cni-ipam'),
  };
  for (const d of [dir, ...Object.values(paths)]) mkdirSync(d, { recursive: true });

  const namespaces = await startNamespaces({
    name,
    dir,
    node: { binds: [
      { source: paths.containerdRoot, target: '/var/lib/containerd' },
      { source: paths.containerdState, target: '/run/containerd' },
      { source: paths.kubelet, target: '/var/lib/kubelet' },
      { source: paths.podLogs, target: '/var/log/pods' },
    ] },
  });
  const started: { stop(): Promise<void> }[] = [namespaces];
  const stopAll = async (): Promise<void> => {
    for (const s of [...started].reverse()) await s.stop();
    removeContainerCgroups(paths.containerdState);
  };
  try {
    // The veth is made in the cluster's namespace with its peer straight in the node's: neither end is ever
    // in the machine's own namespace. It goes away with the node's namespace.
    const veth = `veth-${slot.index}`;
    await cluster.namespaces.exec('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(namespaces.pid)]);
    await cluster.namespaces.exec('ip', ['link', 'set', veth, 'master', BRIDGE, 'up']);
    await namespaces.exec('ip', ['addr', 'add', `${address}/24`, 'dev', 'eth0']);
    await namespaces.exec('ip', ['link', 'set', 'eth0', 'up']);
    // Everything off the bridge goes to the cluster's namespace, which routes only between its own addresses.
    await namespaces.exec('ip', ['route', 'add', 'default', 'via', CLUSTER_ADDRESS]);

    writeFileSync(join(paths.cniConf, '10-kwarm-pods.conflist'), cniConfig(subnet, paths.cniIpam));
    const containerd = await startContainerd({
      name,
      registries: cluster.registries,
      sandboxImage: cluster.sandboxImage,
      placement: { start: namespaces.start, root: paths.containerdRoot, state: paths.containerdState, cniConfDir: paths.cniConf },
      // The native snapshotter copies the whole file system below each layer when it unpacks it, and the whole
      // image again for each container: with kwarm's images (about 220 MB unpacked) a pod's container was
      // created 8-10 s after its image was pulled, on a loaded machine. overlayfs writes each layer once and
      // creates a container without copying (0-1 s).
      snapshotter: await overlayfsWorks(dir) ? 'overlayfs' : 'native',
    });
    started.push({ stop: () => containerd.dispose() });

    await opts.join?.beforeKubelet?.({ name, namespaces, containerd });
    const joinFields = joinKubeletFields(opts.join ?? {});
    const kubeletCert = await cluster.pki.issue({ file: `kubelet-${name}`, commonName: `system:node:${name}`, organization: 'system:nodes' });
    const kubeletKubeconfig = join(dir, 'kubelet.kubeconfig');
    certKubeconfig(kubeletKubeconfig, cluster.server, cluster.pki.caFile, `system:node:${name}`, kubeletCert);
    const resolvConf = join(dir, 'resolv.conf');
    writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
    const kubeletConfigFile = join(dir, 'kubelet-config.json');
    const launchKubelet = (overrides: Readonly<Record<string, unknown>>): ManagedProcess => {
      writeFileSync(kubeletConfigFile, kubeletConfig({ address, caFile: cluster.pki.caFile, resolvConf }, { ...joinFields, ...overrides }));
      return namespaces.start({
        name: `kubelet-${name}`,
        command: cachedBinary('kubelet'),
        args: [`--config=${kubeletConfigFile}`, `--kubeconfig=${kubeletKubeconfig}`, `--hostname-override=${name}`, `--node-ip=${address}`, '--v=1'],
        logFile: join(dir, 'kubelet.log'),
      });
    };
    let kubelet = launchKubelet({});
    started.push({ stop: () => kubelet.stop() });

    const proxyKubeconfig = join(dir, 'kube-proxy.kubeconfig');
    certKubeconfig(proxyKubeconfig, cluster.server, cluster.pki.caFile, 'system:kube-proxy', cluster.kubeProxyCert);
    const proxyConfigFile = join(dir, 'kube-proxy-config.json');
    writeFileSync(proxyConfigFile, kubeProxyConfig({ kubeconfig: proxyKubeconfig, name }));
    const kubeProxy = namespaces.start({
      name: `kube-proxy-${name}`,
      command: cachedBinary('kube-proxy'),
      args: [`--config=${proxyConfigFile}`, '--v=1'],
      logFile: join(dir, 'kube-proxy.log'),
    });
    started.push(kubeProxy);

    const restartKubelet = async (overrides: Readonly<Record<string, unknown>> = {}): Promise<void> => {
      await kubelet.stop();
      kubelet = launchKubelet(overrides);
      const current = kubelet;
      await waitFor(async () => {
        if (!current.running) throw new Error(`the kubelet of ${name} exited:\n${current.tail()}`);
        // busybox-static's wget, inside the node, where the kubelet's healthz listens.
        return (await namespaces.exec('/bin/busybox', ['wget', '-q', '-O-', 'http://127.0.0.1:10248/healthz']).catch(() => '')) === 'ok';
      }, { what: `the kubelet of ${name} to answer /healthz`, timeoutMs: 60_000, intervalMs: 250 });
    };

    return {
      name, address, podSubnet: subnet, dir, namespaces, containerd, kubeProxy,
      get kubelet() {
        return kubelet;
      },
      restartKubelet,
      async collectImages(done, copts = {}) {
        const deadline = Date.now() + (copts.timeoutMs ?? 420_000);
        const logFile = join(dir, 'kubelet.log');
        try {
          for (let starts = 1; ; starts++) {
            const from = statSync(logFile).size;
            await restartKubelet(IMAGE_GC_NOW);
            const outcome = await waitFor(async () => {
              if (!kubelet.running) throw new Error(`the kubelet of ${name} exited:\n${kubelet.tail()}`);
              if (await done()) return 'done';
              return STARTUP_GC_PASS.exec(readFrom(logFile, from))?.[0];
            }, { what: `the kubelet of ${name} to collect images`, timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 1000 });
            if (outcome === 'done' || await done()) return;
            // A pass that ran before the kubelet's image filesystem stats were ready ("invalid capacity 0 on
            // image filesystem") looked at no image; the next start makes a new pass.
            if (Date.now() > deadline) throw new Error(`the kubelet of ${name} collected nothing in ${starts} start(s); its last pass: ${outcome}`);
          }
        } finally {
          await restartKubelet();
        }
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
