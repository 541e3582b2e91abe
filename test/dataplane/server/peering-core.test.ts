/**
 * The block server's peering as a new primary carries out the core's peering plan
 * (dataplane/core/peering-plan.ts, issue #13 task 2): three Replicators in this process on
 * MemoryBlockStores, a MemoryNetwork and a ManualClock, static placements (no metadata service:
 * members that do not answer, and seqs nobody holds, are left behind).
 */
import assert from 'node:assert/strict';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';
import { MemoryWorld, pg } from './memory-world.js';

describe('peering as a new primary follows the core\'s plan', () => {
  const mw = new MemoryWorld('pp', 7200);
  afterEach(() => mw.close());
  const { volumeId } = mw;

  it('pulls what the most complete member holds, then assigns above the group\'s highest seq', async () => {
    const { stores, reps, sources } = await mw.start();
    const [a, b, c, d] = mw.blocks(4) as [BlockAddress, BlockAddress, BlockAddress, BlockAddress];
    // n1 (primary at epoch 1) wrote seqs 1–3; n2 got them all, n3 only seq 1. Then n1 is gone: n3 primary at epoch 2.
    for (const [seq, addr] of [[1, a], [2, b], [3, c]] as const) {
      for (const s of seq === 1 ? [stores.n1, stores.n2, stores.n3] : [stores.n1, stores.n2]) {
        await s.write({ kind: 'put', address: addr, pg, seq, epoch: 1, data: pattern(seq, 64) }, { sync: true });
      }
    }
    const p2 = mw.placement(2, 'n3', ['n2', 'n3']);
    sources.n2.set(p2);
    sources.n3.set(p2);
    const w = await reps.n3.primaryWrite(d, pattern(9, 64), 2, 'replicated');
    assert.deepEqual([w.seq, w.epoch], [4, 2], 'the first write of epoch 2 goes above every seq a member held');
    for (const [addr, seq] of [[b, 2], [c, 3]] as const) assert.deepEqual((await stores.n3.read(addr)).data, pattern(seq, 64), `n3 pulled seq ${seq} from n2`);
    assert.equal((await stores.n3.pgState(volumeId, pg)).appliedSeq, 4);
    assert.equal((await stores.n2.pgState(volumeId, pg)).appliedSeq, 4);
  });

  it('without a metadata service a seq no member holds is left behind, and no seq below the group\'s highest is given again', async () => {
    const { stores, reps, sources } = await mw.start();
    const [a, b, c] = mw.blocks(3) as [BlockAddress, BlockAddress, BlockAddress];
    // n2 holds seqs 1 and 3 (seq 2 reached nobody alive); n3 holds seq 1.
    for (const s of [stores.n2, stores.n3]) await s.write({ kind: 'put', address: a, pg, seq: 1, epoch: 1, data: pattern(1, 64) }, { sync: true });
    await stores.n2.write({ kind: 'put', address: b, pg, seq: 3, epoch: 1, data: pattern(3, 64) }, { sync: true });
    const p2 = mw.placement(2, 'n3', ['n2', 'n3']);
    sources.n2.set(p2);
    sources.n3.set(p2);
    const w = await reps.n3.primaryWrite(c, pattern(9, 64), 2, 'acknowledged');
    assert.deepEqual([w.seq, w.epoch], [4, 2]);
    assert.deepEqual((await stores.n3.read(b)).data, pattern(3, 64), 'the held seq above the hole was pulled too');
    assert.equal((await stores.n3.pgState(volumeId, pg)).appliedSeq, 1, 'the hole at seq 2 stays: static placements leave it');
  });
});
