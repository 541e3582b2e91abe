/**
 * Every simulator seed that ever failed, replayed as a named test. One line per seed: what it
 * caught. Seeds found before a later change to the simulator's fault model no longer replay the
 * exact failing trace, but they stay here: they still drive the cluster through the kind of
 * schedule that exposed the bug (and cost well under a second each).
 *
 * Replay any of them by hand with the command in `replayCommand(...)`, e.g.
 *   npm run sim -- --seeds 1 --from 1503 --nodes 3 --steps 2500
 */
import assert from 'node:assert/strict';
import { runSeed } from '../../sim/run.js';

interface Regression {
  name: string;
  seed: number;
  nodes: 3 | 5;
  steps: number;
  /** Run with the simulator's direct rule checks off (symptoms only), as when it was found. */
  symptomsOnly?: boolean;
  caught: string;
}

const regressions: Regression[] = [
  { name: 'snapshot-lost-before-persist', seed: 1503, nodes: 3, steps: 2500,
    caught: 'core liveness bug: a follower crashed after receiving a Snap but before persisting it; the leader stayed in snapshot state forever (fixed: re-probe after an election timeout of heartbeat answers)' },
  { name: 'stale-leader-appends-at-committed-index', seed: 46, nodes: 5, steps: 2500,
    caught: 'checker bug: flagged a deposed leader for appending at an index others had committed (only a node\'s own committed prefix is protected)' },
  { name: 'commit-under-previous-configuration', seed: 131, nodes: 3, steps: 2500,
    caught: 'checker bug: durable-quorum check used the configuration applied after the commit was decided' },
  { name: 'commit-under-previous-configuration-5', seed: 132, nodes: 5, steps: 2500,
    caught: 'checker bug: as 131, five nodes' },
  { name: 'vote-superseded-by-later-term', seed: 1267, nodes: 3, steps: 2500,
    caught: 'checker bug: a vote answered in term t while term t+1 was already durable is safe (found with the commit-rule bug injected)' },
  { name: 'figure-8-commit-by-counting', seed: 544, nodes: 5, steps: 20_000, symptomsOnly: true,
    caught: 'injected bug (leader commits an earlier-term entry by counting): a later leader lacked a committed entry (leader completeness)' },
  { name: 'vote-acknowledged-before-durable', seed: 327, nodes: 3, steps: 2500, symptomsOnly: true,
    caught: 'injected bug (VoteResp sent before the vote was persisted): a restarted node voted twice in one term; two leaders in term 2' },
  { name: 'vote-acknowledged-before-durable-5', seed: 4200, nodes: 5, steps: 2500, symptomsOnly: true,
    caught: 'injected bug as above, five nodes: two leaders in term 3' },
  { name: 'term-backwards-after-restart', seed: 7, nodes: 3, steps: 2500, symptomsOnly: true,
    caught: 'injected vote bug: a node restarted with a term below one it had already answered in' },
];

describe('raft regressions (simulator seeds that once failed)', function () {
  this.timeout(60_000);
  for (const r of regressions) {
    it(`${r.name} (seed ${r.seed}, ${r.nodes} nodes): ${r.caught.split(':')[0]}`, () => {
      const out = runSeed({ seed: r.seed, nodes: r.nodes, steps: r.steps, directChecks: r.symptomsOnly !== true });
      assert.ok(out.ok, `${out.failure}\n  replay: ${out.replay}`);
    });
  }
});
