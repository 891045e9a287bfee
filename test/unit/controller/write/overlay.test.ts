import { expect } from 'chai';
import { WriteOverlay } from '../../../../controller/write/overlay.ts';
import { Overlays } from '../../../../controller/write/overlays.ts';
import { nodeImageSetView, prePullImage } from '../planning-fixtures.ts';

describe('controller/write/overlay', () => {
  describe('WriteOverlay', () => {
    const byGeneration = () => new WriteOverlay<{ generation: number }, { generation: number; v: string }>(
      (cached, w) => cached !== undefined && cached.generation >= w.generation,
    );

    it('returns what was written until the cache shows it, then forgets it', () => {
      const o = byGeneration();
      expect(o.unshown('a', undefined)).to.equal(undefined);
      o.record('a', { generation: 3, v: 'mine' });
      expect(o.unshown('a', undefined)?.v).to.equal('mine');
      expect(o.unshown('a', { generation: 2 })?.v).to.equal('mine');
      expect(o.unshown('a', { generation: 3 })).to.equal(undefined);
      expect(o.size).to.equal(0);
      // Forgotten for good: an older cached object does not bring it back.
      expect(o.unshown('a', { generation: 1 })).to.equal(undefined);
    });

    it('keeps the latest write per key and drops keys retain rejects', () => {
      const o = byGeneration();
      o.record('a', { generation: 1, v: 'first' });
      o.record('a', { generation: 2, v: 'second' });
      o.record('b', { generation: 1, v: 'b' });
      expect(o.unshown('a', { generation: 1 })?.v).to.equal('second');
      o.retain((k) => k === 'a');
      expect([...o.keys()]).to.deep.equal(['a']);
    });
  });

  describe('Overlays views', () => {
    it('lays a written NodeImageSet spec over the cached status', () => {
      const o = new Overlays();
      const cached = nodeImageSetView('n1', { old: 0 }, { old: { phase: 'Completed' } });
      const written = { ...nodeImageSetView('n1', { new: 0 }), generation: 2, status: new Map() };
      o.nodeImageSets.record('n1', { generation: 2, view: written });
      const view = o.nodeImageSet('n1', cached);
      expect([...(view?.released.keys() ?? [])]).to.deep.equal(['new']);
      expect([...(view?.status.keys() ?? [])]).to.deep.equal(['old']);
      expect(o.nodeImageSet('n1', { ...cached, generation: 2 })).to.deep.equal({ ...cached, generation: 2 });
      expect(o.nodeImageSet('gone', undefined)).to.equal(undefined);
    });

    it('shows a written status until the cached object moves past the resourceVersion it was written over', () => {
      const o = new Overlays();
      const p = { ...prePullImage('shop', 'a', { image: 'r.example/a:1' }), status: { phase: 'Pending' as const } };
      p.metadata.resourceVersion = '10';
      o.prePullImageStatuses.record('shop/a', { rvBefore: '10', status: { phase: 'InProgress' } });
      expect(o.prePullImageStatus('shop/a', p)?.phase).to.equal('InProgress');
      const moved = { ...p, metadata: { ...p.metadata, resourceVersion: '11' } };
      expect(o.prePullImageStatus('shop/a', moved)?.phase).to.equal('Pending');
    });

    it('keeps a recorded refresh until the cache shows its round, even when the cached object changed for another reason', () => {
      const o = new Overlays();
      const p = prePullImage('shop', 'a', { image: 'r.example/a:1' });
      const refresh = { lastTime: '2024-05-01T10:00:00Z', requested: 'x' };
      o.refreshes.record('shop/a', { uid: p.metadata.uid, refresh });
      expect(o.prePullImageStatus('shop/a', p)?.refresh).to.deep.equal(refresh);
      // Same name, new object: the record was for the deleted one.
      const recreated = { ...p, metadata: { ...p.metadata, uid: 'other' } };
      expect(o.prePullImageStatus('shop/a', recreated)?.refresh).to.equal(undefined);
    });

    it('hides a deleted secret copy until the cache drops it', () => {
      const o = new Overlays();
      const copy = { namespace: 'kwarm-system', name: 'c', type: 'kubernetes.io/dockerconfigjson', data: {}, labels: {}, annotations: {} };
      o.secretCopies.record('c', 'deleted');
      expect(o.secretCopy('c', copy)).to.equal(undefined);
      expect(o.secretCopy('c', undefined)).to.equal(undefined);
      expect(o.secretCopy('c', copy)).to.equal(copy);
    });
  });
});
