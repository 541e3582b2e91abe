/**
 * The replica's decisions the core and the block server share (dataplane/core/replica-rules.ts):
 * the epoch check of a forwarded op, the trim rule and the gap check. Pure: one case per rule.
 */
import assert from 'node:assert/strict';
import { admitPeering, admitReplicaOp, gapCheck, replicaTrimTo } from '../../../dataplane/core/index.js';

describe('dataplane/core replica rules', () => {
  const view = { self: 'b', epoch: 5, faults: {}, placement: { epoch: 5, primary: 'a' } };

  it('refuses an op older than the newest epoch seen STALE_EPOCH (naming it), admits the current and newer ones', () => {
    assert.deepEqual(admitReplicaOp(view, 4), { code: 'STALE_EPOCH', message: 'epoch 4 is older than 5', epoch: 5, primary: null });
    assert.equal(admitReplicaOp(view, 5), null);
    assert.equal(admitReplicaOp(view, 6), null);
    assert.equal(admitReplicaOp({ ...view, faults: { acceptOldEpoch: true } }, 1), null, 'the test-only break admits it');
  });

  it('refuses peering older than the newest epoch seen, even with the acceptOldEpoch break', () => {
    assert.equal(admitPeering(view, 4)?.code, 'STALE_EPOCH');
    assert.equal(admitPeering({ ...view, faults: { acceptOldEpoch: true } }, 4)?.code, 'STALE_EPOCH', 'a deposed primary must not install its epoch again');
    assert.equal(admitPeering(view, 5), null);
  });

  it('trims behind the primary, never past its own watermark, in steps of at least everyEntries', () => {
    assert.equal(replicaTrimTo(3000, 2500, 1000, 1024), 2500, 'capped at the own watermark');
    assert.equal(replicaTrimTo(1500, 5000, 1000, 1024), null, 'less than a step past the last trim');
    assert.equal(replicaTrimTo(2024, 5000, 1000, 1024), 2024);
  });

  it('pulls a gap only once it stayed open for the grace, then again every grace while open', () => {
    assert.deepEqual(gapCheck(null, false, 10, 300), { since: null, pull: false });
    assert.deepEqual(gapCheck(null, true, 10, 300), { since: 10, pull: false }, 'first seen: start the grace');
    assert.deepEqual(gapCheck(10, true, 309, 300), { since: 10, pull: false }, 'out-of-order arrivals may still fill it');
    assert.deepEqual(gapCheck(10, true, 310, 300), { since: 310, pull: true });
    assert.deepEqual(gapCheck(310, false, 400, 300), { since: null, pull: false }, 'closed: forgotten');
  });
});
