// A TCP proxy on 127.0.0.1 that slows the answers of a real registry down to a set rate, so a real
// containerd pull lasts long enough to kill something in the middle of it, or so that pulling in
// parallel matters as it does over a real network. Requests pass at full speed; only
// upstream-to-client bytes are paced, in one of two shapes:
//   - 'per-connection': each connection gets the rate on its own (a registry far away, where each
//     stream is limited by round-trip time and windows, not by the node's link);
//   - 'shared': all connections together get the rate (a node whose own link is the bottleneck).
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { RegistryEndpoint } from './registry.ts';

export type ProxyLink = 'per-connection' | 'shared';

export interface ThrottledProxy extends RegistryEndpoint {
  /** Bytes per second from the registry: to each client connection, or to all of them together. */
  bytesPerSecond: number;
  link: ProxyLink;
  stop(): Promise<void>;
}

/** Relays `up`'s bytes to `client` at the pace of one link shape. */
type Pacer = (up: Socket, client: Socket) => void;

function perConnection(bytesPerSecond: number): Pacer {
  return (up, client) => {
    up.on('data', (chunk: Buffer) => {
      up.pause();
      client.write(chunk);
      setTimeout(() => { up.resume(); }, (chunk.length / bytesPerSecond) * 1000);
    });
    up.on('end', () => { client.end(); });
  };
}

function sharedLink(bytesPerSecond: number): Pacer {
  // When the shared link is free again (performance.now() ms): each chunk books its transfer time.
  let linkFreeAt = 0;
  return (up, client) => {
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
  };
}

function pacer(link: ProxyLink, bytesPerSecond: number): Pacer {
  switch (link) {
    case 'per-connection':
      return perConnection(bytesPerSecond);
    case 'shared':
      return sharedLink(bytesPerSecond);
    default: {
      const never: never = link;
      throw new Error(`unknown proxy link ${String(never)}`);
    }
  }
}

export async function startThrottledProxy(upstream: RegistryEndpoint, bytesPerSecond: number, link: ProxyLink = 'per-connection'): Promise<ThrottledProxy> {
  const [upHost, upPort] = upstream.host.split(':') as [string, string];
  const pace = pacer(link, bytesPerSecond);
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
    pace(up, client);
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
    link,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    },
  };
}
