import { expect } from 'chai';
import { ControllerMetrics } from '../../../../controller/metrics.ts';

/** `name{labels} value` lines of one metric, as Prometheus would scrape them. */
async function lines(m: ControllerMetrics, name: string): Promise<string[]> {
  return (await m.registry.getSingleMetricAsString(name)).split('\n').filter((l) => l.startsWith(name));
}

describe('rollout gate: controller metrics', () => {
  it('has every admission outcome and release reason at 0 from the start, and counts each', async () => {
    const m = new ControllerMetrics();
    expect(await lines(m, 'kwarm_rollout_gate_admissions_total')).to.deep.equal([
      'kwarm_rollout_gate_admissions_total{outcome="gated"} 0',
      'kwarm_rollout_gate_admissions_total{outcome="warm"} 0',
      'kwarm_rollout_gate_admissions_total{outcome="not-selected"} 0',
      'kwarm_rollout_gate_admissions_total{outcome="skipped"} 0',
      'kwarm_rollout_gate_admissions_total{outcome="error"} 0',
    ]);
    expect(await lines(m, 'kwarm_rollout_gate_releases_total')).to.deep.equal([
      'kwarm_rollout_gate_releases_total{reason="ImagesWarm"} 0',
      'kwarm_rollout_gate_releases_total{reason="TimedOut"} 0',
      'kwarm_rollout_gate_releases_total{reason="NotSelected"} 0',
      'kwarm_rollout_gate_releases_total{reason="Uninstalled"} 0',
    ]);
    m.admitted('gated');
    m.admitted('gated');
    m.admitted('error');
    m.released('TimedOut');
    m.gatedPods.set(3);
    expect(await lines(m, 'kwarm_rollout_gate_admissions_total')).to.include.members([
      'kwarm_rollout_gate_admissions_total{outcome="gated"} 2',
      'kwarm_rollout_gate_admissions_total{outcome="error"} 1',
      'kwarm_rollout_gate_admissions_total{outcome="warm"} 0',
    ]);
    expect(await lines(m, 'kwarm_rollout_gate_releases_total')).to.include('kwarm_rollout_gate_releases_total{reason="TimedOut"} 1');
    expect(await lines(m, 'kwarm_rollout_gate_gated_pods')).to.deep.equal(['kwarm_rollout_gate_gated_pods 3']);
  });
});
