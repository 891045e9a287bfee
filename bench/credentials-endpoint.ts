// The pull credentials endpoint alone in a process of its own, as kwarm-controller serves it, for
// bench/credentials-cost.ts (which runs it as a ManagedProcess): listens on 127.0.0.1:<port>, prints
// `serving on 127.0.0.1:<port>` once it serves a certificate and has published its CA, and stops on SIGTERM.
//
//   node bench/credentials-endpoint.ts <controller kubeconfig> <namespace> <agent ServiceAccount> <port>
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import { startCredentialsServer } from '../controller/credentials/server.ts';
import { loadClusterAccess } from '../lib/cluster-access.ts';
import { KubeClient } from '../lib/kube-client.ts';

const [kubeconfig, namespace, agentServiceAccount, portText] = process.argv.slice(2);
if (kubeconfig === undefined || namespace === undefined || agentServiceAccount === undefined || portText === undefined) {
  throw new Error('usage: credentials-endpoint.ts <controller kubeconfig> <namespace> <agent ServiceAccount> <port>');
}
const client = new KubeClient(await loadClusterAccess({ kind: 'kubeconfig', paths: [kubeconfig] }), { userAgent: 'kwarm-controller', timeoutMs: 30_000 });
const server = await startCredentialsServer({
  port: Number(portText), host: '127.0.0.1', namespace, service: 'kwarm-credentials', secret: 'kwarm-credentials-cert', caConfigMap: 'kwarm-credentials-ca', agentServiceAccount,
}, { client, log: winston.createLogger({ silent: true }) });
const deadline = Date.now() + 60_000;
while (!server.check().ok) {
  if (Date.now() > deadline) throw new Error(`the endpoint did not get ready: ${JSON.stringify(server.check())}`);
  await sleep(100);
}
process.stdout.write(`serving on 127.0.0.1:${server.port}\n`);
process.once('SIGTERM', () => {
  void server.close().finally(() => { client.close(); });
});
