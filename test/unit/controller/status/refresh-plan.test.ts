import { expect } from 'chai';
import { REFRESH_ANNOTATION } from '../../../../api/v1alpha1/labels.ts';
import { planRefreshes } from '../../../../controller/status/refresh-plan.ts';
import { Overlays } from '../../../../controller/write/overlays.ts';
import { prePullImage } from '../planning-fixtures.ts';

const NOW = Date.parse('2024-05-01T10:05:00Z');

describe('controller/status/refresh-plan', () => {
  const annotated = (value: string) => {
    const p = prePullImage('shop', 'a', { image: 'r.example/a:latest' });
    return { ...p, metadata: { ...p.metadata, creationTimestamp: '2024-05-01T10:00:00Z', annotations: { [REFRESH_ANNOTATION]: value } } };
  };

  it('records a new annotation value as a refresh with its Event, once', () => {
    const overlays = new Overlays();
    const p = annotated('now');
    const plan = planRefreshes(new Map([['shop/a', p]]), overlays, NOW);
    const writes = plan.writes.flatMap((s) => s.writes);
    expect(writes).to.have.length(1);
    const w = writes[0];
    if (w?.kind !== 'prePullImageStatus') throw new Error(`unexpected ${w?.kind ?? 'nothing'}`);
    expect(w.refresh?.trigger).to.equal('Annotation');
    expect(w.status.refresh?.requested).to.equal('now');
    expect(w.events.map((e) => e.reason)).to.deep.equal(['RefreshRequested']);
    // The writer records it; until the cache shows it, the next pass does not refresh again.
    overlays.prePullImageStatuses.record('shop/a', { rvBefore: p.metadata.resourceVersion, status: w.status });
    overlays.refreshes.record('shop/a', { uid: p.metadata.uid, refresh: w.refresh!.record });
    expect(planRefreshes(new Map([['shop/a', p]]), overlays, NOW + 1000).writes.flatMap((s) => s.writes)).to.deep.equal([]);
  });

  it('reports when a refreshInterval comes due and skips PrePullImages being deleted', () => {
    const p = prePullImage('shop', 'b', { image: 'r.example/b:latest', refreshInterval: '1h' });
    const withTime = {
      ...p,
      metadata: { ...p.metadata, creationTimestamp: '2024-05-01T10:00:00Z' },
      status: { observedGeneration: 1, phase: 'Completed' as const, completionTime: '2024-05-01T10:02:00Z' },
    };
    const plan = planRefreshes(new Map([['shop/b', withTime]]), new Overlays(), NOW);
    expect(plan.writes.flatMap((s) => s.writes)).to.deep.equal([]);
    expect(plan.dueAtMs).to.equal(Date.parse('2024-05-01T11:02:00Z'));
    const deleting = { ...annotated('x'), metadata: { ...annotated('x').metadata, deletionTimestamp: '2024-05-01T10:04:00Z' } };
    expect(planRefreshes(new Map([['shop/a', deleting]]), new Overlays(), NOW).writes.flatMap((s) => s.writes)).to.deep.equal([]);
  });
});
