import { expect } from 'chai';
import {
  classifyAttemptFailure,
  classifyGrpcFailure,
  classifyPullError,
  GrpcCode,
  isPermanent,
  PULL_FAILURE_REASONS,
  pullFailure,
  type PullFailureReason,
} from '../../../agent/pull-errors.ts';

const { CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, UNIMPLEMENTED, UNAVAILABLE, UNAUTHENTICATED } = GrpcCode;

interface Case {
  what: string;
  code: number;
  details: string;
  reason: PullFailureReason;
}

const pullPrefix = (ref: string): string => `failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": `;
const D = `sha256:${'4f'.repeat(32)}`;

// Observed: returned by containerd 1.6.20's CRI PullImage (and grpc-js on the client side) against
// docker-registry (plain and htpasswd), a stub HTTP server answering 5xx/429/403 or never, and a
// missing socket.
const observed: Case[] = [
  { what: 'tag not found', code: NOT_FOUND, details: `${pullPrefix('127.0.0.1:25124/nosuch:v1')}127.0.0.1:25124/nosuch:v1: not found`, reason: 'NotFound' },
  { what: 'htpasswd registry, no or wrong credentials', code: UNKNOWN, details: `${pullPrefix('127.0.0.1:25123/nosuch:v1')}pulling from host 127.0.0.1:25123 failed with status code [manifests v1]: 401 Unauthorized`, reason: 'Unauthorized' },
  { what: '403 from the registry', code: UNKNOWN, details: `${pullPrefix('127.0.0.1:25125/x:v1')}pulling from host 127.0.0.1:25125 failed with status code [manifests v1]: 403 Forbidden`, reason: 'Unauthorized' },
  { what: 'registry down', code: UNKNOWN, details: `${pullPrefix('127.0.0.1:25125/nosuch:v1')}failed to do request: Head "http://127.0.0.1:25125/v2/nosuch/manifests/v1": dial tcp 127.0.0.1:25125: connect: connection refused`, reason: 'RegistryUnavailable' },
  { what: '503 from the registry', code: UNKNOWN, details: `${pullPrefix('127.0.0.1:25125/x:v1')}pulling from host 127.0.0.1:25125 failed with status code [manifests v1]: 503 Service Unavailable`, reason: 'RegistryUnavailable' },
  { what: '500 from the registry', code: UNKNOWN, details: `${pullPrefix('127.0.0.1:25125/x:v1')}pulling from host 127.0.0.1:25125 failed with status code [manifests v1]: 500 Internal Server Error`, reason: 'RegistryUnavailable' },
  { what: '429 from the registry', code: UNKNOWN, details: `${pullPrefix('127.0.0.1:25125/x:v1')}pulling from host 127.0.0.1:25125 failed with status code [manifests v1]: 429 Too Many Requests`, reason: 'RateLimited' },
  { what: 'unknown host', code: UNKNOWN, details: `${pullPrefix('nosuch.invalid/x:v1')}failed to do request: Head "https://nosuch.invalid/v2/x/manifests/v1": dial tcp: lookup nosuch.invalid on 10.255.255.53:53: no such host`, reason: 'RegistryUnavailable' },
  { what: 'upper-case reference', code: UNKNOWN, details: 'failed to parse image reference "Bad/Ref:v1": invalid reference format: repository name must be lowercase', reason: 'InvalidReference' },
  { what: 'short digest', code: UNKNOWN, details: 'failed to parse image reference "127.0.0.1:25124/x@sha256:abcd": invalid reference format', reason: 'InvalidReference' },
  { what: 'socket missing', code: UNAVAILABLE, details: 'No connection established. Last error: Error: connect ENOENT /run/containerd/containerd.sock. Resolution note: ', reason: 'RuntimeUnavailable' },
  { what: 'containerd killed mid-pull', code: UNAVAILABLE, details: 'Connection dropped', reason: 'RuntimeUnavailable' },
  { what: 'client deadline on a stalled registry', code: DEADLINE_EXCEEDED, details: 'Deadline exceeded after 3.002s,name resolution: 0.003s,metadata filters: 0.001s,time to current attempt start: 0.001s,LB pick: 0.010s,remote_addr=/tmp/pe/ctd.sock', reason: 'Timeout' },
  { what: 'client cancelled the call', code: CANCELLED, details: 'Cancelled on client', reason: 'Cancelled' },
];

