// Free TCP ports on 127.0.0.1 for servers started by tests.
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
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
