/**
 * One conformance suite for `BlockStore`: what the replication protocol relies on from local
 * storage (read-your-writes, per-PG journal and contiguous watermark, out-of-order arrivals,
 * trims, resync, epochs that never go down, group commit, crash and restart). Run by
 * test/dataplane/store/conformance.test.ts against `LevelBlockStore` (real LevelDB files, each
 * body layout) and by test/dataplane/store/memory-store.test.ts against `MemoryBlockStore`.
 * Not a test file itself (no `.test.ts`): it only defines the suite.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import type { BlockAddress, BlockOp, BlockStore } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';

export interface StoreUnderTest {
  /** The open store of the running test. */
  store: () => BlockStore & { readonly maxBlockBytes: number };
  /** A clean stop and a start on the same data: nothing is lost. */
  reopen: () => Promise<void>;
  /**
   * A crash and a start on the same data: every write acknowledged as synced survives; writes
   * not synced may be lost (the memory store loses them; LevelDB closed in-process keeps them).
   */
  crashRestart: () => Promise<void>;
}

const vol = 'vol-a';
const addr = (inode: number, blockNo: number, volumeId = vol): BlockAddress => ({ volumeId, inode, blockNo });
const put = (a: BlockAddress, pg: number, seq: number, data: Buffer, epoch = 1): BlockOp => ({ kind: 'put', address: a, pg, seq, epoch, data });

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isGalleonError(e) && e.code === code);
}

