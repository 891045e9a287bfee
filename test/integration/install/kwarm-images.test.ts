// kwarm's images built without Docker (local-cluster/kwarm-images.ts): what is pushed to the registry is what
// Dockerfile.agent and Dockerfile.controller say (config and files, read back from the registry), and each
// image really runs on a real containerd through CRI with the chart's security settings: the agent, in-cluster
// as in its pod, pulls for its NodeImageSet through the mounted socket; the controller takes its Lease.
import { expect } from 'chai';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SERVICE_ACCOUNT_DIR } from '../../../lib/cluster-access.ts';
import { GrpcImageRuntime } from '../../../agent/cri/grpc-runtime.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { agentInClusterCredentials } from '../../../local-cluster/agent-process.ts';
import { pushSleeperImage } from '../../../local-cluster/busybox-images.ts';
import { startContainerd, type TestContainerd } from '../../../local-cluster/containerd.ts';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { controllerKubeconfig, KWARM_NAMESPACE } from '../../../local-cluster/kwarm-access.ts';
import { dockerfileOf, KWARM_COMPONENTS, parseDockerfile, parseKeyValues, pushKwarmImages, type KwarmComponent, type PushedKwarmImages } from '../../../local-cluster/kwarm-images.ts';
import { listTar, OCI_MANIFEST, type PushedImage, type TarListing } from '../../../local-cluster/oci-image.ts';
import { freePort } from '../../../local-cluster/ports.ts';
import { startRegistry, type TestRegistry } from '../../../local-cluster/registry.ts';
import { runContainer, type RunningContainer } from '../../../local-cluster/running-container.ts';
import { makeTempDir, removeDir } from '../../../local-cluster/tmp.ts';
import { waitFor } from '../../../local-cluster/wait.ts';
import { allIn, applySpec, describeStatus, readNodeImageSet, waitForStatus } from '../agent/node-image-sets.ts';

interface ImageConfigJson {
  config: { Entrypoint?: string[]; User?: string; WorkingDir?: string; Env?: string[]; ExposedPorts?: Record<string, object>; Labels?: Record<string, string> };
  rootfs: { diff_ids: string[] };
}

async function getJson(registry: TestRegistry, path: string, accept?: string): Promise<unknown> {
  const res = await fetch(`${registry.url}/v2/${path}`, { headers: accept === undefined ? {} : { Accept: accept }, signal: AbortSignal.timeout(30_000) });
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res.json();
}

/** Config and every file of an image, read back from the registry as a runtime would. */
async function readImage(registry: TestRegistry, image: PushedImage): Promise<{ config: ImageConfigJson; files: Map<string, TarListing> }> {
  const manifest = await getJson(registry, `${image.repository}/manifests/${image.tag}`, OCI_MANIFEST) as { config: { digest: string }; layers: { digest: string }[] };
  const config = await getJson(registry, `${image.repository}/blobs/${manifest.config.digest}`) as ImageConfigJson;
  const files = new Map<string, TarListing>();
  for (const layer of manifest.layers) {
    const res = await fetch(`${registry.url}/v2/${image.repository}/blobs/${layer.digest}`, { signal: AbortSignal.timeout(60_000) });
    for (const entry of listTar(gunzipSync(Buffer.from(await res.arrayBuffer())))) files.set(entry.path, entry);
  }
  return { config, files };
}

/** The final stage's instructions of a Dockerfile, keyword → arguments, in order. */
function finalStage(component: KwarmComponent): { keyword: string; args: string }[] {
  return parseDockerfile(readFileSync(dockerfileOf(component), 'utf8')).at(-1)?.instructions ?? [];
}

/** Every file under a repository folder, relative to it. */
function repoFiles(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel)).sort().flatMap((name) => {
    const r = rel === '' ? name : `${rel}/${name}`;
    return statSync(join(dir, r)).isDirectory() ? repoFiles(dir, r) : [r];
  });
}

