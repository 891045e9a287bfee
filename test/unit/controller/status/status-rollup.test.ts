import { expect } from 'chai';
import type { PrePullImageStatus } from '../../../../api/v1alpha1/index.ts';
import type { PolicyEvaluation } from '../../../../controller/derive/desired-images.ts';
import type { ListedEvaluation } from '../../../../controller/derive/listed-images.ts';
import type { PlannedNodeImageSet } from '../../../../controller/plan/node-plan.ts';
import type { NodeImageSetView } from '../../../../controller/plan/node-image-set-view.ts';
import {
  prePullImageStatus,
  configMapProblemText,
  prePullPolicyStatus,
  PULL_SECRETS_READY,
  setCondition,
  type ImageStatusInput,
} from '../../../../controller/status/status-rollup.ts';
import { nodeImageSetView } from '../planning-fixtures.ts';

const IMAGE = 'r.example/app:v2';
const T0 = '2024-05-01T10:00:00Z';
const T1 = '2024-05-01T10:05:00Z';

function planned(nodes: readonly string[], round = 0): Map<string, PlannedNodeImageSet> {
  return new Map(nodes.map((n) => [n, { node: n, nodeUid: `uid-${n}`, digest: 'd', released: new Map([[IMAGE, round]]), spec: { maxConcurrentPulls: 2, images: [], removals: [] } }]));
}

type Phase = 'Pending' | 'Pulling' | 'Completed' | 'Failed';
function current(phases: Record<string, Phase>, extra: { reason?: string; message?: string } = {}): Map<string, NodeImageSetView> {
  return new Map(Object.entries(phases).map(([n, phase]) => [n, nodeImageSetView(n, { [IMAGE]: 0 }, {
    [IMAGE]: { phase, startedAt: `2024-05-01T10:0${n.slice(1)}:00Z`, ...(phase === 'Completed' || phase === 'Failed' ? { finishedAt: `2024-05-01T10:1${n.slice(1)}:00Z` } : {}), ...(phase === 'Failed' ? extra : {}) },
  })]));
}

function input(over: Partial<ImageStatusInput>): ImageStatusInput {
  return {
    generation: 2,
    image: IMAGE,
    nodes: ['n1', 'n2', 'n3'],
    planned: planned(['n1', 'n2', 'n3']),
    current: new Map(),
    previous: undefined,
    secrets: { referenced: 0, problems: [] },
    now: T1,
    ...over,
  };
}

