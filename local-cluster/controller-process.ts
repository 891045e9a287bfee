// Runs kwarm-controller as a real process (the same Node binary as the tests, controller/main.ts) against a
// test control plane, with its metrics and health endpoints on free loopback ports.
import { join } from 'node:path';
import { request } from 'node:http';
import { ManagedProcess } from './process.ts';
import { freePort } from './ports.ts';
import { makeTempDir, removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';
import { errorText } from '../lib/errors.ts';

const MAIN = join(import.meta.dirname, '..', 'controller', 'main.ts');

export interface ControllerProcessOptions {
  kubeconfig: string;
  /** kwarm's namespace (Lease, pull secret copies); default kwarm-system. */
  namespace?: string;
  /** Further flags, e.g. ['--max-concurrent-pulls=1']. */
  args?: readonly string[];
  /** Default false: most tests run one replica. */
  leaderElect?: boolean;
  /** Shown in logs and errors. */
  name?: string;
  /** Wait until /readyz answers 200 (default true; a standby replica is ready too). */
  waitReady?: boolean;
  /** Default debug. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Flags for Node itself, e.g. ['--max-old-space-size=256']. */
  nodeArgs?: readonly string[];
  /** The entry point; default controller/main.ts (benchmarks pass the compiled dist/controller/main.js). */
  main?: string;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => { req.destroy(new Error(`GET ${path} timed out`)); });
    req.end();
  });
}

/** Sum of a metric's samples whose labels include `labels`, from Prometheus text; undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ([^ ]+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = new Map([...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum = (sum ?? 0) + Number(m[4]);
  }
  return sum;
}

export class ControllerProcess {
  readonly name: string;
  readonly metricsPort: number;
  readonly healthPort: number;
  readonly process: ManagedProcess;
  /** Holds the log; removed on stop() and kill() (removeDir: kept with KWARM_KEEP_TEST_DIRS). */
  private readonly dir: string;

  private constructor(name: string, dir: string, proc: ManagedProcess, metricsPort: number, healthPort: number) {
    this.name = name;
    this.dir = dir;
    this.process = proc;
    this.metricsPort = metricsPort;
    this.healthPort = healthPort;
  }

  static async start(opts: ControllerProcessOptions): Promise<ControllerProcess> {
    const name = opts.name ?? 'kwarm-controller';
    const dir = makeTempDir(name);
    const metricsPort = await freePort();
    const healthPort = await freePort();
    const args = [
      ...(opts.nodeArgs ?? []),
      opts.main ?? MAIN,
      `--kubeconfig=${opts.kubeconfig}`,
      `--namespace=${opts.namespace ?? 'kwarm-system'}`,
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${healthPort}`,
      `--leader-elect=${String(opts.leaderElect ?? false)}`,
      '--log-format=text',
      `--log-level=${opts.logLevel ?? 'debug'}`,
      ...(opts.args ?? []),
    ];
    const proc = ManagedProcess.start({ name, command: process.execPath, args, logFile: join(dir, `${name}.log`) });
    const cp = new ControllerProcess(name, dir, proc, metricsPort, healthPort);
    if (opts.waitReady ?? true) await cp.waitReady();
    return cp;
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => {
      if (!this.process.running) throw new Error(`${this.name} exited with code ${String(await this.process.wait())}`);
      return (await httpGet(this.healthPort, '/readyz')).status === 200;
    }, { what: `${this.name} /readyz`, timeoutMs, intervalMs: 200 }).catch((err: unknown) => {
      throw new Error(`${errorText(err)}\n--- ${this.process.logFile} ---\n${this.process.tail(40)}`);
    });
  }

  async metrics(): Promise<string> {
    const { status, body } = await httpGet(this.metricsPort, '/metrics');
    if (status !== 200) throw new Error(`${this.name} /metrics answered ${status}`);
    return body;
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    return metricValue(await this.metrics(), name, labels);
  }

  /** The sum of kwarm_api_writes_total over all kinds. */
  async writes(): Promise<number> {
    return (await this.metric('kwarm_api_writes_total')) ?? 0;
  }

  tail(lines = 40): string {
    return this.process.tail(lines);
  }

  /** Stops the process and removes its temp dir: tail() answers '(no log)' afterwards. */
  async stop(): Promise<void> {
    await this.process.stop();
    removeDir(this.dir);
  }

  /** SIGKILL: a crash, no lease release, no flush. */
  async kill(): Promise<void> {
    this.process.signal('SIGKILL');
    await this.process.wait();
    await this.stop();
  }
}

export { controllerKubeconfig } from './kwarm-access.ts';

export const CONTROLLER_USER = (namespace = 'kwarm-system'): string => `system:serviceaccount:${namespace}:kwarm-controller`;
