// Mocha's spec reporter plus one closing line in the plain "N passed, N failed" form that CI reads. It also
// prints how long each slow hook and each file's top-level suite took (hooks are where clusters start and
// stop, and mocha times only tests), and the slowest suites at the end: where the suite's time goes.
'use strict';
const Mocha = require('mocha');

const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END, EVENT_HOOK_BEGIN, EVENT_HOOK_END } = Mocha.Runner.constants;
/** Hooks and suites shorter than this are not worth a line of their own. */
const SLOW_MS = 5_000;
const SLOWEST_SHOWN = 15;

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

class KwarmReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const suiteStarts = new Map();
    const hookStarts = new Map();
    const suiteTimes = [];
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      if (suite.parent?.root === true) suiteStarts.set(suite, Date.now());
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      const started = suiteStarts.get(suite);
      if (started === undefined) return;
      suiteStarts.delete(suite);
      const ms = Date.now() - started;
      suiteTimes.push({ title: suite.title, file: suite.file ?? '', ms });
      if (ms >= SLOW_MS) process.stdout.write(`  [time] ${suite.title}: ${seconds(ms)}\n`);
    });
    runner.on(EVENT_HOOK_BEGIN, (hook) => hookStarts.set(hook, Date.now()));
    runner.on(EVENT_HOOK_END, (hook) => {
      const started = hookStarts.get(hook);
      hookStarts.delete(hook);
      if (started === undefined) return;
      const ms = Date.now() - started;
      if (ms >= SLOW_MS) process.stdout.write(`    [time] ${hook.title}: ${seconds(ms)}\n`);
    });
    runner.once(EVENT_RUN_END, () => {
      const slowest = [...suiteTimes].sort((a, b) => b.ms - a.ms).slice(0, SLOWEST_SHOWN);
      if (slowest.length > 0) {
        process.stdout.write('\n  slowest suites:\n');
        for (const s of slowest) process.stdout.write(`    ${seconds(s.ms).padStart(8)}  ${s.file.replace(process.cwd() + '/', '')}: ${s.title}\n`);
      }
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      process.stdout.write(`\nkwarm: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}
module.exports = KwarmReporter;
