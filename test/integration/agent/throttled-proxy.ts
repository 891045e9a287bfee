// A TCP proxy on 127.0.0.1 that slows the answers of a real registry down to a set rate, so a real
// containerd pull lasts long enough to kill something in the middle of it. Requests pass at full
// speed; only upstream-to-client bytes are paced.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { RegistryEndpoint } from '../../support/registry.ts';

export interface ThrottledProxy extends RegistryEndpoint {
  /** Bytes per second from the registry to each client connection. */
  bytesPerSecond: number;
  stop(): Promise<void>;
}

export async function startThrottledProxy(upstream: RegistryEndpoint, bytesPerSecond: number): Promise<ThrottledProxy> {
  const [upHost, upPort] = upstream.host.split(':') as [string, string];
  const sockets = new Set<Socket>();
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
      client.write(chunk);
      setTimeout(() => { up.resume(); }, (chunk.length / bytesPerSecond) * 1000);
    });
    up.on('end', () => { client.end(); });
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
