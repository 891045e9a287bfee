// Test images built on the spot and pushed to a test registry over the distribution HTTP API:
// each layer is a gzipped tar holding one file of random bytes (so every image is unique and
// incompressible), the config lists the layers' diff_ids, the manifest is an OCI image manifest.
// Node built-ins only; the tar writer is the few lines of ustar a single regular file needs.
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { RegistryCredentials } from './registry.ts';

const gzipAsync = promisify(gzip);

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** What a push needs of a registry; TestRegistry fits. */
export interface PushTarget {
  /** "127.0.0.1:<port>" */
  host: string;
  /** "http://127.0.0.1:<port>" */
  url: string;
  auth?: RegistryCredentials | undefined;
}

export interface ImageSpecOptions {
  /** Repository path, e.g. "kwarm/test-a". */
  repository: string;
  tag: string;
  /** Size in bytes of each layer's random file; one layer per entry. */
  layers: readonly number[];
  /** Files added as one layer each, before the random ones (e.g. a static binary to run). */
  files?: readonly { path: string; content: Buffer; mode?: number }[];
  /** The image config's Entrypoint, for images that are run and not only pulled. */
  entrypoint?: readonly string[];
  /** Credentials for the push; defaults to the registry's own. */
  auth?: RegistryCredentials;
  signal?: AbortSignal;
}

export interface PushedImage {
  /** "<host>/<repository>:<tag>" */
  reference: string;
  /** "<host>/<repository>@<manifestDigest>" */
  digestReference: string;
  repository: string;
  tag: string;
  manifestDigest: string;
  /** Also the image id the runtime reports. */
  configDigest: string;
  layerDigests: string[];
  /** Bytes a pull downloads: manifest, config and compressed layers. */
  totalBytes: number;
}

interface Blob {
  digest: string;
  data: Buffer;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function blob(data: Buffer): Blob {
  return { digest: sha256(data), data };
}

/** Writes `value` as zero-padded octal, NUL-terminated, into a header field. */
function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
}

/** One member of a layer tar. Owner is always root (uid/gid 0) and mtime 0, so equal content gives equal digests. */
export type TarEntry =
  | { type: 'file'; path: string; content: Buffer; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const TYPEFLAG = { file: '0', symlink: '2', dir: '5', pax: 'x' } as const;

function header(name: string, typeflag: string, mode: number, size: number, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0); // mtime
  h.write(typeflag, 156, 1, 'ascii');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  // The checksum is computed with its own field read as eight spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

function padded(content: Buffer): Buffer[] {
  return [content, Buffer.alloc((512 - (content.length % 512)) % 512)];
}

/** A PAX record "<len> <key>=<value>\n", whose length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  while (Buffer.byteLength(`${len + String(len).length}${body}`) !== len + String(len).length) len += 1;
  return `${len + String(len).length}${body}`;
}

/** Header blocks for one entry: plain ustar when name and link fit, else a PAX header carrying them first. */
function entryBlocks(entry: TarEntry): Buffer[] {
  const name = entry.type === 'dir' ? `${entry.path.replace(/\/$/, '')}/` : entry.path;
  const link = entry.type === 'symlink' ? entry.target : '';
  const size = entry.type === 'file' ? entry.content.length : 0;
  if (size >= 8 ** 11) throw new Error(`tar entry ${name} is larger than the ustar size field allows`);
  const mode = entry.type === 'symlink' ? 0o777 : (entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644));
  const blocks: Buffer[] = [];
  const longName = Buffer.byteLength(name) > 100;
  const longLink = Buffer.byteLength(link) > 100;
  if (longName || longLink) {
    const pax = Buffer.from((longName ? paxRecord('path', name) : '') + (longLink ? paxRecord('linkpath', link) : ''), 'utf8');
    blocks.push(header('PaxHeader', TYPEFLAG.pax, 0o644, pax.length), ...padded(pax));
  }
  blocks.push(header(longName ? name.slice(0, 100) : name, TYPEFLAG[entry.type], mode, size, longLink ? '' : link));
  if (entry.type === 'file') blocks.push(...padded(entry.content));
  return blocks;
}

