// The controller's /readyz reflects its API watches, not only its first sync: a controller whose connection to
// the API server is cut (through a proxy that resets every connection, as a downed server would) reports
// which watches are down, and is ready again once they reopen.
import { request } from 'node:http';
import { expect } from 'chai';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { ControllerProcess, controllerKubeconfig } from '../../../local-cluster/controller-process.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { startHalfOpenProxy } from './half-open-proxy.ts';

function readyz(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => { req.destroy(new Error('GET /readyz timed out')); });
    req.end();
  });
}

describe('lib: controller readiness follows its API watches', function () {
  this.timeout(180_000);

  it('is not ready while its watches cannot reach the API server, and ready again once they reopen', async () => {
    const cp = await sharedControlPlane();
    await installCrds(cp);
    const kubeconfig = await controllerKubeconfig(cp);
    const dir = makeTempDir('readiness');
    const proxy = await startHalfOpenProxy(new URL(cp.server));
    let controller: ControllerProcess | undefined;
    try {
      controller = await ControllerProcess.start({ kubeconfig: proxy.kubeconfig(kubeconfig, dir), name: 'controller-readiness' });
      const port = controller.healthPort;
      expect((await readyz(port)).status).to.equal(200);

      proxy.refuse();
      const down = await waitFor(async () => {
        const r = await readyz(port);
        return r.status === 503 ? r : undefined;
      }, { what: '/readyz to fail while the API server is unreachable', timeoutMs: 30_000 });
      expect(down.body).to.match(/^watches: \d+ API watch\(es\) down: /m);

      proxy.thaw();
      await waitFor(async () => (await readyz(port)).status === 200, { what: '/readyz to pass once the watches reopen', timeoutMs: 90_000, intervalMs: 250 });
    } finally {
      await controller?.stop();
      await proxy.stop();
      removeDir(dir);
    }
  });
});
