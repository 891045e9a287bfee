// The chart's rollout gate webhook objects: absent by default; with rolloutGate.enabled the webhook
// configuration that can never deadlock a cluster (failurePolicy Ignore, short timeout, kwarm's namespace and
// kube-system excluded), its Service, the controller's flags and port, the NetworkPolicy rule, and RBAC limited
// to the one Secret and the one webhook configuration; with cert-manager a Certificate and the mounted Secret.
// The API server accepts what is rendered, and the controller's real token can do exactly what it needs.
import { expect } from 'chai';
// js-yaml, not client-node's loader: that one renames fields such as `from` to its model's `_from`.
import { loadAll } from 'js-yaml';
import { sharedControlPlane, type ControlPlane } from '../../../local-cluster/control-plane.ts';
import { helm } from '../../../local-cluster/helm.ts';

interface Obj { kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> } }
interface Rule { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs?: string[] }
interface Container { args: string[]; ports: { name: string; containerPort: number }[]; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }
interface Deployment { spec: { template: { spec: { containers: Container[]; volumes?: { name: string; secret?: { secretName: string } }[] } } } }

async function render(...set: string[]): Promise<Map<string, unknown>> {
  const { stdout } = await helm(['template', 'kwarm', 'charts/kwarm', '-n', 'kwarm-system', ...set.flatMap((s) => ['--set', s])]);
  const out = new Map<string, unknown>();
  for (const doc of loadAll(stdout)) {
    if (doc === null || typeof doc !== 'object') continue;
    const o = doc as Obj;
    out.set(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, JSON.parse(JSON.stringify(doc)));
  }
  return out;
}

const ON = 'rolloutGate.enabled=true';
const CM = 'rolloutGate.certManager.enabled=true';

function controller(objs: Map<string, unknown>): Container {
  return (objs.get('Deployment/kwarm-system/kwarm-controller') as Deployment).spec.template.spec.containers[0]!;
}

function rules(objs: Map<string, unknown>, key: string): Rule[] {
  return (objs.get(key) as { rules: Rule[] }).rules;
}