/** Registers the suite's tests in the calling `describe`. */
export function storeConformance(t: StoreUnderTest): void {
  const s = t.store;
  const reopen = t.reopen;

  it('reads back what it wrote, with epoch, seq and pg, across a reopen', async () => {
    const data = pattern(1, 4096);
    await s().write(put(addr(7, 3), 2, 1, data, 5), { sync: true });
    await reopen();
    const got = await s().read(addr(7, 3));
    assert.deepEqual(got.data, data);
    assert.equal(got.epoch, 5);
    assert.equal(got.seq, 1);
    assert.equal(got.pg, 2);
  });

  it('landedPgState: every write its watermark counts is in iterateBlocks (a full resync\'s source relies on it)', async () => {
    // pgState counts a write as soon as its group is staged; the index walk sees it only once the
    // batch landed. A resync source that sent pgState's watermark with the walk lost writes.
    for (let seq = 1; seq <= 100; seq++) {
      const a = addr(40, seq % 7);
      const landing = s().write(put(a, 3, seq, pattern(seq, 512)), { sync: seq % 2 === 0 });
      // Wait until the write is counted (staged), without waiting for it to land.
      while ((await s().pgState(vol, 3)).appliedSeq < seq) await new Promise<void>((resolve) => { setImmediate(resolve); });
      const st = await s().landedPgState(vol, 3);
      const seen = new Map<number, number>();
      for await (const { address, block } of s().iterateBlocks({ volumeId: vol, pg: 3 })) seen.set(address.blockNo, block.seq);
      assert.ok((seen.get(a.blockNo) ?? 0) >= Math.min(seq, st.appliedSeq), `seq ${seq}: the walk shows block ${a.blockNo} at seq ${seen.get(a.blockNo) ?? 'none'}, the watermark says ${st.appliedSeq}`);
      await landing;
    }
  });

  it('a read of a write still in flight gets a copy of its bytes, not a view of the caller\'s buffer', async () => {
    const data = pattern(4, 8192);
    const expected = Buffer.from(data);
    const landing = s().write(put(addr(9, 1), 0, 1, data), { sync: true });
    const got = await s().read(addr(9, 1));
    await landing;
    data.fill(0); // the caller reuses its buffer once the write has landed (server/body-pool.ts)
    assert.deepEqual(got.data, expected);
    assert.deepEqual((await s().read(addr(9, 1))).data, expected);
  });

  it('reports BLOCK_NOT_FOUND for a block never written, and after delete', async () => {
    await rejectsWith(s().read(addr(1, 1)), 'BLOCK_NOT_FOUND');
    await s().write(put(addr(1, 1), 0, 1, pattern(2, 100)), { sync: false });
    await s().delete(addr(1, 1), 0, 2, 1, { sync: true });
    await rejectsWith(s().read(addr(1, 1)), 'BLOCK_NOT_FOUND');
    await reopen();
    await rejectsWith(s().read(addr(1, 1)), 'BLOCK_NOT_FOUND');
  });

  it('stamps the newest entry of a block, a delete included, in flight and across a reopen', async () => {
    assert.equal(await s().readStamp(addr(3, 1)), null);
    const landing = s().write(put(addr(3, 1), 4, 1, pattern(3, 100), 2), { sync: true });
    assert.deepEqual(await s().readStamp(addr(3, 1)), { epoch: 2, seq: 1, pg: 4, deleted: false });
    await landing;
    await s().delete(addr(3, 1), 4, 2, 3, { sync: true });
    assert.deepEqual(await s().readStamp(addr(3, 1)), { epoch: 3, seq: 2, pg: 4, deleted: true });
    await reopen();
    assert.deepEqual(await s().readStamp(addr(3, 1)), { epoch: 3, seq: 2, pg: 4, deleted: true });
  });

  it('reads a block\'s head: its first bytes and stamp, in flight and landed, a tombstone, none; never more than asked', async () => {
    assert.equal(await s().readHead(addr(4, 1), 24), null);
    const body = pattern(4, 100_000);
    const landing = s().write(put(addr(4, 1), 4, 1, body, 2), { sync: true });
    assert.deepEqual(await s().readHead(addr(4, 1), 24), { epoch: 2, seq: 1, pg: 4, deleted: false, head: body.subarray(0, 24) });
    await landing;
    assert.deepEqual(await s().readHead(addr(4, 1), 24), { epoch: 2, seq: 1, pg: 4, deleted: false, head: body.subarray(0, 24) });
    await s().write(put(addr(4, 2), 4, 2, pattern(5, 10), 2), { sync: true });
    assert.deepEqual((await s().readHead(addr(4, 2), 24))?.head, pattern(5, 10));
    await s().delete(addr(4, 1), 4, 3, 3, { sync: true });
    await reopen();
    assert.deepEqual(await s().readHead(addr(4, 1), 24), { epoch: 3, seq: 3, pg: 4, deleted: true, head: Buffer.alloc(0) });
    assert.deepEqual((await s().readHead(addr(4, 2), 4))?.head, pattern(5, 10).subarray(0, 4));
  });

  it('sees an accepted write before its batch lands (read-your-writes)', async () => {
    const data = pattern(3, 512);
    const landed = s().write(put(addr(2, 0), 0, 1, data), { sync: true });
    assert.deepEqual((await s().read(addr(2, 0))).data, data);
    await landed;
  });

  it('keeps volumes, inodes and blocks apart, and handles sizes from 0 bytes to 1 MiB', async () => {
    const sizes = [0, 1, 4095, 4096, 65536, 1 << 20];
    await s().writeBatch(sizes.map((n, i) => put(addr(i, i, i % 2 === 0 ? 'v1' : 'v2'), 0, i + 1, pattern(i, n))), { sync: true });
    for (const [i, n] of sizes.entries()) {
      assert.deepEqual((await s().read(addr(i, i, i % 2 === 0 ? 'v1' : 'v2'))).data, pattern(i, n));
    }
    await rejectsWith(s().read(addr(0, 0, 'v2')), 'BLOCK_NOT_FOUND');
  });

  it('refuses a block larger than maxBlockBytes with INVALID_SIZE and writes nothing', async () => {
    assert.throws(() => void s().write(put(addr(1, 1), 0, 1, Buffer.alloc(s().maxBlockBytes + 1)), { sync: true }),
      (e: unknown) => isGalleonError(e, 'INVALID_SIZE'));
    await rejectsWith(s().read(addr(1, 1)), 'BLOCK_NOT_FOUND');
    assert.equal((await s().pgState(vol, 0)).appliedSeq, 0);
  });

  it('journals every write per PG in seq order and serves the current block for each entry', async () => {
    await s().writeBatch([put(addr(1, 0), 4, 1, pattern(10, 64)), put(addr(1, 1), 4, 2, pattern(11, 64)), put(addr(9, 0), 5, 1, pattern(12, 64))], { sync: false });
    await s().write(put(addr(1, 0), 4, 3, pattern(13, 64)), { sync: true }); // overwrites seq 1's block
    const j = await s().readJournal(vol, 4, 1, { maxEntries: 100, maxBytes: 1 << 20 });
    assert.deepEqual(j.map((e) => [e.seq, e.kind]), [[1, 'noop'], [2, 'put'], [3, 'put']]);
    assert.deepEqual(j[2]?.block?.data, pattern(13, 64));
    assert.deepEqual((await s().pgState(vol, 4)), { volumeId: vol, pg: 4, appliedSeq: 3, highestSeq: 3, epoch: 1, trimmedSeq: 0 });
    const limited = await s().readJournal(vol, 4, 2, { maxEntries: 1, maxBytes: 1 << 20 });
    assert.deepEqual(limited.map((e) => e.seq), [2]);
  });

  it('trims the journal up to a seq and then refuses to serve below it', async () => {
    for (let i = 1; i <= 5; i++) await s().write(put(addr(1, i), 0, i, pattern(i, 32)), { sync: false });
    assert.equal(await s().trimJournal(vol, 0, 3), 3);
    await rejectsWith(s().readJournal(vol, 0, 2, { maxEntries: 10, maxBytes: 1 << 20 }), 'OUT_OF_RANGE');
    assert.deepEqual((await s().readJournal(vol, 0, 4, { maxEntries: 10, maxBytes: 1 << 20 })).map((e) => e.seq), [4, 5]);
    await reopen();
    assert.equal((await s().pgState(vol, 0)).trimmedSeq, 3);
    assert.deepEqual((await s().read(addr(1, 2))).data, pattern(2, 32)); // trimming never touches blocks
  });

  it('tracks the contiguous watermark when replica writes arrive out of order, and ignores duplicates', async () => {
    const o = { sync: false, onlyIfNewer: true };
    await s().write(put(addr(1, 0), 0, 3, pattern(3, 16)), o);
    await s().write(put(addr(1, 0), 0, 1, pattern(1, 16)), o); // older write of the same block arrives late
    let st = await s().pgState(vol, 0);
    assert.equal(st.appliedSeq, 1);
    assert.equal(st.highestSeq, 3);
    assert.deepEqual((await s().read(addr(1, 0))).data, pattern(3, 16));
    await reopen();
    await s().write(put(addr(2, 0), 0, 2, pattern(2, 16)), o);
    await s().write(put(addr(2, 0), 0, 2, pattern(99, 16)), o); // duplicate delivery of seq 2
    st = await s().pgState(vol, 0);
    assert.equal(st.appliedSeq, 3);
    assert.deepEqual((await s().read(addr(2, 0))).data, pattern(2, 16));
  });

  it('resync: rewrites and drops blocks without journal entries and jumps the watermark', async () => {
    await s().write(put(addr(1, 0), 0, 1, pattern(1, 16)), { sync: false });
    await s().write(put(addr(1, 1), 0, 2, pattern(2, 16)), { sync: false });
    await s().rewriteBlock(addr(1, 2), { data: pattern(3, 16), seq: 40, epoch: 2, pg: 0 });
    await s().dropBlock(addr(1, 0), 0, 1, 2);
    await s().rewriteBlock(addr(1, 1), { data: pattern(9, 16), seq: 1, epoch: 1, pg: 0 }); // older: ignored
    await s().completeResync(vol, 0, 50);
    await reopen();
    await rejectsWith(s().read(addr(1, 0)), 'BLOCK_NOT_FOUND');
    assert.deepEqual((await s().read(addr(1, 1))).data, pattern(2, 16));
    assert.equal((await s().read(addr(1, 2))).seq, 40);
    const st = await s().pgState(vol, 0);
    assert.deepEqual([st.appliedSeq, st.trimmedSeq], [50, 50]);
    await rejectsWith(s().readJournal(vol, 0, 1, { maxEntries: 10, maxBytes: 1 << 20 }), 'OUT_OF_RANGE');
    await s().write(put(addr(1, 3), 0, 51, pattern(4, 16)), { sync: true, onlyIfNewer: true });
    assert.equal((await s().pgState(vol, 0)).appliedSeq, 51);
  });

  it('journals a write a resync already copied (same block, same seq) as that write, not as a noop', async () => {
    // A full copy streams the primary's live blocks, some written after the watermark it ships
    // (seq 7 above 6); the catch-up that follows brings entry 7 again. Journaled as a noop, a
    // replica catching up from this store later (say after it became primary) never got the block.
    await s().rewriteBlock(addr(1, 0), { data: pattern(5, 16), seq: 7, epoch: 1, pg: 0 });
    await s().completeResync(vol, 0, 6);
    await s().write(put(addr(1, 0), 0, 7, pattern(5, 16)), { sync: true, onlyIfNewer: true });
    await s().write(put(addr(1, 1), 0, 8, pattern(6, 16)), { sync: true, onlyIfNewer: true });
    const j = await s().readJournal(vol, 0, 7, { maxEntries: 10, maxBytes: 1 << 20 });
    assert.deepEqual(j.map((e) => [e.seq, e.kind]), [[7, 'put'], [8, 'put']]);
    assert.deepEqual(j[0]?.block?.data, pattern(5, 16));
    assert.equal((await s().pgState(vol, 0)).appliedSeq, 8);
  });

  it('persists the newest epoch and never lowers it', async () => {
    assert.equal(await s().observeEpoch(vol, 1, 4), 4);
    assert.equal(await s().observeEpoch(vol, 1, 2), 4);
    await reopen();
    assert.equal((await s().pgState(vol, 1)).epoch, 4);
  });

  it('lowers a recorded epoch only when asked to, persistently', async () => {
    assert.equal(await s().observeEpoch(vol, 1, 999), 999);
    assert.equal(await s().lowerEpoch(vol, 1, 1000), 999, 'lowering never raises');
    assert.equal(await s().lowerEpoch(vol, 1, 5), 5);
    assert.equal(await s().observeEpoch(vol, 1, 3), 5);
    await reopen();
    assert.equal((await s().pgState(vol, 1)).epoch, 5);
  });

  it('iterates live blocks, by PG, skipping deleted ones', async () => {
    await s().writeBatch([put(addr(1, 0), 0, 1, pattern(1, 8)), put(addr(1, 1), 1, 1, pattern(2, 8)), put(addr(1, 2), 0, 2, pattern(3, 8))], { sync: true });
    await s().delete(addr(1, 2), 0, 3, 1, { sync: true });
    const all: string[] = [];
    for await (const { address } of s().iterateBlocks({ volumeId: vol })) all.push(`${address.inode}/${address.blockNo}`);
    assert.deepEqual(all, ['1/0', '1/1']);
    const pg1: number[] = [];
    for await (const { block } of s().iterateBlocks({ volumeId: vol, pg: 1 })) pg1.push(block.pg);
    assert.deepEqual(pg1, [1]);
    assert.deepEqual(await s().listPgs(), [{ volumeId: vol, pg: 0 }, { volumeId: vol, pg: 1 }]);
  });

  it('commits concurrent durable writes in shared batches (group commit)', async () => {
    const { metrics } = await import('../../../dataplane/metrics.js');
    const before = (await metrics.groupCommits.get()).values[0]?.value ?? 0;
    const n = 64;
    await Promise.all(Array.from({ length: n }, (_, i) => s().write(put(addr(3, i), 0, i + 1, pattern(i, 4096)), { sync: true })));
    const batches = ((await metrics.groupCommits.get()).values[0]?.value ?? 0) - before;
    assert.ok(batches > 0 && batches < n / 2, `expected far fewer than ${n} batches (and some), got ${batches}`);
    await reopen();
    for (let i = 0; i < n; i++) assert.deepEqual((await s().read(addr(3, i))).data, pattern(i, 4096));
    assert.equal((await s().pgState(vol, 0)).appliedSeq, n);
  });

  it('keeps every synced write across a crash, with block, journal and watermark in agreement', async () => {
    await s().writeBatch([put(addr(5, 0), 2, 1, pattern(1, 64)), put(addr(5, 1), 2, 2, pattern(2, 64))], { sync: false });
    await s().write(put(addr(5, 2), 2, 3, pattern(3, 64)), { sync: true }); // syncs seqs 1-3 (a log's fsync)
    await s().observeEpoch(vol, 2, 7);
    await s().write(put(addr(5, 3), 2, 4, pattern(4, 64)), { sync: false }); // may be lost
    await t.crashRestart();
    const st = await s().pgState(vol, 2);
    assert.equal(st.epoch, 7, 'an epoch record is synced on the spot');
    assert.ok(st.appliedSeq >= 3 && st.appliedSeq <= 4, `applied ${st.appliedSeq}: synced seqs 1-3 kept, 4 maybe`);
    const journal = await s().readJournal(vol, 2, 1, { maxEntries: 100, maxBytes: 1 << 20 });
    assert.deepEqual(journal.map((e) => e.seq), Array.from({ length: st.appliedSeq }, (_, i) => i + 1));
    for (const e of journal) assert.deepEqual(e.block?.data, pattern(e.seq, 64));
    if (st.appliedSeq === 3) await rejectsWith(s().read(addr(5, 3)), 'BLOCK_NOT_FOUND');
    // The PG goes on where the surviving journal ends.
    await s().write(put(addr(5, 4), 2, st.appliedSeq + 1, pattern(9, 64)), { sync: true, onlyIfNewer: true });
    assert.equal((await s().pgState(vol, 2)).appliedSeq, st.appliedSeq + 1);
  });

  it('drops a PG only when it has not seen a newer epoch, and forgets its blocks, journal and state', async () => {
    await s().write(put(addr(6, 0), 3, 1, pattern(1, 32), 2), { sync: true });
    await s().write(put(addr(6, 1), 4, 1, pattern(2, 32), 2), { sync: true });
    assert.equal(await s().dropPg(vol, 3, { ifEpochAtMost: 1 }), false, 'the PG saw epoch 2');
    assert.equal((await s().read(addr(6, 0))).seq, 1);
    assert.equal(await s().dropPg(vol, 3, { ifEpochAtMost: 2 }), true);
    await rejectsWith(s().read(addr(6, 0)), 'BLOCK_NOT_FOUND');
    assert.deepEqual(await s().pgState(vol, 3), { volumeId: vol, pg: 3, appliedSeq: 0, highestSeq: 0, epoch: 0, trimmedSeq: 0 });
    await reopen();
    assert.deepEqual(await s().listPgs(), [{ volumeId: vol, pg: 4 }]);
    assert.equal((await s().read(addr(6, 1))).seq, 1, 'another PG of the volume is untouched');
  });

  it('remembers that the cluster accepted it (joined), across a restart', async () => {
    assert.equal(s().joined, false);
    await s().markJoined();
    await t.crashRestart();
    assert.equal(s().joined, true);
  });
}
