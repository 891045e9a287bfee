import { expect } from 'chai';
import type { NodeImage } from '../../../api/v1alpha1/nodeimageset.ts';
import type { ImageRecord } from '../../../agent/image-record.ts';
import { nextStep, secretsChanged, waitsForSecretChange, type NextStepInput } from '../../../agent/pull-decision.ts';
import { pullFailure } from '../../../agent/pull-errors.ts';

const entry: NodeImage = {
  image: 'registry.example/team/app:1', pullSecrets: ['regcred'], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: 0, sources: [],
};

function input(extra: Partial<NextStepInput>): NextStepInput {
  return {
    failure: pullFailure('RegistryUnavailable', '503 Service Unavailable'),
    attempts: 1,
    retry: entry.retry,
    runtimeWaits: 0,
    runtimeRetryMs: { initial: 500, max: 5000 },
    previousDelaySeconds: undefined,
    maxBackoffSeconds: 3600,
    random: () => 0.5,
    ...extra,
  };
}

describe('agent/pull-decision', () => {
  describe('nextStep', () => {
    it('waits for an absent runtime, doubling from the first wait up to the ceiling, whatever the attempts', () => {
      const f = pullFailure('RuntimeUnavailable', 'connect ENOENT');
      expect([0, 1, 2, 3, 4, 30].map((w) => nextStep(input({ failure: f, runtimeWaits: w, attempts: 99 }))))
        .to.deep.equal([500, 1000, 2000, 4000, 5000, 5000].map((delayMs) => ({ kind: 'wait-for-runtime', delayMs })));
    });

    it('retries a transient failure after a decorrelated back-off from backoffSeconds, until maxAttempts', () => {
      expect(nextStep(input({ attempts: 1 }))).to.deep.equal({ kind: 'retry', delaySeconds: 30 + 0.5 * (90 - 30) });
      expect(nextStep(input({ attempts: 2, previousDelaySeconds: 60 }))).to.deep.equal({ kind: 'retry', delaySeconds: 30 + 0.5 * (180 - 30) });
      expect(nextStep(input({ attempts: 3 }))).to.deep.equal({ kind: 'give-up' });
    });

    it('honours backoffSeconds above 600 (the API allows up to 3600)', () => {
      const step = nextStep(input({ retry: { maxAttempts: 3, backoffSeconds: 1800 }, random: () => 0 }));
      expect(step).to.deep.equal({ kind: 'retry', delaySeconds: 1800 });
    });

    it('gives up at once on a permanent failure', () => {
      expect(nextStep(input({ failure: pullFailure('NotFound', 'manifest unknown') }))).to.deep.equal({ kind: 'give-up' });
      expect(nextStep(input({ failure: pullFailure('Unauthorized', '401 Unauthorized') }))).to.deep.equal({ kind: 'give-up' });
    });
  });

  describe('pull secret rotation', () => {
    const failed: ImageRecord = { image: entry.image, phase: 'Failed', round: 0, attempts: 1, reason: 'Unauthorized', secretsVersion: 'v1' };

    it('only an Unauthorized failure with pull secrets waits for them to change', () => {
      expect(waitsForSecretChange(failed, entry)).to.equal(true);
      expect(waitsForSecretChange({ ...failed, reason: 'NotFound' }, entry)).to.equal(false);
      expect(waitsForSecretChange({ ...failed, phase: 'Pending' }, entry)).to.equal(false);
      expect(waitsForSecretChange(failed, { ...entry, pullSecrets: [] })).to.equal(false);
    });

    it('retries when the secrets read now differ from those the failed attempt used', () => {
      expect(secretsChanged(failed, entry, 'v1')).to.equal(false);
      expect(secretsChanged(failed, entry, 'v2')).to.equal(true);
      // A status written before secretsVersion existed: tried once more.
      const { secretsVersion: _unused, ...older } = failed;
      expect(secretsChanged(older, entry, 'v1')).to.equal(true);
    });
  });
});
