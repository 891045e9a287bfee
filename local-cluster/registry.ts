// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
// filesystem storage in a temp dir, plain or behind htpasswd basic auth. It can be stopped and
// started again on the same port with the same content, for "registry down, then back" tests.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { systemBinary } from './binaries.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { makeTempDir, removeDir } from './tmp.ts';
import { waitFor } from './wait.ts';

const execFileAsync = promisify(execFile);

/** Where a registry listens, as containerd's hosts config and image references need it. */
export interface RegistryEndpoint {
  /** "127.0.0.1:<port>", the registry part of image references. */
  host: string;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Require these credentials (htpasswd, bcrypt) for every request. */
  auth?: RegistryCredentials;
  /** Shown in process names and temp dir names. */
  name?: string;
}

export interface TestRegistry extends RegistryEndpoint {
  /** "http://127.0.0.1:<port>" */
  url: string;
  /** The credentials it requires, if any. */
  auth: RegistryCredentials | undefined;
  logFile: string;
  /** Blob and manifest storage; survives stop() and start(). */
  storageDir: string;
  /** Milliseconds from spawn to the API answering, for the last start. */
  startupMs: number;
  /** Stops the process; port and storage are kept for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same storage and waits until it answers. */
  start(): Promise<void>;
  /** Stops it and removes its files. */
  dispose(): Promise<void>;
}

function configYaml(port: number, storageDir: string, htpasswdFile: string | undefined): string {
  // JSON is YAML; the registry reads it as its config file.
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${port}`,
      secret: randomBytes(16).toString('hex'),
      headers: { 'X-Content-Type-Options': ['nosniff'] },
    },
  };
  if (htpasswdFile !== undefined) config.auth = { htpasswd: { realm: 'kwarm-test', path: htpasswdFile } };
  return `${JSON.stringify(config, null, 2)}\n`;
}

async function htpasswdLine(creds: RegistryCredentials): Promise<string> {
  // -B: bcrypt, the only hash distribution accepts.
  const { stdout } = await execFileAsync(systemBinary('htpasswd'), ['-Bbn', creds.username, creds.password]);
  const line = stdout.trim();
  if (!line.startsWith(`${creds.username}:`)) throw new Error(`htpasswd printed no entry for ${creds.username}`);
  return `${line}\n`;
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const name = opts.name ?? (opts.auth ? 'registry-auth' : 'registry');
  const dir = makeTempDir(name);
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir);
  let htpasswdFile: string | undefined;
  if (opts.auth !== undefined) {
    htpasswdFile = join(dir, 'htpasswd');
    writeFileSync(htpasswdFile, await htpasswdLine(opts.auth), { mode: 0o600 });
  }
  const port = await freePort();
  const configFile = join(dir, 'config.yml');
  writeFileSync(configFile, configYaml(port, storageDir, htpasswdFile));
  const logFile = join(dir, 'registry.log');
  const url = `http://127.0.0.1:${port}`;
  const command = systemBinary('docker-registry');

  let proc: ManagedProcess | undefined;
  // One ManagedProcess.stop() per process, however stop/kill/restart/dispose calls follow or overlap.
  let stopping: Promise<void> | undefined;
  const stopProc = (): Promise<void> => (stopping ??= proc?.stop() ?? Promise.resolve());

  const launch = async (): Promise<number> => {
    const started = Date.now();
    const p = ManagedProcess.start({ name, command, args: ['serve', configFile], logFile });
    proc = p;
    stopping = undefined;
    try {
      await waitFor(
        async () => {
          if (!p.running) throw new Error(`exited with code ${String(await p.wait())}`);
          // /v2/ answers 200, or 401 with auth on: either way the API is up.
          const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
          await res.body?.cancel();
          return res.status === 200 || res.status === 401;
        },
        { what: `${name} on ${url}`, timeoutMs: 20_000, intervalMs: 50 },
      );
    } catch (err) {
      await stopProc();
      throw new Error(`${name} did not start: ${(err as Error).message}\n--- ${logFile} ---\n${p.tail()}`);
    }
    return Date.now() - started;
  };

  const registry: TestRegistry = {
    host: `127.0.0.1:${port}`,
    url,
    auth: opts.auth,
    logFile,
    storageDir,
    startupMs: 0,
    async stop() {
      await stopProc();
    },
    async start() {
      if (proc?.running === true) throw new Error(`${name} is already running`);
      registry.startupMs = await launch();
    },
    async dispose() {
      await stopProc();
      removeDir(dir);
    },
  };
  try {
    registry.startupMs = await launch();
  } catch (err) {
    removeDir(dir);
    throw err;
  }
  return registry;
}
