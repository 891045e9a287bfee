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

/** A ustar archive holding one regular file (mode 0644 unless given, e.g. 0o755 for a program). */
export function tarOneFile(name: string, content: Buffer, mode = 0o644): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  if (content.length >= 8 ** 11) throw new Error('tar entry larger than the ustar size field allows');
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  octal(header, 100, 8, mode);
  octal(header, 108, 8, 0); // uid
  octal(header, 116, 8, 0); // gid
  octal(header, 124, 12, content.length);
  octal(header, 136, 12, 0); // mtime: fixed, so equal content gives equal digests
  header.write('0', 156, 1, 'ascii'); // typeflag: regular file
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  header.write('root', 265, 32, 'ascii');
  header.write('root', 297, 32, 'ascii');
  // The checksum is computed with its own field read as eight spaces.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  const padding = (512 - (content.length % 512)) % 512;
  // Two zero blocks end the archive.
  return Buffer.concat([header, content, Buffer.alloc(padding), Buffer.alloc(1024)]);
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

/** Builds an image with random layers of the given sizes and pushes it to `target`. */
export async function buildAndPushImage(target: PushTarget, opts: ImageSpecOptions): Promise<PushedImage> {
  const layers: Blob[] = [];
  const diffIds: string[] = [];
  for (const f of opts.files ?? []) {
    const tar = tarOneFile(f.path, f.content, f.mode ?? 0o644);
    diffIds.push(sha256(tar));
    layers.push(blob(await gzipAsync(tar, { level: 1 })));
  }
  for (const [i, size] of opts.layers.entries()) {
    const tar = tarOneFile(`kwarm-layer-${i}.bin`, randomBytes(size));
    diffIds.push(sha256(tar));
    // Level 0 (stored blocks, still valid gzip): random content does not shrink, and trying to
    // compress it costs ten times as long.
    layers.push(blob(await gzipAsync(tar, { level: 0 })));
  }
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: goArch(),
        os: 'linux',
        config: opts.entrypoint === undefined ? {} : { Entrypoint: [...opts.entrypoint] },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map(() => ({ created_by: 'kwarm test image builder' })),
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.data.length },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.data.length })),
    }),
  );
  const manifestDigest = sha256(manifest);

  const headers = authHeader(opts.auth ?? target.auth);
  for (const b of [...layers, config]) await pushBlob(target, opts.repository, b, headers, opts.signal);
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
    layerDigests: layers.map((l) => l.digest),
    totalBytes: manifest.length + config.data.length + layers.reduce((n, l) => n + l.data.length, 0),
  };
}
