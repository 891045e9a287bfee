// kwarm's own images without Docker: the agent and controller images built from this repository as the
// Dockerfiles describe them, for the kubelets of the test cluster to pull and run.
//
// The Dockerfile is read, not copied by hand: the final stage gives the image config (ENTRYPOINT, USER,
// WORKDIR, ENV, EXPOSE, LABEL) and the files of its COPYs (one layer for all of them, see buildImage). `COPY --from=<stage>` is made by running that
// stage here: its COPYs from the repository into a scratch dir and its RUN lines through sh, except
// `npm ci`, which this machine already did: the build stage links the repository's node_modules, and a
// stage running `npm ci --omit=dev` becomes the production packages of package-lock.json. The base image
// (node:22-bookworm-slim) becomes one runtime layer: the Node binary the npm `node` package put in
// node_modules, the shared libraries `ldd` names for it, and the dynamic loader.
//
// Layers are cached under ~/.cache/kwarm/images, keyed by the hash of what goes into them (and of this
// builder), so a test run builds them once and a run after a source change rebuilds only the app layer.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from './binaries.ts';
import { gzipLayer, pushImage, tarArchive, type ImageRunConfig, type Layer, type PushedImage, type PushTarget, type TarEntry } from './oci-image.ts';
import { makeTempDir, removeScratchDir } from './tmp.ts';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = join(import.meta.dirname, '..');

export const KWARM_COMPONENTS = ['agent', 'controller'] as const;
export type KwarmComponent = (typeof KWARM_COMPONENTS)[number];

export function dockerfileOf(component: KwarmComponent): string {
  return `Dockerfile.${component}`;
}

/** Repository paths in the registry, as the chart's defaults name them (ghcr.io/kwarm/kwarm-<component>). */
export function repositoryOf(component: KwarmComponent): string {
  return `kwarm/kwarm-${component}`;
}

// ---------------------------------------------------------------------------------------------------
// Reading a Dockerfile (pure)

export interface DockerInstruction {
  keyword: string;
  args: string;
}

export interface DockerStage {
  base: string;
  name: string | undefined;
  instructions: DockerInstruction[];
}

