/**
 * The deterministic simulator as a test: many seeds of 3- and 5-node clusters under faults,
 * every safety property checked after every event, liveness after healing. A failure names the
 * seed and the command that replays it.
 */
import assert from 'node:assert/strict';
import { defaultSteps, runSeed, type SimResult } from './run.js';

const seedsPerBatch = 125;
const batches = 8; // 1,000 seeds, alternating 3 and 5 nodes

function describeFailures(results: SimResult[]): string {
  return results.filter((r) => !r.ok).map((r) => `seed ${r.seed} (${r.nodes} nodes): ${r.failure}\n    replay: ${r.replay}`).join('\n');
}

describe('sim: deterministic cluster simulation', function () {
  this.timeout(120_000);

  it('replays a seed exactly: same seed, same trace hash; another seed, another trace', () => {
    const a = runSeed({ seed: 4242, nodes: 5, steps: defaultSteps });
    const b = runSeed({ seed: 4242, nodes: 5, steps: defaultSteps });
    const c = runSeed({ seed: 4243, nodes: 5, steps: defaultSteps });
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.stats, b.stats);
    assert.notEqual(a.traceHash, c.traceHash);
    const d = runSeed({ seed: 77, nodes: 3, steps: defaultSteps });
    const e = runSeed({ seed: 77, nodes: 3, steps: defaultSteps });
    assert.equal(d.traceHash, e.traceHash);
  });

  for (let batch = 0; batch < batches; batch++) {
    const from = 1 + batch * seedsPerBatch;
    it(`seeds ${from}..${from + seedsPerBatch - 1} keep every safety property and recover after healing`, () => {
      const results: SimResult[] = [];
      for (let seed = from; seed < from + seedsPerBatch; seed++) {
        results.push(runSeed({ seed, nodes: seed % 2 === 0 ? 5 : 3, steps: defaultSteps }));
      }
      const failures = describeFailures(results);
      assert.equal(failures, '', `failing seeds:\n${failures}`);
      // The faults must actually happen, or the run proves nothing.
      const sum = (k: keyof SimResult['stats']): number => results.reduce((s, r) => s + r.stats[k], 0);
      assert.ok(sum('elections') > seedsPerBatch, 'elections happened');
      assert.ok(sum('crashes') > seedsPerBatch, 'crashes happened');
      assert.ok(sum('snapshotsInstalled') > 0, 'snapshots were installed');
      assert.ok(sum('readsServed') > 0 && sum('writesAcked') > 0, 'clients were served');
    });
  }
});