describe('install: kwarm images built without Docker', function () {
  this.timeout(300_000);
  let registry: TestRegistry | undefined;
  let pushed: PushedKwarmImages;
  const read = new Map<KwarmComponent, Awaited<ReturnType<typeof readImage>>>();

  before(async () => {
    registry = await startRegistry({ name: 'kwarm-images' });
    const started = Date.now();
    pushed = await pushKwarmImages(registry);
    console.log(`      [figures] both images built (or taken from the cache) and pushed in ${Date.now() - started} ms: agent ${(pushed.agent.totalBytes / 2 ** 20).toFixed(1)} MiB, controller ${(pushed.controller.totalBytes / 2 ** 20).toFixed(1)} MiB compressed`);
    for (const c of KWARM_COMPONENTS) read.set(c, await readImage(registry, pushed[c]));
  });
  after(async () => { await registry?.dispose(); });

  for (const component of KWARM_COMPONENTS) {
    describe(`${dockerfileOf(component)} → ${component} image`, () => {
      it('has the final stage\'s entry point, user, working dir, environment, ports and labels', () => {
        const { config } = read.get(component)!;
        const stage = finalStage(component);
        const arg = (k: string): string[] => stage.filter((i) => i.keyword === k).map((i) => i.args);
        expect(config.config.Entrypoint).to.deep.equal(JSON.parse(arg('ENTRYPOINT').at(-1)!));
        expect(config.config.User).to.equal(arg('USER').at(-1));
        expect(config.config.WorkingDir).to.equal(arg('WORKDIR').at(-1));
        const env = Object.assign({}, ...arg('ENV').map(parseKeyValues)) as Record<string, string>;
        for (const [k, v] of Object.entries(env)) expect(config.config.Env, `ENV ${k}`).to.include(`${k}=${v}`);
        expect(config.config.Env?.find((e) => e.startsWith('PATH=')), 'PATH finds /usr/local/bin/node').to.include('/usr/local/bin');
        expect(Object.keys(config.config.ExposedPorts ?? {}).sort()).to.deep.equal(arg('EXPOSE').flatMap((a) => a.split(/\s+/)).map((p) => `${p}/tcp`).sort());
        expect(config.config.Labels).to.deep.equal(Object.assign({}, ...arg('LABEL').map(parseKeyValues)));
      });

      it('holds Node 22, the compiled folders the build stage copies, the files the final stage copies, and production dependencies only', () => {
        const { config, files } = read.get(component)!;
        const stages = parseDockerfile(readFileSync(dockerfileOf(component), 'utf8'));
        const workdir = config.config.WorkingDir!.replace(/^\//, '');
        const node = files.get('usr/local/bin/node');
        expect(node?.type).to.equal('file');
        expect(node!.mode & 0o111, 'node is executable').to.not.equal(0);
        expect(files.get('lib64/ld-linux-x86-64.so.2')?.type, 'the dynamic loader the binary names').to.equal('file');
        // The entry point's script.
        expect(files.has(`${workdir}/${config.config.Entrypoint![1]!}`)).to.equal(true);
        // Compiled: every source of the folders the build stage copies has its .js; folders it does not copy are absent.
        const build = stages.find((s) => s.name === 'build')!;
        const compiled = build.instructions.filter((i) => i.keyword === 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1)).filter((s) => s.endsWith('/')).map((s) => s.slice(0, -1));
        expect(compiled).to.include(component);
        for (const dir of compiled) {
          for (const f of repoFiles(dir).filter((r) => r.endsWith('.ts') && `${dir}/${r}` !== 'api/generate.ts')) {
            expect(files.has(`${workdir}/${dir}/${f.replace(/\.ts$/, '.js')}`), `${dir}/${f} compiled into the image`).to.equal(true);
          }
        }
        for (const other of ['api', 'lib', 'agent', 'controller'].filter((d) => !compiled.includes(d))) {
          expect([...files.keys()].some((p) => p.startsWith(`${workdir}/${other}/`)), `${other}/ is not in the ${component} image`).to.equal(false);
        }
        // Copied from the repository as they are.
        for (const ins of stages.at(-1)!.instructions.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))) {
          const [src, dest] = ins.args.split(/\s+/) as [string, string];
          const sources = src.endsWith('/') ? repoFiles(src.slice(0, -1)).map((r) => [`${src}${r}`, `${dest}${r}`]) : [[src, dest.endsWith('/') ? `${dest}${src}` : dest]];
          for (const [from, to] of sources) {
            const at = `${workdir}/${to!.replace(/^\.\//, '')}`;
            expect(files.get(at)?.size, `${from} at /${at}`).to.equal(readFileSync(from!).length);
          }
        }
        // Dependencies: every runtime dependency, no development one.
        const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
        for (const dep of Object.keys(pkg.dependencies)) expect(files.has(`${workdir}/node_modules/${dep}/package.json`), `dependency ${dep}`).to.equal(true);
        // A devDependency that a runtime dependency also needs (@types/node) is installed by `npm ci --omit=dev` too.
        const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { dev?: boolean }> };
        const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev === true);
        expect(devOnly).to.include.members(['typescript', 'mocha', 'eslint']);
        for (const dev of devOnly) expect(files.has(`${workdir}/node_modules/${dev}/package.json`), `devDependency ${dev}`).to.equal(false);
      });
    });
  }

  describe('running through CRI on a real containerd', () => {
    let cp: ControlPlane;
    let node: TestContainerd | undefined;
    let cri: GrpcImageRuntime | undefined;
    let dir: string | undefined;
    const running: RunningContainer[] = [];
    const NODE = 'kwarm-images-node';

    before(async () => {
      cp = await sharedControlPlane();
      await installCrds(cp);
      const pause = await pushSleeperImage(registry!, 'kwarm/pause', '1', 0);
      node = await startContainerd({ name: NODE, registries: [registry!], sandboxImage: pause.reference });
      cri = new GrpcImageRuntime({ endpoint: node.socket });
      dir = makeTempDir('kwarm-images-run');
      for (const c of KWARM_COMPONENTS) await cri.pullImage(pushed[c].reference, undefined, { signal: AbortSignal.timeout(120_000) });
    });
    after(async () => {
      for (const r of running) await r.remove();
      cri?.close();
      await node?.dispose();
      if (dir !== undefined) removeDir(dir);
    });

    async function waitHttp(url: string, container: RunningContainer, what: string): Promise<void> {
      try {
        await waitFor(async () => {
          const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
          await res.body?.cancel();
          return res.status === 200;
        }, { what, timeoutMs: 60_000, intervalMs: 250 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- container log ---\n${container.logText().split('\n').slice(-30).join('\n')}`);
      }
    }

    it('the agent, as in its pod (in-cluster token, CRI socket mounted, uid 0, read-only root), pulls its NodeImageSet and answers /healthz and /readyz', async () => {
      const creds = await agentInClusterCredentials(cp, { namespace: KWARM_NAMESPACE, nodeName: NODE });
      const sa = join(dir!, 'agent-serviceaccount');
      mkdirSync(sa);
      writeFileSync(join(sa, 'token'), creds.token, { mode: 0o600 });
      writeFileSync(join(sa, 'ca.crt'), creds.caPem);
      writeFileSync(join(sa, 'namespace'), KWARM_NAMESPACE);
      const server = new URL(creds.server);
      const [metrics, health] = [await freePort(), await freePort()];
      const agent = await runContainer({
        socket: node!.socket,
        name: 'kwarm-agent',
        image: pushed.agent.reference,
        args: [`--node-name=${NODE}`, `--namespace=${KWARM_NAMESPACE}`, '--cri-socket=unix:///run/containerd/containerd.sock',
          `--metrics-bind-address=127.0.0.1:${metrics}`, `--health-probe-bind-address=127.0.0.1:${health}`, '--log-format=json'],
        env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
        mounts: [
          { hostPath: node!.socket, containerPath: '/run/containerd/containerd.sock' },
          { hostPath: sa, containerPath: SERVICE_ACCOUNT_DIR, readonly: true },
        ],
        runAsUser: 0,
        readonlyRootfs: true,
      });
      running.push(agent);
      await waitHttp(`http://127.0.0.1:${health}/healthz`, agent, 'the agent container\'s /healthz');
      await waitHttp(`http://127.0.0.1:${health}/readyz`, agent, 'the agent container\'s /readyz');
      const wanted = await pushSleeperImage(registry!, 'kwarm-images/wanted', 'v1');
      const admin = new KubeClient(cp.kubeConfig());
      await applySpec(admin, NODE, { images: [{ image: wanted.reference }] });
      try {
        await waitForStatus(admin, NODE, allIn('Completed', [wanted.reference]), { what: 'the containerised agent to pull its image', timeoutMs: 90_000 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- container log ---\n${agent.logText().split('\n').slice(-30).join('\n')}`);
      }
      const present = await cri!.imageStatus(wanted.reference, { signal: AbortSignal.timeout(10_000) });
      expect(present, describeStatus(await readNodeImageSet(admin, NODE))).to.not.equal(undefined);
    });

    it('the controller, as in its pod (image user 1000, read-only root), takes its Lease and answers /readyz', async () => {
      const kubeconfig = join(dir!, 'controller.kubeconfig');
      // The image's user (1000) reads it; the original is root's, mode 0600.
      writeFileSync(kubeconfig, readFileSync(await controllerKubeconfig(cp)));
      chmodSync(kubeconfig, 0o644);
      const [metrics, health] = [await freePort(), await freePort()];
      const leaseName = 'kwarm-images-test';
      const controller = await runContainer({
        socket: node!.socket,
        name: 'kwarm-controller',
        image: pushed.controller.reference,
        args: ['--kubeconfig=/etc/kwarm/kubeconfig', `--namespace=${KWARM_NAMESPACE}`, `--leader-election-id=${leaseName}`,
          `--metrics-bind-address=127.0.0.1:${metrics}`, `--health-probe-bind-address=127.0.0.1:${health}`, '--log-format=json'],
        mounts: [{ hostPath: kubeconfig, containerPath: '/etc/kwarm/kubeconfig', readonly: true }],
        readonlyRootfs: true,
      });
      running.push(controller);
      await waitHttp(`http://127.0.0.1:${health}/readyz`, controller, 'the controller container\'s /readyz');
      const holder = await waitFor(async () => {
        const { stdout } = await cp.kubectl(['get', 'lease', leaseName, '-n', KWARM_NAMESPACE, '-o', 'jsonpath={.spec.holderIdentity}'], { allowFailure: true });
        return stdout.trim() === '' ? undefined : stdout.trim();
      }, { what: `Lease ${leaseName} held`, timeoutMs: 60_000, intervalMs: 250 });
      expect(holder).to.be.a('string').and.not.equal('');
      const res = await fetch(`http://127.0.0.1:${metrics}/metrics`, { signal: AbortSignal.timeout(5000) });
      expect(await res.text()).to.include('kwarm_');
    });
  });
});
