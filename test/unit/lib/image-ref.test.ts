// Expected values were cross-checked against github.com/distribution/reference v0.6.0
// (ParseNormalizedNamed, ParseDockerRef, FamiliarString), which containerd and the kubelet use.
import { expect } from 'chai';
import {
  familiarName,
  formatFamiliar,
  formatFullyQualified,
  InvalidImageRefError,
  isMutable,
  mustParseImageRef,
  parseImageRef,
  repositoryName,
  runtimeReference,
  type ImageRefErrorReason,
} from '../../../lib/image-ref.ts';

const D = 'sha256:894956eb71951ce86c17b5f58eb41e0e1ee5258b4467d7c107a98ebc28e0395b';

interface Valid {
  input: string;
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
  familiar: string;
  full: string;
  runtime: string;
  mutable: boolean;
}

const valid: Valid[] = [
  { input: 'nginx', domain: 'docker.io', path: 'library/nginx', familiar: 'nginx', full: 'docker.io/library/nginx', runtime: 'docker.io/library/nginx:latest', mutable: true },
  { input: 'nginx:1.27', domain: 'docker.io', path: 'library/nginx', tag: '1.27', familiar: 'nginx:1.27', full: 'docker.io/library/nginx:1.27', runtime: 'docker.io/library/nginx:1.27', mutable: false },
  { input: 'library/nginx:latest', domain: 'docker.io', path: 'library/nginx', tag: 'latest', familiar: 'nginx:latest', full: 'docker.io/library/nginx:latest', runtime: 'docker.io/library/nginx:latest', mutable: true },
  { input: 'docker.io/nginx', domain: 'docker.io', path: 'library/nginx', familiar: 'nginx', full: 'docker.io/library/nginx', runtime: 'docker.io/library/nginx:latest', mutable: true },
  { input: 'index.docker.io/library/nginx:1', domain: 'docker.io', path: 'library/nginx', tag: '1', familiar: 'nginx:1', full: 'docker.io/library/nginx:1', runtime: 'docker.io/library/nginx:1', mutable: false },
  { input: 'index.docker.io/nginx', domain: 'docker.io', path: 'library/nginx', familiar: 'nginx', full: 'docker.io/library/nginx', runtime: 'docker.io/library/nginx:latest', mutable: true },
  { input: 'bitnami/redis:7.2', domain: 'docker.io', path: 'bitnami/redis', tag: '7.2', familiar: 'bitnami/redis:7.2', full: 'docker.io/bitnami/redis:7.2', runtime: 'docker.io/bitnami/redis:7.2', mutable: false },
  { input: 'docker.io/library/a/b', domain: 'docker.io', path: 'library/a/b', familiar: 'library/a/b', full: 'docker.io/library/a/b', runtime: 'docker.io/library/a/b:latest', mutable: true },
  { input: 'localhost/foo', domain: 'localhost', path: 'foo', familiar: 'localhost/foo', full: 'localhost/foo', runtime: 'localhost/foo:latest', mutable: true },
  { input: 'localhost:5000/foo/bar:v1', domain: 'localhost:5000', path: 'foo/bar', tag: 'v1', familiar: 'localhost:5000/foo/bar:v1', full: 'localhost:5000/foo/bar:v1', runtime: 'localhost:5000/foo/bar:v1', mutable: false },
  { input: '127.0.0.1:5000/app:v1', domain: '127.0.0.1:5000', path: 'app', tag: 'v1', familiar: '127.0.0.1:5000/app:v1', full: '127.0.0.1:5000/app:v1', runtime: '127.0.0.1:5000/app:v1', mutable: false },
  { input: '[::1]:5000/app', domain: '[::1]:5000', path: 'app', familiar: '[::1]:5000/app', full: '[::1]:5000/app', runtime: '[::1]:5000/app:latest', mutable: true },
  { input: 'registry.k8s.io/pause:3.9', domain: 'registry.k8s.io', path: 'pause', tag: '3.9', familiar: 'registry.k8s.io/pause:3.9', full: 'registry.k8s.io/pause:3.9', runtime: 'registry.k8s.io/pause:3.9', mutable: false },
  { input: `ghcr.io/org/app@${D}`, domain: 'ghcr.io', path: 'org/app', digest: D, familiar: `ghcr.io/org/app@${D}`, full: `ghcr.io/org/app@${D}`, runtime: `ghcr.io/org/app@${D}`, mutable: false },
  // A digest pins the content even with tag latest; the runtime drops the tag.
  { input: `ghcr.io/org/app:latest@${D}`, domain: 'ghcr.io', path: 'org/app', tag: 'latest', digest: D, familiar: `ghcr.io/org/app:latest@${D}`, full: `ghcr.io/org/app:latest@${D}`, runtime: `ghcr.io/org/app@${D}`, mutable: false },
  { input: `nginx@${D}`, domain: 'docker.io', path: 'library/nginx', digest: D, familiar: `nginx@${D}`, full: `docker.io/library/nginx@${D}`, runtime: `docker.io/library/nginx@${D}`, mutable: false },
  // An upper-case first component is a host, not a Docker Hub namespace.
  { input: 'Foo/bar', domain: 'Foo', path: 'bar', familiar: 'Foo/bar', full: 'Foo/bar', runtime: 'Foo/bar:latest', mutable: true },
  { input: 'UPPER.io/x', domain: 'UPPER.io', path: 'x', familiar: 'UPPER.io/x', full: 'UPPER.io/x', runtime: 'UPPER.io/x:latest', mutable: true },
  { input: 'a__b/c--d/e.f:Tag_1', domain: 'docker.io', path: 'a__b/c--d/e.f', tag: 'Tag_1', familiar: 'a__b/c--d/e.f:Tag_1', full: 'docker.io/a__b/c--d/e.f:Tag_1', runtime: 'docker.io/a__b/c--d/e.f:Tag_1', mutable: false },
  { input: 'foo.bar/x', domain: 'foo.bar', path: 'x', familiar: 'foo.bar/x', full: 'foo.bar/x', runtime: 'foo.bar/x:latest', mutable: true },
  // Without a slash, `:5000` is a tag.
  { input: 'foo:5000', domain: 'docker.io', path: 'library/foo', tag: '5000', familiar: 'foo:5000', full: 'docker.io/library/foo:5000', runtime: 'docker.io/library/foo:5000', mutable: false },
  { input: 'myregistry:5000/x', domain: 'myregistry:5000', path: 'x', familiar: 'myregistry:5000/x', full: 'myregistry:5000/x', runtime: 'myregistry:5000/x:latest', mutable: true },
  { input: `nginx:${'a'.repeat(128)}`, domain: 'docker.io', path: 'library/nginx', tag: 'a'.repeat(128), familiar: `nginx:${'a'.repeat(128)}`, full: `docker.io/library/nginx:${'a'.repeat(128)}`, runtime: `docker.io/library/nginx:${'a'.repeat(128)}`, mutable: false },
];

