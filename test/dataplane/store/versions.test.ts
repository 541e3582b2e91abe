/**
 * Kept block versions in the store (dataplane/store/versions.ts) on real LevelDB files, both body
 * layouts: a seeded random history of writes and deletes across epochs (as snapshots move PGs to
 * new epochs) is checked against an in-memory model — every read at every cut sees what the model
 * says, replicas that receive writes out of order keep the same versions, and after pruning the
 * kept versions are exactly those some retained cut sees.
 */
import assert from 'node:assert/strict';
import { dataplaneLogger } from '../../../dataplane/log.js';
import { Reclaimer } from '../../../dataplane/store/reclaimer.js';
import { visibleAt } from '../../../dataplane/logic/snapshot-versions.js';
import type { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import type { BlockAddress, BlockOp } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';
import { useStore } from './store-fixture.js';
import { Random } from '../../../chaos/lib/random.js';
import { pgBlockFrames, storeResyncFrame } from '../../../dataplane/server/repair-source.js';

const vol = 'vol-versions';
const addr = (blockNo: number): BlockAddress => ({ volumeId: vol, inode: 7, blockNo });
const blocks = 6;

/** A tiny seeded PRNG (mulberry32): the same seed gives the same history. */
/** The seeded PRNG of the chaos runs (mulberry32), as a function. */
function prng(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

interface ModelEntry { epoch: number; seq: number; data: Buffer | null }

/** History: ops in seq order over a few epochs; `cuts` the epochs snapshots were taken at. */
function history(seed: number): { ops: BlockOp[]; cuts: number[]; model: Map<number, ModelEntry[]> } {
  const rnd = prng(seed);
  const ops: BlockOp[] = [];
  const cuts: number[] = [];
  const model = new Map<number, ModelEntry[]>();
  let epoch = 1;
  for (let seq = 1; seq <= 120; seq++) {
    if (rnd() < 0.08) { epoch += 1; if (rnd() < 0.7) cuts.push(epoch); }
    const b = Math.floor(rnd() * blocks);
    const del = rnd() < 0.15;
    const data = del ? null : pattern(seed * 1000 + seq, 1000 + Math.floor(rnd() * 5000));
    ops.push(del ? { kind: 'delete', address: addr(b), pg: 0, seq, epoch } : { kind: 'put', address: addr(b), pg: 0, seq, epoch, data: data as Buffer });
    model.set(b, [...(model.get(b) ?? []), { epoch, seq, data }]);
  }
  cuts.push(epoch + 1);
  return { ops, cuts, model };
}

async function checkReads(store: LevelBlockStore, cuts: readonly number[], model: Map<number, ModelEntry[]>, what: string): Promise<void> {
  for (const cut of cuts) {
    for (let b = 0; b < blocks; b++) {
      const entries = model.get(b) ?? [];
      const want = visibleAt(entries, cut);
      const got = await store.readBelow(addr(b), cut);
      // The head-only form (the rollback check's heads below a cut) names the same entry and its first bytes.
      const head = await store.readHeadBelow(addr(b), cut, 24);
      const wantEntry = want === null ? null : entries.find((e) => e.seq === want.seq) ?? null;
      if (wantEntry === null) {
        assert.equal(got.kind, 'absent', `${what}: block ${b} at cut ${cut}`);
        assert.equal(head, null, `${what}: head of block ${b} at cut ${cut}`);
      } else if (wantEntry.data === null) {
        assert.equal(got.kind, 'deleted', `${what}: block ${b} at cut ${cut}`);
        assert.deepEqual(head && { deleted: head.deleted, seq: head.seq, epoch: head.epoch }, { deleted: true, seq: wantEntry.seq, epoch: wantEntry.epoch }, `${what}: head of block ${b} at cut ${cut}`);
      } else {
        assert.equal(got.kind, 'block', `${what}: block ${b} at cut ${cut}`);
        if (got.kind === 'block') assert.ok(got.block.data.equals(wantEntry.data), `${what}: block ${b} at cut ${cut} (seq ${got.block.seq}, want ${wantEntry.seq})`);
        assert.deepEqual(head && { deleted: head.deleted, seq: head.seq, epoch: head.epoch, head: head.head.toString('hex') }, { deleted: false, seq: wantEntry.seq, epoch: wantEntry.epoch, head: wantEntry.data.subarray(0, 24).toString('hex') }, `${what}: head of block ${b} at cut ${cut}`);
      }
    }
  }
}

for (const layout of ['inline', 'segments'] as const) {
  describe(`BlockStore kept versions (${layout})`, () => {
    const fixture = useStore('versions', { layout, inlineMaxBytes: 0, segmentMaxBytes: 64 * 1024 });
    const s = fixture.store;
    const reopen = fixture.reopen;

    for (const seed of [1, 2, 3, 4, 5]) {
      it(`seed ${seed}: primary and out-of-order replica see every cut as the model; pruning keeps exactly what cuts see`, async () => {
        const { ops, cuts, model } = history(seed);
        // Primary: in seq order, a few ops per batch (groups share a commit like concurrent writers).
        for (let i = 0; i < ops.length; i += 3) await s().writeBatch(ops.slice(i, i + 3), { sync: false });
        await checkReads(s(), cuts, model, 'in order');

        // Drop a middle and the oldest cut, keep the rest: the kept versions are exactly those seen.
        const kept = cuts.filter((_, i) => i !== 0 && i !== Math.floor(cuts.length / 2));
        const horizon = Math.max(...cuts);
        const dry = await s().pruneVersions(vol, { cuts: kept, horizon, dryRun: true });
        const before = (await s().listVersions(vol)).length;
        const r = await s().pruneVersions(vol, { cuts: kept, horizon, versionsPerSecond: 1e9 });
        assert.equal(r.dropped, dry.dropped, 'the dry run announced what the prune dropped');
        assert.equal(r.bytes, dry.bytes);
        const after = await s().listVersions(vol);
        assert.equal(after.length, before - r.dropped);
        for (let b = 0; b < blocks; b++) {
          const entries = model.get(b) ?? [];
          const newest = entries[entries.length - 1];
          const seen = new Set(kept.map((c) => visibleAt(entries, c)?.seq ?? -1).filter((x) => x !== -1 && x !== newest?.seq));
          const have = new Set(after.filter((x) => x.address.blockNo === b).map((x) => x.seq));
          assert.deepEqual([...have].sort((x, y) => x - y), [...seen].sort((x, y) => x - y), `block ${b}: kept versions`);
        }
        await checkReads(s(), kept, model, 'after prune');
      });
    }

    it('a replica receiving writes out of order keeps the same versions', async () => {
      const { ops, cuts, model } = history(11);
      const rnd = prng(99);
      const shuffled = [...ops].sort(() => rnd() - 0.5);
      for (let i = 0; i < shuffled.length; i += 4) await s().writeBatch(shuffled.slice(i, i + 4), { sync: false, onlyIfNewer: true });
      await checkReads(s(), cuts, model, 'out of order');
    });

    it('a tombstone over kept versions is never purged: a later cut still sees the delete', async () => {
      const data = pattern(5, 3000);
      await s().write({ kind: 'put', address: addr(0), pg: 0, seq: 1, epoch: 1, data }, { sync: true });
      await s().write({ kind: 'delete', address: addr(0), pg: 0, seq: 2, epoch: 2 }, { sync: true });
      await s().write({ kind: 'delete', address: addr(1), pg: 0, seq: 3, epoch: 2 }, { sync: true });
      await s().trimJournal(vol, 0, 3);
      const pass = await new Reclaimer({ store: s(), log: dataplaneLogger('versions-test'), gc: { maxBytesPerSecond: 1024 ** 3 } }).runOnce();
      assert.equal(pass.purged, 1, 'the tombstone without versions (block 1) goes, the one over a version (block 0) stays');
      await s().write({ kind: 'put', address: addr(0), pg: 0, seq: 4, epoch: 4, data: pattern(6, 3000) }, { sync: true });
      assert.equal((await s().readBelow(addr(0), 3)).kind, 'deleted', 'at cut 3 the block was deleted');
      const at2 = await s().readBelow(addr(0), 2);
      assert.ok(at2.kind === 'block' && at2.block.data.equals(data), 'at cut 2 it held its first data');
    });

    it('versions survive a reopen and a segment GC pass keeps them readable', async () => {
      const { ops, cuts, model } = history(21);
      await s().writeBatch(ops, { sync: true });
      await checkReads(s(), cuts, model, 'before GC');
      await reopen();
      await checkReads(s(), cuts, model, 'after reopen');
      // Every segment qualifies: version bodies must be counted live and copied forward, never lost.
      const pass = await new Reclaimer({ store: s(), log: dataplaneLogger('versions-test'), gc: { maxBytesPerSecond: 1024 ** 3, maxSegmentsPerPass: 1000, liveRatioThreshold: 1.01 } }).runOnce();
      assert.ok(pass.gc.deleted > 0, 'GC deleted segments');
      await checkReads(s(), cuts, model, 'after GC');
    });
  });
}

/** Journal catch-up as `Peering.catchUp` does it: frames from `from` on, applied onlyIfNewer. */
async function catchUpFrom(src: LevelBlockStore, dst: LevelBlockStore, from: number): Promise<void> {
  const st = await src.pgState(vol, 0);
  for (let next = from; ;) {
    const entries = await src.readJournal(vol, 0, next, { maxEntries: 16, maxBytes: 1 << 20 });
    if (entries.length === 0) return;
    const ops: BlockOp[] = entries.map((e) => {
      const base = { address: e.address, pg: 0, seq: e.seq, epoch: e.block?.epoch ?? e.epoch ?? st.epoch };
      return e.kind === 'put' && e.block !== undefined ? { ...base, kind: 'put', data: Buffer.from(e.block.data) } : { ...base, kind: e.kind === 'put' ? 'noop' : e.kind };
    });
    await dst.writeBatch(ops, { sync: false, onlyIfNewer: true });
    next = (entries[entries.length - 1]?.seq ?? next) + 1;
  }
}

/** A full resync as `Peering.resync` does it: live blocks, kept versions and tombstones, then the drop of what the source lacks. */
async function resyncFrom(src: LevelBlockStore, dst: LevelBlockStore): Promise<void> {
  const { appliedSeq, epoch } = await src.pgState(vol, 0);
  const seen = new Set<number>();
  for await (const { meta, data } of pgBlockFrames(src, vol, 0)) {
    if (meta.kept !== true) seen.add(meta.blockNo);
    await storeResyncFrame(dst, { volumeId: vol, inode: meta.inode, blockNo: meta.blockNo }, 0, meta, Buffer.from(data ?? new Uint8Array(0)));
  }
  for await (const { address, seq } of dst.iterateAddresses({ volumeId: vol, pg: 0 })) {
    if (!seen.has(address.blockNo) && seq <= appliedSeq) await dst.dropBlock(address, 0, seq, epoch);
  }
  await dst.completeResync(vol, 0, appliedSeq);
}

describe('kept versions travel with journal catch-up and full resync (issue #11)', () => {
  const src = useStore('versions-src', { layout: 'segments', inlineMaxBytes: 0, segmentMaxBytes: 64 * 1024 });
  const dst = useStore('versions-dst', { layout: 'segments', inlineMaxBytes: 0, segmentMaxBytes: 64 * 1024 });

  for (const seed of [31, 32, 33]) {
    for (const [how, had] of [['catch-up from seq 1', 0], ['catch-up from a stale watermark', 40], ['full resync of an empty replica', 0], ['full resync of a stale replica', 40]] as const) {
      it(`seed ${seed}, ${how}: the rebuilt replica sees every cut as its source`, async () => {
        const { ops, cuts, model } = history(seed);
        for (let i = 0; i < ops.length; i += 3) await src.store().writeBatch(ops.slice(i, i + 3), { sync: false });
        await dst.store().writeBatch(ops.slice(0, had), { sync: false });
        if (how.startsWith('catch-up')) await catchUpFrom(src.store(), dst.store(), had + 1);
        else await resyncFrom(src.store(), dst.store());
        await checkReads(dst.store(), cuts, model, how);
      });
    }
    it(`seed ${seed}: a replica that caught up from a replica which got its writes out of order sees every cut as the model`, async () => {
      const { ops, cuts, model } = history(seed);
      const rnd = prng(seed + 100);
      const shuffled = [...ops].sort(() => rnd() - 0.5);
      for (let i = 0; i < shuffled.length; i += 4) await src.store().writeBatch(shuffled.slice(i, i + 4), { sync: false, onlyIfNewer: true });
      await checkReads(src.store(), cuts, model, 'source, out of order');
      await catchUpFrom(src.store(), dst.store(), 1);
      await checkReads(dst.store(), cuts, model, 'caught up from the out-of-order source');
    });
  }

  // Simulator seed 17 (journal model with kept versions): the primary's own write of seq 6 had
  // not landed when it copied its blocks, the forward of seq 6 had landed on the replica first.
  it('a full resync\'s block older than a newer epoch\'s write already here is kept as a version', async () => {
    const w = (seq: number, epoch: number, tag: number): BlockOp => ({ kind: 'put', address: addr(0), pg: 0, seq, epoch, data: pattern(tag, 4096) });
    await src.store().writeBatch([w(4, 1, 4)], { sync: false });
    await dst.store().writeBatch([w(6, 3, 6)], { sync: false, onlyIfNewer: true });
    await resyncFrom(src.store(), dst.store());
    for (const cut of [2, 3]) {
      const r = await dst.store().readBelow(addr(0), cut);
      assert.ok(r.kind === 'block' && r.block.seq === 4, `cut ${cut} reads seq 4 as on the source (got ${r.kind === 'block' ? r.block.seq : r.kind})`);
    }
    const live = await dst.store().read(addr(0));
    assert.equal(live.seq, 6, 'the newer write stays live');
  });

  // The chaos run of 2026-12-07 (seed 284968, pg 10): a full resync's epoch-10 block and the
  // forward of an epoch-11 write of the same address were committed in one group, the resync's
  // first. The forward's keep rule asked for the entry it replaced and did not see the resync's
  // block staged in the same group, so the version at epoch 10 was never kept there: the cut at 11
  // read older data on that replica than on the others.
  it('a full resync\'s block and a newer epoch\'s write committed in one group: the resync\'s block is kept as a version', async () => {
    const w = (b: number, seq: number, epoch: number, tag: number): BlockOp => ({ kind: 'put', address: addr(b), pg: 0, seq, epoch, data: pattern(tag, 4096) });
    const rounds = 20;
    for (let b = 0; b < rounds; b++) {
      // A write to another block keeps the committer busy, so the next two wait and go as one group.
      const busy = dst.store().writeBatch([w(100 + b, 2_000 + b, 2, 100 + b)], { sync: false, onlyIfNewer: true });
      const resync = dst.store().rewriteBlock(addr(b), { data: pattern(10_000 + b, 4096), seq: 500 + b, epoch: 2, pg: 0 });
      const forward = dst.store().writeBatch([w(b, 1_000 + b, 3, b)], { sync: false, onlyIfNewer: true });
      await Promise.all([busy, resync, forward]);
      const live = await dst.store().read(addr(b));
      assert.equal(live.seq, 1_000 + b, `block ${b}: the newer write stays live`);
      const r = await dst.store().readBelow(addr(b), 3);
      assert.ok(r.kind === 'block' && r.block.seq === 500 + b, `block ${b}: cut 3 reads the resync's block (got ${r.kind === 'block' ? r.block.seq : r.kind})`);
    }
  });

  // The chaos run's pg 12 (evidence kept-divergence-q27654): seq 17 reached the final primary
  // after seq 18 of a newer epoch. It kept 17 as a version but journaled a noop, so the replicas
  // rebuilt from its journal had no version at 17 and read older data at the cut between.
  it('a put arriving after a newer epoch\'s write is journaled as the put it keeps, and catch-up ships it', async () => {
    const w = (seq: number, epoch: number, tag: number): BlockOp => ({ kind: 'put', address: addr(0), pg: 0, seq, epoch, data: pattern(tag, 4096) });
    await src.store().writeBatch([w(13, 2, 13)], { sync: false, onlyIfNewer: true });
    await src.store().writeBatch([w(18, 3, 18)], { sync: false, onlyIfNewer: true });
    await src.store().writeBatch([w(17, 2, 17)], { sync: false, onlyIfNewer: true });
    const [at17] = await src.store().readJournal(vol, 0, 17, { maxEntries: 1, maxBytes: 1 << 20 });
    assert.equal(at17?.kind, 'put', 'the source serves seq 17 as the put it kept');
    await catchUpFrom(src.store(), dst.store(), 1);
    for (const store of [src.store(), dst.store()]) {
      const r = await store.readBelow(addr(0), 3);
      assert.ok(r.kind === 'block' && r.block.seq === 17 && r.block.data.equals(pattern(17, 4096)), `cut 3 reads seq 17 (got ${r.kind === 'block' ? r.block.seq : r.kind})`);
    }
  });
});
