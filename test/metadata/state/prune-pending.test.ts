/**
 * The "prune pending" record of a volume (issue #11, metadata/state/logic/snapshots.ts): set in
 * the same command that deletes a snapshot or restores in place (no window), counted so that a
 * round that read an older request cannot mark a newer one done, repeated finishes change
 * nothing, bad input is refused with nothing changed, and the record goes with its volume.
 * Real state machine on a temp LevelDB (helpers.ts).
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { isPrunePending, type Snapshot, type Volume } from '../../../proto/metadata-types.js';
import { methodNeed } from '../../../metadata/service/auth-guard.js';
import { addNodes, useStateMachine, type Feeder } from './helpers.js';

describe('metadata/state: a volume\'s pending prune of block versions', function () {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  const vol = (): Promise<Volume> => sm.query('getVolume', ['db']) as Promise<Volume>;

  beforeEach(async () => {
    await addNodes(f, 3);
    await f.ok('createVolume', { name: 'db', size: '1M', blockSize: '4K' });
  });

  it('a snapshot delete asks for a prune in its own command; a round that read it finishes it', async () => {
    const s1 = await f.ok<Snapshot>('createSnapshot', 'db', 's1');
    assert.equal((await vol()).prune, undefined, 'taking a snapshot frees nothing');
    f.stampMs += 5_000;
    await f.ok('deleteSnapshot', s1.id);
    const v = await vol();
    assert.deepEqual(v.prune, { requested: 1, done: 0, requestedAtMs: f.stampMs });
    assert.ok(isPrunePending(v));
    const done = await f.ok<Volume>('finishVolumePrune', v.id, 1);
    assert.deepEqual(done.prune, { requested: 1, done: 1, requestedAtMs: f.stampMs });
    assert.ok(!isPrunePending(await vol()));
    assert.equal((await f.ok<Volume>('finishVolumePrune', v.id, 1)).version, done.version, 'a repeated finish changes nothing');
  });

  it('a round that read an older request cannot finish a newer one', async () => {
    await f.ok('createSnapshot', 'db', 'a');
    await f.ok('createSnapshot', 'db', 'b');
    await f.ok('deleteSnapshot', 'a');
    const id = (await vol()).id;
    // A round starts here and reads requested = 1; then another delete commits.
    await f.ok('deleteSnapshot', 'b');
    await f.ok('finishVolumePrune', id, 1);
    assert.deepEqual([(await vol()).prune?.requested, (await vol()).prune?.done], [2, 1]);
    assert.ok(isPrunePending(await vol()), 'the second delete still waits for a round that read it');
    await f.ok('finishVolumePrune', id, 2);
    await f.ok('finishVolumePrune', id, 1);
    assert.equal((await vol()).prune?.done, 2, 'done never moves down');
    assert.ok(!isPrunePending(await vol()));
  });

  it('an in-place restore asks for a prune too', async () => {
    await f.ok('createSnapshot', 'db', 's');
    const restored = await f.ok<Volume>('restoreVolume', 'db', 's');
    assert.equal(restored.prune?.requested, 1);
    assert.ok(isPrunePending(await vol()));
  });

  it('refuses a round number never requested, and bad input, changing nothing', async () => {
    const id = (await vol()).id;
    await f.fails('INVALID_ARGUMENT', 'finishVolumePrune', id, 1);
    await f.ok('createSnapshot', 'db', 's');
    await f.ok('deleteSnapshot', 's');
    const before = await vol();
    const e = await f.fails('INVALID_ARGUMENT', 'finishVolumePrune', id, 2);
    assert.match(e.message, /^volume db has no prune request 2 \(requested so far: 1\)$/);
    await f.fails('INVALID_ARGUMENT', 'finishVolumePrune', id, 0);
    await f.fails('INVALID_ARGUMENT', 'finishVolumePrune', id, 'one');
    await f.fails('VOLUME_NOT_FOUND', 'finishVolumePrune', 'nope', 1);
    assert.deepEqual(await vol(), before);
  });

  it('the record goes with its volume; finishing is for nodes only', async () => {
    await f.ok('createSnapshot', 'db', 's');
    await f.ok('deleteSnapshot', 's');
    await f.ok('deleteVolume', 'db');
    assert.deepEqual((await sm.query('listVolumes', []) as Volume[]).filter(isPrunePending), []);
    assert.equal(methodNeed('finishVolumePrune'), 'node');
  });
});
