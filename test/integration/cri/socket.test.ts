// CRI socket detection: candidates are confirmed with Version, not taken on the file's word.
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { symlinkSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { detectCriRuntime } from '../../../agent/cri/socket.ts';
import { FakeCri } from '../../support/fake-cri.ts';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';

describe('CRI socket detection', function () {
  this.timeout(30_000);
  let fake: FakeCri | undefined;
  let dir: string;
  let silent: Server | undefined;
  let paths: { missing: string; regularFile: string; notCri: string };

  before(async () => {
    fake = await FakeCri.start({ runtimeName: 'fake-cri' });
    dir = makeTempDir('cri-socket');
    paths = { missing: join(dir, 'missing.sock'), regularFile: join(dir, 'file.sock'), notCri: join(dir, 'not-cri.sock') };
    writeFileSync(paths.regularFile, '');
    // A unix socket that accepts connections but never speaks gRPC (a stale or foreign socket).
    const server = createServer((conn) => { conn.destroy(); });
    silent = server;
    await new Promise<void>((resolve) => { server.listen(paths.notCri, resolve); });
  });

  after(async () => {
    await new Promise<void>((resolve) => { if (silent) silent.close(() => { resolve(); }); else resolve(); });
    await fake?.stop();
    removeDir(dir);
  });

  it('takes the first candidate that answers Version, passing over the others', async () => {
    const found = await detectCriRuntime({
      candidates: [paths.missing, paths.regularFile, paths.notCri, fake!.socket],
      probeTimeoutMs: 1000,
      signal: AbortSignal.timeout(20_000),
    });
    try {
      expect(found.socketPath).to.equal(fake!.socket);
      expect(found.version.runtimeName).to.equal('fake-cri');
      expect((await found.runtime.listImages({ signal: AbortSignal.timeout(5000) }))).to.deep.equal([]);
    } finally {
      found.runtime.close();
    }
  });

  it('says what it tried and why each failed when none answers', async () => {
    let failure: unknown;
    try {
      await detectCriRuntime({ candidates: [paths.missing, paths.regularFile, paths.notCri], probeTimeoutMs: 1000, signal: AbortSignal.timeout(20_000) });
    } catch (err) {
      failure = err;
    }
    const message = String(failure);
    expect(message).to.include('no CRI socket found (set --cri-socket)');
    expect(message).to.include(`${paths.missing}: does not exist`);
    expect(message).to.include(`${paths.regularFile}: not a socket`);
    expect(message).to.include(`${paths.notCri}: CRI Version:`);
  });

  it('uses --cri-socket alone when given, in unix:// form too', async () => {
    const found = await detectCriRuntime({ explicit: `unix://${fake!.socket}`, candidates: [paths.missing], signal: AbortSignal.timeout(10_000) });
    found.runtime.close();
    expect(found.socketPath).to.equal(fake!.socket);

    let failure: unknown;
    try {
      await detectCriRuntime({ explicit: paths.missing, candidates: [fake!.socket], signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      failure = err;
    }
    expect(String(failure)).to.include(`--cri-socket: ${paths.missing}: does not exist`);
  });

  it('probes a socket reached through two paths (a /var/run link) once', async () => {
    const link = join(dir, 'link.sock');
    symlinkSync(fake!.socket, link);
    const seen: string[] = [];
    let failure: unknown;
    try {
      await detectCriRuntime({
        candidates: [link, fake!.socket],
        // Every connection goes nowhere, so each probe that runs is recorded and fails.
        connect: (path) => {
          seen.push(path);
          return new GrpcImageRuntime({ endpoint: paths.missing });
        },
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      failure = err;
    }
    expect(seen).to.deep.equal([link]);
    expect(String(failure)).to.include(`${link}: CRI Version: UNAVAILABLE`);
  });
});
