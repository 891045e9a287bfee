// The image builder's reading of Dockerfiles, lock files, .dockerignore and ldd output (pure functions).
import { expect } from 'chai';
import { dockerIgnored, parseDockerfile, parseKeyValues, parseLdd, planImage, productionPackages } from '../../../local-cluster/kwarm-images.ts';

const DOCKERFILE = `# comment
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY api/ api/
RUN npx tsc -p tsconfig.build.json && test -f dist/x.js

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:22-bookworm-slim
LABEL a="one two" \\
      b=three
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./
COPY proto/ proto/
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["node", "x.js"]
`;

describe('kwarm image builder: reading the Dockerfile', () => {
  it('splits stages, joins continuation lines and drops comments', () => {
    const stages = parseDockerfile(DOCKERFILE);
    expect(stages.map((s) => s.name)).to.deep.equal(['build', 'deps', undefined]);
    expect(stages[2]!.instructions[0]).to.deep.equal({ keyword: 'LABEL', args: 'a="one two" b=three' });
  });

  it('plans the final stage: config, and one layer per COPY with the stage that makes it', () => {
    const plan = planImage(parseDockerfile(DOCKERFILE));
    expect(plan.config).to.deep.equal({
      entrypoint: ['node', 'x.js'], user: '1000:1000', workingDir: '/app', env: { NODE_ENV: 'production' },
      exposedPorts: ['8080/tcp', '8081/tcp'], labels: { a: 'one two', b: 'three' },
    });
    expect(plan.copies.map((c) => c.kind)).to.deep.equal(['stage', 'stage', 'context']);
    const [deps, build, proto] = plan.copies;
    expect(deps).to.include({ source: '/app/node_modules', dest: '/app/node_modules' });
    expect(deps?.kind === 'stage' && deps.stage.productionDependencies).to.equal(true);
    expect(build?.kind === 'stage' && build.stage).to.deep.include({
      workdir: '/src', runs: ['npx tsc -p tsconfig.build.json', 'test -f dist/x.js'], productionDependencies: false,
      copies: [{ sources: ['package.json', 'package-lock.json'], dest: '/src/' }, { sources: ['api/'], dest: '/src/api/' }],
    });
    expect(build).to.include({ source: '/src/dist', dest: '/app/' });
    expect(proto).to.deep.equal({ kind: 'context', sources: ['proto/'], dest: '/app/proto/' });
  });

  it('refuses what it cannot reproduce instead of building something else', () => {
    expect(() => planImage(parseDockerfile(`${DOCKERFILE}RUN apt-get install curl\n`))).to.throw(/RUN is not supported/);
    expect(() => planImage(parseDockerfile(DOCKERFILE.replace('FROM node:22-bookworm-slim\n', 'FROM alpine:3\n')))).to.throw(/node:22 images only/);
    expect(() => planImage(parseDockerfile(DOCKERFILE.replace('ENTRYPOINT ["node", "x.js"]', 'ENTRYPOINT node x.js')))).to.throw(/JSON array/);
    expect(() => planImage(parseDockerfile(DOCKERFILE.replace('--from=deps', '--from=nope')))).to.throw(/no such earlier stage/);
    expect(() => planImage(parseDockerfile(DOCKERFILE.replace('COPY proto/ proto/', 'COPY --chown=1000 proto/ proto/')))).to.throw(/--chown/);
  });

  it('reads ENV and LABEL pairs, quoted or not, and the legacy ENV form', () => {
    expect(parseKeyValues('A=1 B="two words" C="say \\"hi\\""')).to.deep.equal({ A: '1', B: 'two words', C: 'say "hi"' });
    expect(parseKeyValues('NODE_ENV production')).to.deep.equal({ NODE_ENV: 'production' });
  });
});

describe('kwarm image builder: inputs', () => {
  it('takes the production packages of a lock file (not dev, not links), nested ones included', () => {
    const lock = {
      lockfileVersion: 3,
      packages: {
        '': { name: 'kwarm' },
        'node_modules/a': { version: '1.0.0', integrity: 'sha512-a' },
        'node_modules/a/node_modules/b': { version: '2.0.0' },
        'node_modules/typescript': { version: '6.0.3', dev: true },
        'node_modules/fsevents': { version: '2.3.3', optional: true },
        'node_modules/local': { link: true, resolved: '../local' },
      },
    };
    expect(productionPackages(lock).map((p) => [p.path, p.optional])).to.deep.equal([
      ['node_modules/a', false], ['node_modules/a/node_modules/b', false], ['node_modules/fsevents', true],
    ]);
    expect(() => productionPackages({ lockfileVersion: 1, dependencies: {} })).to.throw(/lockfileVersion 2 or 3/);
  });

  it('matches .dockerignore patterns against the path and each parent folder', () => {
    const patterns = ['test', '*.log', 'docs/'];
    expect(dockerIgnored('test/unit/a.ts', patterns)).to.equal(true);
    expect(dockerIgnored('build.log', patterns)).to.equal(true);
    expect(dockerIgnored('agent/build.log', patterns)).to.equal(false);
    expect(dockerIgnored('docs/x.md', patterns)).to.equal(true);
    expect(dockerIgnored('agent/test.ts', patterns)).to.equal(false);
  });

  it('reads the libraries and the loader from ldd output, without the vDSO', () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffd)\n\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007e)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007d)\n`;
    expect(parseLdd(out)).to.deep.equal(['/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });
});
