// The API reference names every failure reason the agent can write into a NodeImageSet.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { PULL_FAILURE_REASONS } from '../../../agent/pull-errors.ts';
import { BARRIER_EVENT_REASONS, HOLD_REASONS, LIFT_REASONS } from '../../../controller/warmup/barrier-decision.ts';

describe('docs: pull failure reasons', () => {
  it('lists every reason of agent/pull-errors.ts in the NodeImageSet status reference', () => {
    const row = readFileSync('docs/api-reference.md', 'utf8').split('\n').find((l) => l.startsWith('| `status.images[].reason`'));
    expect(row, 'a status.images[].reason row').to.not.equal(undefined);
    for (const reason of PULL_FAILURE_REASONS) expect(row).to.include(reason);
  });
});

describe('docs: warm-up barrier reasons', () => {
  it('lists every ImagesWarm reason and barrier Event in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const start = readme.indexOf('## Node warm-up barrier');
    expect(start).to.be.greaterThan(-1);
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    for (const reason of [...LIFT_REASONS, ...HOLD_REASONS]) expect(section, reason).to.match(new RegExp(`^\\| \`(True|False)\` \\| \`${reason}\` \\|`, 'mu'));
    for (const reason of BARRIER_EVENT_REASONS) expect(section, reason).to.include(`\`${reason}\``);
  });
});
