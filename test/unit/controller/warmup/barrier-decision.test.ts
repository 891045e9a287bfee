import { expect } from 'chai';
import {
  AGENT_STALE_MS,
  barrierApplies,
  decideBarrier,
  WARMUP_SETTLE_MS,
  warmupOptions,
  type ImageProgress,
  type NodeConditionView,
  type WarmupImageSetView,
  type WarmupNodeView,
} from '../../../../controller/warmup/barrier-decision.ts';

const KEY = 'kwarm.io/warming';
const OPTS = warmupOptions(KEY, '10m');
const MINUTE = 60_000;
const CREATED = '2026-01-01T10:00:00Z';
const T0 = Date.parse(CREATED);
const UID = 'node-uid-1';
const A = 'r.example/a:v1';
const B = 'r.example/b:v1';

function node(over: Partial<WarmupNodeView> = {}): WarmupNodeView {
  return { name: 'n1', uid: UID, createdAt: CREATED, taints: [{ key: KEY, effect: 'NoSchedule' }], ready: true, imagesWarm: undefined, ...over };
}

function set(over: Partial<WarmupImageSetView> = {}, phases: Record<string, ImageProgress['phase']> = {}): WarmupImageSetView {
  return {
    ownerUid: UID,
    gatingImages: 2,
    gating: [{ image: A, round: 0 }, { image: B, round: 0 }],
    progress: new Map(Object.entries(phases).map(([image, phase]) => [image, { phase, round: 0 }])),
    heartbeatTime: new Date(T0 + MINUTE).toISOString(),
    ...over,
  };
}

function cond(status: 'True' | 'False', reason: string, message: string, lastTransitionTime = CREATED): NodeConditionView {
  return { status, reason, message, lastTransitionTime };
}

