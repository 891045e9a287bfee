// Free TCP ports on 127.0.0.1 for servers started by tests. A port is free when we ask, but the server that
// will use it starts later; so that two servers started at once never get the same port, a port is handed
// out at most once per test process.
import { createServer } from 'node:net';

const handedOut = new Set<number>();

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        reject(new Error('no port assigned'));
        return;
      }
      srv.close(() => { resolve(addr.port); });
    });
  });
}

export async function freePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = await ephemeralPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no unused free port after 100 tries');
}
