import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { format, inspect } from 'node:util';
import winston from 'winston';
import {
  decodePullSecret,
  decodePullSecrets,
  InvalidPullSecretError,
  matchCredentials,
  normaliseRegistryKey,
  registryKeyMatches,
  RegistryCredential,
  type PullSecret,
} from '../../../agent/credentials.ts';
import { mustParseImageRef } from '../../../lib/image-ref.ts';

const PASSWORD = 'Sup3r-S3cret-Pa55';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function configJson(name: string, auths: Record<string, unknown>): PullSecret {
  return { namespace: 'kwarm-system', name, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': JSON.stringify({ auths }) } };
}

function dockercfg(name: string, registries: Record<string, unknown>): PullSecret {
  return { namespace: 'kwarm-system', name, type: 'kubernetes.io/dockercfg', data: { '.dockercfg': JSON.stringify(registries) } };
}

function expectInvalid(secret: PullSecret, key: string | undefined, problem: RegExp): InvalidPullSecretError {
  try {
    decodePullSecret(secret);
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidPullSecretError);
    const e = err as InvalidPullSecretError;
    expect(e.message).to.contain(`${secret.namespace}/${secret.name}`);
    if (key !== undefined) expect(e.message).to.contain(key);
    expect(e.key).to.equal(key);
    expect(e.message).to.match(problem);
    expect(e.message).not.to.contain(PASSWORD);
    expect(e.message).not.to.contain(b64(`alice:${PASSWORD}`));
    return e;
  }
  return expect.fail('decodePullSecret accepted a malformed secret');
}

