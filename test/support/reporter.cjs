// Mocha's spec reporter plus one closing line in the plain "N passed, N failed" form that CI reads.
'use strict';
const Mocha = require('mocha');

class KwarmReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      process.stdout.write(`\nkwarm: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}
module.exports = KwarmReporter;