const invalid: { input: string; reason: ImageRefErrorReason }[] = [
  { input: '', reason: 'Empty' },
  { input: 'Nginx', reason: 'Uppercase' },
  { input: 'docker.io/Library/nginx', reason: 'Uppercase' },
  { input: 'example.com/Foo', reason: 'Uppercase' },
  // containerd 1.6 rejects this one the same way (seen through CRI PullImage).
  { input: 'Bad/Ref:v1', reason: 'Uppercase' },
  { input: 'nginx:', reason: 'InvalidFormat' },
  { input: 'nginx:-bad', reason: 'InvalidFormat' },
  { input: ':tag', reason: 'InvalidFormat' },
  { input: 'nginx@sha256:abcd', reason: 'InvalidFormat' },
  { input: `nginx:${'a'.repeat(129)}`, reason: 'InvalidFormat' },
  { input: 'a/b//c', reason: 'InvalidFormat' },
  { input: '-foo/bar', reason: 'InvalidFormat' },
  { input: 'a-/b', reason: 'InvalidFormat' },
  { input: 'a..b/c', reason: 'InvalidFormat' },
  { input: 'foo bar', reason: 'InvalidFormat' },
  { input: 'registry:port/x', reason: 'InvalidFormat' },
  { input: 'example.com:/x', reason: 'InvalidFormat' },
  { input: `nginx@${D.slice(0, 47)}`, reason: 'InvalidDigest' },
  { input: `nginx@md5:${'0'.repeat(32)}`, reason: 'InvalidDigest' },
  { input: `nginx@${D.toUpperCase().replace('SHA256', 'sha256')}`, reason: 'InvalidDigest' },
  { input: D.slice('sha256:'.length), reason: 'HexIdentifier' },
  { input: `${'a'.repeat(250)}/bbbbbbb`, reason: 'NameTooLong' },
  { input: 'x'.repeat(5000), reason: 'InvalidFormat' },
];

describe('lib/image-ref', () => {
  describe('parseImageRef accepts references as the container ecosystem does', () => {
    for (const c of valid) {
      it(JSON.stringify(c.input.length > 60 ? c.input.slice(0, 60) + '…' : c.input), () => {
        const r = parseImageRef(c.input);
        if (!r.ok) expect.fail(r.message);
        expect(r.ref.domain).to.equal(c.domain);
        expect(r.ref.path).to.equal(c.path);
        expect(r.ref.tag).to.equal(c.tag);
        expect(r.ref.digest).to.equal(c.digest);
        expect(formatFamiliar(r.ref)).to.equal(c.familiar);
        expect(formatFullyQualified(r.ref)).to.equal(c.full);
        expect(runtimeReference(r.ref)).to.equal(c.runtime);
        expect(repositoryName(r.ref)).to.equal(`${c.domain}/${c.path}`);
        expect(isMutable(r.ref)).to.equal(c.mutable);
      });
    }
  });

  describe('parseImageRef rejects invalid references with a reason', () => {
    for (const c of invalid) {
      it(`${JSON.stringify(c.input.length > 60 ? c.input.slice(0, 60) + '…' : c.input)} → ${c.reason}`, () => {
        const r = parseImageRef(c.input);
        if (r.ok) expect.fail(`accepted as ${formatFullyQualified(r.ref)}`);
        expect(r.reason).to.equal(c.reason);
        expect(r.message).to.match(/^invalid image reference /);
      });
    }
  });

  it('keeps a domain the grammar cannot name (the host the runtime contacts)', () => {
    const ref = mustParseImageRef('a_b.example.com/x:v1');
    expect(ref.domain).to.equal('a_b.example.com');
    expect(ref.path).to.equal('x');
  });

  it('familiarName shortens only Docker Hub official images', () => {
    expect(familiarName(mustParseImageRef('docker.io/library/busybox:1'))).to.equal('busybox');
    expect(familiarName(mustParseImageRef('quay.io/library/busybox'))).to.equal('quay.io/library/busybox');
  });

  it('mustParseImageRef throws InvalidImageRefError carrying the reason', () => {
    expect(() => mustParseImageRef('UPPER')).to.throw(InvalidImageRefError).with.property('reason', 'Uppercase');
  });

  it('handles long inputs built to provoke regex backtracking', () => {
    const hostile = 'a'.repeat(60) + '-'.repeat(60) + '!';
    expect(parseImageRef(`${hostile}/${hostile}`).ok).to.equal(false);
    expect(parseImageRef(`${'a.'.repeat(1000)}a/x`).ok).to.equal(true);
  });
});
