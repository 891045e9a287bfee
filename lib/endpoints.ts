// The HTTP endpoints every kwarm binary serves: Prometheus metrics, and liveness/readiness probes whose
// answers come from checks the binary registers.
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { Registry } from 'prom-client';

export type Check = () => { ok: true } | { ok: false; reason: string };

/** Parses ":8080", "127.0.0.1:8080" or "0" (disabled) into listen options. */
export function parseBindAddress(addr: string): { host: string | undefined; port: number } | undefined {
  if (addr === '0' || addr === '') return undefined;
  const i = addr.lastIndexOf(':');
  const host = i <= 0 ? undefined : addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid bind address "${addr}": expected [host]:port`);
  return { host, port };
}

async function listen(server: Server, addr: string): Promise<Server | undefined> {
  const parsed = parseBindAddress(addr);
  if (parsed === undefined) return undefined;
  server.listen(parsed.port, parsed.host);
  await once(server, 'listening');
  return server;
}

export function boundPort(server: Server | undefined): number | undefined {
  const a = server?.address();
  return typeof a === 'object' && a !== null ? a.port : undefined;
}

export async function serveMetrics(registry: Registry, addr: string): Promise<Server | undefined> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      }, (err: unknown) => {
        res.writeHead(500);
        res.end(err instanceof Error ? err.message : 'error');
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  return listen(server, addr);
}

export async function serveHealth(checks: { live: Record<string, Check>; ready: Record<string, Check> }, addr: string): Promise<Server | undefined> {
  const answer = (set: Record<string, Check>): { code: number; body: string } => {
    const failed = Object.entries(set).flatMap(([name, check]) => {
      const r = check();
      return r.ok ? [] : [`${name}: ${r.reason}`];
    });
    return failed.length === 0 ? { code: 200, body: 'ok\n' } : { code: 503, body: `${failed.join('\n')}\n` };
  };
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    const set = path === '/healthz' ? checks.live : path === '/readyz' ? checks.ready : undefined;
    if (set === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    const { code, body } = answer(set);
    res.writeHead(code, { 'content-type': 'text/plain' });
    res.end(body);
  });
  return listen(server, addr);
}

export async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
}