/** A tar archive (ustar, PAX headers for long names) of the entries in the order given. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  // Two zero blocks end the archive.
  return Buffer.concat([...entries.flatMap(entryBlocks), Buffer.alloc(1024)]);
}

/** A ustar archive holding one regular file (mode 0644 unless given, e.g. 0o755 for a program). */
export function tarOneFile(name: string, content: Buffer, mode = 0o644): Buffer {
  return tarArchive([{ type: 'file', path: name, content, mode }]);
}

export interface TarListing {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size: number;
  /** Symlink target. */
  target: string;
}

function field(h: Buffer, offset: number, width: number): string {
  const raw = h.subarray(offset, offset + width);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? width : end).toString('utf8');
}

/** The members of a tar archive (ustar names with prefix, PAX path/linkpath), for checking what a layer holds. */
export function listTar(tar: Buffer): TarListing[] {
  const out: TarListing[] = [];
  let pax: Record<string, string> = {};
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(field(h, 124, 12).trim() || '0', 8);
    const typeflag = field(h, 156, 1);
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (typeflag === 'x') {
      for (const m of body.toString('utf8').matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)) pax[m[1]!] = m[2]!;
      continue;
    }
    const prefix = field(h, 345, 155);
    const name = pax.path ?? (prefix === '' ? field(h, 0, 100) : `${prefix}/${field(h, 0, 100)}`);
    const type = typeflag === '0' || typeflag === '' ? 'file' : typeflag === '5' ? 'dir' : typeflag === '2' ? 'symlink' : 'other';
    out.push({ path: name.replace(/\/$/, ''), type, mode: parseInt(field(h, 100, 8).trim() || '0', 8), size, target: pax.linkpath ?? field(h, 157, 100) });
    pax = {};
  }
  return out;
}

/** Go's GOARCH for this machine: containerd only unpacks images whose config matches its platform. */
function goArch(): string {
  // The other Node arch names (arm64, arm, ppc64, s390x, riscv64, ...) are Go's as well.
  const renamed: Partial<Record<NodeJS.Architecture, string>> = { x64: 'amd64', ia32: '386' };
  return renamed[process.arch] ?? process.arch;
}