// From containerd 1.6 sources (remotes/docker, content/local, images) and CRI-O/containers-image
// messages as they appear in kubelet events.
const fromSources: Case[] = [
  { what: 'server-side deadline', code: DEADLINE_EXCEEDED, details: `${pullPrefix('r.example.com/x:v1')}failed to do request: context deadline exceeded`, reason: 'Timeout' },
  { what: 'server-side deadline reported as UNKNOWN', code: UNKNOWN, details: `${pullPrefix('r.example.com/x:v1')}failed to do request: context deadline exceeded`, reason: 'Timeout' },
  { what: 'Docker Hub private or missing repository', code: UNKNOWN, details: `${pullPrefix('docker.io/acme/private:v1')}pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`, reason: 'Unauthorized' },
  { what: 'token server rejects credentials', code: UNKNOWN, details: `${pullPrefix('ghcr.io/org/app:v1')}failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized`, reason: 'Unauthorized' },
  { what: 'anonymous token refused', code: UNKNOWN, details: `${pullPrefix('ghcr.io/org/app:v1')}failed to authorize: failed to fetch anonymous token: unexpected status: 403 Forbidden`, reason: 'Unauthorized' },
  { what: 'token server down', code: UNKNOWN, details: `${pullPrefix('ghcr.io/org/app:v1')}failed to authorize: failed to fetch anonymous token: unexpected status: 503 Service Unavailable`, reason: 'RegistryUnavailable' },
  { what: 'token server unreachable', code: UNKNOWN, details: `${pullPrefix('ghcr.io/org/app:v1')}failed to authorize: failed to fetch anonymous token: Get "https://ghcr.io/token?scope=repository%3Aorg%2Fapp%3Apull": dial tcp 140.82.121.34:443: i/o timeout`, reason: 'RegistryUnavailable' },
  { what: 'basic auth challenge with no credentials', code: UNKNOWN, details: `${pullPrefix('r.example.com/x:v1')}failed to authorize: failed to handle basic auth because missing username or secret`, reason: 'Unauthorized' },
  { what: 'blob fetch 502', code: UNKNOWN, details: `failed to pull and unpack image "r.example.com/x:v1": failed to copy: httpReadSeeker: failed open: unexpected status code https://r.example.com/v2/x/blobs/${D}: 502 Bad Gateway`, reason: 'RegistryUnavailable' },
  { what: 'blob fetch 503 with registry error body', code: UNKNOWN, details: `failed to pull and unpack image "r.example.com/x:v1": failed to copy: httpReadSeeker: failed open: unexpected status code https://r.example.com/v2/x/blobs/${D}: 503 Service Unavailable - Server message: unavailable: try again`, reason: 'RegistryUnavailable' },
  { what: 'blob missing in the registry', code: NOT_FOUND, details: `failed to pull and unpack image "r.example.com/x:v1": failed to copy: httpReadSeeker: failed open: content at https://r.example.com/v2/x/blobs/${D} not found: not found`, reason: 'NotFound' },
  { what: 'connection reset while downloading', code: UNKNOWN, details: `failed to pull and unpack image "r.example.com/x:v1": failed to copy: read tcp 10.0.0.5:51234->10.0.0.9:443: read: connection reset by peer`, reason: 'RegistryUnavailable' },
  { what: 'truncated download', code: UNKNOWN, details: `failed to pull and unpack image "r.example.com/x:v1": failed to copy: unexpected EOF`, reason: 'RegistryUnavailable' },
  { what: 'TLS trust', code: UNKNOWN, details: `${pullPrefix('r.example.com/x:v1')}failed to do request: Head "https://r.example.com/v2/x/manifests/v1": x509: certificate signed by unknown authority`, reason: 'RegistryUnavailable' },
  { what: 'plain-HTTP registry spoken to over HTTPS', code: UNKNOWN, details: `${pullPrefix('r.example.com:5000/x:v1')}failed to do request: Head "https://r.example.com:5000/v2/x/manifests/v1": http: server gave HTTP response to HTTPS client`, reason: 'RegistryUnavailable' },
  { what: 'layer digest mismatch', code: FAILED_PRECONDITION, details: `failed to pull and unpack image "r.example.com/x:v1": failed commit on ref "layer-${D}": unexpected commit digest sha256:${'0'.repeat(64)}, expected ${D}: failed precondition`, reason: 'DigestMismatch' },
  { what: 'layer size mismatch', code: FAILED_PRECONDITION, details: `failed to pull and unpack image "r.example.com/x:v1": failed commit on ref "layer-${D}": unexpected commit size 1024, expected 2048: failed precondition`, reason: 'DigestMismatch' },
  { what: 'no image for this platform', code: NOT_FOUND, details: `failed to pull and unpack image "r.example.com/x:v1": no match for platform in manifest ${D}: not found`, reason: 'NoMatchingPlatform' },
  { what: 'disk full while unpacking', code: UNKNOWN, details: `failed to pull and unpack image "r.example.com/x:v1": failed to extract layer ${D}: write /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs/usr/lib/x: no space left on device: unknown`, reason: 'NoSpace' },
  { what: 'CRI plugin still starting', code: UNKNOWN, details: 'server is not initialized yet', reason: 'RuntimeUnavailable' },
  { what: 'socket without the CRI image service', code: UNIMPLEMENTED, details: 'unknown service runtime.v1.ImageService', reason: 'RuntimeUnavailable' },
  { what: 'invalid argument from the runtime', code: INVALID_ARGUMENT, details: 'image reference must not be empty', reason: 'InvalidReference' },
  { what: 'permission denied by the runtime', code: PERMISSION_DENIED, details: 'access denied', reason: 'Unauthorized' },
  { what: 'unauthenticated', code: UNAUTHENTICATED, details: 'missing credentials', reason: 'Unauthorized' },
  { what: 'Docker Hub rate limit (body)', code: UNKNOWN, details: `failed to pull and unpack image "docker.io/library/nginx:1": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/${D}: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.`, reason: 'RateLimited' },
  { what: 'CRI-O manifest unknown', code: UNKNOWN, details: 'initializing source docker://r.example.com/x:v9: reading manifest v9 in r.example.com/x: manifest unknown', reason: 'NotFound' },
  { what: 'CRI-O unauthorized', code: UNKNOWN, details: 'initializing source docker://r.example.com/x:v1: reading manifest v1 in r.example.com/x: unauthorized: authentication required', reason: 'Unauthorized' },
  { what: 'CRI-O registry down', code: UNKNOWN, details: 'initializing source docker://r.example.com/x:v1: pinging container registry r.example.com: Get "https://r.example.com/v2/": dial tcp 10.0.0.9:443: connect: connection refused', reason: 'RegistryUnavailable' },
  { what: 'CRI-O digest mismatch', code: UNKNOWN, details: `writing blob: happened during read: Digest did not match, expected ${D}, got sha256:${'0'.repeat(64)}`, reason: 'DigestMismatch' },
  { what: 'something else', code: UNKNOWN, details: `failed to pull and unpack image "r.example.com/x:v1": failed to extract layer ${D}: mount callback failed on /tmp/containerd-mount1: operation not supported: unknown`, reason: 'Unknown' },
];

