import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { decode } from '../../../api/schema.ts';
import { prePullImageSchema, prePullPolicySchema } from '../../../api/v1alpha1/index.ts';

const samplesDir = join(import.meta.dirname, '..', '..', '..', 'deploy', 'samples');

function sample(file: string): unknown {
  const docs = loadAllYaml(readFileSync(join(samplesDir, file), 'utf8'));
  expect(docs, file).to.have.length(1);
  return docs[0];
}

function decoded<T>(result: { ok: true; value: T } | { ok: false; errors: string[] }): T {
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.value;
}

/** The defaults of the README's PrePullPolicy table, as the API fills them in. */
const README_DEFAULTS = {
  nodeSelector: { matchLabels: {} },
  resources: { requests: { memory: '64Mi', cpu: '100m' } },
  retry: { maxAttempts: 3, backoffSeconds: 30 },
  timeout: '10m',
  imagePullSecrets: { inherit: false, additional: [] },
};

describe('deploy/samples', () => {
  it('prepullpolicy_basic.yaml decodes with the README defaults filled in', () => {
    const policy = decoded(decode(prePullPolicySchema, sample('prepullpolicy_basic.yaml')));
    expect(policy.metadata.name).to.equal('default');
    expect(policy.spec).to.deep.equal({
      ...README_DEFAULTS,
      selector: { matchLabels: { 'kwarm.io/enabled': 'true' } },
      workloadKinds: ['Deployment'],
      purgeOnDelete: false,
      gateNewNodes: false,
      resources: { requests: { memory: '64Mi', cpu: '100m' }, limits: { memory: '256Mi', cpu: '500m' } },
    });
  });

  it('prepullpolicy_full.yaml sets every option of the README table to a non-default value', () => {
    const raw = sample('prepullpolicy_full.yaml');
    const policy = decoded(decode(prePullPolicySchema, raw));
    const { spec } = policy;
    expect(spec.selector.namespaces).to.deep.equal(['payments', 'checkout']);
    expect(Object.keys(spec.selector.matchLabels)).to.have.length.greaterThan(1);
    expect(spec.nodeSelector.matchLabels).to.not.deep.equal({});
    expect(spec.resources.requests).to.not.deep.equal(README_DEFAULTS.resources.requests);
    expect(spec.resources.limits).to.not.equal(undefined);
    expect(spec.retry).to.not.deep.equal(README_DEFAULTS.retry);
    expect(spec.timeout).to.not.equal(README_DEFAULTS.timeout);
    expect(spec.imagePullSecrets.inherit).to.equal(true);
    expect(spec.imagePullSecrets.additional).to.have.length.greaterThan(0);
    expect(spec.workloadKinds).to.not.deep.equal(['Deployment']);
    // Nothing of the README's table was left to a default: decoding the raw object added only kwarm's own
    // purgeOnDelete and gateNewNodes (off unless asked for).
    const { purgeOnDelete, gateNewNodes, ...readmeFields } = policy.spec;
    expect(purgeOnDelete).to.equal(false);
    expect(gateNewNodes).to.equal(false);
    expect(readmeFields).to.deep.equal((raw as { spec: unknown }).spec);
  });

  it('prepullimage_manual.yaml decodes and uses every PrePullImage field of the README', () => {
    const image = decoded(decode(prePullImageSchema, sample('prepullimage_manual.yaml')));
    const { spec } = image;
    expect(spec.image).to.equal('my-registry/my-app:v2');
    expect(spec.imageDigest).to.match(/^sha256:[0-9a-f]{64}$/u);
    expect(spec.nodes.names).to.have.length.greaterThan(0);
    expect(spec.nodes.selector?.matchLabels).to.not.equal(undefined);
    expect(spec.imagePullSecrets).to.have.length.greaterThan(0);
    expect(spec.retry).to.deep.equal(README_DEFAULTS.retry);
    expect(spec.timeout).to.equal('10m');
    expect(spec.resources).to.deep.equal(README_DEFAULTS.resources);
  });

  it('deployment_example.yaml is selected by the basic policy', () => {
    const deployment = sample('deployment_example.yaml') as {
      metadata: { namespace?: string; labels: Record<string, string> };
      spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } };
    };
    const policy = decoded(decode(prePullPolicySchema, sample('prepullpolicy_basic.yaml')));
    for (const [k, v] of Object.entries(policy.spec.selector.matchLabels)) expect(deployment.metadata.labels[k]).to.equal(v);
    expect(deployment.metadata.namespace).to.equal(undefined);
    // A Deployment's selector must match its template's labels, or the API server rejects it.
    for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) expect(deployment.spec.template.metadata.labels[k]).to.equal(v);
  });

  it('kustomization.yaml lists exactly the sample files', () => {
    const kustomization = sample('kustomization.yaml') as { resources: string[] };
    const files = readdirSync(samplesDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).to.deep.equal(files.sort());
    expect(files).to.include.members(['prepullpolicy_basic.yaml', 'prepullpolicy_full.yaml', 'prepullimage_manual.yaml', 'deployment_example.yaml']);
  });
});
