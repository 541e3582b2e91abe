/**
 * The data-plane simulator as a test: 600 seeds of 3–5 data nodes under faults, every property
 * checked after every event, convergence after healing. A failure names the seed and the command
 * that replays it.
 */
import assert from 'node:assert/strict';
import { runSeed, type SimResult } from './run.js';

const seedsPerBatch = 150;
const batches = 4; // 600 seeds

function describeFailures(results: SimResult[]): string {
  return results.filter((r) => !r.ok).map((r) => `seed ${r.seed}: ${r.failure}\n    replay: ${r.replay}`).join('\n');
}

describe('sim-dataplane: deterministic replication simulation', function () {
  this.timeout(120_000);

  it('replays a seed exactly: same seed, same trace hash; another seed, another trace', () => {
    const a = runSeed(4242);
    const b = runSeed(4242);
    const c = runSeed(4243);
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.stats, b.stats);
    assert.notEqual(a.traceHash, c.traceHash);
  });

  for (let batch = 0; batch < batches; batch++) {
    const from = 1 + batch * seedsPerBatch;
    it(`seeds ${from}..${from + seedsPerBatch - 1} keep every property and converge after healing`, () => {
      const results: SimResult[] = [];
      for (let seed = from; seed < from + seedsPerBatch; seed++) results.push(runSeed(seed));
      const failures = describeFailures(results);
      assert.equal(failures, '', `failing seeds:\n${failures}`);
      // The faults must actually happen, or the run proves nothing.
      const sum = (k: keyof SimResult['stats']): number => results.reduce((s, r) => s + r.stats[k], 0);
      for (const k of ['crashes', 'wipes', 'partitions', 'isolations', 'failovers', 'handBacks', 'fullResyncs', 'writesAcked', 'readsServed'] as const) {
        assert.ok(sum(k) > seedsPerBatch / 10, `${k} happened (${sum(k)})`);
      }
    });
  }
});
