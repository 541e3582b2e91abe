/**
 * The core's admission (dataplane/core/admission.ts): the decisions the block server asks before
 * it serves a write or a read that names an epoch. Pure, so one transcript per rule.
 */
import assert from 'node:assert/strict';
import { admitClientWrite, admitRead, replicaServesAnyRead, takeHandedBack, type AdmissionView } from '../../../dataplane/core/index.js';
import { PgCore } from '../../../dataplane/core/index.js';

const view = (over: Partial<AdmissionView> = {}): AdmissionView => ({ self: 'a', epoch: 4, faults: {}, placement: { epoch: 4, primary: 'a' }, ...over });

describe('dataplane/core admission', () => {
  it('admits a write at the newest epoch seen, addressed to the primary', () => {
    assert.equal(admitClientWrite(view(), 4), null);
  });

  it('refuses a write older than the newest epoch seen STALE_EPOCH, naming that epoch — before asking who is primary', () => {
    assert.deepEqual(admitClientWrite(view({ epoch: 5, placement: { epoch: 4, primary: 'b' } }), 4),
      { code: 'STALE_EPOCH', message: 'epoch 4 is older than 5', epoch: 5, primary: null });
  });

  it('refuses a write to a node the placement does not name primary NOT_PRIMARY, naming the primary', () => {
    assert.deepEqual(admitClientWrite(view({ placement: { epoch: 4, primary: 'b' } }), 4),
      { code: 'NOT_PRIMARY', message: 'a is not the primary', epoch: 4, primary: 'b' });
    assert.equal(admitClientWrite(view({ placement: null }), 4)?.code, 'NOT_PRIMARY');
  });

  it('the test-only acceptOldEpoch break admits an old epoch (the real-process test relies on it)', () => {
    assert.equal(admitClientWrite(view({ epoch: 5, faults: { acceptOldEpoch: true } }), 3), null);
  });

  it('reads between nodes: any member serves a current epoch; a client read is the primary\'s, as a write is', () => {
    assert.equal(admitRead(view({ placement: { epoch: 4, primary: 'b' } }), 4), null);
    assert.equal(admitRead(view(), 3)?.code, 'STALE_EPOCH');
    // A client read names an epoch: only the placement's primary serves it (the block server's admitPrimaryRead).
    assert.equal(admitClientWrite(view(), 4), null);
    assert.equal(admitClientWrite(view({ placement: { epoch: 4, primary: 'b' } }), 4)?.code, 'NOT_PRIMARY');
  });

  it('the core refuses a write event at an old epoch with the same rule (the record is a view)', () => {
    const core = new PgCore('a', { epoch: 3, applied: 0, trimmedTo: 0, held: [] });
    core.step({ t: 'peeredByShell', p: { epoch: 3, primary: 'a', replicas: [{ id: 'a', zone: 'z1' }], addedAt: {} }, groupHighest: 0 });
    core.step({ t: 'lease', epoch: 3, valid: true });
    const out = core.step({ t: 'write', req: 1, block: 0, value: 'x', concern: 'acknowledged', epoch: 2 });
    assert.deepEqual(out, [{ t: 'answer', req: 1, ok: false, code: 'STALE_EPOCH', message: 'epoch 2 is older than 3' }]);
    assert.deepEqual(admitClientWrite(core.r, 2)?.message, 'epoch 2 is older than 3');
  });

  it('the test-only readFromReplica break: a replica copy serves any read; without it, or for a copy that is not a replica, nothing changes (the replica copy is not even asked)', () => {
    let asked = 0;
    const replica = (): boolean => { asked++; return true; };
    assert.equal(replicaServesAnyRead({}, replica), false);
    assert.equal(asked, 0, 'no break: the old path exactly');
    assert.equal(replicaServesAnyRead({ readFromReplica: true }, replica), true);
    assert.equal(replicaServesAnyRead({ readFromReplica: true }, () => false), false);
  });

  it('hand-back compare by the data\'s version; handBackWithoutCompare takes an older copy, handBackByStoredVersion compares the stored version', () => {
    const offered = { epoch: 1, seq: 7 };
    const current = { epoch: 2, seq: 9, origin: { epoch: 1, seq: 5 } };
    assert.equal(takeHandedBack(offered, { epoch: 2, seq: 3 }), false, 'a newer write here: declined');
    assert.equal(takeHandedBack(offered, { epoch: 2, seq: 3 }, { handBackWithoutCompare: true }), true);
    assert.equal(takeHandedBack(offered, current), true, 'this copy came back from 1/5: 1/7 is newer');
    assert.equal(takeHandedBack(offered, current, { handBackByStoredVersion: true }), false, 'seed 277\'s bug: compared with 2/9');
  });
});
