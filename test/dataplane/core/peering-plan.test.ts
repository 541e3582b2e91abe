/**
 * The sequencing of peering as a new primary (dataplane/core/peering-plan.ts), as transcripts:
 * each test plays the moves against a journal watermark the way the block server's
 * `peerAsPrimary` carries them out, and checks the moves in order.
 */
import assert from 'node:assert/strict';
import { nextPeeringMove, peeringProbed, startPeering, type CoreFaults, type PeeringMove, type PeeringPlan } from '../../../dataplane/core/index.js';

function plan(mineHighest: number, answers: { id: string; applied: number; highest: number }[], everyMustAnswer = true, maxRounds = 8, faults: CoreFaults = {}): PeeringPlan {
  const s = startPeering(mineHighest, answers.map((a) => ({ id: a.id, state: { applied: a.applied, highest: a.highest } })), everyMustAnswer, maxRounds, faults);
  assert.ok(s.ok);
  return s.plan;
}

describe('dataplane/core peering plan', () => {
  it('fails at once on a missing answer with a metadata service; leaves it behind without one', () => {
    const answers = [{ id: 'b', state: null }, { id: 'c', state: { applied: 2, highest: 2 } }];
    assert.deepEqual(startPeering(2, answers, true, 8), { ok: false, missing: ['b'] });
    const s = startPeering(2, answers, false, 8);
    assert.ok(s.ok);
    assert.deepEqual(s.plan.reached.map((a) => a.id), ['c']);
  });

  it('pulls from the most complete member first, skips one the pull overtook, then is done and names those behind', () => {
    const p = plan(3, [{ id: 'b', applied: 5, highest: 9 }, { id: 'c', applied: 8, highest: 8 }, { id: 'd', applied: 1, highest: 3 }]);
    assert.equal(p.groupHighest, 9);
    assert.deepEqual(nextPeeringMove(p, 3, false), { t: 'pull', from: 'c' });
    // c's pull brought 4..8; b still holds 9.
    assert.deepEqual(nextPeeringMove(p, 8, false), { t: 'pull', from: 'b' });
    assert.deepEqual(nextPeeringMove(p, 9, false), { t: 'done', groupHighest: 9, catchUp: ['b', 'c', 'd'] });
  });

  it('a seq nobody holds: probed once, then a noop in its own round; a held one: wait and pull again', () => {
    const p = plan(2, [{ id: 'b', applied: 2, highest: 5 }]);
    assert.deepEqual(nextPeeringMove(p, 2, false), { t: 'pull', from: 'b' });
    // b holds 4 and 5 but not 3 (a gap): the pull moved nothing.
    const probe = nextPeeringMove(p, 2, false);
    assert.deepEqual(probe, { t: 'probe', seq: 3 });
    peeringProbed(p, 3, false);
    assert.deepEqual(nextPeeringMove(p, 2, false), { t: 'noop', seq: 3 });
    assert.equal(p.round, 1);
    assert.deepEqual(nextPeeringMove(p, 3, false), { t: 'pull', from: 'b' });
    assert.deepEqual(nextPeeringMove(p, 5, false), { t: 'done', groupHighest: 5, catchUp: ['b'] });

    const q = plan(2, [{ id: 'b', applied: 2, highest: 5 }]);
    nextPeeringMove(q, 2, false);
    nextPeeringMove(q, 2, false);
    peeringProbed(q, 3, true);
    assert.deepEqual(nextPeeringMove(q, 2, false), { t: 'wait' }, 'a member got seq 3 since it answered: look again');
  });

  it('while a catch-up of the PG runs, the next missing seq is waited for, not probed', () => {
    const p = plan(2, [{ id: 'b', applied: 2, highest: 4 }]);
    nextPeeringMove(p, 2, true);
    assert.deepEqual(nextPeeringMove(p, 2, true), { t: 'wait' });
  });

  it('gives up after its rounds when seqs are still missing; leaves them behind without a metadata service', () => {
    const p = plan(2, [{ id: 'b', applied: 2, highest: 6 }], true, 2);
    const moves: PeeringMove['t'][] = [];
    for (;;) {
      const m = nextPeeringMove(p, 2, true);
      moves.push(m.t);
      if (m.t === 'fail') { assert.deepEqual(m, { t: 'fail', from: 3, to: 6 }); break; }
    }
    assert.deepEqual(moves, ['pull', 'wait', 'pull', 'wait', 'fail']);
    const q = plan(2, [{ id: 'b', applied: 2, highest: 6 }], false);
    assert.deepEqual(nextPeeringMove(q, 2, false), { t: 'pull', from: 'b' });
    assert.deepEqual(nextPeeringMove(q, 4, false), { t: 'done', groupHighest: 6, catchUp: ['b'] }, 'static placements leave the rest behind');
  });

  it('a finished plan makes no more moves, and a probe is answered once', () => {
    const p = plan(4, [{ id: 'b', applied: 4, highest: 4 }]);
    assert.deepEqual(nextPeeringMove(p, 4, false), { t: 'done', groupHighest: 4, catchUp: [] });
    assert.throws(() => nextPeeringMove(p, 4, false), /finished peering/);
    assert.throws(() => peeringProbed(p, 5, true), /answered once/);
  });

  it('the test-only skipPeeringCatchUp break: done at once, pulling nothing, yet serving above the group\'s highest seq (the core and the server both ask this plan)', () => {
    const answers = [{ id: 'b', applied: 5, highest: 9 }, { id: 'c', applied: 2, highest: 2 }];
    assert.deepEqual(nextPeeringMove(plan(3, answers), 3, false), { t: 'pull', from: 'b' }, 'intact: b holds more');
    const p = plan(3, answers, true, 8, { skipPeeringCatchUp: true });
    assert.deepEqual(nextPeeringMove(p, 3, false), { t: 'done', groupHighest: 9, catchUp: ['c'] });
    assert.throws(() => nextPeeringMove(p, 3, false), /finished peering/);
  });
});
