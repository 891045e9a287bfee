// `npm run cluster`: starts the local cluster with real nodes that the tests use, prints how to reach it, and
// stops it on Ctrl-C (SIGINT) or SIGTERM. KWARM_KEEP_TEST_DIRS=1 keeps its files (logs, node state) afterwards.
//
//   npm run cluster                 3 nodes
//   npm run cluster -- --nodes 5
import { parseArgs } from 'node:util';
import { cachedBinary } from './binaries.ts';
import { startRealCluster } from './real-cluster.ts';
import { keepTestDirs } from './tmp.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '3' } } });
const nodes = Number(values.nodes);
if (!Number.isInteger(nodes) || nodes < 1) {
  console.error(`--nodes must be a whole number of at least 1, not ${values.nodes}`);
  process.exit(2);
}

const stopRequested = new Promise<string>((resolve) => {
  process.once('SIGINT', () => { resolve('SIGINT'); });
  process.once('SIGTERM', () => { resolve('SIGTERM'); });
});

const cluster = await startRealCluster({ nodes });
const kubectl = cachedBinary('kubectl');
console.log(`
The cluster is up (${cluster.nodes.map((n) => `${n.name} ${n.address}`).join(', ')}).

  export KUBECONFIG=${cluster.kubeconfig}
  ${kubectl} get nodes -o wide

Registry: push to ${cluster.registry.url} (from this machine); pods and nodes pull it as ${cluster.registryFromNodes}/<repository>:<tag>.
Files and logs (kubelet.log, containerd's, kube-apiserver.log): ${cluster.dir} and ${cluster.controlPlane.dir}
Pods reach the API server through the kubernetes Service (KUBERNETES_SERVICE_HOST); there is no cluster DNS.
Inside a node: nsenter --target ${String(cluster.nodes[0]?.namespaces.pid)} --net --mount --pid (node-1).

Ctrl-C stops it${keepTestDirs() ? '; its files are kept (KWARM_KEEP_TEST_DIRS)' : ' and removes its files'}.
KWARM_CLUSTER_READY dir=${cluster.dir}
`);

const signal = await stopRequested;
console.log(`${signal}: stopping the cluster`);
await cluster.stop();
console.log('stopped');