describe('controller/status-rollup', () => {
  it('is Pending with READY 0/n before any agent reports, and says why when no node qualifies', () => {
    const { status, events } = prePullImageStatus(input({}));
    expect(status).to.deep.include({ phase: 'Pending', ready: '0/3', observedGeneration: 2 });
    expect(status.summary).to.deep.equal({ total: 3, pending: 3, pulling: 0, completed: 0, failed: 0 });
    expect(status.conditions?.[0]).to.include({ type: 'Ready', status: 'False', reason: 'Pending' });
    expect(status.startTime).to.equal(undefined);
    expect(events).to.deep.equal([]);
    const none = prePullImageStatus(input({ nodes: [] })).status;
    expect(none.conditions?.[0]).to.include({ reason: 'NoTargetNodes' });
  });

  it('goes InProgress with a PullStarted event, then Completed with the Ready condition True and times', () => {
    const started = prePullImageStatus(input({ current: current({ n1: 'Completed', n2: 'Pulling' }) }));
    expect(started.status).to.deep.include({ phase: 'InProgress', ready: '1/3', startTime: '2024-05-01T10:01:00Z' });
    expect(started.status.summary).to.deep.equal({ total: 3, pending: 1, pulling: 1, completed: 1, failed: 0 });
    expect(started.events.map((e) => e.reason)).to.deep.equal(['PullStarted']);

    const done = prePullImageStatus(input({ current: current({ n1: 'Completed', n2: 'Completed', n3: 'Completed' }), previous: started.status }));
    expect(done.status).to.deep.include({ phase: 'Completed', ready: '3/3', startTime: '2024-05-01T10:01:00Z', completionTime: '2024-05-01T10:13:00Z' });
    expect(done.status.conditions?.[0]).to.include({ type: 'Ready', status: 'True', reason: 'ImagePresent', lastTransitionTime: T1 });
    expect(done.status.nodes).to.equal(undefined);
    expect(done.events.map((e) => e.reason)).to.deep.equal(['PullCompleted']);
  });

  it('produces an identical status and no events when nothing changed (a resync writes nothing)', () => {
    const first = prePullImageStatus(input({ current: current({ n1: 'Completed', n2: 'Completed', n3: 'Completed' }) }));
    const again = prePullImageStatus(input({ current: current({ n1: 'Completed', n2: 'Completed', n3: 'Completed' }), previous: first.status, now: '2030-01-01T00:00:00Z' }));
    expect(again.status).to.deep.equal(first.status);
    expect(again.events).to.deep.equal([]);
  });

  it('is Failed once every node finished and one gave up, listing failed nodes first with their reason', () => {
    const { status, events } = prePullImageStatus(input({ current: current({ n1: 'Completed', n2: 'Failed', n3: 'Completed' }, { reason: 'ImageNotFound', message: 'manifest unknown' }) }));
    expect(status.phase).to.equal('Failed');
    expect(status.nodes).to.deep.equal([{ node: 'n2', phase: 'Failed', reason: 'ImageNotFound', message: 'manifest unknown' }]);
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ type: 'Warning', reason: 'PullFailed' });
    expect(events[0]!.message).to.contain('ImageNotFound');
  });

  it('ignores status of another round and marks pairs held by the budget as waiting', () => {
    const cur = current({ n1: 'Completed' });
    const { status } = prePullImageStatus(input({ planned: new Map([...planned(['n1'], 1)]), current: cur }));
    expect(status.summary).to.deep.include({ completed: 0, pending: 3 });
    expect(status.nodes?.map((n) => [n.node, n.reason])).to.deep.equal([['n1', undefined], ['n2', 'WaitingForBudget'], ['n3', 'WaitingForBudget']]);
  });

  it('after a refresh: keeps status.refresh, counts nodes below the wanted round as waiting, and completes again', () => {
    const refresh = { requested: '1714557900', lastTime: '2024-05-01T10:04:00Z' };
    const done = prePullImageStatus(input({ current: current({ n1: 'Completed', n2: 'Completed', n3: 'Completed' }) })).status;
    const previous: PrePullImageStatus = { ...done, refresh };
    const round = 1714557840;
    // n1 and n2 were raised; the budget holds n3 in round 0, whose Completed says nothing about the refresh.
    const plannedNow = new Map([...planned(['n1', 'n2'], round), ...planned(['n3'], 0)]);
    const cur = new Map([
      ['n1', nodeImageSetView('n1', { [IMAGE]: round }, { [IMAGE]: { phase: 'Completed', round, startedAt: '2024-05-01T10:04:10Z', finishedAt: '2024-05-01T10:04:20Z' } })],
      ['n2', nodeImageSetView('n2', { [IMAGE]: round }, { [IMAGE]: { phase: 'Pulling', round: 0 } })],
      ['n3', nodeImageSetView('n3', { [IMAGE]: 0 }, { [IMAGE]: { phase: 'Completed', round: 0 } })],
    ]);
    const during = prePullImageStatus(input({ round, planned: plannedNow, current: cur, previous }));
    expect(during.status.refresh).to.deep.equal(refresh);
    expect(during.status.phase).to.equal('InProgress');
    expect(during.status.summary).to.deep.equal({ total: 3, pending: 2, pulling: 0, completed: 1, failed: 0 });
    expect(during.status.nodes?.map((n) => [n.node, n.reason])).to.deep.equal([['n2', undefined], ['n3', 'WaitingForBudget']]);
    expect(during.status.completionTime).to.equal(undefined);

    const finished = new Map(['n1', 'n2', 'n3'].map((n) => [n, nodeImageSetView(n, { [IMAGE]: round }, { [IMAGE]: { phase: 'Completed', round, finishedAt: '2024-05-01T10:05:30Z' } })]));
    const after = prePullImageStatus(input({ round, planned: planned(['n1', 'n2', 'n3'], round), current: finished, previous: during.status }));
    expect(after.status).to.deep.include({ phase: 'Completed', ready: '3/3', completionTime: '2024-05-01T10:05:30Z', refresh });
    expect(after.events.map((e) => e.reason)).to.deep.equal(['PullCompleted']);
  });

  it('starts over (times, events) when the generation changes, e.g. a new image', () => {
    const old: PrePullImageStatus = {
      observedGeneration: 1, phase: 'Completed', startTime: T0, completionTime: T0, ready: '3/3',
      conditions: [{ type: 'Ready', status: 'True', reason: 'ImagePresent', message: 'x', lastTransitionTime: T0 }],
    };
    const { status, events } = prePullImageStatus(input({ previous: old, current: current({ n1: 'Pulling' }) }));
    expect(status.phase).to.equal('InProgress');
    expect(status.startTime).to.equal('2024-05-01T10:01:00Z');
    expect(status.completionTime).to.equal(undefined);
    expect(status.conditions?.[0]).to.include({ status: 'False', lastTransitionTime: T1 });
    expect(events.map((e) => e.reason)).to.deep.equal(['PullStarted']);
  });

  it('bounds per-node detail', () => {
    const nodes = Array.from({ length: 50 }, (_, i) => `n${i}`);
    const { status } = prePullImageStatus(input({ nodes, planned: planned(nodes) }));
    expect(status.nodes).to.have.length(20);
  });

  it('reports pull secret problems as a condition and a Warning event, once', () => {
    const secrets = { referenced: 2, problems: ['shop/regcred: SecretNotFound: Secret shop/regcred does not exist'] };
    const first = prePullImageStatus(input({ secrets }));
    const cond = first.status.conditions?.find((c) => c.type === PULL_SECRETS_READY);
    expect(cond).to.include({ status: 'False', reason: 'SecretUnusable' });
    expect(first.events.map((e) => e.reason)).to.deep.equal(['PullSecretProblem']);
    const again = prePullImageStatus(input({ secrets, previous: first.status }));
    expect(again.events).to.deep.equal([]);
    const fixed = prePullImageStatus(input({ secrets: { referenced: 2, problems: [] }, previous: first.status }));
    expect(fixed.status.conditions?.find((c) => c.type === PULL_SECRETS_READY)).to.include({ status: 'True', reason: 'Copied' });
  });

  it('says Unknown, not True, while a pull secret is not known yet, and no Warning event', () => {
    const pending = prePullImageStatus(input({ secrets: { referenced: 2, problems: [], unknown: 1 } }));
    const cond = pending.status.conditions?.find((c) => c.type === PULL_SECRETS_READY);
    expect(cond).to.include({ status: 'Unknown', reason: 'SecretsNotListed' });
    expect(cond?.message).to.contain('1 of 2 pull secrets not read yet');
    expect(pending.events.filter((e) => e.reason === 'PullSecretProblem')).to.deep.equal([]);
    // A problem with another secret is reported as one, unknown or not.
    const problem = prePullImageStatus(input({ secrets: { referenced: 2, problems: ['shop/b: SecretNotFound: gone'], unknown: 1 }, previous: pending.status }));
    expect(problem.status.conditions?.find((c) => c.type === PULL_SECRETS_READY)).to.include({ status: 'False', reason: 'SecretUnusable' });
    const known = prePullImageStatus(input({ secrets: { referenced: 2, problems: [] }, previous: pending.status }));
    expect(known.status.conditions?.find((c) => c.type === PULL_SECRETS_READY)).to.include({ status: 'True', reason: 'Copied' });
  });

  it('setCondition keeps lastTransitionTime while the status stays', () => {
    const prev = [{ type: 'Ready', status: 'False' as const, reason: 'A', message: '', lastTransitionTime: T0 }];
    expect(setCondition(prev, { type: 'Ready', status: 'False', reason: 'B', message: 'm' }, T1).lastTransitionTime).to.equal(T0);
    expect(setCondition(prev, { type: 'Ready', status: 'True', reason: 'B', message: 'm' }, T1).lastTransitionTime).to.equal(T1);
  });

  describe('policy status', () => {
    const ev = (over: Partial<PolicyEvaluation> = {}): PolicyEvaluation => ({
      name: 'default', selectorError: undefined, watchedWorkloads: 2, shadowed: 0, images: ['a', 'b'],
      watchedByKind: { Deployment: 2, StatefulSet: 0, DaemonSet: 0, Job: 0, CronJob: 0, WorkflowTemplate: 0, ClusterWorkflowTemplate: 0, CronWorkflow: 0 }, ...over,
    });

    it('counts watched workloads and says resources has no effect', () => {
      const s = prePullPolicyStatus({ generation: 3, evaluation: ev(), imagePhases: ['Completed', 'InProgress'], previous: undefined, now: T0 });
      expect(s.watchedWorkloads).to.equal(2);
      expect(s.observedGeneration).to.equal(3);
      expect(s.conditions?.find((c) => c.type === 'Ready')).to.include({ status: 'False', reason: 'Pulling', message: '1 of 2 images ready' });
      expect(s.conditions?.find((c) => c.type === 'ResourcesIgnored')).to.include({ status: 'True', reason: 'NoPullJobs' });
      expect(s.conditions?.find((c) => c.type === 'ResourcesIgnored')?.message).to.contain('no effect');
    });

    it('is Ready when every image is present, and not when one failed or the selector is invalid', () => {
      const ok = prePullPolicyStatus({ generation: 1, evaluation: ev(), imagePhases: ['Completed', 'Completed'], previous: undefined, now: T0 });
      expect(ok.conditions?.[0]).to.include({ status: 'True', reason: 'ImagesPresent' });
      const failed = prePullPolicyStatus({ generation: 1, evaluation: ev(), imagePhases: ['Completed', 'Failed'], previous: undefined, now: T0 });
      expect(failed.conditions?.[0]).to.include({ status: 'False', reason: 'PullFailed' });
      const bad = prePullPolicyStatus({ generation: 1, evaluation: ev({ selectorError: 'boom', watchedWorkloads: 0 }), imagePhases: [], previous: undefined, now: T0 });
      expect(bad.conditions?.[0]).to.include({ status: 'False', reason: 'InvalidSelector', message: 'boom' });
    });

    describe('with static and ConfigMap images', () => {
      const listed = (over: Partial<ListedEvaluation> = {}): ListedEvaluation => ({ staticImages: [], configMapImages: [], configMaps: { kind: 'unset' }, ...over });
      const problem = { namespace: 'shop', name: 'images', uid: 'u1', resourceVersion: '42', key: 'bad', message: 'not a valid JSON array: Unexpected end of JSON input' };

      it('counts images from every source and is Ready for a static list with no workload', () => {
        const s = prePullPolicyStatus({
          generation: 1, evaluation: ev({ watchedWorkloads: 0, images: [] }), listed: listed({ staticImages: ['kwarm-system/static.p.1', 'kwarm-system/static.p.2'] }),
          imagePhases: ['Completed', 'Completed'], previous: undefined, now: T0,
        });
        expect(s.images).to.equal(2);
        expect(s.watchedConfigMaps).to.equal(undefined);
        expect(s.conditions?.[0]).to.include({ status: 'True', reason: 'ImagesPresent', message: 'all 2 images from spec.images (2) are present on their target nodes' });
        expect(s.conditions?.map((c) => c.type)).to.deep.equal(['Ready', 'ResourcesIgnored']);
        const pulling = prePullPolicyStatus({
          generation: 1, evaluation: ev({ watchedWorkloads: 0, images: [] }), listed: listed({ staticImages: ['a'] }), imagePhases: [undefined], previous: undefined, now: T0,
        });
        expect(pulling.conditions?.[0]).to.include({ status: 'False', reason: 'Pulling' });
      });

      it('sets ConfigMapsValid only with spec.configMaps: True with the count, False naming ConfigMap, key and version', () => {
        const ok = prePullPolicyStatus({
          generation: 2, evaluation: ev(), listed: listed({ configMapImages: ['shop/x'], configMaps: { kind: 'watched', configMaps: 3, problems: [] } }),
          imagePhases: ['Completed', 'Completed', 'Completed'], previous: undefined, now: T0,
        });
        expect(ok.watchedConfigMaps).to.equal(3);
        expect(ok.images).to.equal(3);
        expect(ok.conditions?.find((c) => c.type === 'ConfigMapsValid')).to.include({ status: 'True', reason: 'ImageListsValid', observedGeneration: 2 });
        expect(ok.conditions?.[0]?.message).to.equal('all 3 images from 2 workloads, ConfigMaps (1) are present on their target nodes');

        const bad = prePullPolicyStatus({
          generation: 2, evaluation: ev(), listed: listed({ configMaps: { kind: 'watched', configMaps: 1, problems: [problem] } }),
          imagePhases: ['Completed', 'Completed'], previous: ok, now: T1,
        });
        const c = bad.conditions?.find((x) => x.type === 'ConfigMapsValid');
        expect(c).to.include({ status: 'False', reason: 'InvalidImageList', lastTransitionTime: T1 });
        expect(c?.message).to.equal('ConfigMap shop/images key "bad" (resourceVersion 42): not a valid JSON array: Unexpected end of JSON input');
        expect(c?.message).to.contain(configMapProblemText(problem));
        // Images of the good keys still count toward Ready.
        expect(bad.conditions?.[0]).to.include({ status: 'True', reason: 'ImagesPresent' });
      });

      it('lists at most ten problems and counts the rest', () => {
        const problems = Array.from({ length: 12 }, (_, i) => ({ ...problem, key: `k${i}` }));
        const s = prePullPolicyStatus({ generation: 1, evaluation: ev(), listed: listed({ configMaps: { kind: 'watched', configMaps: 1, problems } }), imagePhases: [], previous: undefined, now: T0 });
        const message = s.conditions?.find((x) => x.type === 'ConfigMapsValid')?.message ?? '';
        expect(message.match(/ConfigMap shop\/images/g)).to.have.length(10);
        expect(message).to.match(/; and 2 more$/);
      });

      it('is Unknown while the ConfigMaps are not listed, saying why when the list fails', () => {
        const listing = prePullPolicyStatus({ generation: 1, evaluation: ev(), listed: listed({ configMaps: { kind: 'pending', error: undefined } }), imagePhases: [], previous: undefined, now: T0 });
        expect(listing.conditions?.find((x) => x.type === 'ConfigMapsValid')).to.include({ status: 'Unknown', reason: 'Listing' });
        const failing = prePullPolicyStatus({ generation: 1, evaluation: ev(), listed: listed({ configMaps: { kind: 'pending', error: 'configmaps is forbidden' } }), imagePhases: [], previous: undefined, now: T0 });
        expect(failing.conditions?.find((x) => x.type === 'ConfigMapsValid')).to.include({ status: 'Unknown', reason: 'ListFailed', message: 'cannot list the selected ConfigMaps: configmaps is forbidden' });
      });

      it('says when the selector is invalid, and reports zero ConfigMaps', () => {
        const s = prePullPolicyStatus({ generation: 1, evaluation: ev({ watchedWorkloads: 0, images: [] }), listed: listed({ configMaps: { kind: 'invalidSelector', error: 'configMaps.selector: boom' } }), imagePhases: [], previous: undefined, now: T0 });
        expect(s.watchedConfigMaps).to.equal(0);
        expect(s.conditions?.find((x) => x.type === 'ConfigMapsValid')).to.include({ status: 'False', reason: 'InvalidSelector', message: 'configMaps.selector: boom' });
        expect(s.conditions?.[0]).to.include({ status: 'True', reason: 'NoWorkloads', message: 'no workload matches the selector and the selected ConfigMaps list no image' });
      });
    });
  });
});
