// The install artefacts on a real API server: the Helm chart and the kustomize tree hold the same objects and
// both apply; the RBAC they grant is no wider than the agent and controller need; the admission policy keeps
// an agent to its own node's NodeImageSet status; the agents' status writes get their own API priority level.
import { expect } from 'chai';
import { loadAllYaml } from '@kubernetes/client-node';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';
import { helm } from '../../../local-cluster/helm.ts';
import { metricValue } from '../../../local-cluster/controller-process.ts';
import { waitFor } from '../../../local-cluster/wait.ts';

interface Obj { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }

function objects(yaml: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const doc of loadAllYaml(yaml) as unknown[]) {
    if (doc === null || typeof doc !== 'object') continue;
    const o = doc as Obj;
    out.set(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, JSON.parse(JSON.stringify(doc)));
  }
  return out;
}

describe('install: Helm chart, kustomize tree, least-privilege RBAC', function () {
  this.timeout(240_000);
  let cp: ControlPlane;

  before(async () => {
    cp = await sharedControlPlane();
    await installCrds(cp);
  });

  it('passes helm lint, and its values schema rejects wrong values', async () => {
    const lint = await helm(['lint', 'charts/kwarm', '--strict']);
    expect(lint.stdout).to.include('0 chart(s) failed');
    for (const bad of ['controller.maxConcurrentPulls=-1', 'agent.maxPullsPerNode=0', 'logFormat=xml', 'agent.criSocket=relative/path', 'controller.unknownKey=1', 'controller.warmup.taintKey=Not A Key', 'controller.warmup.timeout=ten', 'controller.extraArgs[0]=resync-period=1m', 'agent.extraArgs[0]=-v']) {
      const res = await helm(['template', 'kwarm', 'charts/kwarm', '--set', bad], { allowFailure: true });
      expect(res.code, bad).to.not.equal(0);
      expect(res.stderr, bad).to.match(/values don't meet the specifications of the schema/);
    }
  });

  it('renders the optional parts on request: monitors; and leaves them out by default; the disk guard mount unless the guard is off', async () => {
    const kinds = (yaml: string): string[] => [...objects(yaml).keys()].map((k) => k.split('/')[0]!);
    const base = (await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system'])).stdout;
    expect(kinds(base)).to.not.include('ServiceMonitor').and.not.include('PodMonitor');
    // The disk guard is on by default (80 %), so the image store is mounted; off, it is not.
    expect(base).to.include('image-fs').and.include('--disk-threshold-percent=80');
    const off = (await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system', '--set', 'agent.diskThresholdPercent=0'])).stdout;
    expect(off).to.not.include('image-fs');
    const on = (await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system', '--set', 'metrics.serviceMonitor.enabled=true',
      '--set', 'metrics.podMonitor.enabled=true', '--set', 'agent.diskThresholdPercent=90'])).stdout;
    expect(kinds(on)).to.include('ServiceMonitor').and.include('PodMonitor');
    const ds = objects(on).get('DaemonSet/kwarm-system/kwarm-agent') as { spec: { template: { spec: { volumes: { name: string; hostPath: { path: string; type: string } }[]; containers: { args: string[]; volumeMounts: { name: string; readOnly?: boolean }[] }[] } } } };
    const pod = ds.spec.template.spec;
    expect(pod.volumes.find((v) => v.name === 'image-fs')?.hostPath).to.deep.equal({ path: '/var/lib/containerd', type: 'Directory' });
    expect(pod.containers[0]!.volumeMounts.find((m) => m.name === 'image-fs')?.readOnly).to.equal(true);
    expect(pod.containers[0]!.args).to.include('--disk-threshold-percent=90');
  });

  it('appends controller.extraArgs and agent.extraArgs after the chart\'s own flags', async () => {
    const yaml = (await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system', '--set', 'controller.extraArgs[0]=--resync-period=10m',
      '--set', 'controller.extraArgs[1]=--max-concurrent-pulls=3', '--set', 'agent.extraArgs[0]=--container-starts-interval=1m'])).stdout;
    type Pods = { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const controllerArgs = (objects(yaml).get('Deployment/kwarm-system/kwarm-controller') as Pods).spec.template.spec.containers[0]!.args;
    const agentArgs = (objects(yaml).get('DaemonSet/kwarm-system/kwarm-agent') as Pods).spec.template.spec.containers[0]!.args;
    expect(controllerArgs.slice(-2)).to.deep.equal(['--resync-period=10m', '--max-concurrent-pulls=3']);
    // The chart's own value stays in place; the binary takes the later one.
    expect(controllerArgs).to.include('--max-concurrent-pulls=10');
    expect(agentArgs.at(-1)).to.equal('--container-starts-interval=1m');
  });

  it('NetworkPolicy: egress only on the API server ports, and only to its addresses when they are given', async () => {
    interface Policy { spec: { egress: { ports: { port: number }[]; to?: unknown[] }[] } }
    // Agents also reach the controller pods' pull credentials endpoint (agent.pullSecretsFrom=controller).
    const credentials = {
      ports: [{ port: 9444, protocol: 'TCP' }],
      to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'kwarm', 'app.kubernetes.io/instance': 'kwarm', 'app.kubernetes.io/component': 'controller' } } }],
    };
    const extra = (c: string): unknown[] => (c === 'agent' ? [credentials] : []);
    const egress = (yaml: string, component: string): Policy['spec']['egress'] =>
      (objects(yaml).get(`NetworkPolicy/kwarm-system/kwarm-${component}`) as Policy).spec.egress;
    const base = (await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system'])).stdout;
    for (const c of ['controller', 'agent']) {
      expect(egress(base, c), c).to.deep.equal([...extra(c), { ports: [{ port: 443, protocol: 'TCP' }, { port: 6443, protocol: 'TCP' }] }]);
    }
    const narrowed = (await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system',
      '--set', 'networkPolicy.apiServerCIDRs={10.0.0.10/32,fd00::10/128}', '--set', 'networkPolicy.apiServerPorts={6443}'])).stdout;
    for (const c of ['controller', 'agent']) {
      expect(egress(narrowed, c), c).to.deep.equal([...extra(c), {
        ports: [{ port: 6443, protocol: 'TCP' }],
        to: [{ ipBlock: { cidr: '10.0.0.10/32' } }, { ipBlock: { cidr: 'fd00::10/128' } }],
      }]);
    }
    const api = (await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system', '--set', 'agent.pullSecretsFrom=api'])).stdout;
    expect(egress(api, 'agent')).to.deep.equal([{ ports: [{ port: 443, protocol: 'TCP' }, { port: 6443, protocol: 'TCP' }] }]);
    // The API server accepts them as rendered.
    const policies = narrowed.split(/^---$/m).filter((d) => d.includes('kind: NetworkPolicy')).join('\n---\n');
    await cp.kubectl(['create', 'namespace', 'kwarm-system'], { allowFailure: true });
    await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: policies });
    const bad = await helm(['template', 'kwarm', 'charts/kwarm', '--set', 'networkPolicy.apiServerCIDRs={10.0.0.10}'], { allowFailure: true });
    expect(bad.code).to.not.equal(0);
  });

  it('renders the same objects as kubectl kustomize deploy/default (and config/default)', async () => {
    const chart = objects((await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system', '--include-crds'])).stdout);
    const kustomized = objects((await cp.kubectl(['kustomize', 'deploy/default'])).stdout);
    const legacy = objects((await cp.kubectl(['kustomize', 'config/default'])).stdout);
    const namespace = kustomized.get('Namespace//kwarm-system');
    expect(namespace, 'the kustomize tree creates the namespace').to.not.equal(undefined);
    kustomized.delete('Namespace//kwarm-system');
    expect([...kustomized.keys()].sort()).to.deep.equal([...chart.keys()].sort());
    for (const [key, obj] of chart) expect(kustomized.get(key), key).to.deep.equal(obj);
    expect([...legacy.keys()].length).to.equal(kustomized.size + 1);
  });

  it('applies server-side from the kustomize tree, and installs with helm install', async () => {
    await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '--force-conflicts', '-k', 'deploy/default']);
    const { stdout } = await cp.kubectl(['get', 'deploy,ds,sa,validatingadmissionpolicy', '-n', 'kwarm-system', '-o', 'name']);
    expect(stdout).to.include('deployment.apps/kwarm-controller').and.include('daemonset.apps/kwarm-agent')
      .and.include('serviceaccount/kwarm-agent').and.include('validatingadmissionpolicy.admissionregistration.k8s.io/kwarm-agent-own-node-only')
      .and.include('validatingadmissionpolicy.admissionregistration.k8s.io/kwarm-controller-node-warmup-only');
    const install = await helm(['install', 'kwarm-helm', 'charts/kwarm', '-n', 'kwarm-helm', '--create-namespace', '--wait=false'], { cp });
    expect(install.stdout).to.include('STATUS: deployed').and.include('kubectl wait --for=condition=Ready prepullimage');
    const { stdout: ds } = await cp.kubectl(['get', 'ds', 'kwarm-helm-agent', '-n', 'kwarm-helm', '-o', 'json']);
    const spec = (JSON.parse(ds) as { spec: { template: { spec: { volumes: { hostPath?: { type?: string } }[]; hostNetwork?: boolean; containers: { securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } } }[] } } } }).spec.template.spec;
    // The CRI socket's directory (a runtime restart makes a new socket in it) and the image store for the
    // disk guard, on by default; both mounted read-only.
    expect(spec.volumes.map((v) => v.hostPath?.type)).to.deep.equal(['Directory', 'Directory']);
    expect(spec.hostNetwork ?? false).to.equal(false);
    expect(spec.containers[0]!.securityContext).to.deep.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(spec.containers[0]!.securityContext.capabilities.drop).to.deep.equal(['ALL']);
    await helm(['uninstall', 'kwarm-helm', '-n', 'kwarm-helm'], { cp });
  });

  describe('RBAC is no wider than needed', () => {
    let agent: string;
    let controller: string;
    const can = async (kubeconfig: string, ...args: string[]): Promise<string> =>
      (await cp.kubectl(['auth', 'can-i', ...args], { kubeconfig, allowFailure: true })).stdout.trim();

    before(async () => {
      await cp.kubectl(['apply', '--server-side', '--field-manager=kwarm-tests', '--force-conflicts', '-k', 'deploy/default']);
      agent = await cp.serviceAccountKubeconfig('kwarm-system', 'kwarm-agent');
      controller = await cp.serviceAccountKubeconfig('kwarm-system', 'kwarm-controller');
    });

    it('agent: reads NodeImageSets and writes only their status; reads no Secret (pull credentials come from the controller)', async () => {
      expect(await can(agent, 'watch', 'nodeimagesets.kwarm.io')).to.equal('yes');
      expect(await can(agent, 'patch', 'nodeimagesets.kwarm.io', '--subresource=status')).to.equal('yes');
      expect(await can(agent, 'update', 'nodeimagesets.kwarm.io')).to.equal('no');
      expect(await can(agent, 'patch', 'nodeimagesets.kwarm.io')).to.equal('no');
      expect(await can(agent, 'create', 'nodeimagesets.kwarm.io')).to.equal('no');
      expect(await can(agent, 'list', 'secrets', '-A')).to.equal('no');
      expect(await can(agent, 'get', 'secrets', '-n', 'default')).to.equal('no');
      expect(await can(agent, 'list', 'secrets', '-n', 'kwarm-system')).to.equal('no');
      // Finding 4: not even the copies in kwarm's namespace; only the endpoint's Service and CA, by name.
      expect(await can(agent, 'get', 'secrets', '-n', 'kwarm-system')).to.equal('no');
      expect(await can(agent, 'get', 'secrets/kwarm-pull.default.regcred', '-n', 'kwarm-system')).to.equal('no');
      expect(await can(agent, 'get', 'configmaps/kwarm-credentials-ca', '-n', 'kwarm-system')).to.equal('yes');
      expect(await can(agent, 'get', 'configmaps/other', '-n', 'kwarm-system')).to.equal('no');
      expect(await can(agent, 'get', 'services/kwarm-credentials', '-n', 'kwarm-system')).to.equal('yes');
      expect(await can(agent, 'get', 'services/kwarm-webhook', '-n', 'kwarm-system')).to.equal('no');
      expect(await can(agent, 'list', 'pods', '-A')).to.equal('no');
      expect(await can(agent, 'get', 'prepullimages.kwarm.io', '-A')).to.equal('no');
    });

    it('agent: no Events anywhere (it records none, so a stolen token cannot forge or spam them)', async () => {
      for (const resource of ['events', 'events.events.k8s.io']) {
        for (const verb of ['create', 'patch', 'update']) {
          for (const ns of ['default', 'kwarm-system', 'kube-system']) {
            expect(await can(agent, verb, resource, '-n', ns), `${verb} ${resource} in ${ns}`).to.equal('no');
          }
        }
      }
    });

    it('controller: never writes workloads, writes Secrets only in its namespace', async () => {
      expect(await can(controller, 'watch', 'deployments.apps', '-A')).to.equal('yes');
      for (const verb of ['update', 'patch', 'create', 'delete']) {
        expect(await can(controller, verb, 'deployments.apps', '-n', 'default'), verb).to.equal('no');
      }
      expect(await can(controller, 'create', 'secrets', '-n', 'kwarm-system')).to.equal('yes');
      expect(await can(controller, 'create', 'secrets', '-n', 'default')).to.equal('no');
      // ConfigMaps that list images: read cluster-wide, never written.
      expect(await can(controller, 'watch', 'configmaps', '-A')).to.equal('yes');
      for (const verb of ['update', 'patch', 'create', 'delete']) {
        expect(await can(controller, verb, 'configmaps', '-n', 'default'), `${verb} configmaps`).to.equal('no');
      }
      // The pull credentials endpoint: TokenReviews, and its CA ConfigMap in kwarm's namespace only.
      expect(await can(controller, 'create', 'tokenreviews.authentication.k8s.io')).to.equal('yes');
      expect(await can(controller, 'patch', 'configmaps', '-n', 'kwarm-system')).to.equal('yes');
      expect(await can(controller, 'patch', 'nodeimagesets.kwarm.io')).to.equal('yes');
      // Nodes: patch only, for the warm-up barrier; the admission policy narrows it to kwarm's taint and
      // condition (test/integration/controller/warmup-writer.test.ts tries the rest).
      expect(await can(controller, 'patch', 'nodes')).to.equal('yes');
      expect(await can(controller, 'patch', 'nodes', '--subresource=status')).to.equal('yes');
      for (const verb of ['update', 'create', 'delete']) expect(await can(controller, verb, 'nodes'), `${verb} nodes`).to.equal('no');
      expect(await can(controller, 'update', 'leases.coordination.k8s.io', '-n', 'kwarm-system')).to.equal('yes');
      expect(await can(controller, 'update', 'leases.coordination.k8s.io', '-n', 'default')).to.equal('no');
    });

    it('admission policy: an agent token bound to node A can write node A\'s status but not node B\'s', async () => {
      for (const node of ['vap-node-a', 'vap-node-b']) {
        await cp.apply(`apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node}\n---\napiVersion: kwarm.io/v1alpha1\nkind: NodeImageSet\nmetadata:\n  name: ${node}\nspec: {}\n`);
      }
      await cp.apply('apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent-on-a\n  namespace: kwarm-system\nspec:\n  serviceAccountName: kwarm-agent\n  nodeName: vap-node-a\n  containers:\n  - name: agent\n    image: kwarm-agent:test\n');
      const bound = await cp.serviceAccountKubeconfig('kwarm-system', 'kwarm-agent', { boundPod: 'agent-on-a' });
      const patch = (node: string, kubeconfig: string) => cp.kubectl(['patch', 'nodeimageset', node, '--subresource=status', '--type=merge',
        '-p', '{"status":{"observedGeneration":1}}'], { kubeconfig, allowFailure: true });

      const own = await patch('vap-node-a', bound);
      expect(own.code, own.stderr).to.equal(0);
      const other = await patch('vap-node-b', bound);
      expect(other.code).to.not.equal(0);
      expect(other.stderr).to.match(/kwarm-agent-own-node-only/).and.match(/may write only nodeimagesets\/vap-node-a\/status/);
      // A token without a node (not bound to a scheduled pod) cannot write any status.
      const unbound = await patch('vap-node-a', agent);
      expect(unbound.code).to.not.equal(0);
      expect(unbound.stderr).to.match(/carries no node name/);
      // The policy does not get in the controller's way.
      const ctrl = await cp.kubectl(['patch', 'nodeimageset', 'vap-node-b', '--type=merge', '-p', '{"spec":{"maxConcurrentPulls":3}}'], { kubeconfig: controller, allowFailure: true });
      expect(ctrl.code, ctrl.stderr).to.equal(0);
    });

    it('API priority: the agent\'s status patches run in the chart\'s own priority level; its reads and the controller\'s writes do not', async () => {
      const level = JSON.parse((await cp.kubectl(['get', 'prioritylevelconfiguration', 'kwarm-agent-status', '-o', 'json'])).stdout) as
        { spec: { limited: { nominalConcurrencyShares: number; lendablePercent: number; borrowingLimitPercent: number } } };
      expect(level.spec.limited).to.include({ nominalConcurrencyShares: 1, lendablePercent: 0, borrowingLimitPercent: 0 });
      // The README's "3 patches at a time": 1 share of the 246 with the API server's default in-flight limits
      // (400 + 200), rounded up. The API server reads the level from its watch, so its seats may take a moment.
      const seats = await waitFor(async () => metricValue((await cp.kubectl(['get', '--raw', '/metrics'])).stdout,
        'apiserver_flowcontrol_nominal_limit_seats', { priority_level: 'kwarm-agent-status' }), { what: 'the agents\' level in the API server\'s metrics', intervalMs: 500 });
      expect(seats, 'apiserver_flowcontrol_nominal_limit_seats of the agents\' level').to.equal(3);
      await cp.apply('apiVersion: v1\nkind: Node\nmetadata:\n  name: apf-node\n---\napiVersion: kwarm.io/v1alpha1\nkind: NodeImageSet\nmetadata:\n  name: apf-node\nspec: {}\n');
      await cp.apply('apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent-on-apf-node\n  namespace: kwarm-system\nspec:\n  serviceAccountName: kwarm-agent\n  nodeName: apf-node\n  containers:\n  - name: agent\n    image: kwarm-agent:test\n');
      const bound = await cp.serviceAccountKubeconfig('kwarm-system', 'kwarm-agent', { boundPod: 'agent-on-apf-node' });
      // Requests the API server dispatched through the chart's FlowSchema (its own metric, by schema and level).
      const dispatched = async (): Promise<number> => metricValue((await cp.kubectl(['get', '--raw', '/metrics'])).stdout,
        'apiserver_flowcontrol_dispatched_requests_total', { flow_schema: 'kwarm-agent-status', priority_level: 'kwarm-agent-status' }) ?? 0;
      const before = await dispatched();
      for (let i = 1; i <= 3; i++) {
        const out = await cp.kubectl(['patch', 'nodeimageset', 'apf-node', '--subresource=status', '--type=merge', '-p', `{"status":{"observedGeneration":${i}}}`], { kubeconfig: bound, allowFailure: true });
        expect(out.code, out.stderr).to.equal(0);
      }
      expect(await dispatched() - before).to.equal(3);
      await cp.kubectl(['get', 'nodeimageset', 'apf-node', '-o', 'name'], { kubeconfig: bound });
      await cp.kubectl(['patch', 'nodeimageset', 'apf-node', '--type=merge', '-p', '{"spec":{"maxConcurrentPulls":3}}'], { kubeconfig: controller });
      expect(await dispatched() - before).to.equal(3);
    });
  });
});
