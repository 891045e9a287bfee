// Dockerfile.agent and Dockerfile.controller without a Docker daemon: everything they COPY from the build
// context exists (and is not excluded by .dockerignore), and the entry points they run start from the
// compiled output laid out as in the final image (`node <entry> --help`).
import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';

interface Dockerfile { copies: string[]; entrypoint: string[]; stages: number }

function parse(path: string): Dockerfile {
  const lines = readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const copies = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => {
    const parts = l.slice(5).trim().split(/\s+/).filter((p) => !p.startsWith('--'));
    return parts.slice(0, -1);
  });
  const ep = lines.find((l) => l.startsWith('ENTRYPOINT '));
  if (ep === undefined) throw new Error(`${path} has no ENTRYPOINT`);
  return { copies, entrypoint: JSON.parse(ep.slice('ENTRYPOINT '.length)) as string[], stages: lines.filter((l) => l.startsWith('FROM ')).length };
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout + stderr });
    });
  });
}

describe('install: Dockerfiles', function () {
  this.timeout(180_000);
  let image: string;
  const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

  before(() => {
    // The final image: the compiled tree at /app, proto/, package.json and the dependencies.
    image = makeTempDir('image');
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', join(image, 'app')], { stdio: 'pipe' });
    cpSync('proto', join(image, 'app', 'proto'), { recursive: true });
    cpSync('package.json', join(image, 'app', 'package.json'));
    symlinkSync(join(process.cwd(), 'node_modules'), join(image, 'app', 'node_modules'));
  });
  after(() => { removeDir(image); });

  for (const [file, flag] of [['Dockerfile.agent', '--cri-socket'], ['Dockerfile.controller', '--max-concurrent-pulls']] as const) {
    describe(file, () => {
      it('is multi-stage and copies only files that exist and are not dockerignored', () => {
        const df = parse(file);
        expect(df.stages).to.be.greaterThanOrEqual(2);
        expect(df.copies).to.not.be.empty;
        for (const src of df.copies) {
          expect(existsSync(src), `${file} copies ${src}, which does not exist`).to.equal(true);
          const top = src.replace(/\/$/, '').split('/')[0]!;
          expect(ignored, `${file} copies ${src}, which .dockerignore excludes`).to.not.include(top);
        }
      });

      it(`starts its entry point from the compiled image layout (${flag} in --help)`, async () => {
        const [cmd, ...args] = parse(file).entrypoint;
        expect(cmd).to.equal('node');
        mkdirSync(join(image, 'app'), { recursive: true });
        const res = await run(process.execPath, [...args, '--help'], join(image, 'app'));
        expect(res.code, res.out).to.equal(0);
        expect(res.out).to.include(flag);
      });
    });
  }
});