function authHeader(auth: RegistryCredentials | undefined): Record<string, string> {
  if (auth === undefined) return {};
  return { Authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` };
}

async function expectStatus(res: Response, ok: readonly number[], what: string): Promise<void> {
  if (ok.includes(res.status)) {
    await res.body?.cancel();
    return;
  }
  const body = await res.text().catch(() => '');
  throw new Error(`${what}: HTTP ${res.status} ${body.slice(0, 500)}`);
}

async function pushBlob(target: PushTarget, repo: string, b: Blob, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<void> {
  const base = `${target.url}/v2/${repo}/blobs`;
  const head = await fetch(`${base}/${b.digest}`, { method: 'HEAD', headers, signal: signal ?? null });
  if (head.status === 200) return;
  await expectStatus(head, [404], `HEAD blob ${b.digest}`);
  const start = await fetch(`${base}/uploads/`, { method: 'POST', headers, signal: signal ?? null });
  await expectStatus(start, [202], `start upload to ${repo}`);
  const location = start.headers.get('location');
  if (location === null) throw new Error(`start upload to ${repo}: no Location header`);
  // The Location may be relative and already carry query parameters (the upload state).
  const uploadUrl = new URL(location, target.url);
  uploadUrl.searchParams.set('digest', b.digest);
  const put = await fetch(uploadUrl, {
    method: 'PUT',
    // fetch sets Content-Length from the Buffer body.
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
    body: b.data,
    signal: signal ?? null,
  });
  await expectStatus(put, [201], `upload blob ${b.digest}`);
}

/** A compressed layer: its blob and the digest of the uncompressed tar the image config lists. */
export interface Layer {
  /** Digest of the gzipped blob. */
  digest: string;
  /** Digest of the uncompressed tar. */
  diffId: string;
  data: Buffer;
}

/** Gzips a layer tar; level 0 stores (random bytes), 1 is fast and good enough for programs and sources. */
export async function gzipLayer(tar: Buffer, level: number): Promise<Layer> {
  const data = await gzipAsync(tar, { level });
  return { digest: sha256(data), diffId: sha256(tar), data };
}

/** The image config's `config` part (the OCI image spec's execution parameters) that the harness sets. */
export interface ImageRunConfig {
  entrypoint?: readonly string[];
  cmd?: readonly string[];
  /** "uid[:gid]" or a user name. */
  user?: string;
  workingDir?: string;
  /** "NAME=value" */
  env?: readonly string[];
  /** "8080/tcp" */
  exposedPorts?: readonly string[];
  labels?: Readonly<Record<string, string>>;
}

export interface PushImageOptions {
  repository: string;
  tag: string;
  layers: readonly Layer[];
  config: ImageRunConfig;
  /** One history line per layer, e.g. what made it. */
  history?: readonly string[];
  auth?: RegistryCredentials;
  signal?: AbortSignal;
}

function runConfigJson(c: ImageRunConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.entrypoint !== undefined) out.Entrypoint = [...c.entrypoint];
  if (c.cmd !== undefined) out.Cmd = [...c.cmd];
  if (c.user !== undefined) out.User = c.user;
  if (c.workingDir !== undefined) out.WorkingDir = c.workingDir;
  if (c.env !== undefined) out.Env = [...c.env];
  if (c.exposedPorts !== undefined) out.ExposedPorts = Object.fromEntries(c.exposedPorts.map((p) => [p, {}]));
  if (c.labels !== undefined) out.Labels = { ...c.labels };
  return out;
}

/** Pushes an image made of the given layers (blobs already in the repository are not sent again). */
export async function pushImage(target: PushTarget, opts: PushImageOptions): Promise<PushedImage> {
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: goArch(),
        os: 'linux',
        config: runConfigJson(opts.config),
        rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => l.diffId) },
        history: opts.layers.map((_, i) => ({ created_by: opts.history?.[i] ?? 'kwarm test image builder' })),
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.data.length },
      layers: opts.layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.data.length })),
    }),
  );
  const manifestDigest = sha256(manifest);

  const headers = authHeader(opts.auth ?? target.auth);
  for (const b of [...opts.layers, config]) await pushBlob(target, opts.repository, b, headers, opts.signal);
  const put = await fetch(`${target.url}/v2/${opts.repository}/manifests/${opts.tag}`, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': OCI_MANIFEST },
    body: manifest,
    signal: opts.signal ?? null,
  });
  await expectStatus(put, [201], `PUT manifest ${opts.repository}:${opts.tag}`);
  const reported = put.headers.get('docker-content-digest');
  if (reported !== null && reported !== manifestDigest) {
    throw new Error(`registry stored manifest as ${reported}, expected ${manifestDigest}`);
  }

  return {
    reference: `${target.host}/${opts.repository}:${opts.tag}`,
    digestReference: `${target.host}/${opts.repository}@${manifestDigest}`,
    repository: opts.repository,
    tag: opts.tag,
    manifestDigest,
    configDigest: config.digest,
    layerDigests: opts.layers.map((l) => l.digest),
    totalBytes: manifest.length + config.data.length + opts.layers.reduce((n, l) => n + l.data.length, 0),
  };
}

/** Builds an image with random layers of the given sizes and pushes it to `target`. */
export async function buildAndPushImage(target: PushTarget, opts: ImageSpecOptions): Promise<PushedImage> {
  const layers: Layer[] = [];
  for (const f of opts.files ?? []) layers.push(await gzipLayer(tarOneFile(f.path, f.content, f.mode ?? 0o644), 1));
  for (const [i, size] of opts.layers.entries()) {
    // Level 0 (stored blocks, still valid gzip): random content does not shrink, and trying to
    // compress it costs ten times as long.
    layers.push(await gzipLayer(tarOneFile(`kwarm-layer-${i}.bin`, randomBytes(size)), 0));
  }
  return pushImage(target, {
    repository: opts.repository,
    tag: opts.tag,
    layers,
    config: opts.entrypoint === undefined ? {} : { entrypoint: opts.entrypoint },
    ...(opts.auth !== undefined ? { auth: opts.auth } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  });
}
