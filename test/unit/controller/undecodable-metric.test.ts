import { expect } from 'chai';
import { ControllerMetrics, UNDECODABLE_KINDS, type UndecodableKind } from '../../../controller/metrics.ts';

/** `name{labels} value` lines of one metric, as Prometheus would scrape them. */
async function lines(m: ControllerMetrics, name: string): Promise<string[]> {
  return (await m.registry.getSingleMetricAsString(name)).split('\n').filter((l) => l.startsWith(name));
}

describe('controller metrics: kwarm_undecodable_objects (finding 11)', () => {
  it('has every watched kind at 0 from the start', async () => {
    const m = new ControllerMetrics();
    const got = await lines(m, 'kwarm_undecodable_objects');
    expect(got).to.have.length(UNDECODABLE_KINDS.length);
    for (const kind of ['PrePullPolicy', 'PrePullImage', 'NodeImageSet', 'Secret', 'ConfigMap', 'Job', 'WorkflowTemplate']) {
      expect(got).to.include(`kwarm_undecodable_objects{kind="${kind}"} 0`);
    }
  });

  it('reads the caches at each scrape, and a kind that decodes again goes back to 0', async () => {
    const m = new ControllerMetrics();
    let counts = new Map<UndecodableKind, number>([['PrePullPolicy', 2], ['Deployment', 1]]);
    m.trackUndecodable(() => counts);
    expect(await lines(m, 'kwarm_undecodable_objects')).to.include.members([
      'kwarm_undecodable_objects{kind="PrePullPolicy"} 2',
      'kwarm_undecodable_objects{kind="Deployment"} 1',
      'kwarm_undecodable_objects{kind="Node"} 0',
    ]);
    counts = new Map([['Deployment', 1]]);
    expect(await lines(m, 'kwarm_undecodable_objects')).to.include.members([
      'kwarm_undecodable_objects{kind="PrePullPolicy"} 0',
      'kwarm_undecodable_objects{kind="Deployment"} 1',
    ]);
  });
});
