import { expect } from 'chai';
import { decode } from '../../../api/schema.ts';
import { nodeImageSetSchema, type NodeImageSet } from '../../../api/v1alpha1/index.ts';
import { renderTable, shortImage } from '../../../demo/live-table.ts';

function nis(name: string, spec: string[], status: unknown[]): NodeImageSet {
  const r = decode(nodeImageSetSchema, {
    apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet', metadata: { name },
    spec: { images: spec.map((image) => ({ image })) },
    status: { images: status },
  });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

describe('demo/live-table', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');

  it('shows every node against every image with phase and duration', () => {
    const out = renderTable({
      now: t0 + 2500,
      images: ['127.0.0.1:5000/demo/app:v1', '127.0.0.1:5000/demo/app:v2'],
      nodeImageSets: [
        nis('node-b', ['127.0.0.1:5000/demo/app:v2'], [
          { image: '127.0.0.1:5000/demo/app:v2', phase: 'Pulling', startedAt: '2026-01-01T00:00:01Z' },
        ]),
        nis('node-a', ['127.0.0.1:5000/demo/app:v1', '127.0.0.1:5000/demo/app:v2'], [
          { image: '127.0.0.1:5000/demo/app:v1', phase: 'Completed', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:01.200Z' },
          { image: '127.0.0.1:5000/demo/app:v2', phase: 'Failed', reason: 'NotFound' },
        ]),
        nis('node-c', ['127.0.0.1:5000/demo/app:v2'], []),
      ],
    });
    const lines = out.split('\n');
    expect(lines[0]).to.match(/^NODE\s+app:v1\s+app:v2$/);
    expect(lines[1]).to.match(/^node-a\s+Completed 1\.2s\s+Failed \(NotFound\)$/);
    expect(lines[2]).to.match(/^node-b\s+-\s+Pulling 1\.5s$/);
    expect(lines[3]).to.match(/^node-c\s+-\s+Pending$/);
  });

  it('names images by their last path part', () => {
    expect(shortImage('registry.example.com:5000/team/app:v2')).to.equal('app:v2');
  });
});
