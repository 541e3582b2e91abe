/**
 * Segment GC and tombstone purge on a real store (real LevelDB, real segment files): space of
 * overwritten bodies comes back, a block changed while GC copies it keeps its newer state,
 * reads racing GC never fail, and tombstones go only once their PG's journal is trimmed past them.
 */
import assert from 'node:assert/strict';
import { access, open } from 'node:fs/promises';
import { dataplaneLogger } from '../../../dataplane/log.js';
import { metrics } from '../../../dataplane/metrics.js';
import { HeaderFlag, decodeHeader } from '../../../dataplane/store/header.js';
import { segmentPointer } from '../../../dataplane/store/index-census.js';
import { blockKey } from '../../../dataplane/store/keys.js';
import type { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { SegmentPins } from '../../../dataplane/store/maintenance.js';
import { Reclaimer } from '../../../dataplane/store/reclaimer.js';
import { pickVictims } from '../../../dataplane/store/segment-gc.js';
import type { GcStep } from '../../../dataplane/store/segment-gc.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { isGalleonError } from '../../../proto/errors.js';
import { pattern, waitFor } from '../helpers.js';
import { useStore } from './store-fixture.js';

const log = dataplaneLogger('segment-gc-test');
const blockBytes = 16 * 1024;
const fast = { maxBytesPerSecond: 1024 ** 3, maxSegmentsPerPass: 1000 };
const addr = (b: number): BlockAddress => ({ volumeId: 'v', inode: 1, blockNo: b });
const version = (b: number, v: number): Buffer => pattern(b * 1000 + v, blockBytes);

async function counter(c: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await c.get()).values[0]?.value ?? 0;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

describe('dataplane/store segment GC', function () {
  this.timeout(20_000);
  const fixture = useStore('segment-gc', { inlineMaxBytes: 0, segmentMaxBytes: 128 * 1024 });
  const s = fixture.store;
  let seq = 0;
  beforeEach(() => { seq = 0; });

  async function writeRound(blocks: number, v: number, only?: (b: number) => boolean): Promise<void> {
    await Promise.all(Array.from({ length: blocks }, (_, b) => (only !== undefined && !only(b) ? Promise.resolve()
      : s().write({ kind: 'put', address: addr(b), pg: 0, seq: ++seq, epoch: 1, data: version(b, v) }, { sync: true }))));
  }

  /** What segment GC would copy for block `a`: its index entry as found by a census, and its body. */
  async function relocationOf(a: BlockAddress): Promise<{ key: Buffer; expect: Buffer; body: Buffer }> {
    const m = s().maintenance();
    const key = blockKey(a);
    let expect: Buffer | undefined;
    for await (const batch of m.scanBlockIndex()) for (const [k, v] of batch) if (k.equals(key)) expect = v;
    assert.ok(expect);
    const ptr = segmentPointer(expect);
    assert.ok(ptr);
    return { key, expect, body: await m.segments.read(ptr.segmentId, ptr.offset, ptr.length) };
  }

  async function expectBlocks(blocks: number, versionOf: (b: number) => number | null): Promise<void> {
    for (let b = 0; b < blocks; b++) {
      const v = versionOf(b);
      if (v === null) {
        await assert.rejects(s().read(addr(b)), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'), `block ${b} stays deleted`);
        continue;
      }
      assert.ok((await s().read(addr(b))).data.equals(version(b, v)), `block ${b} reads version ${v}`);
    }
  }

  it('reclaims the space of overwritten bodies; every block reads its newest version, also after a reopen', async () => {
    const blocks = 32;
    for (let v = 0; v < 8; v++) await writeRound(blocks, v);
    // Two thirds once more: the segments of round 7 stay a third live, so some live bodies move.
    await writeRound(blocks, 8, (b) => b % 3 !== 0);
    const newest = (b: number): number => (b % 3 !== 0 ? 8 : 7);
    const before = s().usedBytes();
    const reclaimedBefore = await counter(metrics.gcBytesReclaimed);
    const deletedBefore = await counter(metrics.gcSegmentsDeleted);

    const pass = await new Reclaimer({ store: s(), log, metrics, gc: fast }).runOnce();
    assert.equal(pass.danglingPointers, 0);
    assert.ok(pass.reclaimableBytes > before / 2, `census sees the dead bytes (${pass.reclaimableBytes} of ${before})`);
    assert.ok(pass.gc.deleted > 0 && pass.gc.bytesCopied > 0, `segments deleted (${pass.gc.deleted}) and live bodies moved (${pass.gc.bytesCopied} B)`);
    const after = s().usedBytes();
    assert.ok(after < before / 3, `segment bytes ${before} -> ${after}`);
    assert.equal(await counter(metrics.gcSegmentsDeleted) - deletedBefore, pass.gc.deleted);
    assert.equal(await counter(metrics.gcBytesReclaimed) - reclaimedBefore, pass.gc.bytesReclaimed);
    await expectBlocks(blocks, newest);

    // A second pass finds (nearly) nothing to reclaim and no pointer into a deleted file.
    const again = await new Reclaimer({ store: s(), log, gc: fast }).runOnce();
    assert.equal(again.danglingPointers, 0);
    assert.ok(again.reclaimableBytes < before / 4, `little left to reclaim (${again.reclaimableBytes})`);

    await fixture.reopen();
    await expectBlocks(blocks, newest);
  });

  it('never resurrects a block overwritten or deleted between the census and its copy', async () => {
    const blocks = 24;
    for (let v = 0; v < 3; v++) await writeRound(blocks, v);
    // Rounds 3 and 4 rewrite a quarter each: round 2's segments stay half live.
    await writeRound(blocks, 3, (b) => b % 4 === 0);
    await writeRound(blocks, 4, (b) => b % 4 === 1);
    const changed = new Map<number, number | null>();
    let raced = false;
    const onStep = async (step: GcStep): Promise<void> => {
      if (step.step !== 'relocated' || raced) return;
      raced = true;
      // After the first copy landed, change every block still at round 2: the GC holds their old
      // index entries and must leave the new state alone. Half are awaited, half race the next copy.
      const pending: Promise<void>[] = [];
      for (let b = 0; b < blocks; b++) {
        if (b % 4 === 0 || b % 4 === 1) continue;
        const p = b % 2 === 0
          ? s().write({ kind: 'put', address: addr(b), pg: 0, seq: ++seq, epoch: 1, data: version(b, 9) }, { sync: false })
          : s().delete(addr(b), 0, ++seq, 1, { sync: false });
        changed.set(b, b % 2 === 0 ? 9 : null);
        if (b % 8 < 4) await p; else pending.push(p);
      }
      await Promise.all(pending);
    };
    const pass = await new Reclaimer({ store: s(), log, gc: { ...fast, relocateBatchBytes: blockBytes, liveRatioThreshold: 0.9, onStep } }).runOnce();
    assert.ok(raced, 'a copy landed, so the race was run');
    assert.equal(pass.danglingPointers, 0);
    await expectBlocks(blocks, (b) => (changed.has(b) ? changed.get(b) ?? null : b % 4 === 0 ? 3 : b % 4 === 1 ? 4 : 2));
    const again = await new Reclaimer({ store: s(), log, gc: fast }).runOnce();
    assert.equal(again.danglingPointers, 0);
    await expectBlocks(blocks, (b) => (changed.has(b) ? changed.get(b) ?? null : b % 4 === 0 ? 3 : b % 4 === 1 ? 4 : 2));
  });

  it('in one commit group, a delete after a segment put (or after a copy of the block) wins', async () => {
    const a = addr(1);
    // A synced write starts a group; the ops enqueued meanwhile share the next one.
    const first = s().write({ kind: 'put', address: addr(9), pg: 0, seq: ++seq, epoch: 1, data: version(9, 0) }, { sync: true });
    const put = s().write({ kind: 'put', address: a, pg: 0, seq: ++seq, epoch: 1, data: version(1, 0) }, { sync: false });
    const del = s().delete(a, 0, ++seq, 1, { sync: false });
    await Promise.all([first, put, del]);
    await assert.rejects(s().read(a), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'), 'the later delete wins over the earlier put');

    await s().write({ kind: 'put', address: a, pg: 0, seq: ++seq, epoch: 1, data: version(1, 1) }, { sync: true });
    const item = await relocationOf(a);
    const starter = s().write({ kind: 'put', address: addr(9), pg: 0, seq: ++seq, epoch: 1, data: version(9, 1) }, { sync: true });
    const copy = s().maintenance().relocate([item]);
    const del2 = s().delete(a, 0, ++seq, 1, { sync: false });
    await Promise.all([starter, copy, del2]);
    await assert.rejects(s().read(a), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'), 'the delete after the copy wins');
  });

  it('a copy and a dropPg in one commit group, in either order: the PG stays dropped', async () => {
    const m = s().maintenance();
    for (const order of ['copy-first', 'drop-first'] as const) {
      const a = addr(order === 'copy-first' ? 1 : 2);
      await s().write({ kind: 'put', address: a, pg: 0, seq: ++seq, epoch: 1, data: version(a.blockNo, 0) }, { sync: true });
      const item = await relocationOf(a);
      const starter = s().write({ kind: 'put', address: { volumeId: 'other', inode: 1, blockNo: 0 }, pg: 0, seq: ++seq, epoch: 1, data: version(0, 0) }, { sync: true });
      const both = order === 'copy-first'
        ? [m.relocate([item]), s().dropPg('v', 0)]
        : [s().dropPg('v', 0), m.relocate([item])];
      await Promise.all([starter, ...both]);
      await assert.rejects(s().read(a), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'), `${order}: the dropped block stays gone`);
    }
  });

  it('serves every read correctly while GC moves and deletes segments under it', async () => {
    const blocks = 32;
    for (let v = 0; v < 6; v++) await writeRound(blocks, v);
    await writeRound(blocks, 6, (b) => b % 2 === 0);
    const newest = (b: number): number => (b % 2 === 0 ? 6 : 5);
    let stop = false;
    let reads = 0;
    const readers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        for (let b = 0; b < blocks; b++) {
          assert.ok((await s().read(addr(b))).data.equals(version(b, newest(b))), `block ${b} read during GC`);
          reads++;
        }
      }
    });
    const pass = await new Reclaimer({ store: s(), log, gc: { ...fast, relocateBatchBytes: blockBytes } }).runOnce();
    stop = true;
    await Promise.all(readers);
    assert.ok(pass.gc.deleted > 3 && reads > blocks, `GC deleted ${pass.gc.deleted} segments under ${reads} reads`);
  });

  it('waits for a read in flight on a segment before deleting it', async () => {
    const blocks = 16;
    for (let v = 0; v < 3; v++) await writeRound(blocks, v);
    const m = s().maintenance();
    const victim = (await m.segments.ids())[0];
    assert.ok(victim !== undefined);
    const file = m.segments.fileOf(victim);
    assert.ok(m.pins.pin(victim), 'a reader holds the oldest segment');
    const gc = new Reclaimer({ store: s(), log, gc: fast }).runOnce();
    await waitFor('GC to retire the held segment', () => m.pins.isRetired(victim));
    assert.ok(await exists(file), 'not deleted while the read is in flight');
    assert.equal(m.pins.pin(victim), false, 'a new read is refused and re-reads the index instead');
    m.pins.unpin(victim);
    const pass = await gc;
    assert.ok(!(await exists(file)), 'deleted once the read finished');
    assert.ok(pass.gc.deleted >= 1);
  });

  it('keeps a segment with a damaged live body (for the scrubber) and copies nothing unverified', async () => {
    const blocks = 16;
    for (let v = 0; v < 2; v++) await writeRound(blocks, v);
    await writeRound(blocks, 2, (b) => b !== 3);
    const loc = await s().locate(addr(3));
    assert.ok(loc);
    const fh = await open(loc.file, 'r+');
    await fh.write(Buffer.from([0xff ^ (version(3, 1)[10] ?? 0)]), 0, 1, loc.offset + 10);
    await fh.close();
    const pass = await new Reclaimer({ store: s(), log, gc: { ...fast, liveRatioThreshold: 1.01 } }).runOnce();
    assert.equal(pass.gc.damaged, 1);
    assert.ok(await exists(loc.file), 'the segment holding the damaged body stays');
    await assert.rejects(s().read(addr(3)), (e: unknown) => isGalleonError(e, 'CHECKSUM_MISMATCH'), 'still damaged, not re-blessed by a copy');
  });

  it('pickVictims: every wholly dead segment, then the emptiest partly live ones up to the cap', () => {
    const sizes = new Map([[1, 100], [2, 100], [3, 100], [4, 100], [5, 100], [6, 0]]);
    const live = new Map([[2, 40], [3, 10], [4, 90], [5, 20]]);
    assert.deepEqual(pickVictims(sizes, live, 0.5, 2), { victims: [1, 6, 3, 5], backlog: true });
    assert.deepEqual(pickVictims(sizes, live, 0.5, 10), { victims: [1, 6, 3, 5, 2], backlog: false });
  });

  it('SegmentPins: a retired segment refuses new pins and waits for the ones taken', async () => {
    const pins = new SegmentPins();
    assert.ok(pins.pin(7));
    assert.ok(pins.pin(7));
    let drained = false;
    const retiring = pins.retire(7).then(() => { drained = true; });
    assert.equal(pins.pin(7), false);
    pins.unpin(7);
    await Promise.resolve();
    assert.equal(drained, false);
    pins.unpin(7);
    await retiring;
    assert.ok(drained);
    await pins.retire(8); // nothing pinned: at once
  });
});

describe('dataplane/store tombstone purge', function () {
  this.timeout(20_000);
  const tombstones = useStore('tombstones', {});

  async function tombstoneSeqs(s: LevelBlockStore): Promise<number[]> {
    const out: number[] = [];
    for await (const batch of s.maintenance().scanBlockIndex()) {
      for (const [, value] of batch) {
        const h = decodeHeader(value);
        if ((h.flags & HeaderFlag.tombstone) !== 0) out.push(h.seq);
      }
    }
    return out.sort((a, b) => a - b);
  }

  it('purges tombstones at or below the trimmed journal only; a late older put still cannot resurrect', async () => {
    const s = tombstones.store();
    const put = (b: number, seq: number): Promise<void> => s.write({ kind: 'put', address: addr(b), pg: 0, seq, epoch: 1, data: pattern(b, 512) }, { sync: false });
    for (let b = 0; b < 10; b++) await put(b, b + 1); // seqs 1..10
    for (let b = 0; b < 10; b++) await s.delete(addr(b), 0, 11 + b, 1, { sync: false }); // tombstones at 11..20
    assert.deepEqual(await tombstoneSeqs(s), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    await s.trimJournal('v', 0, 15);
    const before = await counter(metrics.tombstonesPurged);
    const pass = await new Reclaimer({ store: s, log, metrics }).runOnce();
    assert.equal(pass.purged, 5);
    assert.equal(await counter(metrics.tombstonesPurged) - before, 5);
    assert.deepEqual(await tombstoneSeqs(s), [16, 17, 18, 19, 20]);
    // A replica delivering an old put late (onlyIfNewer, seq below the watermark): a duplicate.
    await s.write({ kind: 'put', address: addr(0), pg: 0, seq: 1, epoch: 1, data: pattern(0, 512) }, { sync: false, onlyIfNewer: true });
    await assert.rejects(s.read(addr(0)), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
    // A resync copy older than a kept tombstone is refused by it (an older copy of a purged one
    // cannot come: see tombstone-purge.ts).
    await s.rewriteBlock(addr(9), { data: pattern(9, 512), seq: 10, epoch: 1, pg: 0 });
    await assert.rejects(s.read(addr(9)), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
  });

  it('keeps a tombstone that was overwritten by a newer put between census and purge', async () => {
    const s = tombstones.store();
    await s.write({ kind: 'put', address: addr(1), pg: 0, seq: 1, epoch: 1, data: pattern(1, 512) }, { sync: false });
    await s.delete(addr(1), 0, 2, 1, { sync: false });
    await s.trimJournal('v', 0, 2);
    const m = s.maintenance();
    const candidates = [];
    for await (const batch of m.scanBlockIndex()) for (const [key, value] of batch) candidates.push({ key, expect: value, volumeId: 'v', pg: 0, seq: decodeHeader(value).seq });
    await s.write({ kind: 'put', address: addr(1), pg: 0, seq: 3, epoch: 1, data: pattern(2, 512) }, { sync: false });
    assert.equal(await m.purgeTombstones(candidates), 0);
    assert.ok((await s.read(addr(1))).data.equals(pattern(2, 512)));
  });
});
