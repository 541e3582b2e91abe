/**
 * Runs the data-plane chaos script as CI does: three metadata members and three data nodes,
 * kill -9 for 60 s with node losses (a primary killed right after it acknowledged, its disk
 * wiped, back empty), then no write acknowledged at `replicated` lost — cold blocks written
 * before the load included — and no replica diverging from its primary; kill -9 of a data node or the
 * metadata leader timed to land during snapshot deletes and restores, and every block at every
 * surviving snapshot and live as the snapshot actor's model says. A second, short run injects a lost
 * write, a divergent replica and a snapshot read the model wrongly expects, and all three must be
 * caught, so the first run's zeros mean something.
 */
import { strict as assert } from 'node:assert';
import { killRunningChaos, runChaosScript } from './run-chaos.js';

const summaryPattern = /^kills: (\d+), writes: (\d+), acknowledged: (\d+), lost writes: (\d+), divergent replicas: (\d+)(, not settled)?$/m;

const runChaos = (args: string[], timeoutMs: number) => runChaosScript('chaos/dataplane-chaos.ts', args, timeoutMs);

interface Summary {
  kills: number;
  writes: number;
  acknowledged: number;
  lost: number;
  divergent: number;
  settled: boolean;
}

function summaryOf(output: string): Summary {
  const m = summaryPattern.exec(output);
  assert.ok(m !== null, `no summary line in the output:\n${output}`);
  return { kills: Number(m[1]), writes: Number(m[2]), acknowledged: Number(m[3]), lost: Number(m[4]), divergent: Number(m[5]), settled: m[6] === undefined };
}

describe('data-plane chaos run (3 metadata + 3 data nodes, kill -9, loss and divergence checks)', function () {
  this.timeout(180_000);

  afterEach(() => killRunningChaos());

  it('loses no replicated write and leaves identical replicas after 60 s of kill -9 and node loss', async () => {
    const { code, output } = await runChaos(['--seconds', '60', '--node-loss-every', '2'], 150_000);
    const s = summaryOf(output);
    assert.ok(s.settled, `the cluster did not settle:\n${output}`);
    assert.equal(s.lost, 0, output);
    assert.equal(s.divergent, 0, output);
    assert.equal(code, 0, output);
    assert.ok(s.kills >= 5, `only ${s.kills} kills:\n${output}`);
    assert.ok(s.acknowledged >= 500, `too little load to mean anything:\n${output}`);
    assert.match(output, /register check: linearizable/);
    // The disk of a primary was lost at least once, and the cold blocks were in the final reads.
    const losses = /node losses: (\d+)/.exec(output);
    assert.ok(losses !== null && Number(losses[1]) >= 1, `no node loss happened:\n${output}`);
    assert.match(output, /cold blocks: 32 written once/);
    // The long outages must have made the metadata leader move primaries (epoch > 1 somewhere):
    // otherwise the run never exercised failover.
    const epochs = /epochs: min (\d+), max (\d+)/.exec(output);
    assert.ok(epochs !== null && Number(epochs[2]) >= 2, `no placement group changed epoch, failover never ran:\n${output}`);
    // Snapshots: kill -9 landed during snapshot deletes / restores, and every surviving snapshot and the live volume read as the model says.
    const snaps = /snapshot reads at every surviving snapshot and live: (\d+), not as the model says: (\d+)/.exec(output);
    assert.ok(snaps !== null && Number(snaps[1]) > 0 && Number(snaps[2]) === 0, output);
    const during = /kill -9 during them: (\d+)/.exec(output);
    assert.ok(during !== null && Number(during[1]) >= 1, `no kill landed during a snapshot delete or restore:\n${output}`);
  });

  it('catches a lost replicated write and a replica that diverged from its primary', async () => {
    const { code, output } = await runChaos(['--seconds', '3', '--kill-interval-ms', '600000', '--inject-loss', '--inject-divergence', '--inject-snapshot-loss'], 120_000);
    const s = summaryOf(output);
    assert.equal(s.lost, 1, output);
    assert.equal(s.divergent, 1, output);
    assert.match(output, /LOST: block 3\/0 acknowledged injected-never-sent/);
    assert.match(output, /DIVERGENT: pg \d+ replica dn\d .*injected-divergent/);
    assert.match(output, /register check: violation/);
    assert.match(output, /not as the model says: 1 \(FAIL\)/);
    assert.match(output, /SNAPSHOT LOST: block 5\/0 at \S+: reads .*, the model says "injected-never-written"/);
    assert.equal(code, 1, output);
  });
});
