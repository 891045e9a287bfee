import { expect } from 'chai';
import { MAX_NODE_IMAGES } from '../../../../api/v1alpha1/index.ts';
import { compileNodeTargeting, compilePodPlacement } from '../../../../controller/plan/node-eligibility.ts';
import { planNodeImageSets, PlanMemo, type ImageTarget, type PlanInput } from '../../../../controller/plan/node-plan.ts';
import { agentState, awaitsRepull, holdsBudget, inBackoff, isFinished, type NodeImageSetView } from '../../../../controller/plan/node-image-set-view.ts';
import { node, nodeImageSetView } from '../planning-fixtures.ts';
import { nodeImageSetDigest } from '../../../../controller/plan/node-image-set-digest.ts';

function target(name: string, image: string, extra: Partial<ImageTarget> = {}): ImageTarget {
  return {
    key: `shop/${name}`,
    namespace: 'shop',
    name,
    image,
    imageDigest: undefined,
    nodeNames: undefined,
    nodeSelector: undefined,
    placement: undefined,
    targeting: undefined,
    pullSecrets: [],
    retry: { maxAttempts: 3, backoffSeconds: 30 },
    timeout: '10m',
    round: 0,
    ...extra,
  };
}

const three = [node({ name: 'n1' }), node({ name: 'n2' }), node({ name: 'n3' })];

function plan(input: Partial<PlanInput> & Pick<PlanInput, 'targets'>) {
  return planNodeImageSets({ nodes: three, current: new Map(), clusterPullBudget: 0, maxPullsPerNode: 2, ...input });
}

function imagesOn(p: ReturnType<typeof plan>, n: string): string[] {
  return p.nodeImageSets.get(n)?.spec.images.map((e) => e.image) ?? [];
}

/** The cache's view of what a plan wrote, with the given status per node/image. */
function asCurrent(p: ReturnType<typeof plan>, status: (n: string, image: string) => 'Completed' | 'Failed' | 'Pulling' | undefined): Map<string, NodeImageSetView> {
  return new Map([...p.nodeImageSets].map(([n, s]) => {
    const st: Record<string, { phase: 'Completed' | 'Failed' | 'Pulling' }> = {};
    for (const e of s.spec.images) {
      const phase = status(n, e.image);
      if (phase !== undefined) st[e.image] = { phase };
    }
    return [n, { ...nodeImageSetView(n, Object.fromEntries(s.released), st), ownerUid: s.nodeUid, specDigest: s.digest }];
  }));
}