describe('agent/pull-errors', () => {
  for (const [title, cases] of [
    ['classifies failures observed from containerd 1.6.20 and grpc-js', observed],
    ['classifies failure shapes from containerd and CRI-O sources', fromSources],
  ] as const) {
    describe(title, () => {
      for (const c of cases) {
        it(`${c.what} → ${c.reason}`, () => {
          const f = classifyGrpcFailure({ code: c.code, details: c.details });
          expect(f.reason).to.equal(c.reason);
          expect(f.permanent).to.equal(isPermanent(c.reason));
          expect(f.message).to.equal(c.details);
        });
      }
    });
  }

  it('treats not found, unauthorized, invalid reference, platform and digest failures as permanent', () => {
    const permanent = PULL_FAILURE_REASONS.filter((r) => isPermanent(r));
    expect(permanent).to.have.members(['NotFound', 'Unauthorized', 'InvalidReference', 'NoMatchingPlatform', 'DigestMismatch']);
    expect(permanent).to.have.length(5);
  });

  it('every classified reason is one of the bounded set', () => {
    for (const c of [...observed, ...fromSources]) {
      expect(PULL_FAILURE_REASONS).to.include(classifyGrpcFailure(c).reason);
    }
  });

  describe('classifyPullError', () => {
    it('reads grpc-js ServiceError-shaped objects', () => {
      const err = Object.assign(new Error('5 NOT_FOUND: x: not found'), { code: NOT_FOUND, details: 'x: not found', metadata: {} });
      expect(classifyPullError(err).reason).to.equal('NotFound');
    });

    it('maps AbortSignal.timeout reasons to Timeout and other aborts to Cancelled', () => {
      const timeout = AbortSignal.timeout(0);
      const controller = new AbortController();
      controller.abort();
      return new Promise<void>((resolve) => {
        timeout.addEventListener('abort', () => {
          expect(classifyPullError(timeout.reason).reason).to.equal('Timeout');
          expect(classifyPullError(controller.signal.reason).reason).to.equal('Cancelled');
          resolve();
        });
      });
    });

    it('maps other errors and values to Unknown', () => {
      expect(classifyPullError(new TypeError('boom'))).to.deep.equal({ reason: 'Unknown', permanent: false, message: 'boom' });
      expect(classifyPullError('text').message).to.equal('text');
      expect(classifyPullError(undefined).reason).to.equal('Unknown');
    });
  });

  describe('classifyAttemptFailure', () => {
    const grpcCancelled = { code: CANCELLED, details: 'Cancelled on client' };

    it('reports Timeout when the attempt signal timed out, though grpc-js says CANCELLED', () => {
      const c = new AbortController();
      c.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
      const f = classifyAttemptFailure(grpcCancelled, c.signal);
      expect(f.reason).to.equal('Timeout');
      expect(f.permanent).to.equal(false);
      expect(f.message).to.contain('Cancelled on client');
    });

    it('reports Cancelled when the signal was aborted for another reason', () => {
      const c = new AbortController();
      c.abort(new Error('shutting down'));
      expect(classifyAttemptFailure(grpcCancelled, c.signal).reason).to.equal('Cancelled');
    });

    it('classifies the error itself when the signal did not fire', () => {
      const f = classifyAttemptFailure({ code: NOT_FOUND, details: 'r/x:v1: not found' }, new AbortController().signal);
      expect(f.reason).to.equal('NotFound');
    });
  });

  it('pullFailure fills in permanence from the reason', () => {
    expect(pullFailure('DigestMismatch', `runtime reports ${D}`)).to.deep.equal({ reason: 'DigestMismatch', permanent: true, message: `runtime reports ${D}` });
    expect(pullFailure('NoSpace', 'disk').permanent).to.equal(false);
  });
});
