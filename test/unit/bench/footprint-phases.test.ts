import { expect } from 'chai';
import {
  controllerGoals, cpuSecondsTotal, FOOTPRINT_IDS, footprintFigures, legacyFootprintFigures, parseScaleLines, parseScaleNote,
  peakRssMiB, phaseFootprints, phaseOf, restartPeakRssMiB, runFootprint, scaleLinesOfRun, scaleNote,
  type ControllerSample, type RunFootprint, type TimedLine,
} from '../../../bench/footprint-phases.ts';
import type { Figure } from '../../../bench/results.ts';

// controller-scale's lines as it prints them (5,000-node run, shortened where the parser does not look).
const SCALE_LINES = [
  'bench: 5000 nodes, 2000 Deployments in 40 pools (50 images per node, 125 nodes per pool)',
  'initial convergence: 610.0 s to 2000 PrePullImages Completed on 5000 NodeImageSets; controller CPU 45.4 s, RSS 238 MiB (peak 260 MiB); simulated agent status writes 5000',
  'idle 25 s (resync period 20 s): 1 passes, 0 API writes, controller CPU 1.18 s',
  'image change on 125 affected nodes: all their NodeImageSets updated in 33024 ms (since the Deployment patch), PrePullImage Completed in 33813 ms',
  'writes for the image change: 137 (prepullimages 1, nodeimagesets 125, events 2); affected nodes + constant = 125 + 12',
  'controller: RSS 225 MiB (peak 260 MiB), CPU 50.0 s in total',
  'restart: synced and first pass done in 26.8 s, 3 API writes; RSS 485 MiB (peak 521 MiB), CPU 9.5 s; heap used 1 MiB of 2 MiB, external 0 MiB',
];

/** The phase lines printed at t=10 s, 20 s and 30 s. */
const TIMED: TimedLine[] = [
  { at: 10_000, text: SCALE_LINES[1]! },
  { at: 20_000, text: SCALE_LINES[2]! },
  { at: 30_000, text: SCALE_LINES[3]! },
];

function s(atSeconds: number, pid: number, rssMiB: number, cpuSeconds: number, peakRssMiB = rssMiB): ControllerSample {
  return { at: atSeconds * 1000, pid, figures: { rssMiB, peakRssMiB, cpuSeconds } };
}

function figure(id: string, samples: number[]): Figure {
  return { id, label: id, basis: 'measured', unit: '', samples };
}