describe('controller/node-plan', () => {
  it('puts an image on every Ready, schedulable node and writes the per-node limit', () => {
    const nodes = [...three, node({ name: 'down', ready: false }), node({ name: 'cordoned', unschedulable: true })];
    const p = plan({ targets: [target('a', 'r.example/a:1')], nodes, maxPullsPerNode: 3 });
    expect([...p.nodeImageSets.keys()]).to.deep.equal(['n1', 'n2', 'n3']);
    expect(p.targetNodes.get('shop/a')).to.deep.equal(['n1', 'n2', 'n3']);
    const spec = p.nodeImageSets.get('n1')!.spec;
    expect(spec).to.deep.equal({
      maxConcurrentPulls: 3,
      images: [{ image: 'r.example/a:1', pullSecrets: [], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: 0, sources: [{ namespace: 'shop', name: 'a' }] }],
      removals: [],
    });
    expect(p.unfinished).to.equal(3);
    expect(p.held).to.equal(0);
  });

  it('honours spec.nodes: names plus selector, and an invalid selector selects nothing', () => {
    const nodes = [node({ name: 'n1', labels: { pool: 'a' } }), node({ name: 'n2' }), node({ name: 'n3', labels: { pool: 'a' } })];
    const p = plan({
      nodes,
      targets: [
        target('named', 'r.example/a:1', { nodeNames: ['n2'] }),
        target('both', 'r.example/b:1', { nodeNames: ['n2'], nodeSelector: { matchLabels: { pool: 'a' } } }),
        target('selector', 'r.example/c:1', { nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'DoesNotExist' }] } }),
        target('invalid', 'r.example/d:1', { nodeSelector: { matchExpressions: [{ key: 'pool', operator: 'In' }] } }),
      ],
    });
    expect(p.targetNodes.get('shop/named')).to.deep.equal(['n2']);
    expect(p.targetNodes.get('shop/both')).to.deep.equal(['n1', 'n2', 'n3']);
    expect(p.targetNodes.get('shop/selector')).to.deep.equal(['n2']);
    expect(p.targetNodes.get('shop/invalid')).to.deep.equal([]);
  });

  it('limits workload-derived images to nodes the pods can run on (taints, nodeSelector)', () => {
    const nodes = [
      node({ name: 'n1', labels: { disk: 'ssd' } }),
      node({ name: 'n2', labels: { disk: 'ssd' }, taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }),
      node({ name: 'n3' }),
    ];
    const placement = compilePodPlacement({ nodeSelector: { disk: 'ssd' } });
    const p = plan({ nodes, targets: [target('a', 'r.example/a:1', { placement })] });
    expect(p.targetNodes.get('shop/a')).to.deep.equal(['n1']);
    expect([...p.nodeImageSets.keys()]).to.deep.equal(['n1']);
  });

  it('merges targets wanting the same image on a node: one entry, settings towards the defaults, all sources', () => {
    const p = plan({
      targets: [
        target('b', 'r.example/x:1', { pullSecrets: ['s2', 's1'], retry: { maxAttempts: 5, backoffSeconds: 60 }, timeout: '1h' }),
        target('a', 'r.example/x:1', { pullSecrets: ['s1'], retry: { maxAttempts: 2, backoffSeconds: 10 }, timeout: '10m' }),
      ],
    });
    const images = p.nodeImageSets.get('n1')!.spec.images;
    expect(images).to.have.length(1);
    expect(images[0]).to.deep.include({ pullSecrets: ['s1', 's2'], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 } });
    expect(images[0]!.sources).to.deep.equal([{ namespace: 'shop', name: 'a' }, { namespace: 'shop', name: 'b' }]);
  });

  it('keeps NodeImageSets of nodes that no longer want anything (emptied), and leaves those of deleted nodes alone', () => {
    const current = new Map([
      ['n1', nodeImageSetView('n1', { 'r.example/old:1': 0 })],
      ['gone', nodeImageSetView('gone', { 'r.example/old:1': 0 })],
    ]);
    const p = plan({ targets: [], current });
    expect([...p.nodeImageSets.keys()]).to.deep.equal(['n1']);
    expect(p.nodeImageSets.get('n1')!.spec.images).to.deep.equal([]);
  });

  it('produces the same digest for a plan and for the cached copy of what it wrote, so nothing is rewritten', () => {
    const p1 = plan({ targets: [target('a', 'r.example/a:1'), target('b', 'r.example/b:1', { pullSecrets: ['z', 'y'] })] });
    const current = asCurrent(p1, () => 'Completed');
    const p2 = plan({ targets: [target('b', 'r.example/b:1', { pullSecrets: ['y', 'z'] }), target('a', 'r.example/a:1')], current });
    for (const [n, s] of p2.nodeImageSets) expect(s.digest).to.equal(current.get(n)!.specDigest);
    // The digest covers the spec in any order.
    const spec = p2.nodeImageSets.get('n1')!.spec;
    expect(nodeImageSetDigest('uid-n1', { ...spec, images: [...spec.images].reverse() })).to.equal(p2.nodeImageSets.get('n1')!.digest);
  });

  it('keeps the round of entries already released', () => {
    const current = new Map([['n1', nodeImageSetView('n1', { 'r.example/a:1': 4 }, { 'r.example/a:1': { phase: 'Pulling', round: 4 } })]]);
    const p = plan({ targets: [target('a', 'r.example/a:1')], current });
    expect(p.nodeImageSets.get('n1')!.spec.images[0]!.round).to.equal(4);
    expect(p.nodeImageSets.get('n2')!.spec.images[0]!.round).to.equal(0);
  });

  describe('warm-up gating (gateNewNodes)', () => {
    it('flags entries with a gating target and counts them in spec.gatingImages; others are unchanged', () => {
      const p = plan({ targets: [target('a', 'r.example/a:1', { gatesNodes: true }), target('b', 'r.example/b:1'), target('c', 'r.example/b:1', { gatesNodes: true, nodeNames: ['n1'] })] });
      const n1 = p.nodeImageSets.get('n1')!.spec;
      expect(n1.images.map((e) => [e.image, e.gatesNode])).to.deep.equal([['r.example/a:1', true], ['r.example/b:1', true]]);
      expect(n1.gatingImages).to.equal(2);
      const n2 = p.nodeImageSets.get('n2')!.spec;
      expect(n2.images.map((e) => [e.image, e.gatesNode])).to.deep.equal([['r.example/a:1', true], ['r.example/b:1', undefined]]);
      expect(n2.gatingImages).to.equal(1);
      // Without gating, no field and the digest of before.
      const plain = plan({ targets: [target('b', 'r.example/b:1')] }).nodeImageSets.get('n2')!;
      expect(plain.spec).to.not.have.property('gatingImages');
      expect(plain.digest).to.equal(nodeImageSetDigest('uid-n2', plain.spec));
    });

    it('counts gating images the budget holds back, and writes a node whose gating pulls are all held', () => {
      const p = plan({ targets: [target('a', 'r.example/a:1', { gatesNodes: true }), target('b', 'r.example/b:1', { gatesNodes: true })], clusterPullBudget: 2 });
      expect(p.held).to.equal(4);
      expect(imagesOn(p, 'n1')).to.deep.equal(['r.example/a:1']);
      expect(p.nodeImageSets.get('n1')!.spec.gatingImages).to.equal(2);
      expect(imagesOn(p, 'n3')).to.deep.equal([]);
      expect(p.nodeImageSets.get('n3')!.spec.gatingImages).to.equal(2);
    });

    it('rewrites a NodeImageSet when only gatingImages changes, and not when nothing does', () => {
      const targets = [target('a', 'r.example/a:1', { gatesNodes: true }), target('b', 'r.example/b:1', { gatesNodes: true, nodeNames: ['n1'] })];
      const first = plan({ targets, clusterPullBudget: 3 });
      expect(imagesOn(first, 'n1')).to.deep.equal(['r.example/a:1']);
      const current = asCurrent(first, () => 'Pulling');
      for (const [n, s] of plan({ targets, clusterPullBudget: 3, current }).nodeImageSets) expect(s.digest).to.equal(current.get(n)!.specDigest);
      // b is no longer wanted: n1's entries stay the same, its gatingImages drops from 2 to 1.
      const after = plan({ targets: [targets[0]!], clusterPullBudget: 3, current }).nodeImageSets.get('n1')!;
      expect(after.spec.gatingImages).to.equal(1);
      expect(after.digest).to.not.equal(current.get('n1')!.specDigest);
      expect(after.digest).to.equal(nodeImageSetDigest('uid-n1', after.spec));
    });

    it('writes an empty NodeImageSet for a Ready warming node with nothing to pull, and none for one not Ready', () => {
      const nodes = [...three, node({ name: 'down', ready: false })];
      const p = plan({ targets: [target('a', 'r.example/a:1', { nodeNames: ['n1'] })], nodes, warming: new Set(['n2', 'down']) });
      expect([...p.nodeImageSets.keys()]).to.deep.equal(['n1', 'n2']);
      expect(p.nodeImageSets.get('n2')!.spec).to.deep.equal({ maxConcurrentPulls: 2, images: [], removals: [] });
    });
  });

  describe('the cluster-wide budget', () => {
    const targets = [target('a', 'r.example/a:1'), target('b', 'r.example/b:1')];

    it('releases at most max-concurrent-pulls pairs, image by image', () => {
      const p = plan({ targets, clusterPullBudget: 2 });
      expect(imagesOn(p, 'n1')).to.deep.equal(['r.example/a:1']);
      expect(imagesOn(p, 'n2')).to.deep.equal(['r.example/a:1']);
      expect(p.nodeImageSets.has('n3')).to.equal(false);
      expect(p.unfinished).to.equal(2);
      expect(p.held).to.equal(4);
    });

    it('counts unfinished pairs from the NodeImageSets, so a new controller neither forgets nor exceeds it', () => {
      const first = plan({ targets, clusterPullBudget: 2 });
      // A restarted controller sees the two released pairs still pulling: nothing more is released.
      const again = plan({ targets, clusterPullBudget: 2, current: asCurrent(first, () => 'Pulling') });
      expect(again.unfinished).to.equal(2);
      expect(again.held).to.equal(4);
      expect(imagesOn(again, 'n3')).to.deep.equal([]);
      // One finishes (even a failure or a stale earlier round counts only for its own round): one more is released.
      const current = asCurrent(first, (n) => (n === 'n1' ? 'Failed' : 'Pulling'));
      const next = plan({ targets, clusterPullBudget: 2, current });
      expect(next.unfinished).to.equal(2);
      expect(imagesOn(next, 'n3')).to.deep.equal(['r.example/a:1']);
    });

    it('never exceeds the budget over a whole rollout driven step by step', () => {
      let current = new Map<string, NodeImageSetView>();
      const done = new Set<string>();
      for (let step = 0; step < 20; step++) {
        const p = plan({ targets, clusterPullBudget: 1, current });
        expect(p.unfinished).to.be.at.most(1);
        current = asCurrent(p, (n, image) => (done.has(`${n} ${image}`) ? 'Completed' : 'Pulling'));
        // The agent finishes whatever is released.
        for (const [n, s] of p.nodeImageSets) for (const e of s.spec.images) done.add(`${n} ${e.image}`);
        if (p.held === 0 && p.unfinished === 0) break;
      }
      expect(done.size).to.equal(6);
    });

    it('treats 0 as unlimited', () => {
      const p = plan({ targets, clusterPullBudget: 0 });
      expect(p.unfinished).to.equal(6);
      expect(p.held).to.equal(0);
    });

    it('holds images beyond what a NodeImageSet may list', () => {
      const many = Array.from({ length: MAX_NODE_IMAGES + 3 }, (_, i) => target(`t${i}`, `r.example/img${String(i).padStart(4, '0')}:1`, { nodeNames: ['n1'] }));
      const p = plan({ targets: many });
      expect(p.nodeImageSets.get('n1')!.spec.images).to.have.length(MAX_NODE_IMAGES);
      expect(p.held).to.equal(3);
    });
  });

  describe('with a PlanMemo kept between passes', () => {
    type Plan = ReturnType<typeof plan>;
    const summary = (p: Plan): unknown => ({
      sets: [...p.nodeImageSets].map(([n, s]) => [n, s.digest, s.spec, [...s.released]]),
      targets: [...p.targetNodes],
      unfinished: p.unfinished,
      held: p.held,
    });

    it('plans exactly as without it, pass after pass, while nodes, targets and statuses change', () => {
      const memo = new PlanMemo();
      const pools = (n: number, extra: Partial<Parameters<typeof node>[0]> = {}) => node({ name: `n${n}`, labels: { pool: n % 2 === 0 ? 'even' : 'odd' }, ...extra });
      let nodes = [1, 2, 3, 4, 5, 6].map((n) => pools(n));
      const even = compilePodPlacement({ nodeSelector: { pool: 'even' } });
      let targets = [
        target('a', 'r.example/a:1', { placement: even }),
        target('b', 'r.example/b:1'),
        target('c', 'r.example/c:1', { nodeNames: ['n1'] }),
      ];
      let current = new Map<string, NodeImageSetView>();
      const steps: (() => void)[] = [
        () => undefined,
        () => { current = asCurrent(plan({ targets, nodes, current, clusterPullBudget: 5 }), (n) => (n === 'n2' ? 'Pulling' : 'Completed')); },
        () => { current = asCurrent(plan({ targets, nodes, current, clusterPullBudget: 5 }), () => 'Completed'); },
        () => { nodes = nodes.map((n) => (n.metadata?.name === 'n4' ? pools(4, { ready: false }) : n)); },
        () => { targets = targets.map((t) => (t.name === 'a' ? { ...t, image: 'r.example/a:2' } : t)); },
        () => { nodes = [...nodes, pools(8)]; },
        () => { current = new Map([...current].map(([n, v]) => [n, n === 'n6' ? { ...v, released: new Map([...v.released].map(([i]) => [i, 3])) } : v])); },
        () => { targets = targets.filter((t) => t.name !== 'b'); },
      ];
      for (const [i, step] of steps.entries()) {
        step();
        for (const clusterPullBudget of [0, 5]) {
          const input = { targets, nodes, current, clusterPullBudget };
          expect(summary(plan({ ...input, memo })), `step ${i}, budget ${clusterPullBudget}`).to.deep.equal(summary(plan(input)));
        }
      }
    });

    it('plans exactly as without it over 200 random changes of nodes, targets and statuses', () => {
      let seed = 12345;
      const pick = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return Math.floor((seed / 2 ** 31) * n);
      };
      const pools = ['a', 'b', 'c'];
      const placements = pools.map((p) => compilePodPlacement({ nodeSelector: { pool: p } }));
      const someNode = (i: number) => node({ name: `n${String(i).padStart(2, '0')}`, labels: { pool: pools[pick(3)]! }, ready: pick(5) !== 0, unschedulable: pick(8) === 0 });
      let nodes = Array.from({ length: 12 }, (_, i) => someNode(i));
      let targets = Array.from({ length: 6 }, (_, i) => target(`t${i}`, `r.example/t${i}:1`, i === 5 ? {} : { placement: placements[i % 3] }));
      let current = new Map<string, NodeImageSetView>();
      const memo = new PlanMemo();
      const phases = ['Completed', 'Failed', 'Pulling', undefined] as const;
      for (let step = 0; step < 200; step++) {
        const i = pick(targets.length);
        switch (pick(6)) {
          case 0: nodes = nodes.map((n, j) => (j === pick(nodes.length) ? someNode(j) : n)); break;
          case 1: nodes = pick(2) === 0 && nodes.length > 4 ? nodes.slice(0, -1) : [...nodes, someNode(nodes.length)]; break;
          case 2: targets = targets.map((t, j) => (j === i ? { ...t, image: `r.example/t${j}:${step}` } : t)); break;
          case 3: targets = targets.map((t, j) => (j === i ? { ...t, placement: placements[pick(3)] } : t)); break;
          case 4: targets = targets.map((t, j) => (j === i ? { ...t, round: t.round + 1 } : t)); break;
          default: current = asCurrent(plan({ targets, nodes, current, clusterPullBudget: 4 }), () => phases[pick(4)]);
        }
        for (const clusterPullBudget of [0, 4]) {
          const input = { targets, nodes, current, clusterPullBudget };
          expect(summary(plan({ ...input, memo })), `step ${step}, budget ${clusterPullBudget}`).to.deep.equal(summary(plan(input)));
        }
      }
    });

    it('keeps the node lists of targets (the same arrays) while the nodes are the same objects', () => {
      const memo = new PlanMemo();
      const targets = [target('a', 'r.example/a:1'), target('b', 'r.example/b:1', { nodeNames: ['n2'] })];
      const p1 = plan({ targets, memo });
      const p2 = plan({ targets, memo, current: asCurrent(p1, () => 'Completed') });
      expect(p2.targetNodes.get('shop/a')).to.equal(p1.targetNodes.get('shop/a'));
      expect(p2.targetNodes.get('shop/b')).to.equal(p1.targetNodes.get('shop/b'));
      // n3 changes (another object) and is still selected: only n3 is evaluated again, and the lists stay.
      const p3 = plan({ targets, memo, nodes: [...three.slice(0, 2), node({ name: 'n3' })] });
      expect(p3.targetNodes.get('shop/a')).to.equal(p1.targetNodes.get('shop/a'));
      // n3 turns NotReady, then n4 joins: new lists, as evaluated afresh.
      const p4 = plan({ targets, memo, nodes: [...three.slice(0, 2), node({ name: 'n3', ready: false })] });
      expect(p4.targetNodes.get('shop/a')).to.deep.equal(['n1', 'n2']);
      expect(p4.targetNodes.get('shop/b')).to.equal(p1.targetNodes.get('shop/b'));
      const p5 = plan({ targets, memo, nodes: [...three, node({ name: 'n4' })] });
      expect(p5.targetNodes.get('shop/a')).to.deep.equal(['n1', 'n2', 'n3', 'n4']);
      expect(p5.targetNodes.get('shop/b')).to.deep.equal(['n2']);
    });

    it('plans again only the nodes a changed target selects: the others keep last pass\'s NodeImageSet objects', () => {
      const memo = new PlanMemo();
      const pools = (n: number) => node({ name: `n${n}`, labels: { pool: n % 2 === 0 ? 'even' : 'odd' } });
      const nodes = [1, 2, 3, 4].map(pools);
      const even = compilePodPlacement({ nodeSelector: { pool: 'even' } });
      const odd = compilePodPlacement({ nodeSelector: { pool: 'odd' } });
      const a = target('a', 'r.example/a:1', { placement: even });
      const b = target('b', 'r.example/b:1', { placement: odd });
      const first = plan({ targets: [a, b], nodes, memo });
      const current = asCurrent(first, () => 'Completed');
      const settled = plan({ targets: [a, b], nodes, current, memo });
      const again = plan({ targets: [a, b], nodes, current, memo });
      for (const n of ['n1', 'n2', 'n3', 'n4']) expect(again.nodeImageSets.get(n), n).to.equal(settled.nodeImageSets.get(n));
      // `a` changes: the even nodes are planned again, the odd ones are what they were.
      const changed = plan({ targets: [{ ...a, image: 'r.example/a:2' }, b], nodes, current, memo });
      for (const n of ['n1', 'n3']) expect(changed.nodeImageSets.get(n), n).to.equal(settled.nodeImageSets.get(n));
      for (const n of ['n2', 'n4']) expect(changed.nodeImageSets.get(n)!.spec.images.map((e) => e.image), n).to.deep.equal(['r.example/a:2']);
      // Without the memo the same plan, built afresh.
      const fresh = plan({ targets: [{ ...a, image: 'r.example/a:2' }, b], nodes, current });
      expect([...fresh.nodeImageSets].map(([n, s]) => [n, s.digest])).to.deep.equal([...changed.nodeImageSets].map(([n, s]) => [n, s.digest]));
      expect(fresh.nodeImageSets.get('n1')).to.not.equal(settled.nodeImageSets.get('n1'));
    });

    it('shares one spec among the nodes whose NodeImageSets hold exactly their images, each with its own digest', () => {
      const targets = [target('a', 'r.example/a:1'), target('b', 'r.example/b:1')];
      const p1 = plan({ targets });
      const p2 = plan({ targets, current: asCurrent(p1, () => 'Completed') });
      const [s1, s2] = [p2.nodeImageSets.get('n1')!, p2.nodeImageSets.get('n2')!];
      expect(s1.spec.images).to.equal(s2.spec.images);
      expect(s1.released).to.equal(s2.released);
      expect(s1.digest).to.not.equal(s2.digest);
      expect(p2.unfinished).to.equal(0);
    });
  });

  describe('refresh rounds', () => {
    const A = 'r.example/a:1';
    /** The cache's view of a plan with every entry in `phase` for its released round. */
    type Phase = 'Completed' | 'Failed' | 'Pulling';
    const settledAs = (p: ReturnType<typeof plan>, phase: Phase | ((node: string) => Phase)) =>
      new Map([...p.nodeImageSets].map(([n, s]) => {
        const st = Object.fromEntries(s.spec.images.map((e) => [e.image, { phase: typeof phase === 'string' ? phase : phase(n), round: e.round }]));
        return [n, { ...nodeImageSetView(n, Object.fromEntries(s.released), st), ownerUid: s.nodeUid, specDigest: s.digest }];
      }));
    const roundsOf = (p: ReturnType<typeof plan>, image = A) => Object.fromEntries([...p.nodeImageSets].map(([n, s]) => [n, s.released.get(image)]));

    it('gives a new entry the highest round its sources want', () => {
      const p = plan({ targets: [target('a', A, { round: 100 }), target('b', A, { round: 250 }), target('c', A)] });
      expect(roundsOf(p)).to.deep.equal({ n1: 250, n2: 250, n3: 250 });
    });

    it('raises the round of finished pairs when a source wants a higher one, and never lowers a round', () => {
      const first = plan({ targets: [target('a', A)] });
      const raised = plan({ targets: [target('a', A, { round: 100 })], current: settledAs(first, 'Completed') });
      expect(roundsOf(raised)).to.deep.equal({ n1: 100, n2: 100, n3: 100 });
      expect(raised.unfinished).to.equal(3);
      // The refreshed PrePullImage is gone; the one left never was refreshed: the entries keep round 100.
      const after = plan({ targets: [target('b', A)], current: settledAs(raised, 'Completed') });
      expect(roundsOf(after)).to.deep.equal({ n1: 100, n2: 100, n3: 100 });
      expect(after.unfinished).to.equal(0);
    });

    it('counts a raise of a finished pair against the budget like a new pull, holding the rest in their old round', () => {
      const targets = [target('a', A)];
      const first = plan({ targets });
      const refreshed = [target('a', A, { round: 100 })];
      const p1 = plan({ targets: refreshed, current: settledAs(first, 'Completed'), clusterPullBudget: 2 });
      expect(roundsOf(p1)).to.deep.equal({ n1: 100, n2: 100, n3: 0 });
      expect(p1.unfinished).to.equal(2);
      expect(p1.held).to.equal(1);
      // Still pulling: nothing more.
      const p2 = plan({ targets: refreshed, current: settledAs(p1, (n) => (n === 'n3' ? 'Completed' : 'Pulling')), clusterPullBudget: 2 });
      expect(roundsOf(p2)).to.deep.equal({ n1: 100, n2: 100, n3: 0 });
      expect(p2.unfinished).to.equal(2);
      // Done (a failure is done too): the last node is raised.
      const p3 = plan({ targets: refreshed, current: settledAs(p2, 'Failed'), clusterPullBudget: 2 });
      expect(roundsOf(p3)).to.deep.equal({ n1: 100, n2: 100, n3: 100 });
      expect(p3.unfinished).to.equal(1);
      expect(p3.held).to.equal(0);
    });

    it('raises a pair still pulling its old round at once: it already counts against the budget', () => {
      const first = plan({ targets: [target('a', A)] });
      const p = plan({ targets: [target('a', A, { round: 100 })], current: settledAs(first, 'Pulling'), clusterPullBudget: 3 });
      expect(roundsOf(p)).to.deep.equal({ n1: 100, n2: 100, n3: 100 });
      expect(p.unfinished).to.equal(3);
      expect(p.held).to.equal(0);
    });

    it('never exceeds the budget over a refresh of many images driven step by step', () => {
      const images = ['r.example/a:1', 'r.example/b:1', 'r.example/c:1'];
      let targets = images.map((image, i) => target(`t${i}`, image));
      let current = settledAs(plan({ targets }), 'Completed');
      targets = images.map((image, i) => target(`t${i}`, image, { round: 7 }));
      const pulled = new Set<string>();
      for (let step = 0; step < 20; step++) {
        const p = plan({ targets, current, clusterPullBudget: 2 });
        expect(p.unfinished, `step ${step}`).to.be.at.most(2);
        for (const [n, s] of p.nodeImageSets) for (const e of s.spec.images) if (e.round === 7) pulled.add(`${n} ${e.image}`);
        // The agents finish whatever was released in this step.
        current = settledAs(p, 'Completed');
        if (p.held === 0 && p.unfinished === 0) break;
      }
      expect(pulled.size).to.equal(9);
    });

    it('goes back to the shared class spec once the refresh has finished everywhere, with or without a PlanMemo', () => {
      const memo = new PlanMemo();
      const targets = [target('a', A), target('b', 'r.example/b:1')];
      const p1 = plan({ targets, memo });
      const refreshed = [target('a', A, { round: 100 }), target('b', 'r.example/b:1')];
      const steps: Map<string, NodeImageSetView>[] = [settledAs(p1, 'Completed')];
      for (let i = 0; i < 3; i++) {
        const current = steps.at(-1)!;
        const withMemo = plan({ targets: refreshed, current, memo, clusterPullBudget: 1 });
        const without = plan({ targets: refreshed, current, clusterPullBudget: 1 });
        expect([...withMemo.nodeImageSets].map(([n, s]) => [n, s.digest, s.spec])).to.deep.equal([...without.nodeImageSets].map(([n, s]) => [n, s.digest, s.spec]));
        steps.push(settledAs(withMemo, 'Completed'));
      }
      const done = plan({ targets: refreshed, current: steps.at(-1)!, memo });
      expect(roundsOf(done)).to.deep.equal({ n1: 100, n2: 100, n3: 100 });
      expect(done.unfinished).to.equal(0);
      expect(done.nodeImageSets.get('n1')!.spec.images).to.equal(done.nodeImageSets.get('n3')!.spec.images);
      for (const [n, s] of done.nodeImageSets) expect(s.digest, n).to.equal(steps.at(-1)!.get(n)!.specDigest);
    });
  });

  describe('finding 13: re-pulls after kubelet GC go through the budget', () => {
    const A = 'r.example/a:1';
    const B = 'r.example/b:1';
    const lost = { phase: 'Pending', reason: 'RemovedFromRuntime' } as const;
    /** The cache's view of a plan whose entries are all Completed, except the `gone` node/image pairs. */
    const after = (p: ReturnType<typeof plan>, gone: readonly string[]) =>
      new Map([...p.nodeImageSets].map(([n, s]) => {
        const st = Object.fromEntries(s.spec.images.map((e) => [e.image, gone.includes(`${n} ${e.image}`) ? { ...lost, round: e.round } : { phase: 'Completed' as const, round: e.round }]));
        return [n, { ...nodeImageSetView(n, Object.fromEntries(s.released), st), ownerUid: s.nodeUid, specDigest: s.digest }];
      }));
    const roundsOf = (p: ReturnType<typeof plan>, image = A) => Object.fromEntries([...p.nodeImageSets].map(([n, s]) => [n, s.released.get(image)]));

    it('does not count a lost pair against the budget and releases its re-pull as round+1', () => {
      const targets = [target('a', A)];
      const first = plan({ targets });
      const p = plan({ targets, current: after(first, ['n1 ' + A, 'n2 ' + A]), clusterPullBudget: 5 });
      expect(roundsOf(p)).to.deep.equal({ n1: 1, n2: 1, n3: 0 });
      expect(p.unfinished).to.equal(2);
      expect(p.held).to.equal(0);
    });

    it('holds re-pulls beyond the budget in their old round, where they do not count, and releases them as others finish', () => {
      const targets = [target('a', A)];
      const all = ['n1 ' + A, 'n2 ' + A, 'n3 ' + A];
      const p1 = plan({ targets, current: after(plan({ targets }), all), clusterPullBudget: 1 });
      expect(roundsOf(p1)).to.deep.equal({ n1: 1, n2: 0, n3: 0 });
      expect(p1.unfinished).to.equal(1);
      expect(p1.held).to.equal(2);
      // n1's re-pull still runs (no status for round 1 yet): nothing more is released.
      const stillPulling = new Map([...after(p1, ['n2 ' + A, 'n3 ' + A])].map(([n, v]) => [n, n === 'n1' ? { ...v, status: new Map() } : v]));
      const p2 = plan({ targets, current: stillPulling, clusterPullBudget: 1 });
      expect(roundsOf(p2)).to.deep.equal({ n1: 1, n2: 0, n3: 0 });
      expect(p2.held).to.equal(2);
      const p3 = plan({ targets, current: after(p2, ['n2 ' + A, 'n3 ' + A]), clusterPullBudget: 1 });
      expect(roundsOf(p3)).to.deep.equal({ n1: 1, n2: 1, n3: 0 });
      expect(p3.unfinished).to.equal(1);
    });

    it('raises past a refresh round the sources want, and lost again in the new round means round+1 again', () => {
      const targets = [target('a', A, { round: 7 }), target('b', B)];
      const p1 = plan({ targets, current: after(plan({ targets }), ['n1 ' + A]) });
      expect(roundsOf(p1)).to.deep.equal({ n1: 8, n2: 7, n3: 7 });
      expect(roundsOf(p1, B)).to.deep.equal({ n1: 0, n2: 0, n3: 0 });
      const p2 = plan({ targets, current: after(p1, ['n1 ' + A]) });
      expect(roundsOf(p2)).to.deep.equal({ n1: 9, n2: 7, n3: 7 });
      // Once pulled, the node keeps its own round and nothing is rewritten.
      const p3 = plan({ targets, current: after(p2, []) });
      expect(roundsOf(p3)).to.deep.equal({ n1: 9, n2: 7, n3: 7 });
      expect(p3.unfinished).to.equal(0);
      expect(p3.nodeImageSets.get('n1')!.digest).to.equal(after(p2, []).get('n1')!.specDigest);
    });

    it('plans the same with a PlanMemo', () => {
      const memo = new PlanMemo();
      const targets = [target('a', A), target('b', B)];
      const first = plan({ targets, memo });
      const current = after(first, ['n2 ' + B]);
      const withMemo = plan({ targets, current, memo, clusterPullBudget: 3 });
      const without = plan({ targets, current, clusterPullBudget: 3 });
      expect([...withMemo.nodeImageSets].map(([n, s]) => [n, s.digest, s.spec])).to.deep.equal([...without.nodeImageSets].map(([n, s]) => [n, s.digest, s.spec]));
      expect(roundsOf(withMemo, B)).to.deep.equal({ n1: 0, n2: 1, n3: 0 });
    });

    it('awaitsRepull looks only at a Pending RemovedFromRuntime record of the current round', () => {
      expect(awaitsRepull({ ...lost, round: 2 }, 2)).to.equal(true);
      expect(awaitsRepull({ ...lost, round: 1 }, 2)).to.equal(false);
      expect(awaitsRepull({ phase: 'Pending', round: 2 }, 2)).to.equal(false);
      expect(awaitsRepull(undefined, 0)).to.equal(false);
    });
  });

  describe('finding 1: only nodes with a working agent hold the budget', () => {
    const A = 'r.example/a:1';
    const B = 'r.example/b:1';
    const MIN = 60_000;
    const now = 100 * MIN;
    const agents = { nowMs: now, staleMs: 15 * MIN };
    /** n1..n3 with `A` released and Pending (never started), each with the given agent facts. */
    const pendingOn = (facts: Record<string, Partial<NodeImageSetView>>) =>
      new Map(['n1', 'n2', 'n3'].map((n) => [n, { ...nodeImageSetView(n, { [A]: 0 }, { [A]: { phase: 'Pending' } }), ...facts[n] }]));
    const alive = { createdMs: now - 60 * MIN, agent: { heartbeatMs: now - MIN } };

    it('does not count pairs on a node whose NodeImageSet is older than the stale window and never had a heartbeat, and releases nothing new there', () => {
      const current = pendingOn({ n1: { createdMs: now - 20 * MIN, agent: { heartbeatMs: undefined } }, n2: alive, n3: alive });
      const p = plan({ targets: [target('a', A), target('b', B)], current, clusterPullBudget: 3, agents });
      expect(p.unfinished).to.equal(3);
      expect(imagesOn(p, 'n1')).to.deep.equal([A]);
      expect(imagesOn(p, 'n2')).to.deep.equal([A, B]);
      expect(imagesOn(p, 'n3')).to.deep.equal([A]);
      expect(p.held).to.equal(1);
      expect(p.withoutAgent).to.equal(1);
    });

    it('the same plan on old code terms: without `agents` every pending pair counts and the budget is full', () => {
      const current = pendingOn({ n1: { createdMs: now - 20 * MIN }, n2: alive, n3: alive });
      const p = plan({ targets: [target('a', A), target('b', B)], current, clusterPullBudget: 3 });
      expect(p.unfinished).to.equal(3);
      expect(p.held).to.equal(3);
    });

    it('counts a node still in its first stale window (an agent may be starting) and plans again when it would turn absent', () => {
      const current = pendingOn({ n1: { createdMs: now - 5 * MIN }, n2: alive, n3: alive });
      const p = plan({ targets: [target('a', A)], current, clusterPullBudget: 10, agents });
      expect(p.unfinished).to.equal(3);
      expect(p.dueAtMs).to.equal(now - 5 * MIN + 15 * MIN);
    });

    it('stops counting a node whose heartbeat is older than the window, or whose disk guard paused pulls', () => {
      const current = pendingOn({ n1: { createdMs: 0, agent: { heartbeatMs: now - 16 * MIN } }, n2: { ...alive, pullsPaused: true }, n3: alive });
      const p = plan({ targets: [target('a', A), target('b', B)], current, clusterPullBudget: 2, agents });
      expect(p.unfinished).to.equal(2);
      expect(imagesOn(p, 'n1')).to.deep.equal([A]);
      expect(imagesOn(p, 'n2')).to.deep.equal([A]);
      expect(imagesOn(p, 'n3')).to.deep.equal([A, B]);
      expect(p.withoutAgent).to.equal(2);
    });

    it('releases to a new node with no NodeImageSet yet, within the budget', () => {
      const p = plan({ targets: [target('a', A)], clusterPullBudget: 2, agents });
      expect(p.unfinished).to.equal(2);
      expect(p.held).to.equal(1);
      expect(p.withoutAgent).to.equal(0);
    });

    it('agentState: alive, starting, absent', () => {
      const v = nodeImageSetView('n1', {});
      expect(agentState(undefined, now, 15 * MIN)).to.equal('starting');
      expect(agentState({ ...v, createdMs: now - MIN }, now, 15 * MIN)).to.equal('starting');
      expect(agentState({ ...v, createdMs: now - 15 * MIN }, now, 15 * MIN)).to.equal('absent');
      expect(agentState({ ...v, createdMs: 0, agent: { heartbeatMs: now - 14 * MIN } }, now, 15 * MIN)).to.equal('alive');
      expect(agentState({ ...v, createdMs: 0, agent: { heartbeatMs: now - 15 * MIN } }, now, 15 * MIN)).to.equal('absent');
      expect(agentState({ ...v, createdMs: 0, agent: { heartbeatMs: now }, pullsPaused: true }, now, 15 * MIN)).to.equal('absent');
    });
  });

  describe('finding 12: NotReady and cordoned nodes keep their entries', () => {
    const A = 'r.example/a:1';
    const B = 'r.example/b:1';
    const notReadyTaint = { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' };
    const cordonTaint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };
    const nodes = [node({ name: 'n1', ready: false, taints: [notReadyTaint] }), node({ name: 'n2', unschedulable: true, taints: [cordonTaint] }), node({ name: 'n3' })];
    const first = plan({ targets: [target('a', A)] });

    it('keeps what was released, in its round, adds nothing new, raises nothing, and the spec is unchanged', () => {
      const current = asCurrent(first, (n) => (n === 'n1' ? 'Pulling' : 'Completed'));
      // A workload's pods tolerate neither state taint; the frozen nodes keep its entry all the same.
      const targets = [target('a', A, { round: 5, placement: compilePodPlacement({}) }), target('b', B)];
      const p = plan({ nodes, targets, current, clusterPullBudget: 10 });
      expect(imagesOn(p, 'n1')).to.deep.equal([A]);
      expect(imagesOn(p, 'n2')).to.deep.equal([A]);
      expect(imagesOn(p, 'n3')).to.deep.equal([A, B]);
      expect(p.nodeImageSets.get('n1')!.released.get(A)).to.equal(0);
      expect(p.nodeImageSets.get('n3')!.released.get(A)).to.equal(5);
      // n1's pull still runs and counts; the frozen nodes are no targets of the status roll-up.
      expect(p.unfinished).to.equal(3);
      expect(p.targetNodes.get('shop/b')).to.deep.equal(['n3']);
      const same = plan({ nodes, targets: [target('a', A)], current: asCurrent(first, () => 'Completed') });
      expect(same.nodeImageSets.get('n2')!.digest).to.equal(first.nodeImageSets.get('n2')!.digest);
    });

    it('drops an entry nothing wants any more', () => {
      const p = plan({ nodes, targets: [target('b', B)], current: asCurrent(first, () => 'Completed') });
      expect(imagesOn(p, 'n1')).to.deep.equal([]);
      expect(imagesOn(p, 'n2')).to.deep.equal([]);
    });
  });

  it('isFinished looks only at the current round', () => {
    expect(isFinished({ phase: 'Completed', round: 1 }, 1)).to.equal(true);
    expect(isFinished({ phase: 'Failed', round: 1 }, 1)).to.equal(true);
    expect(isFinished({ phase: 'Completed', round: 0 }, 1)).to.equal(false);
    expect(isFinished({ phase: 'Pulling', round: 1 }, 1)).to.equal(false);
    expect(isFinished(undefined, 0)).to.equal(false);
  });

  describe('node targeting (spec.nodes.affinity and tolerations)', () => {
    const pool = [
      node({ name: 'n1', labels: { cores: '4' } }),
      node({ name: 'n2', labels: { cores: '16' } }),
      node({ name: 'n3', labels: { cores: '32' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }] }),
    ];
    const big = compileNodeTargeting({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] }] } } } });
    const strict = compileNodeTargeting({ tolerations: [] });

    it('targets the nodes the affinity selects; without a workload, taints count as for a pod (finding 6)', () => {
      const tolerant = compileNodeTargeting({ tolerations: [{ key: 'gpu', operator: 'Exists' }] });
      const p = plan({
        nodes: pool,
        targets: [
          target('big', 'r.example/big:1', { targeting: big }), target('plain', 'r.example/plain:1'),
          target('strict', 'r.example/strict:1', { targeting: strict }), target('tolerant', 'r.example/tolerant:1', { targeting: tolerant }),
        ],
      });
      expect(p.targetNodes.get('shop/big')).to.deep.equal(['n2']);
      expect(p.targetNodes.get('shop/plain')).to.deep.equal(['n1', 'n2']);
      expect(p.targetNodes.get('shop/strict')).to.deep.equal(['n1', 'n2']);
      expect(p.targetNodes.get('shop/tolerant')).to.deep.equal(['n1', 'n2', 'n3']);
      expect(imagesOn(p, 'n3')).to.deep.equal(['r.example/tolerant:1']);
    });

    it('leaves control-plane nodes out unless a toleration says so (finding 6)', () => {
      const nodes = [node({ name: 'cp', taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] }), node({ name: 'w1' })];
      const tolerant = compileNodeTargeting({ tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] });
      const p = plan({ nodes, targets: [target('plain', 'r.example/plain:1'), target('tolerant', 'r.example/tolerant:1', { targeting: tolerant })] });
      expect(p.targetNodes.get('shop/plain')).to.deep.equal(['w1']);
      expect(p.targetNodes.get('shop/tolerant')).to.deep.equal(['cp', 'w1']);
      // A workload's pods decide for its images: pods tolerating the taint can run there, so their image goes there.
      const pods = compilePodPlacement({ tolerations: [{ operator: 'Exists' }] });
      expect(plan({ nodes, targets: [target('ds', 'r.example/ds:1', { placement: pods })] }).targetNodes.get('shop/ds')).to.deep.equal(['cp', 'w1']);
    });

    it('applies both the workload placement and the targeting', () => {
      const placement = compilePodPlacement({ tolerations: [{ key: 'gpu', operator: 'Exists' }] });
      const p = plan({ nodes: pool, targets: [target('w', 'r.example/w:1', { placement, targeting: big })] });
      expect(p.targetNodes.get('shop/w')).to.deep.equal(['n2', 'n3']);
      const untolerating = compilePodPlacement({});
      const q = plan({ nodes: pool, targets: [target('w', 'r.example/w:1', { placement: untolerating, targeting: big })] });
      expect(q.targetNodes.get('shop/w')).to.deep.equal(['n2']);
    });

    it('keeps targets with different targeting apart in the memo', () => {
      const memo = new PlanMemo();
      plan({ nodes: pool, memo, targets: [target('a', 'r.example/a:1')] });
      const p = plan({ nodes: pool, memo, targets: [target('a', 'r.example/a:1', { targeting: strict })] });
      expect(p.targetNodes.get('shop/a')).to.deep.equal(['n1', 'n2']);
      const q = plan({ nodes: pool, memo, targets: [target('a', 'r.example/a:1', { targeting: big })] });
      expect(q.targetNodes.get('shop/a')).to.deep.equal(['n2']);
    });
  });
});

