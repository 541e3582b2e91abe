/**
 * Runs the metadata chaos script as CI does: a real three-member quorum, SIGKILLs for 60 s,
 * then no acknowledged write lost and a linearizable history. A second, short run injects a
 * lost write and must be caught, so the first one's "yes" means something.
 */
import { strict as assert } from 'node:assert';
import { killRunningChaos, runChaosScript } from './run-chaos.js';

const summaryPattern = /^kills: (\d+), operations: (\d+), acknowledged writes: (\d+), lost: (\d+), linearizable: (yes|no|unknown)$/m;

const runChaos = (args: string[], timeoutMs: number) => runChaosScript('chaos/metadata-chaos.ts', args, timeoutMs);

function summaryOf(output: string): { kills: number; operations: number; acknowledged: number; lost: number; linearizable: string } {
  const m = summaryPattern.exec(output);
  assert.ok(m !== null, `no summary line in the output:\n${output}`);
  return { kills: Number(m[1]), operations: Number(m[2]), acknowledged: Number(m[3]), lost: Number(m[4]), linearizable: m[5]! };
}

describe('metadata chaos run (3 members, SIGKILL, linearizability check)', function () {
  this.timeout(180_000);

  afterEach(() => killRunningChaos());

  it('loses no acknowledged write and stays linearizable through 60 s of kill -9', async () => {
    const { code, output } = await runChaos(['--seconds', '60'], 150_000);
    const s = summaryOf(output);
    assert.equal(s.lost, 0, output);
    assert.equal(s.linearizable, 'yes', output);
    assert.equal(code, 0, output);
    assert.ok(s.kills >= 5, `only ${s.kills} kills:\n${output}`);
    assert.ok(/kills of the leader: [1-9]/.test(output), `the leader was never killed:\n${output}`);
    assert.ok(s.operations >= 1_000 && s.acknowledged >= 300, `too little load to mean anything:\n${output}`);
  });

  it('catches an acknowledged write that never reached the cluster', async () => {
    const { code, output } = await runChaos(['--seconds', '3', '--kill-interval-ms', '600000', '--inject-lost-write'], 60_000);
    const s = summaryOf(output);
    assert.equal(s.lost, 1, output);
    assert.equal(s.linearizable, 'no', output);
    assert.match(output, /key label:chaos-k0: not linearizable/);
    assert.equal(code, 1, output);
  });
});
