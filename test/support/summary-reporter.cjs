// Mocha's spec output, then the slowest test files (to keep CI within its budget), closed by one
// plain line "N passed, N failed[, N skipped]" that CI reads.
'use strict';
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END } = Mocha.Runner.constants;

/** How many of the slowest test files the summary names. */
const slowestFilesShown = 12;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const fileMs = new Map();
    const started = new Map();
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      if (suite.file !== undefined && suite.parent?.root === true) started.set(suite, Date.now());
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      const t = started.get(suite);
      if (t !== undefined) fileMs.set(suite.file, (fileMs.get(suite.file) ?? 0) + Date.now() - t);
    });
    runner.once(EVENT_RUN_END, () => {
      const slowest = [...fileMs].sort((a, b) => b[1] - a[1]).slice(0, slowestFilesShown);
      if (slowest.length > 1) {
        process.stdout.write(`\nslowest test files:\n${slowest.map(([f, ms]) => `  ${(ms / 1000).toFixed(1).padStart(6)} s  ${f.replace(`${process.cwd()}/`, '')}`).join('\n')}\n`);
      }
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      const skipped = s.pending > 0 ? `, ${s.pending} skipped` : '';
      process.stdout.write(`\n${s.passes} passed, ${s.failures} failed${skipped}\n`);
    });
  }
}
module.exports = SummaryReporter;
