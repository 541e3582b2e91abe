/**
 * Every simulator seed that ever failed, replayed as a named test, with a one-line note of what
 * it caught. Replay one by hand (add --verbose for the event log):
 *   npm run sim -- --seeds 1 --from 2067 --nodes 3 --steps 8000 --symptoms-only
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

// Found with the current simulator (seed, nodes and steps replay the failing schedule exactly).
// Entries marked "injected" were found with a bug put in on purpose (see test/sim/README.md)
// and pass with the real core: they keep those schedules in the suite.
const regressions: Regression[] = [
  { name: 'stale-config-voter-outruns-candidate', seed: 9219, nodes: 3, steps: 8000,
    caught: 'core liveness bug (no PreVote): a lagging voter with a stale configuration never addressed the real candidate, which never learned the higher term; fixed: a lower-term Vote is refused with our term (§5.1)' },
  { name: 'stale-removed-leader-in-liveness-probe', seed: 3324, nodes: 5, steps: 8000,
    caught: 'sim bug: the liveness probe proposed at a removed node still leading term 1 (no CheckQuorum/PreVote), not at the leader of the highest term' },
  { name: 'figure-8-commit-by-counting', seed: 2067, nodes: 3, steps: 8000, symptomsOnly: true,
    caught: 'injected bug (leader commits an earlier-term entry by counting): a later leader lacked a committed entry (leader completeness)' },
  { name: 'vote-before-durable-two-leaders', seed: 669, nodes: 3, steps: 8000, symptomsOnly: true,
    caught: 'injected bug (VoteResp sent before the vote was persisted): n1 restarted at term 1 after answering in term 21; with that check off, it voted again and two leaders held term 21' },
  { name: 'vote-before-durable-two-leaders-5', seed: 1808, nodes: 5, steps: 8000, symptomsOnly: true,
    caught: 'injected bug as above, five nodes: term went back on restart; with that check off, two leaders in term 7' },
  { name: 'vote-before-durable-term-backwards', seed: 1, nodes: 3, steps: 8000, symptomsOnly: true,
    caught: 'injected vote bug: a node restarted with a term below one it had already answered in' },
  { name: 'vote-before-durable-no-progress', seed: 2063, nodes: 3, steps: 8000, symptomsOnly: true,
    caught: 'injected vote bug: the cluster failed to commit after healing' },
  // Found with earlier versions of the fault model (the seeds now drive different schedules).
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
  { name: 'figure-8-commit-by-counting-early', seed: 544, nodes: 5, steps: 20_000, symptomsOnly: true,
    caught: 'injected commit-rule bug: leader completeness violated (first emergent find)' },
  { name: 'vote-before-durable-early', seed: 327, nodes: 3, steps: 2500, symptomsOnly: true,
    caught: 'injected vote bug: double vote, then two leaders in term 2' },
  { name: 'vote-before-durable-early-5', seed: 4200, nodes: 5, steps: 2500, symptomsOnly: true,
    caught: 'injected vote bug: two leaders in term 3' },
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