describe('controller/warmup/barrier-decision', () => {
  describe('holds the taint', () => {
    it('while gating images are still pulling, with the count in the condition and a recheck at the timeout', () => {
      const d = decideBarrier(node(), set({}, { [A]: 'Completed', [B]: 'Pulling' }), T0 + 2 * MINUTE, OPTS);
      expect(d.removeTaint).to.equal(false);
      expect(d.event).to.equal(undefined);
      expect(d.condition).to.include({ type: 'ImagesWarm', status: 'False', reason: 'Pulling', message: '1 of 2 gating images present' });
      expect(d.condition?.lastTransitionTime).to.equal('2026-01-01T10:02:00Z');
      expect(d.recheckAtMs).to.equal(T0 + 10 * MINUTE);
    });

    it('while gating images wait for the cluster-wide budget (gatingImages above the released entries)', () => {
      const d = decideBarrier(node(), set({ gatingImages: 3 }, { [A]: 'Completed', [B]: 'Completed' }), T0 + MINUTE, OPTS);
      expect(d.removeTaint).to.equal(false);
      expect(d.condition?.message).to.equal('2 of 3 gating images present, 1 waiting for the cluster-wide pull budget');
    });

    it('while the node is not Ready, and while its NodeImageSet is missing or belongs to a former node of that name', () => {
      expect(decideBarrier(node({ ready: false }), set({}, { [A]: 'Completed', [B]: 'Completed' }), T0 + MINUTE, OPTS).condition?.reason).to.equal('NodeNotReady');
      for (const s of [undefined, set({ ownerUid: 'old-uid', gatingImages: 0, gating: [] })]) {
        const d = decideBarrier(node(), s, T0 + MINUTE, OPTS);
        expect(d.removeTaint).to.equal(false);
        expect(d.condition?.reason).to.equal('NotPlanned');
      }
    });

    it('says when the agent has never reported or stopped reporting, and rechecks when a live agent would turn stale', () => {
      const never = decideBarrier(node(), set({ heartbeatTime: undefined }), T0 + MINUTE, OPTS);
      expect(never.condition).to.include({ reason: 'AgentNotReporting', message: '0 of 2 gating images present; kwarm-agent has not reported from this node' });
      const beat = T0 + MINUTE;
      const live = decideBarrier(node(), set({ heartbeatTime: new Date(beat).toISOString() }), T0 + 2 * MINUTE, { ...OPTS, agentStaleMs: 3 * MINUTE, timeoutMs: 60 * MINUTE });
      expect(live.condition?.reason).to.equal('Pulling');
      expect(live.recheckAtMs).to.equal(beat + 3 * MINUTE);
      const stale = decideBarrier(node(), set({ heartbeatTime: new Date(beat).toISOString() }), beat + 5 * MINUTE, { ...OPTS, agentStaleMs: 3 * MINUTE, timeoutMs: 60 * MINUTE });
      expect(stale.condition?.message).to.equal("0 of 2 gating images present; kwarm-agent's last heartbeat from this node was 5m ago");
    });

    it('counts a Completed entry of an earlier round (before a refresh) as not present', () => {
      const s = set({ gating: [{ image: A, round: 2 }, { image: B, round: 0 }] }, { [A]: 'Completed', [B]: 'Completed' });
      const d = decideBarrier(node(), s, T0 + MINUTE, OPTS);
      expect(d.removeTaint).to.equal(false);
      expect(d.condition?.message).to.equal('1 of 2 gating images present');
    });

    it('writes nothing when the condition already says the same, and keeps lastTransitionTime when only the message changes', () => {
      const current = cond('False', 'Pulling', '1 of 2 gating images present', '2026-01-01T10:00:30Z');
      const same = decideBarrier(node({ imagesWarm: current }), set({}, { [A]: 'Completed' }), T0 + 3 * MINUTE, OPTS);
      expect(same.condition).to.equal(undefined);
      expect(same.removeTaint).to.equal(false);
      const moved = decideBarrier(node({ imagesWarm: cond('False', 'Pulling', '0 of 2 gating images present', '2026-01-01T10:00:30Z') }), set({}, { [A]: 'Completed' }), T0 + 3 * MINUTE, OPTS);
      expect(moved.condition?.lastTransitionTime).to.equal('2026-01-01T10:00:30Z');
    });
  });

  describe('removes the taint', () => {
    it('once every gating image is Completed, with a Normal Event and ImagesWarm True', () => {
      const d = decideBarrier(node(), set({}, { [A]: 'Completed', [B]: 'Completed' }), T0 + 3 * MINUTE, OPTS);
      expect(d.removeTaint).to.equal(true);
      expect(d.condition).to.include({ status: 'True', reason: 'ImagesPresent', message: 'all 2 gating images are present on the node' });
      expect(d.event).to.deep.equal({ type: 'Normal', reason: 'WarmupComplete', message: 'all 2 gating images are present on the node' });
      expect(d.recheckAtMs).to.equal(undefined);
    });

    it('at once when nothing gates the node', () => {
      const d = decideBarrier(node(), set({ gatingImages: 0, gating: [] }), T0 + MINUTE, OPTS);
      expect(d.removeTaint).to.equal(true);
      expect(d.condition?.reason).to.equal('NoGatingImages');
    });

    it('when nothing gates the node, only once WARMUP_SETTLE_MS have passed since it joined (a workload may reach the controller after the node)', () => {
      const empty = set({ gatingImages: 0, gating: [] });
      const early = decideBarrier(node(), empty, T0 + 1000, OPTS);
      expect(early.removeTaint).to.equal(false);
      expect(early.condition).to.include({ status: 'False', reason: 'NotPlanned' });
      expect(early.condition?.message).to.include('5s after the node joined');
      expect(early.recheckAtMs).to.equal(T0 + WARMUP_SETTLE_MS);
      expect(decideBarrier(node(), empty, T0 + WARMUP_SETTLE_MS, OPTS).condition?.reason).to.equal('NoGatingImages');
      // Counted from the taint's timeAdded when the API recorded one, and never past the timeout.
      const added = new Date(T0 + MINUTE).toISOString();
      const retainted = node({ taints: [{ key: KEY, effect: 'NoSchedule', timeAdded: added }] });
      expect(decideBarrier(retainted, empty, T0 + MINUTE + 1000, OPTS).removeTaint).to.equal(false);
      expect(decideBarrier(node(), empty, T0 + 1000, { ...OPTS, timeoutMs: 1000 }).condition).to.include({ status: 'True', reason: 'NoGatingImages' });
    });

    it('when a gating image Failed and nothing else can still arrive, with a Warning Event', () => {
      const d = decideBarrier(node(), set({}, { [A]: 'Completed', [B]: 'Failed' }), T0 + MINUTE, OPTS);
      expect(d.removeTaint).to.equal(true);
      expect(d.condition?.reason).to.equal('PullFailed');
      expect(d.event).to.include({ type: 'Warning', reason: 'WarmupPullFailed' });
      expect(d.event?.message).to.include(B);
      // Another image still pulling: wait for it.
      const waiting = decideBarrier(node(), set({}, { [A]: 'Pulling', [B]: 'Failed' }), T0 + MINUTE, OPTS);
      expect(waiting.removeTaint).to.equal(false);
    });

    for (const [title, n, s] of [
      ['the agent never reported', node(), set({ heartbeatTime: undefined })],
      ['there is no NodeImageSet', node(), undefined],
      ['the node never became Ready', node({ ready: false }), undefined],
    ] as const) {
      it(`at the timeout when ${title}, with a Warning Event saying why`, () => {
        const before = decideBarrier(n, s, T0 + 10 * MINUTE - 1, OPTS);
        expect(before.removeTaint).to.equal(false);
        const d = decideBarrier(n, s, T0 + 10 * MINUTE, OPTS);
        expect(d.removeTaint).to.equal(true);
        expect(d.condition).to.include({ status: 'True', reason: 'TimedOut' });
        expect(d.event).to.include({ type: 'Warning', reason: 'WarmupTimedOut' });
        expect(d.event?.message).to.match(/^warm-up timeout of 10m passed before the images were warm \((AgentNotReporting|NotPlanned|NodeNotReady): /u);
      });
    }

    it('counts the timeout from the taint\'s timeAdded when the API recorded one', () => {
      const added = '2026-01-01T12:00:00Z';
      const n = node({ taints: [{ key: KEY, effect: 'NoExecute', timeAdded: added }] });
      expect(decideBarrier(n, undefined, Date.parse(added) + 9 * MINUTE, OPTS).removeTaint).to.equal(false);
      expect(decideBarrier(n, undefined, Date.parse(added) + 10 * MINUTE, OPTS).removeTaint).to.equal(true);
    });

    it('again without a second Event when the condition is already True but the taint is back or its removal failed', () => {
      const n = node({ imagesWarm: cond('True', 'ImagesPresent', 'all 2 gating images are present on the node') });
      const d = decideBarrier(n, set({}, { [A]: 'Completed', [B]: 'Completed' }), T0 + MINUTE, OPTS);
      expect(d).to.deep.equal({ removeTaint: true, condition: undefined, event: undefined, recheckAtMs: undefined });
      // Even when a gating image was added since: a lifted gate does not close again.
      const more = decideBarrier(n, set({ gatingImages: 3 }, { [A]: 'Completed', [B]: 'Completed' }), T0 + MINUTE, OPTS);
      expect(more).to.deep.equal({ removeTaint: true, condition: undefined, event: undefined, recheckAtMs: undefined });
    });
  });

  describe('nodes without kwarm\'s taint (a readiness gate on the condition instead)', () => {
    const GATE = warmupOptions(KEY, '10m', true);

    it('are left alone unless conditionOnNewNodes is set: no writes in clusters that do not use the barrier', () => {
      const young = node({ taints: [] });
      expect(barrierApplies(young, T0 + MINUTE, OPTS)).to.equal(false);
      expect(decideBarrier(young, set(), T0 + MINUTE, OPTS)).to.deep.equal({ removeTaint: false, condition: undefined, event: undefined, recheckAtMs: undefined });
      expect(barrierApplies(young, T0 + MINUTE, GATE)).to.equal(true);
    });

    it('gets ImagesWarm False then True on a young node, without any taint removal', () => {
      const young = node({ taints: [{ key: 'other.io/x', effect: 'NoSchedule' }] });
      const pulling = decideBarrier(young, set({}, { [A]: 'Completed' }), T0 + MINUTE, GATE);
      expect(pulling).to.include({ removeTaint: false });
      expect(pulling.condition?.status).to.equal('False');
      const warm = decideBarrier(young, set({}, { [A]: 'Completed', [B]: 'Completed' }), T0 + MINUTE, GATE);
      expect(warm.removeTaint).to.equal(false);
      expect(warm.condition?.status).to.equal('True');
    });

    it('leaves alone an old node that never had the condition, and any node whose condition is True', () => {
      const old = node({ taints: [] });
      expect(barrierApplies(old, T0 + 11 * MINUTE, GATE)).to.equal(false);
      expect(decideBarrier(old, undefined, T0 + 11 * MINUTE, GATE)).to.deep.equal({ removeTaint: false, condition: undefined, event: undefined, recheckAtMs: undefined });
      const done = node({ taints: [], imagesWarm: cond('True', 'ImagesPresent', 'x') });
      expect(barrierApplies(done, T0 + MINUTE, GATE)).to.equal(false);
    });

    it('turns a False condition True at the timeout even on an old node', () => {
      const stuck = node({ taints: [], imagesWarm: cond('False', 'Pulling', '0 of 2 gating images present') });
      const d = decideBarrier(stuck, set(), T0 + 30 * MINUTE, OPTS);
      expect(d.removeTaint).to.equal(false);
      expect(d.condition).to.include({ status: 'True', reason: 'TimedOut' });
      expect(d.event?.reason).to.equal('WarmupTimedOut');
    });
  });

  describe('warmupOptions', () => {
    it('accepts qualified taint keys and positive durations', () => {
      expect(warmupOptions('example.com/warm-up', '90s')).to.deep.equal({ taintKey: 'example.com/warm-up', timeoutMs: 90_000, agentStaleMs: AGENT_STALE_MS, conditionOnNewNodes: false, settleMs: WARMUP_SETTLE_MS });
      expect(warmupOptions('warming', '1h').timeoutMs).to.equal(3_600_000);
    });

    it('rejects bad keys and durations, naming the flag', () => {
      expect(() => warmupOptions('Kwarm.io/warming', '10m')).to.throw('--warmup-taint');
      expect(() => warmupOptions('kwarm.io/', '10m')).to.throw('--warmup-taint');
      expect(() => warmupOptions('kwarm.io/warming', 'ten')).to.throw('--warmup-timeout');
      expect(() => warmupOptions('kwarm.io/warming', '0s')).to.throw('--warmup-timeout');
    });
  });
});