describe('controller/node-plan finding 6: the budget is shared fairly between namespaces', () => {
  function t(ns: string, name: string, image: string): ImageTarget {
    return { ...target(name, image), key: `${ns}/${name}`, namespace: ns };
  }
  const greedy = ['0.example.com/a:1', '0.example.com/b:1', '0.example.com/c:1', '0.example.com/d:1'].map((img, i) => t('aaa', `g${i}`, img));
  const modest = t('zzz', 'app', 'r.example/app:1');

  it('does not release in image-name order: a namespace whose names sort first does not take every slot', () => {
    const p = plan({ nodes: [node({ name: 'n1' })], targets: [...greedy, modest], clusterPullBudget: 2 });
    expect(imagesOn(p, 'n1')).to.deep.equal(['0.example.com/a:1', 'r.example/app:1']);
    expect(p.held).to.equal(3);
  });

  it('--namespace-pull-share: a namespace alone holds at most its percentage of the budget, the rest stays free for others', () => {
    const n1 = [node({ name: 'n1' })];
    // 4 images of aaa alone, budget 4, share 50 %: 2 released, 2 held although 2 slots are free.
    const alone = plan({ nodes: n1, targets: greedy, clusterPullBudget: 4, namespaceLimits: { pullSharePercent: 50 } });
    expect(imagesOn(alone, 'n1')).to.deep.equal(['0.example.com/a:1', '0.example.com/b:1']);
    expect(alone.held).to.equal(2);
    // Without the share (the default, 100 %) it takes all four.
    expect(imagesOn(plan({ nodes: n1, targets: greedy, clusterPullBudget: 4 }), 'n1')).to.have.length(4);
    // A newcomer finds the free slots at once.
    const current = new Map([['n1', nodeImageSetView('n1', { '0.example.com/a:1': 0, '0.example.com/b:1': 0 }, { '0.example.com/a:1': { phase: 'Pulling' }, '0.example.com/b:1': { phase: 'Pulling' } })]]);
    const later = plan({ nodes: n1, targets: [...greedy, modest], clusterPullBudget: 4, namespaceLimits: { pullSharePercent: 50 }, current });
    expect(imagesOn(later, 'n1')).to.deep.equal(['0.example.com/a:1', '0.example.com/b:1', 'r.example/app:1']);
    // Rounded up, at least one pull; without a budget there is nothing to share.
    expect(imagesOn(plan({ nodes: n1, targets: greedy, clusterPullBudget: 3, namespaceLimits: { pullSharePercent: 1 } }), 'n1')).to.have.length(1);
    expect(imagesOn(plan({ nodes: n1, targets: greedy, clusterPullBudget: 3, namespaceLimits: { pullSharePercent: 34 } }), 'n1')).to.have.length(2);
    expect(imagesOn(plan({ nodes: n1, targets: greedy, clusterPullBudget: 0, namespaceLimits: { pullSharePercent: 1 } }), 'n1')).to.have.length(4);
  });

  it('while several namespaces wait the slots go round, and one a namespace does not need is lent to another', () => {
    const n1 = [node({ name: 'n1' })];
    const others = ['0.example.com/x:1', '0.example.com/y:1', '0.example.com/z:1'].map((img, i) => t('bbb', `o${i}`, img));
    // Budget 6 for 3 namespaces is 2 each; zzz wants only one, so its second slot goes to aaa (first by name).
    const p = plan({ nodes: n1, targets: [...greedy, ...others, modest], clusterPullBudget: 6 });
    const count = (list: readonly ImageTarget[]) => imagesOn(p, 'n1').filter((i) => list.some((x) => x.image === i)).length;
    expect([count(greedy), count(others), count([modest])]).to.deep.equal([3, 2, 1]);
    expect(p.held).to.equal(2);
    // With a share of 25 % (ceil(1.5) = 2 each) the slot zzz does not need stays free.
    const capped = plan({ nodes: n1, targets: [...greedy, ...others, modest], clusterPullBudget: 6, namespaceLimits: { pullSharePercent: 25 } });
    expect(capped.nodeImageSets.get('n1')?.spec.images).to.have.length(5);
    expect(capped.held).to.equal(3);
  });

  it('gives a freed slot to the namespace holding fewer unfinished pairs', () => {
    // aaa already holds one pull in progress; one slot is free.
    const current = new Map([['n1', nodeImageSetView('n1', { '0.example.com/a:1': 0 }, { '0.example.com/a:1': { phase: 'Pulling' } })]]);
    const p = plan({ nodes: [node({ name: 'n1' })], targets: [...greedy, modest], clusterPullBudget: 2, current });
    expect(imagesOn(p, 'n1')).to.deep.equal(['0.example.com/a:1', 'r.example/app:1']);
    // Without the modest namespace, aaa gets the slot.
    const q = plan({ nodes: [node({ name: 'n1' })], targets: greedy, clusterPullBudget: 2, current });
    expect(imagesOn(q, 'n1')).to.deep.equal(['0.example.com/a:1', '0.example.com/b:1']);
  });
});

