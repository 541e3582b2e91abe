/**
 * The shell simulator (shell/): the block server's own Replicators, lease guards and agents on
 * the in-memory store, network and clock, under seeded faults. A batch of seeds passes every
 * check, one seed replays to the same trace, a break of the core is caught, and the server bug
 * the simulator found stays fixed.
 */
import assert from 'node:assert/strict';
import { runShellSeed, type ShellResult } from './shell/run.js';
import type { BreakName } from '../../dataplane/core/index.js';

/** Seeds of the batch: about 8–14 s on the shared 2-core machine (50–90 ms a seed). */
const batchSeeds = 150;

function failureOf(r: ShellResult): string {
  return `${r.failure ?? ''}\n  replay: ${r.replay}`;
}

describe('shell simulator (the server\'s Replicators on the in-memory store, network and clock)', function () {
  this.timeout(120_000);

  it(`${batchSeeds} seeds pass every check, with crashes, partitions, metadata cuts, isolations, drops, trims and failovers among them`, async () => {
    const totals = { crashes: 0, partitions: 0, metaCuts: 0, isolations: 0, failovers: 0, dropped: 0, trims: 0, writesAcked: 0, readsServed: 0 };
    for (let seed = 1; seed <= batchSeeds; seed++) {
      const r = await runShellSeed(seed);
      assert.ok(r.ok, `seed ${seed}: ${failureOf(r)}`);
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.stats[k];
    }
    for (const [k, v] of Object.entries(totals)) assert.ok(v > 0, `the batch saw no ${k}`);
  });

  it('one seed replays to the same trace; another seed makes another', async () => {
    const a = await runShellSeed(7);
    const b = await runShellSeed(7);
    const c = await runShellSeed(8);
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.stats, b.stats);
    assert.notEqual(a.traceHash, c.traceHash);
  });

  /**
   * The first seed of 1..`within` the break fails, by the check `expected` names. A search, not
   * one seed: any change to the server moves the traces (a seed that caught a break may stop
   * catching it), while a break caught in tens of seeds per 300 stays caught within these bounds.
   */
  async function caughtWithin(breakName: BreakName, within: number, expected: RegExp, replicaReads = false): Promise<number> {
    for (let seed = 1; seed <= within; seed++) {
      const r = await runShellSeed(seed, { breakName, replicaReads });
      if (!r.ok) {
        assert.match(r.failure ?? '', expected, `seed ${seed} failed, but not as the break should show`);
        return seed;
      }
    }
    assert.fail(`${breakName} went unnoticed in seeds 1–${within}`);
  }

  it('catches ackReplicatedAfterLocalWrite (a replicated write acknowledged after the local write only)', async () => {
    // Caught in 299 of seeds 1–300 (test/sim-dataplane/README.md): the ack's rule check.
    const seed = await caughtWithin('ackReplicatedAfterLocalWrite', 5, /^acked-writes-survive: .* acknowledged replicated is on .* disk, not 2/);
    const intact = await runShellSeed(seed);
    assert.ok(intact.ok, failureOf(intact));
  });

  it('catches trimBeforeReplicasApplied (a primary trims what a replica has not applied)', async () => {
    await caughtWithin('trimBeforeReplicasApplied', 10, /^trim-behind-replicas: /);
  });

  it('catches skipPeeringCatchUp (a new primary pulls nothing at peering): the plan the server plays is the core\'s', async () => {
    // 35 of seeds 1–300. Before the switch reached startPeering, every seed passed with it.
    await caughtWithin('skipPeeringCatchUp', 60, /^converges-after-healing: .* not in sync/);
  });

  it('catches handBackWithoutCompare (a stale copy\'s older blocks taken back): the server asks the core\'s takeHandedBack', async () => {
    // 142 of seeds 1–300, all by the read check by value: the old block comes back at a new seq, so only its value shows it.
    await caughtWithin('handBackWithoutCompare', 20, /^linearizable-reads: .* acknowledged at \d+ before .* was sent/);
  });

  it('catches readFromReplica with replica reads (a replica serves a client read however far behind): the server admits a client read as the core does', async () => {
    // 93 of seeds 1–300 with --replica-reads; intact, every seed passes (before 2026-12-07 the intact server failed 148 of them).
    const seed = await caughtWithin('readFromReplica', 10, /^linearizable-reads: /, true);
    const intact = await runShellSeed(seed, { replicaReads: true });
    assert.ok(intact.ok, failureOf(intact));
  });

  // Regression seeds: each fails on the code before its fix. Found as seeds 166/201, 1031/1896 and
  // 2813; later changes to the server moved every trace (last: a client read admitted as the core
  // admits it), and these are the seeds that fail now with each fix taken out (checked 2026-12-07
  // 05:00 UTC). The late forward to a left node did not recur in 3,000 seeds of the new traces:
  // left-node.test.ts holds it.

  it('seeds 63 and 148: a stale copy being replaced answers a peering probe from nothing, so the new primary peers (it waited for seqs only the stale copies held, and they for it to serve)', async () => {
    // Both fail converges-after-healing when a rejoining copy's journal still answers (block-server.ts, memory-transport.ts).
    for (const seed of [63, 148]) {
      const r = await runShellSeed(seed);
      assert.ok(r.ok, `seed ${seed}: ${failureOf(r)}`);
    }
  });

  it('seeds 119 and 169: an epoch learned from a replica\'s refusal is recorded only for a current copy (a deposed primary left out still hands its copy back; a stale copy is still replaced)', async () => {
    // 169 fails acked-writes-survive and 119 replicas-agree while fenceFromReplica records every assigned epoch (admission.ts).
    for (const seed of [119, 169]) {
      const r = await runShellSeed(seed);
      assert.ok(r.ok, `seed ${seed}: ${failureOf(r)}`);
    }
  });
});
