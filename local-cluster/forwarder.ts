// Byte forwarding between the test process's loopback and the cluster's network namespace. A unix socket in a
// temp dir crosses namespaces through the filesystem: one side listens on it, the other connects to it, so no
// interface in the machine's own network namespace ever needs an address other than loopback.
//
//   node local-cluster/forwarder.ts unix:<path> tcp:<host>:<port>   listen on the socket, connect to host:port
//   node local-cluster/forwarder.ts tcp:<host>:<port> unix:<path>   listen on host:port, connect to the socket
//
// Run as a script inside a namespace (it prints "ready" once listening); the test process's side runs in
// process (forwardTcpToUnix / forwardUnixToTcp).
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';

export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface Forwarder {
  /** The TCP port listened on (0 for a unix listener). */
  readonly port: number;
  close(): Promise<void>;
}

/** Parses "unix:/path" or "tcp:host:port". */
export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith('unix:') && text.length > 5) return { kind: 'unix', path: text.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(text);
  if (m?.[1] !== undefined && m[2] !== undefined) return { kind: 'tcp', host: m[1], port: Number(m[2]) };
  throw new Error(`not an endpoint: ${text} (want unix:<path> or tcp:<host>:<port>)`);
}

function connect(to: Endpoint): Socket {
  return to.kind === 'unix' ? createConnection(to.path) : createConnection(to.port, to.host);
}

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => { a.destroy(); b.destroy(); };
  a.on('error', end);
  b.on('error', end);
  a.on('close', end);
  b.on('close', end);
}

/** Listens on `from` and pipes every connection to a new connection to `to`. */
export function forward(from: Endpoint, to: Endpoint): Promise<Forwarder> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(to);
    sockets.add(inbound).add(outbound);
    inbound.on('close', () => sockets.delete(inbound));
    outbound.on('close', () => sockets.delete(outbound));
    pipeBoth(inbound, outbound);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const listening = (): void => {
      server.off('error', reject);
      const addr = server.address();
      resolve({
        port: addr !== null && typeof addr === 'object' ? addr.port : 0,
        close: () => new Promise((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => { done(); });
        }),
      });
    };
    if (from.kind === 'unix') {
      rmSync(from.path, { force: true });
      server.listen(from.path, listening);
    } else {
      server.listen(from.port, from.host, listening);
    }
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const [fromText, toText] = argv;
  if (fromText === undefined || toText === undefined) throw new Error('usage: forwarder.ts <listen endpoint> <connect endpoint>');
  await forward(parseEndpoint(fromText), parseEndpoint(toText));
  console.log('ready');
}

if (import.meta.filename === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