describe('install: the rollout gate webhook in the chart', function () {
  this.timeout(240_000);
  let cp: ControlPlane;

  before(async () => {
    cp = await sharedControlPlane();
  });

  it('renders nothing of the webhook by default', async () => {
    const objs = await render();
    expect([...objs.keys()].filter((k) => /rollout-gate|webhook|Certificate|Issuer/.test(k))).to.deep.equal([]);
    expect(controller(objs).args.join(' ')).to.not.include('webhook').and.not.include('--rollout-gate');
    expect(JSON.stringify(rules(objs, 'ClusterRole//kwarm-controller'))).to.not.include('mutatingwebhookconfigurations');
  });

  it('enabled: a webhook configuration that fails open, excludes kwarm and kube-system, and points at the Service', async () => {
    const objs = await render(ON);
    const config = objs.get('MutatingWebhookConfiguration//kwarm-rollout-gate') as { metadata: Obj['metadata']; webhooks: Record<string, unknown>[] };
    expect(config.metadata.annotations).to.equal(undefined);
    expect(config.webhooks).to.have.length(1);
    const w = config.webhooks[0]!;
    expect(w).to.deep.include({
      name: 'rollout-gate.kwarm.io', admissionReviewVersions: ['v1'], failurePolicy: 'Ignore', timeoutSeconds: 2, sideEffects: 'None',
      reinvocationPolicy: 'Never', matchPolicy: 'Equivalent',
    });
    expect(w.clientConfig).to.deep.equal({ service: { name: 'kwarm-webhook', namespace: 'kwarm-system', path: '/mutate-pods', port: 443 } });
    expect(w.rules).to.deep.equal([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    expect(w.namespaceSelector).to.deep.equal({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kwarm-system', 'kube-system'] }] });
    expect(objs.get('Service/kwarm-system/kwarm-webhook')).to.deep.nested.include({ 'spec.ports[0].port': 443, 'spec.ports[0].targetPort': 'webhook', 'spec.selector.app\\.kubernetes\\.io/component': 'controller' });
    const c = controller(objs);
    expect(c.args).to.include.members(['--rollout-gate=true', '--webhook-port=9443', '--webhook-service=kwarm-webhook', '--webhook-tls=self-managed',
      '--webhook-secret=kwarm-webhook-cert', '--webhook-configuration=kwarm-rollout-gate']);
    expect(c.ports).to.deep.include({ name: 'webhook', containerPort: 9443 });
    const timeout = await render(ON, 'rolloutGate.webhook.timeoutSeconds=5', 'rolloutGate.webhook.port=10250');
    expect((timeout.get('MutatingWebhookConfiguration//kwarm-rollout-gate') as { webhooks: { timeoutSeconds: number }[] }).webhooks[0]!.timeoutSeconds).to.equal(5);
    expect(controller(timeout).ports).to.deep.include({ name: 'webhook', containerPort: 10250 });
  });

  it('enabled: the NetworkPolicy admits the webhook port, from the API server\'s CIDRs when given', async () => {
    interface Policy { spec: { ingress: { ports: { port: number }[]; from?: unknown[] }[] } }
    const ingress = (objs: Map<string, unknown>, c: string): Policy['spec']['ingress'] => (objs.get(`NetworkPolicy/kwarm-system/kwarm-${c}`) as Policy).spec.ingress;
    const open = await render(ON);
    expect(ingress(open, 'controller')).to.deep.include({ ports: [{ port: 9443, protocol: 'TCP' }] });
    expect(JSON.stringify(ingress(open, 'agent'))).to.not.include('9443');
    const narrowed = await render(ON, 'networkPolicy.apiServerCIDRs={10.0.0.10/32}');
    expect(ingress(narrowed, 'controller')).to.deep.include({ ports: [{ port: 9443, protocol: 'TCP' }], from: [{ ipBlock: { cidr: '10.0.0.10/32' } }] });
  });

  it('enabled: RBAC names the one webhook configuration and the one Secret', async () => {
    const objs = await render(ON);
    expect(rules(objs, 'ClusterRole//kwarm-controller')).to.deep.include({
      apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['kwarm-rollout-gate'], verbs: ['get', 'list', 'watch', 'patch'],
    });
    expect(rules(objs, 'Role/kwarm-system/kwarm-controller')).to.deep.include({
      apiGroups: [''], resources: ['secrets'], resourceNames: ['kwarm-webhook-cert'], verbs: ['get', 'list', 'watch', 'update'],
    });
  });

  it('cert-manager: a Certificate for the Service names from a self-signed Issuer (or issuerRef), the CA injected, the Secret mounted for --webhook-tls=files', async () => {
    const objs = await render(ON, CM);
    const config = objs.get('MutatingWebhookConfiguration//kwarm-rollout-gate') as Obj;
    expect(config.metadata.annotations).to.deep.equal({ 'cert-manager.io/inject-ca-from': 'kwarm-system/kwarm-webhook' });
    expect(objs.get('Issuer/kwarm-system/kwarm-webhook-selfsigned')).to.deep.nested.include({ 'spec.selfSigned': {} });
    expect((objs.get('Certificate/kwarm-system/kwarm-webhook') as { spec: unknown }).spec).to.deep.include({
      secretName: 'kwarm-webhook-tls',
      dnsNames: ['kwarm-webhook.kwarm-system.svc', 'kwarm-webhook.kwarm-system.svc.cluster.local'],
      issuerRef: { name: 'kwarm-webhook-selfsigned', kind: 'Issuer', group: 'cert-manager.io' },
    });
    const c = controller(objs);
    expect(c.args).to.include.members(['--webhook-tls=files', '--webhook-cert-dir=/etc/kwarm/webhook-certs']);
    expect(c.args.join(' ')).to.not.include('--webhook-secret');
    expect(c.volumeMounts).to.deep.equal([{ name: 'webhook-certs', mountPath: '/etc/kwarm/webhook-certs', readOnly: true }]);
    expect((objs.get('Deployment/kwarm-system/kwarm-controller') as Deployment).spec.template.spec.volumes).to.deep.equal([{ name: 'webhook-certs', secret: { secretName: 'kwarm-webhook-tls' } }]);
    // cert-manager's cainjector writes the caBundle: the controller gets no right to the configuration or the Secret.
    expect(JSON.stringify(rules(objs, 'ClusterRole//kwarm-controller'))).to.not.include('mutatingwebhookconfigurations');
    expect(JSON.stringify(rules(objs, 'Role/kwarm-system/kwarm-controller'))).to.not.include('kwarm-webhook-cert');

    const ref = await render(ON, CM, 'rolloutGate.certManager.issuerRef.name=corp-ca', 'rolloutGate.certManager.issuerRef.kind=ClusterIssuer');
    expect([...ref.keys()].filter((k) => k.startsWith('Issuer/'))).to.deep.equal([]);
    expect((ref.get('Certificate/kwarm-system/kwarm-webhook') as { spec: { issuerRef: unknown } }).spec.issuerRef).to.deep.equal({ name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });

  it('the values schema refuses wrong rolloutGate values', async () => {
    for (const bad of ['rolloutGate.webhook.timeoutSeconds=0', 'rolloutGate.webhook.timeoutSeconds=31', 'rolloutGate.webhook.port=80',
      'rolloutGate.certManager.issuerRef.kind=Foo', 'rolloutGate.unknown=1', 'rolloutGate.enabled=maybe']) {
      const res = await helm(['template', 'kwarm', 'charts/kwarm', '--set', bad], { allowFailure: true });
      expect(res.code, bad).to.not.equal(0);
      expect(res.stderr, bad).to.match(/values don't meet the specifications of the schema/);
    }
  });

  it('installs with helm on the API server, and the controller\'s token may write only its own webhook configuration and Secret', async () => {
    const ns = 'kwarm-gate-install';
    await helm(['install', 'kwarm-gate', 'charts/kwarm', '-n', ns, '--create-namespace', '--wait=false', '--set', ON], { cp });
    try {
      const { stdout } = await cp.kubectl(['get', 'mutatingwebhookconfiguration', 'kwarm-gate-rollout-gate', '-o', 'jsonpath={.webhooks[0].failurePolicy}']);
      expect(stdout).to.equal('Ignore');
      const token = await cp.serviceAccountKubeconfig(ns, 'kwarm-gate-controller');
      const can = async (...args: string[]): Promise<string> => (await cp.kubectl(['auth', 'can-i', ...args], { kubeconfig: token, allowFailure: true })).stdout.trim();
      expect(await can('patch', 'mutatingwebhookconfigurations/kwarm-gate-rollout-gate')).to.equal('yes');
      expect(await can('patch', 'mutatingwebhookconfigurations/other-webhook')).to.equal('no');
      expect(await can('delete', 'mutatingwebhookconfigurations/kwarm-gate-rollout-gate')).to.equal('no');
      expect(await can('create', 'mutatingwebhookconfigurations')).to.equal('no');
      expect(await can('patch', 'validatingwebhookconfigurations/kwarm-gate-rollout-gate')).to.equal('no');
      expect(await can('update', 'secrets/kwarm-gate-webhook-cert', '-n', ns)).to.equal('yes');
      expect(await can('update', 'secrets/kwarm-gate-webhook-cert', '-n', 'default')).to.equal('no');
    } finally {
      // No kubelet runs here, so the rollout gate's pre-delete hook Job (release every gated pod) could never finish.
      await helm(['uninstall', 'kwarm-gate', '-n', ns, '--no-hooks'], { cp });
      await cp.kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
    }
  });
});