describe('controller/node-plan finding 6: a pair in retry back-off holds no budget slot', () => {
  const BAD = 'r.example/bad:1';
  const GOOD = 'r.example/good:1';
  const one = [node({ name: 'n1' })];
  const targets = [target('bad', BAD), target('good', GOOD)];
  const viewWith = (st: Record<string, { phase: 'Pending' | 'Pulling'; reason?: string; round: number }>) =>
    new Map([['n1', nodeImageSetView('n1', { [BAD]: 0 }, st)]]);

  it('releases the next pair while the failed one waits out its back-off, and counts the failed one again once it retries', () => {
    // Budget 1: the first pass releases only the first image.
    const first = plan({ nodes: one, targets, clusterPullBudget: 1 });
    expect(imagesOn(first, 'n1')).to.deep.equal([BAD]);
    // Its attempt failed; the agent reports it Pending with the failure's reason while it waits to retry.
    const backoff = plan({ nodes: one, targets, clusterPullBudget: 1, current: viewWith({ [BAD]: { phase: 'Pending', reason: 'Unreachable', round: 0 } }) });
    expect(imagesOn(backoff, 'n1')).to.deep.equal([BAD, GOOD]);
    expect(backoff.unfinished).to.equal(1);
    expect(backoff.held).to.equal(0);
    // Pulling again (the retry started): it holds a slot again, so nothing else would be released.
    const retrying = plan({ nodes: one, targets, clusterPullBudget: 1, current: viewWith({ [BAD]: { phase: 'Pulling', round: 0 } }) });
    expect(imagesOn(retrying, 'n1')).to.deep.equal([BAD]);
    expect(retrying.held).to.equal(1);
  });

  it('waiting for the container runtime is a back-off too; queued behind the per-node limit (no reason) is not', () => {
    const runtime = plan({ nodes: one, targets, clusterPullBudget: 1, current: viewWith({ [BAD]: { phase: 'Pending', reason: 'RuntimeUnavailable', round: 0 } }) });
    expect(imagesOn(runtime, 'n1')).to.deep.equal([BAD, GOOD]);
    const queued = plan({ nodes: one, targets, clusterPullBudget: 1, current: viewWith({ [BAD]: { phase: 'Pending', round: 0 } }) });
    expect(imagesOn(queued, 'n1')).to.deep.equal([BAD]);
  });

  it('plans the same with a PlanMemo', () => {
    const memo = new PlanMemo();
    const current = viewWith({ [BAD]: { phase: 'Pending', reason: 'Unreachable', round: 0 } });
    const withMemo = plan({ nodes: one, targets, clusterPullBudget: 1, current, memo });
    expect(imagesOn(withMemo, 'n1')).to.deep.equal([BAD, GOOD]);
  });

  it('inBackoff and holdsBudget look at the current round only; a lost image awaiting its re-pull is not a back-off', () => {
    expect(inBackoff({ phase: 'Pending', reason: 'Timeout', round: 2 }, 2)).to.equal(true);
    expect(inBackoff({ phase: 'Pending', reason: 'Timeout', round: 1 }, 2)).to.equal(false);
    expect(inBackoff({ phase: 'Pending', round: 2 }, 2)).to.equal(false);
    expect(inBackoff({ phase: 'Pending', reason: 'RemovedFromRuntime', round: 2 }, 2)).to.equal(false);
    expect(inBackoff({ phase: 'Failed', reason: 'Timeout', round: 2 }, 2)).to.equal(false);
    expect(holdsBudget({ phase: 'Pending', reason: 'RemovedFromRuntime', round: 2 }, 2)).to.equal(false);
    expect(holdsBudget({ phase: 'Pending', reason: 'Timeout', round: 1 }, 2)).to.equal(true);
    expect(holdsBudget({ phase: 'Pulling', round: 2 }, 2)).to.equal(true);
    expect(holdsBudget(undefined, 0)).to.equal(true);
  });
});

