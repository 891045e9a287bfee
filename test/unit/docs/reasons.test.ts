// The API reference names every failure reason the agent can write into a NodeImageSet.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { PULL_FAILURE_REASONS } from '../../../agent/pull-errors.ts';

describe('docs: pull failure reasons', () => {
  it('lists every reason of agent/pull-errors.ts in the NodeImageSet status reference', () => {
    const row = readFileSync('docs/api-reference.md', 'utf8').split('\n').find((l) => l.startsWith('| `status.images[].reason`'));
    expect(row, 'a status.images[].reason row').to.not.equal(undefined);
    for (const reason of PULL_FAILURE_REASONS) expect(row).to.include(reason);
  });
});