/** Stages of a Dockerfile, instructions with continuation lines joined and comments dropped. */
export function parseDockerfile(text: string): DockerStage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole !== '') logical.push(whole);
  }
  const stages: DockerStage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (m === null) continue;
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (keyword === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (f === null) throw new Error(`cannot read FROM ${args}`);
      stages.push({ base: f[1]!, name: f[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`${keyword} before the first FROM`);
    stage.instructions.push({ keyword, args });
  }
  return stages;
}

export interface CopyInstruction {
  /** The stage named by --from, if any. */
  from: string | undefined;
  sources: string[];
  dest: string;
}

export function parseCopy(args: string): CopyInstruction {
  const words = args.split(/\s+/);
  let from: string | undefined;
  const rest: string[] = [];
  for (const w of words) {
    if (w.startsWith('--from=')) from = w.slice('--from='.length);
    else if (w.startsWith('--')) throw new Error(`COPY ${w} is not supported by the image builder`);
    else rest.push(w);
  }
  if (rest.length < 2) throw new Error(`COPY ${args}: needs a source and a destination`);
  return { from, sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

/** `KEY=value KEY2="quoted value"` (ENV and LABEL); the legacy `ENV KEY value` form too. */
export function parseKeyValues(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([^\s=]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g;
  if (!args.includes('=')) {
    const m = /^(\S+)\s+(.*)$/.exec(args);
    if (m !== null) out[m[1]!] = m[2]!;
    return out;
  }
  for (const m of args.matchAll(re)) out[m[1]!] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
  return out;
}

/** A stage this builder runs to make what a later COPY --from takes out of it. */
export interface StagePlan {
  name: string;
  workdir: string;
  /** The stage's COPYs from the repository, in order. */
  copies: { sources: string[]; dest: string }[];
  /** RUN lines other than `npm ci` (that one is satisfied by the repository's node_modules). */
  runs: string[];
  /** The stage runs `npm ci --omit=dev`: its node_modules holds production packages only. */
  productionDependencies: boolean;
}

export type PlannedCopy =
  | { kind: 'context'; sources: string[]; dest: string }
  | { kind: 'stage'; stage: StagePlan; source: string; dest: string };

export interface ImagePlan {
  /** The final stage's image config. */
  config: {
    entrypoint: string[];
    user: string;
    workingDir: string;
    env: Record<string, string>;
    exposedPorts: string[];
    labels: Record<string, string>;
  };
  /** The final stage's COPYs, one layer each, in order. */
  copies: PlannedCopy[];
  /** The final stage's base image, made here from the host's Node runtime. */
  base: string;
}

/** `path` against `workdir`, keeping a trailing slash (COPY's "into this directory"); "." and "./" are directories too. */
function resolveIn(workdir: string, path: string): string {
  const resolved = posix.resolve(workdir, path);
  return path.endsWith('/') || path === '.' ? `${resolved.replace(/\/$/, '')}/` : resolved;
}

function planStage(stage: DockerStage): StagePlan {
  let workdir = '/';
  const copies: StagePlan['copies'] = [];
  const runs: string[] = [];
  let productionDependencies = false;
  for (const ins of stage.instructions) {
    switch (ins.keyword) {
      case 'WORKDIR':
        workdir = resolveIn(workdir, ins.args);
        break;
      case 'COPY': {
        const c = parseCopy(ins.args);
        if (c.from !== undefined) throw new Error(`stage ${stage.name ?? stage.base}: COPY --from inside a build stage is not supported`);
        copies.push({ sources: c.sources, dest: resolveIn(workdir, c.dest) });
        break;
      }
      case 'RUN':
        for (const part of ins.args.split('&&').map((p) => p.trim())) {
          if (part.startsWith('npm ci')) productionDependencies ||= part.includes('--omit=dev');
          else if (!part.startsWith('npm cache clean')) runs.push(part);
        }
        break;
      case 'ENV':
      case 'LABEL':
      case 'ARG':
        break;
      default:
        throw new Error(`stage ${stage.name ?? stage.base}: ${ins.keyword} is not supported by the image builder`);
    }
  }
  return { name: stage.name ?? stage.base, workdir, copies, runs, productionDependencies };
}

/** What the image builder does for a Dockerfile; throws on instructions it cannot reproduce. */
export function planImage(stages: readonly DockerStage[]): ImagePlan {
  const final = stages.at(-1);
  if (final === undefined) throw new Error('the Dockerfile has no FROM');
  if (!/^node:22([.-]|$)/.test(final.base)) throw new Error(`the final stage is based on ${final.base}; the builder makes node:22 images only`);
  let workdir = '/';
  const config: ImagePlan['config'] = { entrypoint: [], user: '', workingDir: '/', env: {}, exposedPorts: [], labels: {} };
  const copies: PlannedCopy[] = [];
  for (const ins of final.instructions) {
    switch (ins.keyword) {
      case 'WORKDIR':
        workdir = resolveIn(workdir, ins.args);
        config.workingDir = workdir;
        break;
      case 'ENV':
        Object.assign(config.env, parseKeyValues(ins.args));
        break;
      case 'LABEL':
        Object.assign(config.labels, parseKeyValues(ins.args));
        break;
      case 'USER':
        config.user = ins.args;
        break;
      case 'EXPOSE':
        config.exposedPorts.push(...ins.args.split(/\s+/).map((p) => (p.includes('/') ? p : `${p}/tcp`)));
        break;
      case 'ENTRYPOINT': {
        let parsed: unknown;
        try {
          parsed = JSON.parse(ins.args);
        } catch {
          parsed = undefined;
        }
        if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`ENTRYPOINT ${ins.args}: only the JSON array form is supported`);
        config.entrypoint = parsed;
        break;
      }
      case 'COPY': {
        const c = parseCopy(ins.args);
        const dest = resolveIn(workdir, c.dest);
        if (c.from === undefined) {
          copies.push({ kind: 'context', sources: c.sources, dest });
          break;
        }
        const from = stages.find((s) => s.name === c.from);
        if (from === undefined || from === final) throw new Error(`COPY --from=${c.from}: no such earlier stage`);
        if (c.sources.length !== 1) throw new Error(`COPY --from=${c.from}: one source only`);
        const stage = planStage(from);
        copies.push({ kind: 'stage', stage, source: resolveIn(stage.workdir, c.sources[0]!), dest });
        break;
      }
      default:
        throw new Error(`the final stage's ${ins.keyword} is not supported by the image builder`);
    }
  }
  if (config.entrypoint.length === 0) throw new Error('the final stage has no ENTRYPOINT');
  return { config, copies, base: final.base };
}

/** The libraries `ldd` prints for a binary (the vDSO, which has no file, left out), loader included. */
export function parseLdd(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path !== undefined) out.push(path);
  }
  return out;
}

interface LockPackage {
  version?: string;
  integrity?: string;
  dev?: boolean;
  optional?: boolean;
  link?: boolean;
}

/** The node_modules paths `npm ci --omit=dev` installs, read from package-lock.json (v2/v3). */
export function productionPackages(lockJson: unknown): { path: string; version: string; integrity: string; optional: boolean }[] {
  if (typeof lockJson !== 'object' || lockJson === null || !('packages' in lockJson)) throw new Error('package-lock.json has no "packages" (lockfileVersion 2 or 3 needed)');
  const packages = lockJson.packages;
  if (typeof packages !== 'object' || packages === null) throw new Error('package-lock.json "packages" is not an object');
  const out: { path: string; version: string; integrity: string; optional: boolean }[] = [];
  for (const [path, value] of Object.entries(packages)) {
    if (path === '' || !path.includes('node_modules/')) continue;
    const p = value as LockPackage;
    if (p.dev === true || p.link === true) continue;
    out.push({ path, version: p.version ?? '', integrity: p.integrity ?? '', optional: p.optional === true });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** Docker's .dockerignore match for one path relative to the context (patterns with * and ?; no `!`, no `**`). */
export function dockerIgnored(relPath: string, patterns: readonly string[]): boolean {
  const parts = relPath.split('/');
  return patterns.some((pattern) => {
    const re = new RegExp(`^${pattern.replace(/\/$/, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
    return parts.some((_, i) => re.test(parts.slice(0, i + 1).join('/')));
  });
}

// ---------------------------------------------------------------------------------------------------
// Building (file system and processes)

function sha256Hex(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** The builder's own code: a change to it invalidates every cached layer. */
function builderHash(): string {
  return sha256Hex(readFileSync(import.meta.filename), readFileSync(join(import.meta.dirname, 'oci-image.ts')));
}

/** Files under `dir` (relative paths, sorted), symlinks as themselves, skipping what `skip` says. */
function walk(dir: string, skip: (rel: string) => boolean = () => false, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    if (skip(r)) continue;
    const st = lstatSync(join(dir, r));
    if (st.isDirectory()) out.push(...walk(dir, skip, r));
    else out.push(r);
  }
  return out;
}

/** Tar entries for a file or symlink on disk placed at `target` (relative, no leading slash). */
function entryFor(hostPath: string, target: string): TarEntry {
  const st = lstatSync(hostPath);
  if (st.isSymbolicLink()) return { type: 'symlink', path: target, target: readlinkSync(hostPath) };
  // Owner bits say whether it is a program; everyone may read (the image runs as uid 1000).
  return { type: 'file', path: target, content: readFileSync(hostPath), mode: (st.mode & 0o100) !== 0 ? 0o755 : 0o644 };
}

/** The entries with every parent directory listed before them (sorted, deduplicated). */
function withParents(entries: readonly TarEntry[]): TarEntry[] {
  const dirs = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const e of entries) if (e.type === 'dir') dirs.delete(e.path);
  const all: TarEntry[] = [...[...dirs].map((path): TarEntry => ({ type: 'dir', path })), ...entries];
  return all.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function strip(path: string): string {
  return path.replace(/^\/+/, '');
}

/** Hash of files on disk (path and content), for cache keys. */
function hashFiles(root: string, rels: readonly string[]): string {
  const h = createHash('sha256');
  for (const r of rels) {
    const p = join(root, r);
    const st = lstatSync(p);
    h.update(r).update('\0').update(st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : readFileSync(p)).update(String(st.mode & 0o100)).update('\0');
  }
  return h.digest('hex');
}

interface CachedLayerMeta {
  digest: string;
  diffId: string;
  size: number;
}

// Each builder or source change leaves layers behind (the runtime one is ~50 MB); two days covers a working session.
const CACHE_MAX_AGE_MS = 2 * 24 * 3600 * 1000;

function layerCacheDir(): string {
  return join(cacheDir(), 'images');
}

/** The layer stored under `key`, or made by `make` and stored; entries unused for two days are removed. */
async function cachedLayer(key: string, make: () => Promise<TarEntry[]>): Promise<Layer> {
  const dir = layerCacheDir();
  mkdirSync(dir, { recursive: true });
  const metaFile = join(dir, `${key}.json`);
  const blobFile = join(dir, `${key}.tar.gz`);
  if (existsSync(metaFile) && existsSync(blobFile)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as CachedLayerMeta;
    const data = readFileSync(blobFile);
    if (data.length === meta.size) {
      const now = new Date();
      utimesSync(metaFile, now, now);
      return { digest: meta.digest, diffId: meta.diffId, data };
    }
  }
  const layer = await gzipLayer(tarArchive(withParents(await make())), 1);
  // Written under temporary names and renamed (the meta last), so a concurrent run never reads half a layer.
  const tmp = `.${process.pid}-${Date.now()}`;
  writeFileSync(blobFile + tmp, layer.data);
  renameSync(blobFile + tmp, blobFile);
  const meta: CachedLayerMeta = { digest: layer.digest, diffId: layer.diffId, size: layer.data.length };
  writeFileSync(metaFile + tmp, JSON.stringify(meta));
  renameSync(metaFile + tmp, metaFile);
  pruneCache(dir);
  return layer;
}

function pruneCache(dir: string): void {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    const meta = join(dir, name);
    if (now - statSync(meta).mtimeMs < CACHE_MAX_AGE_MS) continue;
    rmSync(meta, { force: true });
    rmSync(meta.replace(/\.json$/, '.tar.gz'), { force: true });
  }
}

/** The Node 22 binary the npm `node` package installed (the one `npx` runs). */
export function nodeBinary(): string {
  const path = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(path)) throw new Error(`${path} is missing: run 'npm ci' (the devDependency "node" provides Node 22)`);
  return realpathSync(path);
}

const PASSWD = 'root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000::/home/node:/usr/sbin/nologin\n';
const GROUP = 'root:x:0:\nnode:x:1000:\n';
/** The PATH of the node:22 images, so an ENTRYPOINT of "node" finds /usr/local/bin/node. */
export const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The base image's part: Node at /usr/local/bin/node (as in node:22 images), its libraries and loader, /etc/passwd. */
async function runtimeLayer(): Promise<{ layer: Layer; what: string }> {
  const node = nodeBinary();
  const { stdout } = await execFileAsync('ldd', [node]);
  const libs = parseLdd(stdout);
  if (libs.length === 0) throw new Error(`ldd found no libraries for ${node}; a static Node would need none, but this one is dynamic`);
  const files: [string, string][] = [[node, 'usr/local/bin/node'], ...libs.map((l): [string, string] => [l, strip(l)])];
  const stripped = await stripWorks();
  const key = sha256Hex('runtime', builderHash(), String(stripped), ...files.flatMap(([host, target]) => [target, sha256Hex(readFileSync(host))]));
  const version = (await execFileAsync(node, ['--version'])).stdout.trim();
  const layer = await cachedLayer(key, async () => [
    // readFileSync follows symlinks: the loader and the libraries are stored as the files they point at.
    ...await Promise.all(files.map(async ([host, target]): Promise<TarEntry> => ({
      type: 'file', path: target, mode: 0o755,
      content: stripped && target === 'usr/local/bin/node' ? await strippedBinary(host) : readFileSync(host),
    }))),
    { type: 'file', path: 'etc/passwd', content: Buffer.from(PASSWD) },
    { type: 'file', path: 'etc/group', content: Buffer.from(GROUP) },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
  ]);
  return { layer, what: `Node ${version} from node_modules/node${stripped ? ' (stripped)' : ''} with ${libs.map((l) => posix.basename(l)).join(', ')}` };
}

/** Whether `strip` (binutils) is installed; without it the Node binary goes in as it is. */
async function stripWorks(): Promise<boolean> {
  try {
    await execFileAsync('strip', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Node binary without its symbols and debug information: 125 MB becomes 107 MB, 52 MB gzipped becomes
 * 44 MB, and every node pulls and unpacks that much less before kwarm's pods start (the pull of the images was
 * the longest part of helm install -> Ready).
 */
async function strippedBinary(path: string): Promise<Buffer> {
  const dir = makeTempDir('strip');
  try {
    const out = join(dir, 'node');
    await execFileAsync('strip', ['-o', out, path]);
    return readFileSync(out);
  } finally {
    removeScratchDir(dir);
  }
}

/** `npm ci --omit=dev` without the network: the production packages of the lock file, from node_modules. */
/** What one COPY of the final stage adds: a cache key for its inputs and the entries, made only on a cache miss. */
interface LayerPart {
  key: string;
  entries: () => Promise<TarEntry[]>;
}

function productionDepsPart(dest: string): LayerPart {
  const lock: unknown = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
  const packages = productionPackages(lock);
  const modules = realpathSync(join(REPO_ROOT, 'node_modules'));
  const key = sha256Hex('deps', builderHash(), dest, JSON.stringify(packages));
  return { key, entries: () => {
    const entries: TarEntry[] = [];
    for (const p of packages) {
      const dir = join(modules, p.path.slice('node_modules/'.length));
      if (!existsSync(join(dir, 'package.json'))) {
        if (p.optional) continue;
        throw new Error(`${p.path} is in package-lock.json but not in node_modules: run 'npm ci'`);
      }
      const installed = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version;
      if (installed !== p.version) throw new Error(`${p.path} is ${String(installed)} in node_modules but ${p.version} in package-lock.json: run 'npm ci'`);
      // A package's own node_modules holds its nested dependencies, which are listed (or not) on their own.
      for (const rel of walk(dir, (r) => r === 'node_modules')) entries.push(entryFor(join(dir, rel), strip(posix.join(dest, p.path.slice('node_modules/'.length), rel))));
    }
    return Promise.resolve(entries);
  } };
}

/** Files a COPY from the repository takes (relative to the repository), honouring .dockerignore. */
function contextFiles(sources: readonly string[], ignore: readonly string[]): { rel: string; target: (dest: string) => string }[] {
  const out: { rel: string; target: (dest: string) => string }[] = [];
  for (const src of sources) {
    const clean = src.replace(/\/$/, '');
    const path = join(REPO_ROOT, clean);
    if (!existsSync(path)) throw new Error(`COPY ${src}: ${path} does not exist`);
    if (dockerIgnored(clean, ignore)) throw new Error(`COPY ${src}: .dockerignore excludes it`);
    if (statSync(path).isDirectory()) {
      // COPY dir/ dest copies the directory's content into dest.
      for (const rel of walk(path, (r) => dockerIgnored(`${clean}/${r}`, ignore))) {
        out.push({ rel: `${clean}/${rel}`, target: (dest) => posix.join(dest, rel) });
      }
    } else {
      // COPY file dir/ puts it in dir; COPY file name renames it (one source only).
      out.push({ rel: clean, target: (dest) => (dest.endsWith('/') || sources.length > 1 ? posix.join(dest, posix.basename(clean)) : dest) });
    }
  }
  return out;
}

function dockerIgnorePatterns(): string[] {
  const file = join(REPO_ROOT, '.dockerignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

/** Runs a build stage in a scratch dir standing for its WORKDIR and returns the layer of `source` at `dest`. */
function stageOutputPart(stage: StagePlan, source: string, dest: string, signal: AbortSignal | undefined): LayerPart {
  if (stage.productionDependencies) {
    if (stage.runs.length > 0) throw new Error(`stage ${stage.name}: RUN lines besides npm ci --omit=dev are not supported`);
    if (posix.relative(stage.workdir, source) !== 'node_modules') throw new Error(`stage ${stage.name}: only its node_modules can be copied out`);
    return productionDepsPart(dest);
  }
  const ignore = dockerIgnorePatterns();
  const inputs = stage.copies.flatMap((c) => contextFiles(c.sources, ignore).map((f) => ({ ...f, dest: c.dest })));
  const key = sha256Hex('stage', builderHash(), JSON.stringify(stage), source, dest, hashFiles(REPO_ROOT, inputs.map((i) => i.rel)));
  return { key, entries: async () => {
    const scratch = makeTempDir(`image-stage-${stage.name}`);
    try {
      const inside = (p: string): string => join(scratch, relative(stage.workdir, p));
      for (const i of inputs) {
        const to = inside(i.target(i.dest));
        mkdirSync(dirname(to), { recursive: true });
        cpSync(join(REPO_ROOT, i.rel), to, { verbatimSymlinks: true });
      }
      // What `npm ci` (all dependencies) would have installed is already in the repository's node_modules.
      symlinkSync(realpathSync(join(REPO_ROOT, 'node_modules')), join(scratch, 'node_modules'));
      const path = `${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? IMAGE_PATH}`;
      for (const run of stage.runs) {
        try {
          await execFileAsync('sh', ['-c', run], { cwd: scratch, env: { ...process.env, PATH: path }, signal, maxBuffer: 16 * 1024 * 1024 });
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string; message: string };
          throw new Error(`stage ${stage.name}: RUN ${run} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
        }
      }
      const out = inside(source);
      if (!existsSync(out)) throw new Error(`stage ${stage.name} made no ${source}`);
      return walk(out, (r) => r === 'node_modules').map((rel) => entryFor(join(out, rel), strip(posix.join(dest, rel))));
    } finally {
      removeScratchDir(scratch);
    }
  } };
}

function contextPart(sources: readonly string[], dest: string): LayerPart {
  const files = contextFiles(sources, dockerIgnorePatterns());
  return {
    key: sha256Hex('context', builderHash(), dest, hashFiles(REPO_ROOT, files.map((f) => f.rel)), ...files.map((f) => f.target(dest))),
    entries: () => Promise.resolve(files.map((f) => entryFor(join(REPO_ROOT, f.rel), strip(f.target(dest))))),
  };
}

export interface KwarmImage {
  component: KwarmComponent;
  plan: ImagePlan;
  layers: Layer[];
  /** One line per layer: what made it. */
  history: string[];
  config: ImageRunConfig;
  /** Content tag: the same inputs give the same tag. */
  tag: string;
}

async function buildImage(component: KwarmComponent, signal: AbortSignal | undefined): Promise<KwarmImage> {
  const file = dockerfileOf(component);
  const plan = planImage(parseDockerfile(readFileSync(join(REPO_ROOT, file), 'utf8')));
  const runtime = await runtimeLayer();
  // The final stage's COPYs make one layer, not one each: the test nodes use containerd's native snapshotter,
  // which stores every layer as a full copy of the file system below it, so each extra layer of a 250 MB image
  // costs a node 250 MB of disk and the time to copy it.
  const parts = plan.copies.map((c) => (c.kind === 'context' ? contextPart(c.sources, c.dest) : stageOutputPart(c.stage, c.source, c.dest, signal)));
  const app = await cachedLayer(sha256Hex('app', builderHash(), ...parts.map((p) => p.key)), async () => {
    // Later COPYs replace what earlier ones put at the same path, as in an image built layer by layer.
    const byPath = new Map<string, TarEntry>();
    for (const part of parts) for (const e of await part.entries()) byPath.set(e.path, e);
    return [...byPath.values()];
  });
  const layers: Layer[] = [runtime.layer, app];
  const history = [
    `${plan.base} stand-in: ${runtime.what}`,
    plan.copies.map((c) => (c.kind === 'context' ? `COPY ${c.sources.join(' ')} ${c.dest}` : `COPY --from=${c.stage.name} ${c.source} ${c.dest}`)).join('; '),
  ];
  const config: ImageRunConfig = {
    entrypoint: plan.config.entrypoint,
    user: plan.config.user,
    workingDir: plan.config.workingDir,
    env: [`PATH=${IMAGE_PATH}`, ...Object.entries(plan.config.env).map(([k, v]) => `${k}=${v}`)],
    exposedPorts: plan.config.exposedPorts,
    labels: plan.config.labels,
  };
  const tag = `dev-${sha256Hex(JSON.stringify(config), ...layers.map((l) => l.digest)).slice(0, 12)}`;
  return { component, plan, layers, history, config, tag };
}

let built: Promise<Record<KwarmComponent, KwarmImage>> | undefined;

/** Both images, built once per process (and per input change across processes, through the cache). */
export function buildKwarmImages(signal?: AbortSignal): Promise<Record<KwarmComponent, KwarmImage>> {
  built ??= (async () => {
    // One after the other: they share the runtime and dependency layers, and the machine has few cores.
    const agent = await buildImage('agent', signal);
    const controller = await buildImage('controller', signal);
    return { agent, controller };
  })();
  built.catch(() => { built = undefined; });
  return built;
}

export interface PushedKwarmImages {
  agent: PushedImage;
  controller: PushedImage;
}

/** Builds (or takes from the cache) both images and pushes them to `target` as kwarm/kwarm-<component>:<content tag>. */
export async function pushKwarmImages(target: PushTarget, signal?: AbortSignal): Promise<PushedKwarmImages> {
  const images = await buildKwarmImages(signal);
  const push = (img: KwarmImage): Promise<PushedImage> => pushImage(target, {
    repository: repositoryOf(img.component),
    tag: img.tag,
    layers: img.layers,
    config: img.config,
    history: img.history,
    ...(signal !== undefined ? { signal } : {}),
  });
  return { agent: await push(images.agent), controller: await push(images.controller) };
}