describe('controller/node-plan finding 6: --namespace-node-images-per-node caps what one namespace puts on the nodes', () => {
  function t(ns: string, name: string, image: string, createdAt: string, extra: Partial<ImageTarget> = {}): ImageTarget {
    return { ...target(name, image), key: `${ns}/${name}`, namespace: ns, createdAt, ...extra };
  }
  const on = (p: ReturnType<typeof plan>) => Object.fromEntries(['n1', 'n2', 'n3'].map((n) => [n, imagesOn(p, n)]));

  it('plans the oldest images up to perNode × Ready nodes (pairs) and refuses the later ones whole, with a reason', () => {
    // 3 Ready nodes, 1 per node: 3 pairs. a on every node (3) fits; b on n1 only would make 4.
    const targets = [
      t('team', 'a', 'r.example/a:1', '2026-01-01T00:00:00Z'),
      t('team', 'b', 'r.example/b:1', '2026-01-02T00:00:00Z', { nodeNames: ['n1'] }),
      t('other', 'c', 'r.example/c:1', '2026-01-03T00:00:00Z'),
    ];
    const p = plan({ targets, namespaceLimits: { nodeImagesPerNode: 1 } });
    expect(on(p)).to.deep.equal({ n1: ['r.example/a:1', 'r.example/c:1'], n2: ['r.example/a:1', 'r.example/c:1'], n3: ['r.example/a:1', 'r.example/c:1'] });
    expect(p.refused.get('team/b')).to.include({ reason: 'NamespaceNodeImageLimit', excluded: true });
    expect(p.refused.get('team/b')?.message).to.match(/namespace team already wants 3 .*cap of 3 \(--namespace-node-images-per-node=1 × 3 Ready nodes\)/);
    expect(p.targetNodes.has('team/b')).to.equal(false);
    expect(p.refused.has('team/a')).to.equal(false);
    expect(p.refused.has('other/c')).to.equal(false);
    // 0 or absent: no cap.
    expect(on(plan({ targets, namespaceLimits: { nodeImagesPerNode: 0 } })).n1).to.have.length(3);
    expect(on(plan({ targets })).n1).to.have.length(3);
  });

  it('counts an image once per node however many PrePullImages of the namespace want it, and leaves kwarm\'s namespace and purges alone', () => {
    const targets = [
      t('team', 'a1', 'r.example/a:1', '2026-01-01T00:00:00Z', { nodeNames: ['n1', 'n2'] }),
      t('team', 'a2', 'r.example/a:1', '2026-01-02T00:00:00Z', { nodeNames: ['n2', 'n3'] }),
      t('team', 'b', 'r.example/b:1', '2026-01-03T00:00:00Z', { nodeNames: ['n3'] }),
      t('kwarm-system', 's', 'r.example/s:1', '2026-01-01T00:00:00Z'),
    ];
    // 2 per node = 6 pairs: a on 3 nodes (once, though two PrePullImages want it) and b on 1 fit.
    const p = plan({ targets, namespaceLimits: { nodeImagesPerNode: 2 }, uncappedNamespace: 'kwarm-system' });
    expect(p.refused.size).to.equal(0);
    expect(on(p).n3).to.deep.equal(['r.example/a:1', 'r.example/b:1', 'r.example/s:1']);
    // 1 per node = 3 pairs: a fits exactly, b does not; kwarm-system's static image is not counted.
    const q = plan({ targets, namespaceLimits: { nodeImagesPerNode: 1 }, uncappedNamespace: 'kwarm-system' });
    expect([...q.refused.keys()]).to.deep.equal(['team/b']);
    expect(on(q).n3).to.deep.equal(['r.example/a:1', 'r.example/s:1']);
  });

  it('refuses from the first image that does not fit on, even if a later one would', () => {
    const targets = [
      t('team', 'big', 'r.example/big:1', '2026-01-01T00:00:00Z'),
      t('team', 'wide', 'r.example/wide:1', '2026-01-02T00:00:00Z'),
      t('team', 'small', 'r.example/small:1', '2026-01-03T00:00:00Z', { nodeNames: ['n1'] }),
    ];
    const p = plan({ targets, namespaceLimits: { nodeImagesPerNode: 1 }, nodes: [...three, node({ name: 'n4' })] });
    // 4 pairs: big on 4 nodes fits exactly; wide does not, and small after it is refused too.
    expect([...p.refused.keys()].sort()).to.deep.equal(['team/small', 'team/wide']);
  });
});
