/**
 * The block server's peering as a new primary carries out the core's peering plan
 * (dataplane/core/peering-plan.ts, issue #13 task 2): three Replicators in this process on
 * MemoryBlockStores, a MemoryNetwork and a ManualClock, static placements (no metadata service:
 * members that do not answer, and seqs nobody holds, are left behind).
 */
import assert from 'node:assert/strict';
import { PgCore, type PgAction, type PgEvent } from '../../../dataplane/core/index.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';
import { MemoryWorld, pg, type World } from './memory-world.js';

interface Watch { events: PgEvent[]; stores: Extract<PgAction, { t: 'store' }>[] }

/**
 * Every event stepped on node `self`'s core records, and the store actions they returned: an
 * observer wrapped around the real `PgCore.step` (undone by the returned function).
 */
function watchCore(self: string): { seen: Watch; stop: () => void } {
  const proto = PgCore.prototype as { step: (this: PgCore, ev: PgEvent) => PgAction[] };
  const original = proto.step;
  const seen: Watch = { events: [], stores: [] };
  proto.step = function step(this: PgCore, ev: PgEvent): PgAction[] {
    const out = original.call(this, ev);
    if (this.r.self === self) {
      seen.events.push(ev);
      for (const a of out) if (a.t === 'store') seen.stores.push(a);
    }
    return out;
  };
  return { seen, stop: () => { proto.step = original; } };
}

describe('peering as a new primary follows the core\'s plan', () => {
  const mw = new MemoryWorld('pp', 7200);
  let stopWatch: (() => void) | undefined;
  afterEach(() => {
    stopWatch?.();
    stopWatch = undefined;
    mw.close();
  });
  const { volumeId } = mw;

  /**
   * n2 holds seqs 1..blocks.length of epoch 1 (one per block), n3 seq 1 only; then the PG fails
   * over to n3 at epoch 2 with n2, and `watched`'s core records are watched.
   */
  async function n3TakesOver(w: World, blocks: readonly BlockAddress[], watched: 'n2' | 'n3', trimN2To = 0): Promise<Watch> {
    for (const [i, addr] of blocks.entries()) {
      for (const s of i === 0 ? [w.stores.n2, w.stores.n3] : [w.stores.n2]) {
        await s.write({ kind: 'put', address: addr, pg, seq: i + 1, epoch: 1, data: pattern(i + 1, 64) }, { sync: true });
      }
    }
    if (trimN2To > 0) await w.stores.n2.trimJournal(volumeId, pg, trimN2To);
    const p2 = mw.placement(2, 'n3', ['n2', 'n3']);
    w.sources.n2.set(p2);
    w.sources.n3.set(p2);
    const watch = watchCore(watched);
    stopWatch = watch.stop;
    return watch.seen;
  }

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

  it('each batch pulled from a member is a core event whose store action the shell writes: the record follows the store with no restore after peering', async () => {
    const world = await mw.start();
    const { stores, reps } = world;
    const [a, b, c, d] = mw.blocks(4) as [BlockAddress, BlockAddress, BlockAddress, BlockAddress];
    const watch = { seen: await n3TakesOver(world, [a, b, c], 'n3') };
    const w = await reps.n3.primaryWrite(d, pattern(9, 64), 2, 'replicated');
    assert.equal(w.seq, 4);
    const pulls = watch.seen.events.filter((e): e is Extract<PgEvent, { t: 'peeringPulled' }> => e.t === 'peeringPulled');
    assert.deepEqual(pulls.map((e) => [e.epoch, e.fill.entries.map((x) => x.seq)]), [[2, [2, 3]]], 'the batch fetched from n2 is an event on n3\'s record');
    assert.deepEqual(watch.seen.stores[0]?.entries.map((x) => [x.seq, x.epoch]), [[2, 1], [3, 1]], 'the core named what the shell wrote');
    assert.deepEqual(watch.seen.events.filter((e) => e.t === 'restored'), [], 'no restore: the record followed its own store actions');
    const kinds = watch.seen.events.map((e) => e.t);
    assert.ok(kinds.indexOf('peeringPulled') < kinds.indexOf('peeredByShell'));
    assert.equal(reps.n3.coreRecord(volumeId, pg)?.applied, (await stores.n3.pgState(volumeId, pg)).appliedSeq);
    for (const [addr, seq] of [[b, 2], [c, 3]] as const) assert.deepEqual((await stores.n3.read(addr)).data, pattern(seq, 64));
  });

  it('a member trimmed past this node\'s watermark is copied in full: the copy\'s watermark is the core\'s store action, and the first seq goes above it', async () => {
    const world = await mw.start();
    const { stores, reps } = world;
    const [a, b, c, d] = mw.blocks(4) as [BlockAddress, BlockAddress, BlockAddress, BlockAddress];
    const watch = { seen: await n3TakesOver(world, [a, b, c], 'n3', 3) };
    const w = await reps.n3.primaryWrite(d, pattern(9, 64), 2, 'acknowledged');
    assert.equal(w.seq, 4, 'above the copied watermark');
    const full = watch.seen.stores.find((s) => s.full !== null);
    assert.equal(full?.full?.applied, 3, 'the full copy\'s watermark is a store action of n3\'s record');
    assert.deepEqual(watch.seen.events.filter((e) => e.t === 'restored'), []);
    for (const [addr, seq] of [[b, 2], [c, 3]] as const) assert.deepEqual((await stores.n3.read(addr)).data, pattern(seq, 64));
    assert.equal(reps.n3.coreRecord(volumeId, pg)?.applied, (await stores.n3.pgState(volumeId, pg)).appliedSeq);
  });

  it('a member\'s peering answer is a `msg peer` on its record: the epoch recorded there, the watermark and highest seq from its mirror', async () => {
    const world = await mw.start();
    const { stores, reps } = world;
    const [a, b, c] = mw.blocks(3) as [BlockAddress, BlockAddress, BlockAddress];
    const watch = { seen: await n3TakesOver(world, [a, b], 'n2') };
    const w = await reps.n3.primaryWrite(c, pattern(9, 64), 2, 'replicated');
    assert.equal(w.seq, 3, 'n2\'s answer named seq 2: the new primary assigned above it');
    const peers = watch.seen.events.filter((e) => e.t === 'msg' && e.msg.t === 'peer');
    assert.deepEqual(peers.map((e) => (e.t === 'msg' ? [e.from, e.msg.epoch] : [])), [['n3', 2]], 'n3\'s peering is an event on n2\'s record');
    assert.equal(reps.n2.coreRecord(volumeId, pg)?.epoch, 2);
    assert.equal((await stores.n2.pgState(volumeId, pg)).epoch, 2, 'the record\'s epoch action was recorded');
  });
});