describe('agent/credentials', () => {
  describe('decodePullSecret', () => {
    it('reads kubernetes.io/dockerconfigjson entries with auth, username/password and identitytoken, in order', () => {
      const creds = decodePullSecret(
        configJson('regcred', {
          'https://index.docker.io/v1/': { auth: b64(`alice:${PASSWORD}`), email: 'a@example.com' },
          'registry.example.com:5000': { username: 'bob', password: 'pw:with:colons' },
          'token.example.com': { identitytoken: 'refresh-token' },
        }),
      );
      expect(creds.map((c) => c.matchKey)).to.deep.equal(['index.docker.io', 'registry.example.com:5000', 'token.example.com']);
      expect([creds[0]!.username, creds[0]!.password]).to.deep.equal(['alice', PASSWORD]);
      expect([creds[1]!.username, creds[1]!.password]).to.deep.equal(['bob', 'pw:with:colons']);
      expect(creds[2]!.identityToken).to.equal('refresh-token');
      expect(creds[0]!.source).to.deep.equal({
        namespace: 'kwarm-system',
        name: 'regcred',
        key: '.dockerconfigjson',
        registry: 'https://index.docker.io/v1/',
      });
    });

    it('reads kubernetes.io/dockercfg (registries at the top level)', () => {
      const creds = decodePullSecret(dockercfg('legacy', { 'quay.io': { auth: b64('carol:pw'), email: 'c@example.com' } }));
      expect(creds).to.have.length(1);
      expect(creds[0]!.username).to.equal('carol');
      expect(creds[0]!.source.key).to.equal('.dockercfg');
    });

    it('lets auth win over username/password, like the kubelet', () => {
      const [c] = decodePullSecret(configJson('s', { 'r.example.com': { username: 'ignored', password: 'ignored', auth: b64('real:pw') } }));
      expect([c!.username, c!.password]).to.deep.equal(['real', 'pw']);
    });

    it('accepts auth with and without base64 padding', () => {
      const padded = b64('user:pass1'); // ends with "="
      expect(padded.endsWith('=')).to.equal(true);
      const unpadded = padded.replace(/=+$/, '');
      for (const auth of [padded, unpadded]) {
        const [c] = decodePullSecret(configJson('s', { 'r.example.com': { auth } }));
        expect(c!.password).to.equal('pass1');
      }
    });

    it('skips entries with no credential material and keys that are not registry locations', () => {
      const creds = decodePullSecret(
        configJson('s', { 'empty.example.com': { email: 'x@example.com' }, 'bad:port': { auth: b64('u:p') }, 'ok.example.com': { auth: b64('u:p') } }),
      );
      expect(creds.map((c) => c.matchKey)).to.deep.equal(['ok.example.com']);
    });

    it('accepts a dockerconfigjson without auths as holding no credentials', () => {
      const s: PullSecret = { namespace: 'n', name: 's', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': '{"credsStore":"x"}' } };
      expect(decodePullSecret(s)).to.deep.equal([]);
    });

    describe('rejects malformed secrets naming secret and key, never echoing content', () => {
      it('invalid JSON', () => {
        const s: PullSecret = { namespace: 'n', name: 'broken', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': `{"auths": {"r": {"password": "${PASSWORD}"` } };
        expectInvalid(s, '.dockerconfigjson', /not valid JSON/);
      });
      it('auth that is not base64', () => {
        expectInvalid(configJson('s', { r: { auth: `alice:${PASSWORD}` } }), '.dockerconfigjson', /auth is not valid base64/);
      });
      it('auth without a colon', () => {
        expectInvalid(configJson('s', { r: { auth: b64(PASSWORD) } }), '.dockerconfigjson', /base64\(username:password\)/);
      });
      it('auth with broken padding', () => {
        expectInvalid(configJson('s', { r: { auth: b64('user:pass1').replace(/=$/, '') + '=' + '=' } }), '.dockerconfigjson', /not valid base64/);
      });
      it('auths that is not an object', () => {
        const s: PullSecret = { namespace: 'n', name: 's', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': '{"auths": ["x"]}' } };
        expectInvalid(s, '.dockerconfigjson', /"auths" is not an object/);
      });
      it('a top level that is not an object', () => {
        expectInvalid({ namespace: 'n', name: 's', type: 'kubernetes.io/dockercfg', data: { '.dockercfg': `"${PASSWORD}"` } }, '.dockercfg', /not a JSON object/);
      });
      it('an entry that is not an object', () => {
        expectInvalid(dockercfg('s', { r: PASSWORD }), '.dockercfg', /entry is not an object/);
      });
      it('a field that is not a string', () => {
        expectInvalid(dockercfg('s', { r: { username: 'u', password: 42 } }), '.dockercfg', /password is not a string/);
      });
      it('a missing or empty key', () => {
        expectInvalid({ namespace: 'n', name: 's', type: 'kubernetes.io/dockerconfigjson', data: { '.dockercfg': '{}' } }, '.dockerconfigjson', /missing/);
        expectInvalid({ namespace: 'n', name: 's', type: 'kubernetes.io/dockercfg', data: { '.dockercfg': '  ' } }, '.dockercfg', /empty/);
      });
      it('a secret of another type', () => {
        const e = expectInvalid({ namespace: 'n', name: 'opaque', type: 'Opaque', data: { '.dockerconfigjson': '{}' } }, undefined, /"Opaque" is not/);
        expect(e.secretName).to.equal('opaque');
      });
    });

    it('decodePullSecrets keeps the usable secrets and reports the others', () => {
      const r = decodePullSecrets([
        configJson('good', { 'r.example.com': { auth: b64('u:p') } }),
        { namespace: 'n', name: 'bad', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': 'nope' } },
        dockercfg('good2', { 'q.example.com': { auth: b64('u2:p2') } }),
      ]);
      expect(r.credentials.map((c) => c.source.name)).to.deep.equal(['good', 'good2']);
      expect(r.errors.map((e) => e.secretName)).to.deep.equal(['bad']);
    });
  });

  describe('credentials cannot leak through logging', () => {
    const [cred] = decodePullSecret(configJson('regcred', { 'registry.example.com': { auth: b64(`alice:${PASSWORD}`), identitytoken: `tok-${PASSWORD}` } }));

    it('JSON.stringify, util.inspect, format and String show only the source', () => {
      const renderings = [
        JSON.stringify(cred),
        JSON.stringify({ nested: { creds: [cred] } }),
        inspect(cred, { showHidden: true, depth: 10 }),
        inspect({ cred }, { showHidden: true, depth: 10 }),
        format('%o %O %s %j', cred, cred, cred, cred),
        String(cred),
        JSON.stringify(Object.assign({}, cred)),
        Object.keys(cred!).join(','),
      ];
      for (const r of renderings) {
        expect(r).not.to.contain(PASSWORD);
        expect(r).not.to.contain('alice');
      }
      expect(JSON.stringify(cred)).to.contain('kwarm-system/regcred');
    });

    it('a winston JSON logger does not print them', async () => {
      const sink = new PassThrough();
      const chunks: string[] = [];
      sink.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
      const logger = winston.createLogger({ format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] });
      logger.info('pulling', { credential: cred, all: [cred] });
      logger.error(`trying ${String(cred)}`);
      await new Promise<void>((resolve) => setImmediate(resolve));
      const out = chunks.join('');
      expect(out).to.contain('kwarm-system/regcred');
      expect(out).not.to.contain(PASSWORD);
      expect(out).not.to.contain('alice');
    });
  });

  describe('normaliseRegistryKey', () => {
    const table: [string, string | undefined][] = [
      ['https://index.docker.io/v1/', 'index.docker.io'],
      ['index.docker.io/v1/', 'index.docker.io'],
      ['http://insecure.local:8080/v2/', 'insecure.local:8080'],
      ['ghcr.io/v2/org', 'ghcr.io/org'],
      ['registry.example.com/team/', 'registry.example.com/team/'],
      ['registry.example.com', 'registry.example.com'],
      ['[::1]:5000', '[::1]:5000'],
      ['bad:port', undefined],
      ['x[a-c].example.org', undefined],
      ['', undefined],
    ];
    for (const [input, expected] of table) {
      it(`${JSON.stringify(input)} → ${String(expected)}`, () => {
        expect(normaliseRegistryKey(input)).to.equal(expected);
      });
    }
  });

  describe('registryKeyMatches', () => {
    const table: [string, string, boolean][] = [
      ['*.example.com', 'registry.example.com/x', true],
      ['*.example.com', 'example.com/x', false], // label counts differ
      ['*.example.com', 'a.b.example.com/x', false],
      ['*.*.example.com', 'a.b.example.com/x', true],
      ['reg*.example.com', 'registry.example.com/x', true],
      ['*.example.com', 'registry.example.com:5000/x', false], // ports must be equal
      ['*.example.com:5000', 'registry.example.com:5000/x', true],
      ['registry.example.com/team', 'registry.example.com/team/app', true],
      ['registry.example.com/team', 'registry.example.com/other/app', false],
      ['registry.example.com/team', 'registry.example.com/teamx/app', true], // plain prefix, as in the kubelet
    ];
    for (const [key, repo, expected] of table) {
      it(`${key} vs ${repo} → ${expected}`, () => {
        expect(registryKeyMatches(key, repo)).to.equal(expected);
      });
    }
  });

  describe('matchCredentials follows the kubelet keyring', () => {
    // The same secrets and images were run through k8s.io/kubernetes v1.34.10
    // pkg/credentialprovider BasicDockerKeyring.Lookup; the expected usernames are its answers.
    const first: Record<string, { username: string; password: string }> = {};
    const add = (registry: string, username: string): void => {
      first[registry] = { username, password: 'p' };
    };
    add('https://index.docker.io/v1/', 'hub-legacy');
    add('docker.io/myorg', 'hub-org');
    add('registry.example.com', 'reg');
    add('registry.example.com/team', 'reg-team');
    add('registry.example.com/team/', 'reg-team-slash');
    add('*.example.com', 'wild');
    add('*.*.example.com', 'wild2');
    add('registry.example.com:5000', 'reg-5000');
    add('http://insecure.local:8080/v2/', 'insecure');
    add('quay.io/coreos', 'quay-coreos');
    add('quay.io', 'quay');
    add('[::1]:5000', 'ipv6');
    add('127.0.0.1:5000', 'loop');
    add('ghcr.io/v2/org', 'ghcr-org');
    add('gcr.io/v1/', 'gcr');
    add('reg.io:443', 'reg443');
    add('r?g.example.org', 'qmark');
    add('x[a-c].example.org', 'class');
    add('bad:port', 'badport');
    const second = {
      'registry.example.com': { username: 'reg2', password: 'p2' },
      'docker.io': { username: 'hub2', password: 'p2' },
    };

    const withBoth: Record<string, string[]> = {
      'docker.io/library/nginx': ['hub2'],
      'docker.io/myorg/app': ['hub-org', 'hub2'],
      'registry.example.com/team/app': ['reg-team-slash', 'reg-team', 'reg', 'reg2', 'wild'],
      'registry.example.com/teamx/app': ['reg-team', 'reg', 'reg2', 'wild'],
      'registry.example.com:5000/x': ['reg-5000'],
      'a.b.example.com/x': ['wild2'],
      'insecure.local:8080/x': ['insecure'],
      'quay.io/coreos/etcd': ['quay-coreos', 'quay'],
      '[::1]:5000/app': ['ipv6'],
      '127.0.0.1:5000/app': ['loop'],
      'ghcr.io/org/app': ['ghcr-org'],
      'ghcr.io/other/app': [],
      'gcr.io/p/app': ['gcr'],
      'reg.io:443/x': ['reg443'],
      'reg.io/x': [],
      'rxg.example.org/x': [],
      'xb.example.org/x': [],
      'example.com/x': [],
      'localhost/x': ['hub-legacy'],
    };
    const firstOnly: Record<string, string[]> = {
      ...withBoth,
      // Without any docker.io key, Docker Hub images fall back to index.docker.io credentials.
      'docker.io/library/nginx': ['hub-legacy'],
      'docker.io/myorg/app': ['hub-org'],
      'registry.example.com/team/app': ['reg-team-slash', 'reg-team', 'reg', 'wild'],
      'registry.example.com/teamx/app': ['reg-team', 'reg', 'wild'],
    };

    for (const [label, secrets, expected] of [
      ['two secrets', [dockercfg('one', first), configJson('two', second)], withBoth],
      ['one secret', [dockercfg('one', first)], firstOnly],
    ] as const) {
      describe(label, () => {
        const { credentials, errors } = decodePullSecrets(secrets);
        it('decodes without errors', () => {
          expect(errors).to.deep.equal([]);
        });
        for (const [repo, usernames] of Object.entries(expected)) {
          it(`${repo} → [${usernames.join(', ')}]`, () => {
            expect(matchCredentials(credentials, mustParseImageRef(repo)).map((c) => c.username)).to.deep.equal(usernames);
          });
        }
      });
    }

    it('matches on the repository whatever tag or digest the image has', () => {
      const creds = decodePullSecret(configJson('s', { 'quay.io/coreos': { auth: b64('u:p') } }));
      const digest = `sha256:${'ab'.repeat(32)}`;
      for (const image of ['quay.io/coreos/etcd', 'quay.io/coreos/etcd:v3.5', `quay.io/coreos/etcd:v3.5@${digest}`]) {
        expect(matchCredentials(creds, mustParseImageRef(image))).to.have.length(1);
      }
    });

    it('tries identical credentials once', () => {
      const creds = decodePullSecrets([
        configJson('a', { 'registry.example.com': { auth: b64('u:p') } }),
        configJson('b', { 'https://registry.example.com/v1/': { username: 'u', password: 'p' }, '*.example.com': { auth: b64('u:p') } }),
        configJson('c', { 'registry.example.com': { auth: b64('u:other') } }),
      ]).credentials;
      const got = matchCredentials(creds, mustParseImageRef('registry.example.com/x'));
      expect(got.map((c) => `${c.source.name}:${c.password}`)).to.deep.equal(['a:p', 'c:other']);
    });

    it('returns nothing when no credential applies', () => {
      const creds = decodePullSecret(configJson('s', { 'quay.io': { auth: b64('u:p') } }));
      expect(matchCredentials(creds, mustParseImageRef('ghcr.io/org/app'))).to.deep.equal([]);
      expect(matchCredentials([], mustParseImageRef('nginx'))).to.deep.equal([]);
    });
  });

  it('RegistryCredential.sameSecretAs compares material, not source', () => {
    const a = new RegistryCredential({ namespace: 'n', name: 'a', key: 'k', registry: 'r' }, 'r', { username: 'u', password: 'p' });
    const b = new RegistryCredential({ namespace: 'n', name: 'b', key: 'k', registry: 'r2' }, 'r2', { username: 'u', password: 'p' });
    const c = new RegistryCredential({ namespace: 'n', name: 'c', key: 'k', registry: 'r' }, 'r', { username: 'u', password: 'q' });
    expect(a.sameSecretAs(b)).to.equal(true);
    expect(a.sameSecretAs(c)).to.equal(false);
  });
});
