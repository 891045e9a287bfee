import { expect } from 'chai';
import type { PrePullImage } from '../../../../api/v1alpha1/index.ts';
import { sizeLimitEvents } from '../../../../controller/status/size-limit-events.ts';

function ppi(name: string): PrePullImage {
  return {
    apiVersion: 'kwarm.io/v1alpha1', kind: 'PrePullImage', metadata: { namespace: 'shop', name, uid: `uid-${name}` },
    spec: { image: 'r.example/a:1', nodes: {}, retry: { maxAttempts: 3, backoffSeconds: 30 }, timeout: '10m', resources: { requests: { memory: '64Mi', cpu: '100m' } }, state: 'Present', purgeOnDelete: false },
  } as PrePullImage;
}

describe('controller/status/size-limit-events', () => {
  const cached = new Map([['shop/a', ppi('a')], ['shop/b', ppi('b')]]);

  it('one Warning per PrePullImage and set of full nodes, not repeated while it stays the same', () => {
    const first = sizeLimitEvents(new Map([['shop/a', ['n1', 'n2']]]), cached, new Set());
    expect(first.writes).to.have.length(1);
    const w = first.writes[0]!;
    if (w.kind !== 'event') throw new Error('expected an event');
    expect(w.subject).to.deep.equal({ namespace: 'shop', name: 'a', uid: 'uid-a' });
    expect(w.event.reason).to.equal('NodeImageSetFull');
    expect(w.event.message).to.contain('2 node(s) (n1, n2)');
    expect(sizeLimitEvents(new Map([['shop/a', ['n2', 'n1']]]), cached, first.reported).writes).to.have.length(0);
    // Another node fills up: reported again.
    expect(sizeLimitEvents(new Map([['shop/a', ['n1', 'n2', 'n3']]]), cached, first.reported).writes).to.have.length(1);
    // Gone, then back: reported again.
    const gone = sizeLimitEvents(new Map(), cached, first.reported);
    expect(sizeLimitEvents(new Map([['shop/a', ['n1', 'n2']]]), cached, gone.reported).writes).to.have.length(1);
  });
});
