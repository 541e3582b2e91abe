/**
 * Flush requests before a snapshot in the state machine (metadata/state/logic/ns-flush.ts): who is
 * asked (live read-write mount sessions of the volume, not read-only ones, not other volumes'),
 * answers (ok, failed, stale, repeated), the sessions whose lease ends before they answer (lapsed:
 * not waited for, their buffered writes cannot be in the snapshot), a newer request replacing an
 * older one, the open-request list the mount managers read, bad input, and the record going with
 * its volume. Real state machine on a temp LevelDB (helpers.ts).
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { FsFlushState, Lease } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { useStateMachine } from './helpers.js';
import { NsFixture } from './ns-helpers.js';

describe('metadata/state namespace: flush requests before a snapshot', function () {
  let sm: StateMachine;
  let f: Feeder;
  let a: Lease;
  let b: Lease;
  let ro: Lease;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  beforeEach(async () => {
    await new NsFixture(f).init(100, true, { accessMode: 'ReadWriteMany' });
    a = await f.ok<Lease>('acquireLease', 'mount', 'fs', 'node-1', 15_000, 'rw');
    b = await f.ok<Lease>('acquireLease', 'mount', 'fs', 'node-2', 15_000, 'rw');
    ro = await f.ok<Lease>('acquireLease', 'mount', 'fs', 'node-3', 15_000, 'ro');
  });
  const state = (): Promise<FsFlushState> => sm.query('fsFlushState', ['fs']) as Promise<FsFlushState>;

  it('asks every live read-write mount session, waits for each answer, keeps failures', async () => {
    assert.equal((await state()).seq, 0, 'no request yet');
    const req = await f.ok<FsFlushState>('fsFlushRequest', 'fs');
    assert.deepEqual([req.seq, [...req.waiting].sort(), req.failed, req.lapsed], [1, [a.id, b.id].sort(), [], []], 'the read-only mount buffers nothing: not asked');
    assert.deepEqual((await sm.query('fsFlushRequests', []) as FsFlushState[]).map((s) => s.seq), [1], 'open for the mount managers');
    await f.ok('fsFlushAck', 'fs', a.id, 1, null);
    assert.deepEqual((await state()).waiting, [b.id]);
    await f.ok('fsFlushAck', 'fs', a.id, 1, null); // repeated: nothing changes
    await f.ok('fsFlushAck', 'fs', ro.id, 1, null); // not asked: ignored
    await f.ok('fsFlushAck', 'fs', b.id, 1, 'node-2: EIO on block 7');
    const done = await state();
    assert.deepEqual([done.waiting, done.failed], [[], [{ session: b.id, error: 'node-2: EIO on block 7' }]]);
    assert.deepEqual(await sm.query('fsFlushRequests', []), [], 'nobody left to answer');
  });

  it('does not wait for a session whose lease ends (released or expired): it is lapsed', async () => {
    await f.ok('fsFlushRequest', 'fs');
    await f.ok('releaseLease', a.id);
    f.stampMs += 16_000; // b's lease lapses unrenewed (a dead node), and the controller expires it
    await f.ok('expireLeases');
    const s = await state();
    assert.deepEqual([s.waiting, [...s.lapsed].sort()], [[], [a.id, b.id].sort()]);
    const again = await f.ok<FsFlushState>('fsFlushRequest', 'fs');
    assert.deepEqual([again.seq, again.waiting], [2, []], 'a new request asks only live sessions');
  });

  it('a newer request replaces an older one: an answer to the old number changes nothing', async () => {
    await f.ok('fsFlushRequest', 'fs');
    await f.ok('fsFlushRequest', 'fs');
    await f.ok('fsFlushAck', 'fs', a.id, 1, null);
    assert.deepEqual([...(await state()).waiting].sort(), [a.id, b.id].sort());
    await f.ok('fsFlushAck', 'fs', a.id, 2, null);
    assert.deepEqual((await state()).waiting, [b.id]);
  });

  it('refuses bad input without a change, and the record goes with its volume', async () => {
    await f.fails('VOLUME_NOT_FOUND', 'fsFlushRequest', 'nope');
    await f.ok('fsFlushRequest', 'fs');
    await f.fails('INVALID_ARGUMENT', 'fsFlushAck', 'fs', a.id, 0, null);
    await f.fails('INVALID_ARGUMENT', 'fsFlushAck', 'fs', '', 1, null);
    await f.fails('INVALID_ARGUMENT', 'fsFlushAck', 'fs', a.id, 1, 42);
    assert.equal((await state()).waiting.length, 2, 'nothing answered');
    await f.ok('deleteVolume', 'fs');
    assert.deepEqual(await sm.query('fsFlushRequests', []), []);
  });
});
