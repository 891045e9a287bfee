// A TCP proxy on 127.0.0.1 in front of the real API server that can go silent: `freeze()` stops relaying
// bytes on every connection without closing any of them, and holds new connections unanswered, as when a
// load balancer drops its flow state or the server's VM vanishes. The client sees neither a FIN nor a RST,
// which is the one fault a real API server cannot be asked to produce. `thaw()` resets the connections that lived through it and relays new ones again.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';

export interface HalfOpenProxy {
  readonly port: number;
  /** Stop relaying on every connection without closing it; hold new connections unanswered. */
  freeze(): void;
  /** Reset every connection and each new one at once (an API server that is down). */
  refuse(): void;
  /** Relay new connections again, resetting those that lived through a freeze. */
  thaw(): void;
  /** A copy of `kubeconfig` whose server is this proxy (the API server's certificate names 127.0.0.1). */
  kubeconfig(kubeconfig: string, dir: string): string;
  stop(): Promise<void>;
}

export async function startHalfOpenProxy(upstream: URL): Promise<HalfOpenProxy> {
  let mode: 'relay' | 'frozen' | 'refuse' = 'relay';
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.on('error', () => undefined);
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    sockets.add(client);
    client.on('close', () => { sockets.delete(client); });
    // Held: accepted, never relayed; the client's TLS handshake waits for good.
    if (mode === 'frozen') return;
    const up = connect(Number(upstream.port), upstream.hostname);
    sockets.add(up);
    up.on('close', () => { sockets.delete(up); client.destroy(); });
    up.on('error', () => { client.destroy(); });
    client.on('close', () => { up.destroy(); });
    client.on('data', (chunk: Buffer) => { if (mode === 'relay') up.write(chunk); });
    up.on('data', (chunk: Buffer) => { if (mode === 'relay') client.write(chunk); });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('proxy has no address');
  const port = address.port;
  let copies = 0;
  return {
    port,
    freeze() {
      mode = 'frozen';
    },
    refuse() {
      mode = 'refuse';
      for (const s of sockets) s.resetAndDestroy();
    },
    thaw() {
      // Connections that lived through the freeze lost bytes: end them as the peer's RST eventually would.
      if (mode === 'frozen') for (const s of sockets) s.destroy();
      mode = 'relay';
    },
    kubeconfig(kubeconfig, dir) {
      const text = readFileSync(kubeconfig, 'utf8').replace(upstream.origin, `https://127.0.0.1:${port}`);
      if (!text.includes(`:${port}`)) throw new Error(`${kubeconfig} does not name ${upstream.origin}`);
      const path = join(dir, `via-proxy-${port}-${copies++}.kubeconfig`);
      writeFileSync(path, text, { mode: 0o600 });
      return path;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    },
  };
}
