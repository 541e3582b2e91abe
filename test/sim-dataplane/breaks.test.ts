/**
 * The simulator's power, measured: each deliberate break of the protocol (a test-only switch in
 * the core) must be caught within 300 seeds; each bug the simulator found stays caught at the seed
 * that shows it in today's world (if the world changes, find a new one with
 * `npm run sim:dataplane -- --seeds 3000 --break NAME`) while the fixed core passes that seed.
 */
import assert from 'node:assert/strict';
import { breakNames } from '../../dataplane/core/index.js';
import { runSeed, type AnyBreak } from './run.js';

const maxSeeds = 300;

/** Seeds at which a reintroduced bug fails today; the property each one trips. */
const regressions: { breakName: AnyBreak; seed: number; property: string }[] = [
  { breakName: 'ackBeforeOutOfSyncMark', seed: 28, property: 'linearizable-reads' },
  { breakName: 'recordUnknownEpoch', seed: 190, property: 'replicas-agree' },
  { breakName: 'declineBeforeSync', seed: 122, property: 'acked-writes-survive' },
  // Store bugs (the simulator's store model, store.ts): chaos seed 27654's pg 12, and the resync twin the model found.
  { breakName: 'journalKeptArrivalAsNoop', seed: 195, property: 'replicas-agree' },
  { breakName: 'resyncSkipsOlderBlock', seed: 114, property: 'replicas-agree' },
];

describe('sim-dataplane: every deliberate break is caught', function () {
  this.timeout(120_000);

  for (const breakName of breakNames) {
    it(`${breakName} is caught within ${maxSeeds} seeds`, () => {
      for (let seed = 1; seed <= maxSeeds; seed++) {
        const r = runSeed(seed, { breakName });
        if (!r.ok) return;
      }
      assert.fail(`${breakName} survived ${maxSeeds} seeds`);
    });
  }

  for (const { breakName, seed, property } of regressions) {
    it(`regression: ${breakName} fails seed ${seed} (${property}); the fixed core passes it`, () => {
      const broken = runSeed(seed, { breakName });
      assert.equal(broken.ok, false, `${breakName} at seed ${seed} was not caught: ${broken.replay}`);
      assert.match(broken.failure ?? '', new RegExp(`^${property}`));
      const fixed = runSeed(seed);
      assert.equal(fixed.ok, true, `${fixed.failure ?? ''}\n  replay: ${fixed.replay}`);
    });
  }
});
