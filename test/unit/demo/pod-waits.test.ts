import { expect } from 'chai';
import { podWaitSummary, renderPodWaits, type PodWait } from '../../../demo/pod-waits.ts';

describe('demo/pod-waits', () => {
  const pods: PodWait[] = [
    { pod: 'my-app-b', node: 'node-2', wait: { kind: 'pulled', ms: 7800 } },
    { pod: 'my-app-a', node: 'node-1', wait: { kind: 'present' } },
    { pod: 'my-app-c', node: 'node-3', wait: { kind: 'unknown' } },
  ];

  it('lists the pods by node with what each waited', () => {
    expect(renderPodWaits(pods).split('\n')).to.deep.equal([
      'POD       NODE    WAITED FOR ITS IMAGE',
      'my-app-a  node-1  none (already present)',
      'my-app-b  node-2  7.8 s (pulled)',
      'my-app-c  node-3  unknown (no Pulled event)',
    ]);
  });

  it('sums up how many pods waited', () => {
    expect(podWaitSummary(pods)).to.equal('3 new pods on 3 nodes; 1 waited for its image (up to 7.8 s); 1 unknown');
    expect(podWaitSummary(pods.slice(1, 2))).to.equal('1 new pod on 1 node; none waited for its image');
  });
});
