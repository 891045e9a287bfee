// A TCP proxy on 127.0.0.1 in front of a registry whose answers share ONE paced link: all connections
// together get `bytesPerSecond` (a node whose network link is the bottleneck). Its sibling,
// test/integration/agent/throttled-proxy.ts, paces each connection on its own (a registry far away,
// where each stream is limited by round-trip time and windows, not by the node's link).
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { RegistryEndpoint } from '../test/support/registry.ts';

export interface SharedLinkProxy extends RegistryEndpoint {
  bytesPerSecond: number;
  stop(): Promise<void>;
}

export async function startSharedLinkProxy(upstream: RegistryEndpoint, bytesPerSecond: number): Promise<SharedLinkProxy> {
  const [upHost, upPort] = upstream.host.split(':') as [string, string];
  const sockets = new Set<Socket>();
  // When the shared link is free again (performance.now() ms): each chunk books its transfer time.
  let linkFreeAt = 0;
  const server: Server = createServer((client) => {
    const up = connect(Number(upPort), upHost);
    sockets.add(client);
    sockets.add(up);
    const close = (): void => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
    client.pipe(up);
    up.on('data', (chunk: Buffer) => {
      up.pause();
      const now = performance.now();
      linkFreeAt = Math.max(linkFreeAt, now) + (chunk.length / bytesPerSecond) * 1000;
      // The chunk is delivered once its slot on the link has passed.
      setTimeout(() => {
        client.write(chunk);
        up.resume();
      }, linkFreeAt - now);
    });
    up.on('end', () => {
      // After the last paced chunk has been written.
      setTimeout(() => { client.end(); }, Math.max(0, linkFreeAt - performance.now()));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { resolve(); });
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('proxy has no port');
  return {
    host: `127.0.0.1:${addr.port}`,
    bytesPerSecond,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    },
  };
}