describe('bench/footprint-phases', () => {
  describe('phaseOf', () => {
    it('splits the first controller by the phase lines, and puts every later process in the restart', () => {
      expect(phaseOf(s(1, 7, 0, 0), 7, TIMED)).to.equal('convergence');
      expect(phaseOf(s(10, 7, 0, 0), 7, TIMED)).to.equal('convergence');
      expect(phaseOf(s(10.001, 7, 0, 0), 7, TIMED)).to.equal('idle');
      expect(phaseOf(s(25, 7, 0, 0), 7, TIMED)).to.equal('change');
      // After the image change line the first controller is only being stopped.
      expect(phaseOf(s(31, 7, 0, 0), 7, TIMED)).to.equal(undefined);
      expect(phaseOf(s(5, 8, 0, 0), 7, TIMED)).to.equal('restart');
    });

    it('counts everything as convergence while no phase line has come', () => {
      expect(phaseOf(s(1e6, 7, 0, 0), 7, [])).to.equal('convergence');
    });
  });

  describe('phaseFootprints', () => {
    it('gives each phase its RSS samples and CPU over windows of consecutive samples', () => {
      const samples = [
        // convergence: 1 s apart, 0.5 s CPU per second
        ...[0, 1, 2, 3, 4, 5, 6].map((t) => s(t + 1, 7, 100 + t, t * 0.5)),
        s(15, 7, 200, 10),
        // restart: two readings 2 s apart, 0.2 s CPU
        s(40, 9, 300, 1), s(42, 9, 310, 1.2),
      ];
      const phases = phaseFootprints(samples, TIMED, 2);
      expect([...phases.keys()]).to.deep.equal(['convergence', 'idle', 'restart']);
      expect(phases.get('convergence')!.rssMiB).to.deep.equal([100, 101, 102, 103, 104, 105, 106]);
      expect(phases.get('convergence')!.cpuPercent.map((x) => Math.round(x))).to.deep.equal([50, 50, 50]);
      expect(phases.get('idle')).to.deep.equal({ rssMiB: [200], cpuPercent: [] });
      expect(phases.get('restart')!.rssMiB).to.deep.equal([300, 310]);
      expect(phases.get('restart')!.cpuPercent).to.deep.equal([]);
      expect(phaseFootprints([s(40, 9, 300, 1), s(42, 9, 310, 1.2)], [], 1).get('convergence')!.cpuPercent.map((x) => Math.round(x))).to.deep.equal([10]);
    });

    it('gives nothing for no samples', () => {
      expect(phaseFootprints([], TIMED).size).to.equal(0);
    });
  });

  describe('peak RSS and CPU over both processes', () => {
    const samples = [s(1, 7, 100, 1, 120), s(2, 7, 110, 2, 260), s(40, 9, 400, 0.5, 521), s(41, 9, 380, 0.9, 521)];

    it('takes the highest VmHWM of any process, and the restart\'s own', () => {
      expect(peakRssMiB(samples)).to.equal(521);
      expect(peakRssMiB(samples.slice(0, 2))).to.equal(260);
      expect(restartPeakRssMiB(samples)).to.equal(521);
      expect(restartPeakRssMiB(samples.slice(0, 2))).to.equal(undefined);
    });

    it('adds up each process\'s last CPU reading', () => {
      expect(cpuSecondsTotal(samples)).to.be.closeTo(2.9, 1e-9);
    });
  });

  describe('parseScaleLines', () => {
    it('reads controller-scale\'s figures from its lines', () => {
      expect(parseScaleLines(SCALE_LINES)).to.deep.equal({
        convergenceSeconds: 610, idleWrites: 0, affectedNodes: 125, nisUpdatedMs: 33024, ppiCompletedMs: 33813,
        changeWrites: 137, changeConstant: 12, restartSyncSeconds: 26.8, restartWrites: 3, restartPeakMiB: 521,
      });
    });

    it('leaves out what is missing', () => {
      const parsed = parseScaleLines(SCALE_LINES.slice(0, 2));
      expect(parsed.convergenceSeconds).to.equal(610);
      expect(parsed.idleWrites).to.equal(undefined);
      expect(parsed.restartWrites).to.equal(undefined);
    });
  });

  describe('notes', () => {
    it('numbers each run\'s lines and reads them back, old unnumbered notes as run 1', () => {
      expect(scaleNote(2, 'idle 25 s')).to.equal('controller-scale run 2: idle 25 s');
      expect(parseScaleNote('controller-scale run 12: a: b')).to.deep.equal({ run: 12, line: 'a: b' });
      expect(parseScaleNote('controller-scale: bench: x')).to.deep.equal({ run: 1, line: 'bench: x' });
      expect(parseScaleNote('one run of bench/controller-scale.ts')).to.equal(undefined);
      const notes = ['intro', scaleNote(1, 'a'), scaleNote(2, 'b'), scaleNote(1, 'c'), 'controller-scale: d'];
      expect(scaleLinesOfRun(notes, 1)).to.deep.equal(['a', 'c', 'd']);
      expect(scaleLinesOfRun(notes, 2)).to.deep.equal(['b']);
    });
  });

  describe('footprintFigures', () => {
    function run(peak: number, idleRss: number[], restartWrites: number | undefined): RunFootprint {
      return {
        phases: new Map([['idle', { rssMiB: idleRss, cpuPercent: [1, 3, 2] }]]),
        peakRssMiB: peak, restartPeakRssMiB: undefined, cpuSeconds: 50,
        scale: { ...parseScaleLines(SCALE_LINES), restartWrites },
      };
    }

    it('gives one value per run, a phase\'s being the median of its samples', () => {
      const figs = footprintFigures([run(260, [1, 5, 2], 0), run(300, [7, 8, 9, 10], undefined), run(280, [4], 2)]);
      const get = (id: string): number[] | undefined => figs.find((f) => f.id === id)?.samples;
      expect(get('footprint.controller.idle.rss')).to.deep.equal([2, 8.5, 4]);
      expect(get('footprint.controller.idle.cpu')).to.deep.equal([2, 2, 2]);
      expect(get('footprint.controller.convergence.rss')).to.equal(undefined);
      expect(get(FOOTPRINT_IDS.peakRss)).to.deep.equal([260, 300, 280]);
      expect(get(FOOTPRINT_IDS.restartPeakRss)).to.equal(undefined);
      expect(get(FOOTPRINT_IDS.convergenceTime)).to.deep.equal([610, 610, 610]);
      // The run without a value is left out of that figure.
      expect(get(FOOTPRINT_IDS.restartWrites)).to.deep.equal([0, 2]);
      expect(figs.every((f) => f.basis === 'measured')).to.equal(true);
    });

    it('builds a run from its samples and lines', () => {
      const fp = runFootprint([s(1, 7, 100, 1, 120), s(2, 7, 110, 2, 130), s(40, 9, 400, 0.5, 450)], SCALE_LINES.map((text, i) => ({ at: i, text })));
      expect(fp.peakRssMiB).to.equal(450);
      expect(fp.restartPeakRssMiB).to.equal(450);
      expect(fp.cpuSeconds).to.equal(2.5);
      expect(fp.scale.changeConstant).to.equal(12);
      expect(fp.phases.get('restart')!.rssMiB).to.deep.equal([400]);
    });
  });

  describe('legacyFootprintFigures', () => {
    it('raises the peak to the restart\'s own reading and adds what the lines say', () => {
      const notes = ['one run', ...SCALE_LINES.map((l) => `controller-scale: ${l}`)];
      const figs = legacyFootprintFigures([figure(FOOTPRINT_IDS.peakRss, [260]), figure('footprint.controller.idle.rss', [250, 256])], notes);
      expect(figs.find((f) => f.id === FOOTPRINT_IDS.peakRss)!.samples).to.deep.equal([521]);
      expect(figs.find((f) => f.id === FOOTPRINT_IDS.restartPeakRss)!.samples).to.deep.equal([521]);
      expect(figs.find((f) => f.id === 'footprint.controller.idle.rss')!.samples).to.deep.equal([250, 256]);
      expect(figs.find((f) => f.id === FOOTPRINT_IDS.changeConstant)!.samples).to.deep.equal([12]);
    });
  });

  describe('controllerGoals', () => {
    it('judges each goal on the median and on the worst run', () => {
      const goals = controllerGoals([
        figure(FOOTPRINT_IDS.peakRss, [280, 310, 290]),
        figure(FOOTPRINT_IDS.idleWrites, [0, 0, 0]),
        figure(FOOTPRINT_IDS.changeConstant, [12, 11, 12]),
      ]);
      expect(goals.map((g) => [g.limit, g.n, g.median, g.worst, g.medianMet, g.worstMet])).to.deep.equal([
        [300, 3, 290, 310, true, false],
        [0, 3, 0, 0, true, true],
        [10, 3, 12, 12, false, false],
      ]);
      expect(goals[0]!.goal).to.match(/300 MiB.*restart included/);
    });
  });
});
