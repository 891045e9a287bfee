import { expect } from 'chai';
import { decode } from '../../../../api/schema.ts';
import { prePullImageSchema } from '../../../../api/v1alpha1/index.ts';
import { cachedPrePullImageDigest, desiredPrePullImageDigest, prePullImageApplyBody } from '../../../../controller/write/api-objects.ts';
import {
  DesiredImagesMemo,
  desiredPrePullImages,
  pullSecretsFor,
  serviceAccountKey,
  type ServiceAccountView,
} from '../../../../controller/derive/desired-images.ts';
import { placementAllows } from '../../../../controller/plan/node-eligibility.ts';
import { node, policy, workload } from '../planning-fixtures.ts';

const basic = policy('default', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } } });
const noSAs = new Map<string, ServiceAccountView>();

describe('controller/desired-images', () => {
  it('derives one PrePullImage per container and initContainer of a selected Deployment, with the policy settings', () => {
    const w = workload({ name: 'my-app', podSpec: { initContainers: [{ name: 'init', image: 'reg.example/init:1' }], containers: [{ name: 'app', image: 'my-registry/my-app:v2' }] } });
    const { images, policies } = desiredPrePullImages([basic], [w], noSAs);
    expect([...images.keys()]).to.deep.equal(['shop/deployment.my-app.init', 'shop/deployment.my-app.app']);
    const app = images.get('shop/deployment.my-app.app')!;
    expect(app.spec).to.deep.equal({
      image: 'my-registry/my-app:v2',
      nodes: {},
      imagePullSecrets: [],
      retry: { maxAttempts: 3, backoffSeconds: 30 },
      timeout: '10m',
    });
    expect(app.owner).to.deep.equal({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'my-app', uid: 'uid-my-app' });
    expect(app.annotations).to.deep.equal({ 'kwarm.io/workload': 'Deployment/my-app', 'kwarm.io/container': 'app' });
    expect(app.policy).to.equal('default');
    expect(policies.get('default')).to.include({ watchedWorkloads: 1, shadowed: 0, selectorError: undefined });
    expect(policies.get('default')!.images).to.have.length(2);
  });

  it('gives derived PrePullImages the policy\'s refreshInterval; what it writes reads back with the same digest', () => {
    const w = workload({ name: 'my-app', podSpec: { containers: [{ name: 'app', image: 'my-registry/my-app:latest' }] } });
    const hourly = policy('default', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, refreshInterval: '1h' });
    for (const [p, interval] of [[hourly, '1h'], [basic, undefined]] as const) {
      const d = desiredPrePullImages([p], [w], noSAs).images.get('shop/deployment.my-app.app')!;
      expect(d.spec.refreshInterval).to.equal(interval);
      const written = decode(prePullImageSchema, prePullImageApplyBody(d));
      if (!written.ok) throw new Error(written.errors.join('; '));
      expect(written.value.spec.refreshInterval).to.equal(interval);
      expect(cachedPrePullImageDigest(written.value)).to.equal(desiredPrePullImageDigest(d));
    }
    // A changed interval is a change to write.
    const a = desiredPrePullImages([hourly], [w], noSAs).images.get('shop/deployment.my-app.app')!;
    const b = desiredPrePullImages([basic], [w], noSAs).images.get('shop/deployment.my-app.app')!;
    expect(desiredPrePullImageDigest(a)).to.not.equal(desiredPrePullImageDigest(b));
  });

  it('follows the pod template: a changed image gives the same PrePullImage name with the new image', () => {
    const v1 = desiredPrePullImages([basic], [workload({ name: 'a', podSpec: { containers: [{ name: 'app', image: 'r.example/a:v1' }] } })], noSAs);
    const v2 = desiredPrePullImages([basic], [workload({ name: 'a', podSpec: { containers: [{ name: 'app', image: 'r.example/a:v2' }] } })], noSAs);
    expect(v1.images.get('shop/deployment.a.app')!.spec.image).to.equal('r.example/a:v1');
    expect(v2.images.get('shop/deployment.a.app')!.spec.image).to.equal('r.example/a:v2');
  });

  it('selects by labels, namespaces and workload kinds', () => {
    const p = policy('p', { selector: { matchLabels: { team: 'a' }, namespaces: ['shop'] }, workloadKinds: ['Deployment', 'CronJob'] });
    const spec = { containers: [{ name: 'c', image: 'r.example/x:1' }] };
    const ws = [
      workload({ name: 'match', labels: { team: 'a' }, podSpec: spec }),
      workload({ name: 'cron', kind: 'CronJob', labels: { team: 'a' }, podSpec: spec }),
      workload({ name: 'wrong-label', labels: { team: 'b' }, podSpec: spec }),
      workload({ name: 'other-ns', namespace: 'other', labels: { team: 'a' }, podSpec: spec }),
      workload({ name: 'sts', kind: 'StatefulSet', labels: { team: 'a' }, podSpec: spec }),
    ];
    const { images, policies } = desiredPrePullImages([p], ws, noSAs);
    expect([...images.keys()].sort()).to.deep.equal(['shop/cronjob.cron.c', 'shop/deployment.match.c']);
    expect(policies.get('p')!.watchedWorkloads).to.equal(2);
    expect(policies.get('p')!.watchedByKind).to.include({ Deployment: 1, CronJob: 1, StatefulSet: 0 });
  });

  it('skips a Job a selected CronJob created, and keeps one whose CronJob no policy selects', () => {
    const p = policy('p', { selector: { matchLabels: { team: 'a' } }, workloadKinds: ['CronJob', 'Job'] });
    const spec = { containers: [{ name: 'c', image: 'r.example/x:1' }] };
    const ws = [
      workload({ name: 'nightly', kind: 'CronJob', labels: { team: 'a' }, podSpec: spec }),
      { ...workload({ name: 'nightly-290', kind: 'Job', labels: { team: 'a' }, podSpec: spec }), ownerCronJob: 'nightly' },
      { ...workload({ name: 'other-17', kind: 'Job', labels: { team: 'a' }, podSpec: spec }), ownerCronJob: 'unselected' },
      workload({ name: 'once', kind: 'Job', labels: { team: 'a' }, podSpec: spec }),
    ];
    const { images, policies } = desiredPrePullImages([p], ws, noSAs);
    expect([...images.keys()].sort()).to.deep.equal(['shop/cronjob.nightly.c', 'shop/job.once.c', 'shop/job.other-17.c']);
    expect(policies.get('p')!.watchedByKind).to.include({ CronJob: 1, Job: 2 });
  });

  it('gives a workload selected by two policies to the first by name and counts it as shadowed by the other', () => {
    const a = policy('a-policy', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, timeout: '5m' });
    const b = policy('b-policy', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, timeout: '20m' });
    const w = workload({ name: 'x', podSpec: { containers: [{ name: 'c', image: 'r.example/x:1' }] } });
    const { images, policies } = desiredPrePullImages([b, a], [w], noSAs);
    expect(images.get('shop/deployment.x.c')!.policy).to.equal('a-policy');
    expect(images.get('shop/deployment.x.c')!.spec.timeout).to.equal('5m');
    expect(policies.get('b-policy')).to.include({ watchedWorkloads: 0, shadowed: 1 });
  });

  it('writes the policy nodeSelector into spec.nodes and keeps the workload placement', () => {
    const p = policy('p', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, nodeSelector: { matchLabels: { pool: 'gpu' } } });
    const w = workload({ name: 'x', podSpec: { nodeSelector: { disk: 'ssd' }, containers: [{ name: 'c', image: 'r.example/x:1' }] } });
    const img = desiredPrePullImages([p], [w], noSAs).images.get('shop/deployment.x.c')!;
    expect(img.spec.nodes).to.deep.equal({ selector: { matchLabels: { pool: 'gpu' } } });
    const placement = img.placement;
    if (placement === undefined) throw new Error('a workload image has a placement');
    expect(placementAllows(placement, node({ name: 'n1', labels: { disk: 'ssd' } })).eligible).to.equal(true);
    expect(placementAllows(placement, node({ name: 'n2', labels: { disk: 'hdd' } })).eligible).to.equal(false);
  });

  it('ignores policies being deleted', () => {
    const deleting = { ...basic, metadata: { ...basic.metadata, deletionTimestamp: '2024-01-01T00:00:00Z' } };
    const w = workload({ name: 'x', podSpec: { containers: [{ name: 'c', image: 'r.example/x:1' }] } });
    expect(desiredPrePullImages([deleting], [w], noSAs).images.size).to.equal(0);
  });

  describe('pull secrets', () => {
    const w = workload({ name: 'x', podSpec: { serviceAccountName: 'builder', imagePullSecrets: [{ name: 'tpl' }], containers: [{ name: 'c', image: 'r.example/x:1' }] } });
    const sas = new Map([[serviceAccountKey('shop', 'builder'), { namespace: 'shop', name: 'builder', imagePullSecrets: ['sa-secret', 'tpl'] }]]);

    it('uses only `additional` without inherit', () => {
      const p = policy('p', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, imagePullSecrets: { additional: [{ name: 'extra' }] } });
      expect(pullSecretsFor(p, w.template, sas)).to.deep.equal(['extra']);
    });

    it('adds the template and ServiceAccount secrets with inherit, de-duplicated', () => {
      const p = policy('p', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, imagePullSecrets: { inherit: true, additional: [{ name: 'extra' }] } });
      expect(pullSecretsFor(p, w.template, sas)).to.deep.equal(['tpl', 'sa-secret', 'extra']);
      const img = desiredPrePullImages([p], [w], sas).images.get('shop/deployment.x.c')!;
      expect(img.spec.imagePullSecrets).to.deep.equal([{ name: 'tpl' }, { name: 'sa-secret' }, { name: 'extra' }]);
    });
  });
  describe('with a DesiredImagesMemo kept between passes', () => {
    it('derives the same objects for unchanged workloads, policies and ServiceAccounts, new ones otherwise', () => {
      const memo = new DesiredImagesMemo();
      const inherit = policy('default', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, imagePullSecrets: { inherit: true } });
      const w = workload({ name: 'a', podSpec: { serviceAccountName: 'builder', containers: [{ name: 'app', image: 'r.example/a:1' }] } });
      const other = workload({ name: 'b', podSpec: { containers: [{ name: 'app', image: 'r.example/b:1' }] } });
      const sa = (secret: string): Map<string, ServiceAccountView> => new Map([[serviceAccountKey('shop', 'builder'), { namespace: 'shop', name: 'builder', imagePullSecrets: [secret] }]]);
      const sas = sa('one');
      const first = desiredPrePullImages([inherit], [w, other], sas, memo);
      const again = desiredPrePullImages([inherit], [w, other], sas, memo);
      expect(again.images.get('shop/deployment.a.app')).to.equal(first.images.get('shop/deployment.a.app'));
      expect(again.images.get('shop/deployment.b.app')).to.equal(first.images.get('shop/deployment.b.app'));

      // A changed ServiceAccount, policy or workload is derived again, and gives what no memo would.
      const changedSa = desiredPrePullImages([inherit], [w, other], sa('two'), memo);
      expect(changedSa.images.get('shop/deployment.a.app')!.spec.imagePullSecrets).to.deep.equal([{ name: 'two' }]);
      expect(changedSa.images.get('shop/deployment.b.app')).to.equal(first.images.get('shop/deployment.b.app'));
      const slower = policy('default', { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } }, imagePullSecrets: { inherit: true }, retry: { maxAttempts: 9 } });
      const changedPolicy = desiredPrePullImages([slower], [w, other], sas, memo);
      expect(changedPolicy.images.get('shop/deployment.b.app')!.spec.retry.maxAttempts).to.equal(9);
      const w2 = workload({ name: 'a', podSpec: { serviceAccountName: 'builder', containers: [{ name: 'app', image: 'r.example/a:2' }] } });
      const changedWorkload = desiredPrePullImages([inherit], [w2, other], sas, memo);
      expect(changedWorkload.images.get('shop/deployment.a.app')!.spec.image).to.equal('r.example/a:2');
      for (const r of [changedSa, changedPolicy, changedWorkload]) expect(r.images.size).to.equal(2);
      expect([...changedWorkload.images.values()]).to.deep.equal([...desiredPrePullImages([inherit], [w2, other], sas).images.values()]);
    });

    it('keeps the derived objects when only the policy\'s status changed (the informer hands out a new object)', () => {
      const memo = new DesiredImagesMemo();
      const spec = { selector: { matchLabels: { 'kwarm.io/enabled': 'true' } } };
      const w = workload({ name: 'a', podSpec: { containers: [{ name: 'app', image: 'r.example/a:1' }] } });
      const first = desiredPrePullImages([policy('default', spec)], [w], noSAs, memo);
      const withStatus = { ...policy('default', spec), status: { observedGeneration: 1 } };
      const again = desiredPrePullImages([withStatus], [w], noSAs, memo);
      expect(again.images.get('shop/deployment.a.app')).to.equal(first.images.get('shop/deployment.a.app'));
      const other = desiredPrePullImages([policy('default', { ...spec, timeout: '20m' })], [w], noSAs, memo);
      expect(other.images.get('shop/deployment.a.app')!.spec.timeout).to.equal('20m');
    });
  });
});
