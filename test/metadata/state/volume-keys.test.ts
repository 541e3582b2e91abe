/**
 * Wrapped data keys in the state machine (metadata/state/logic/volume-keys.ts): stored only for
 * a class with encryption, writer ids that only grow (and survive a re-wrap), the re-wrap's
 * compare-and-set, and the key record gone with its volume.
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { Volume, VolumeKeyRecord } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, useStateMachine } from './helpers.js';

const wrap = { provider: 'internal', keyId: 'internal:v1:0123456789ab', wrapped: 'AAAA' };

describe('metadata/state machine: volume data keys', () => {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  beforeEach(async () => { await addNodes(f, 3); });

  it('keeps the wrapped key of an encrypted volume and hands out writer ids that only grow', async () => {
    const v = await f.ok<Volume>('createVolume', { name: 'sec', dataKey: wrap });
    assert.equal(v.encrypted, true);
    const rec = await sm.query('getVolumeKey', [v.id]) as VolumeKeyRecord;
    assert.deepEqual({ ...rec, wrappedAtMs: 0 }, { volumeId: v.id, ...wrap, writers: 0, wrappedAtMs: 0 });
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push(await f.ok<number>('allocateKeyWriter', v.id));
    assert.deepEqual(ids, [1, 2, 3, 4, 5]);
    // A retried command (same client, same seq) is applied once: no writer id is handed out twice.
    const rec2 = f.record('allocateKeyWriter', [v.id]);
    const [a] = await sm.apply([rec2]);
    const [b] = await sm.apply([{ ...rec2, index: rec2.index + 1 }]);
    f.index += 1;
    assert.ok(a?.ok === true && b?.ok === true);
    assert.equal(a.value, 6);
    assert.equal(b.value, 6);
    assert.equal(await f.ok<number>('allocateKeyWriter', v.id), 7);
  });

  it('re-wraps by compare-and-set, keeping the writer count', async () => {
    const v = await f.ok<Volume>('createVolume', { name: 'sec', dataKey: wrap });
    await f.ok('allocateKeyWriter', v.id);
    const next = { provider: 'internal', keyId: 'internal:v2:ba9876543210', wrapped: 'BBBB' };
    const stale = await f.fails('FAILED_PRECONDITION', 'rewrapVolumeKey', v.id, 'not-the-current-wrap', next);
    assert.match(stale.message, /re-wrapped meanwhile/);
    const rec = await f.ok<VolumeKeyRecord>('rewrapVolumeKey', v.id, wrap.wrapped, next);
    assert.deepEqual([rec.keyId, rec.wrapped, rec.writers], [next.keyId, next.wrapped, 1]);
    assert.equal(await f.ok<number>('allocateKeyWriter', v.id), 2);
  });

  it('refuses a key for a class without encryption and a malformed key; plain volumes have none', async () => {
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'p', storageClass: 'fast-local-ssd', replicas: 1, dataKey: wrap });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'p', dataKey: { ...wrap, provider: 'hsm' } });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'p', dataKey: { ...wrap, wrapped: '' } });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'p', dataKey: { ...wrap, extra: 1 } });
    const plain = await f.ok<Volume>('createVolume', { name: 'p', storageClass: 'fast-local-ssd', replicas: 1 });
    assert.equal(plain.encrypted, undefined);
    await f.fails('KEY_UNAVAILABLE', 'allocateKeyWriter', plain.id);
    await assert.rejects(sm.query('getVolumeKey', [plain.id]), /has no data key/);
  });

  it('deleting a volume deletes its wrapped data key', async () => {
    const marked = { ...wrap, wrapped: 'WRAPPED-DATA-KEY-OF-SEC-1' };
    const v = await f.ok<Volume>('createVolume', { name: 'sec', dataKey: marked });
    const inState = async (): Promise<boolean> => Buffer.from((await sm.snapshot()).data).includes(marked.wrapped);
    assert.equal(await inState(), true);
    await f.ok('deleteVolume', v.id);
    await assert.rejects(sm.query('getVolumeKey', [v.id]), /not found/);
    assert.equal(await inState(), false, 'the wrapped key is gone from the whole state, not only unreachable');
    const again = await f.ok<Volume>('createVolume', { name: 'sec', dataKey: { ...wrap, wrapped: 'CCCC' } });
    assert.notEqual(again.id, v.id);
    assert.equal((await sm.query('getVolumeKey', [again.id]) as VolumeKeyRecord).wrapped, 'CCCC');
  });
});
