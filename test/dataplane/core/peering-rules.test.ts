/**
 * Peering, catch-up and rejoin decisions the core and the block server share
 * (dataplane/core/peering-rules.ts). Pure: one case per rule; the transcripts in pg.test.ts and
 * the simulator cover them inside the core, the server's integration suites inside the server.
 */
import assert from 'node:assert/strict';
import {
  behindAfterPeering, catchUpAfterFetch, catchUpTrimmed, groupHighestSeq, handBackConcern, isStaleCopy, nextHole, peeringMustFail, pullOrder,
} from '../../../dataplane/core/index.js';

describe('dataplane/core peering rules', () => {
  it('a copy is stale only for a member re-added after the newest epoch its store recorded, while it holds something', () => {
    assert.equal(isStaleCopy(true, 7, 5, true), true);
    assert.equal(isStaleCopy(true, 5, 5, true), false, 'added at an epoch this copy saw: it followed the group since');
    assert.equal(isStaleCopy(true, undefined, 5, true), false, 'a member from the start');
    assert.equal(isStaleCopy(true, 7, 5, false), false, 'an empty copy has nothing to get wrong');
    assert.equal(isStaleCopy(false, 7, 5, true), false, 'not a member: a hand-back, not a rejoin');
  });

  it('the group\'s highest seq is the highest any member holds, this node included', () => {
    assert.equal(groupHighestSeq(4, [{ applied: 3, highest: 9 }, { applied: 6, highest: 6 }]), 9);
    assert.equal(groupHighestSeq(12, [{ applied: 3, highest: 9 }]), 12);
    assert.equal(groupHighestSeq(0, []), 0);
  });

  it('peering fails on a missing answer only when every replica must answer (with a metadata service)', () => {
    assert.equal(peeringMustFail(1, true), true);
    assert.equal(peeringMustFail(1, false), false, 'static placements leave the unreachable behind');
    assert.equal(peeringMustFail(0, true), false);
  });

  it('pulls from the most complete journals first and skips members holding nothing beyond this one', () => {
    const a = { id: 'a', state: { applied: 5, highest: 9 } };
    const b = { id: 'b', state: { applied: 8, highest: 8 } };
    const c = { id: 'c', state: { applied: 5, highest: 12 } };
    const d = { id: 'd', state: { applied: 2, highest: 4 } };
    assert.deepEqual(pullOrder([a, b, c, d], 4).map((x) => x.id), ['b', 'c', 'a']);
  });

  it('the next missing seq: done at the group\'s highest, left behind without a metadata service, pulled if held, else a noop', () => {
    assert.equal(nextHole(9, 9, true, false), 'done');
    assert.equal(nextHole(7, 9, false, true), 'leave');
    assert.equal(nextHole(7, 9, true, true), 'pull');
    assert.equal(nextHole(7, 9, true, false), 'noop');
  });

  it('after peering, the members behind the primary\'s watermark are told to catch up', () => {
    assert.deepEqual(behindAfterPeering([['b', 3], ['c', 9], ['d', 8]], 9), ['b', 'd']);
  });

  it('a handed-back block is written replicated when another replica can hold it, else durable on the primary', () => {
    assert.equal(handBackConcern(1), 'replicated');
    assert.equal(handBackConcern(0), 'durable');
  });

  it('a catch-up goes on while batches move the watermark; a trimmed journal is copied in full once', () => {
    assert.equal(catchUpAfterFetch(0, 5, null), 'done', 'nothing fetched');
    assert.equal(catchUpAfterFetch(3, 5, null), 'more', 'fetched, not applied yet');
    assert.equal(catchUpAfterFetch(3, 5, 5), 'done', 'the entries above a gap are not there yet');
    assert.equal(catchUpAfterFetch(3, 5, 8), 'more');
    assert.equal(catchUpTrimmed(false), 'resync');
    assert.equal(catchUpTrimmed(true), 'fail');
  });
});
