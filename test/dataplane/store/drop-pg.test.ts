/**
 * BlockStore.dropPg on real LevelDB files, for each body layout: a dropped PG's blocks, journal
 * and state are gone (also after a reopen), other PGs of the same volume are untouched, writes
 * queued before the drop are dropped with it, and `ifEpochAtMost` keeps a PG that saw a newer epoch.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import type { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import type { LevelBlockStoreOptions } from '../../../dataplane/store/level-block-store.js';
import type { BlockAddress, BlockOp } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';
import { useStore } from './store-fixture.js';

const vol = 'vol-drop';
const addr = (blockNo: number, volumeId = vol): BlockAddress => ({ volumeId, inode: 1, blockNo });
const put = (a: BlockAddress, pg: number, seq: number, epoch = 1): BlockOp => ({ kind: 'put', address: a, pg, seq, epoch, data: pattern(seq * 31 + pg, 20_000) });

const variants: { name: string; opts: Omit<LevelBlockStoreOptions, 'dir'> }[] = [
  { name: 'inline', opts: { layout: 'inline' } },
  { name: 'segments', opts: { layout: 'segments', inlineMaxBytes: 0 } },
];

async function absent(store: LevelBlockStore, a: BlockAddress): Promise<void> {
  await assert.rejects(store.read(a), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
}

for (const { name, opts } of variants) {
  describe(`BlockStore.dropPg (${name})`, () => {
    const fixture = useStore('drop-pg', opts);
    const s = fixture.store;
    const reopen = fixture.reopen;

    it('drops the PG\'s blocks, journal and state, and nothing of the other PGs', async () => {
      // PG 3 holds blocks 0..9, PG 4 blocks 10..14, of the same volume; another volume has a PG 3 too.
      await s().writeBatch(Array.from({ length: 10 }, (_, i) => put(addr(i), 3, i + 1)), { sync: true });
      await s().writeBatch(Array.from({ length: 5 }, (_, i) => put(addr(10 + i), 4, i + 1)), { sync: true });
      await s().write(put(addr(0, 'vol-other'), 3, 1), { sync: true });
      await s().observeEpoch(vol, 3, 7);

      assert.equal(await s().dropPg(vol, 3), true);
      for (let i = 0; i < 10; i++) await absent(s(), addr(i));
      assert.deepEqual(await s().readJournal(vol, 3, 1, { maxEntries: 100, maxBytes: 1 << 30 }), []);
      assert.deepEqual(await s().pgState(vol, 3), { volumeId: vol, pg: 3, appliedSeq: 0, highestSeq: 0, epoch: 0, trimmedSeq: 0 });
      const held = (): Promise<string[]> => s().listPgs().then((l) => l.map((p) => `${p.volumeId}/${p.pg}`).sort());
      assert.deepEqual(await held(), ['vol-drop/4', 'vol-other/3']);

      await reopen();
      for (let i = 0; i < 10; i++) await absent(s(), addr(i));
      assert.deepEqual(await held(), ['vol-drop/4', 'vol-other/3']);
      assert.equal((await s().pgState(vol, 3)).appliedSeq, 0);
      assert.equal((await s().readJournal(vol, 4, 1, { maxEntries: 100, maxBytes: 1 << 30 })).length, 5);
      for (let i = 0; i < 5; i++) assert.equal((await s().read(addr(10 + i))).seq, i + 1);
      assert.equal((await s().read(addr(0, 'vol-other'))).pg, 3);
      let live = 0;
      for await (const b of s().iterateAddresses({ volumeId: vol })) { assert.equal(b.pg, 4); live++; }
      assert.equal(live, 5);
    });

    it('drops writes queued before it; a write after it starts a fresh PG', async () => {
      // Not awaited: the first write is taken at once, the next two wait in the queue and land
      // in the same batch as the drop (which must undo what that batch staged for PG 3).
      const queued = [s().write(put(addr(1), 3, 1), { sync: true }), s().write(put(addr(2), 3, 2), { sync: false }), s().write(put(addr(20), 5, 1), { sync: false })];
      const dropped = s().dropPg(vol, 3);
      await Promise.all(queued);
      assert.equal(await dropped, true);
      await absent(s(), addr(1));
      await absent(s(), addr(2));
      assert.equal((await s().read(addr(20))).pg, 5);

      await s().write(put(addr(3), 3, 1, 9), { sync: true });
      await reopen();
      await absent(s(), addr(1));
      const st = await s().pgState(vol, 3);
      assert.equal(st.appliedSeq, 1);
      assert.equal(st.epoch, 9);
      assert.equal((await s().read(addr(3))).seq, 1);
    });

    it('with ifEpochAtMost, keeps a PG that has seen a newer epoch', async () => {
      await s().write(put(addr(1), 2, 1, 4), { sync: true });
      assert.equal(await s().dropPg(vol, 2, { ifEpochAtMost: 3 }), false);
      assert.equal((await s().read(addr(1))).seq, 1);
      assert.equal(await s().dropPg(vol, 2, { ifEpochAtMost: 4 }), true);
      await absent(s(), addr(1));
    });
  });
}
