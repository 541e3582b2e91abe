/**
 * A replica's catch-up and full resync as events on its PG's core record (issue #13, piece a):
 * three Replicators in this process on MemoryBlockStores, a MemoryNetwork and a ManualClock.
 * The regression: a full resync from a primary that was deposed while it streamed went on
 * behind the new primary's back — its blocks replaced (and its drop removed) what the new
 * primary had forwarded, and its watermark covered seqs the new primary gave to other writes.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import { MemoryTransport } from '../../../dataplane/server/memory-transport.js';
import type { JournalFrameMeta } from '../../../dataplane/wire.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';
import { MemoryWorld, pg, type World } from './memory-world.js';

/** n2's transport: a full copy's stream waits at its first frame until released. */
class HeldResync extends MemoryTransport {
  reached!: Promise<void>;
  private arrived!: () => void;
  release!: () => void;
  private held!: Promise<void>;

  arm(): void {
    this.reached = new Promise((resolve) => { this.arrived = resolve; });
    this.held = new Promise((resolve) => { this.release = resolve; });
  }

  override async fetchPgBlocks(address: string, v: string, p: number, epoch: number): Promise<{ appliedSeq: number; frames: AsyncGenerator<{ meta: JournalFrameMeta; data: Buffer }> }> {
    const r = await super.fetchPgBlocks(address, v, p, epoch);
    const arrived = (): void => { this.arrived(); };
    const held = this.held;
    async function* frames(): AsyncGenerator<{ meta: JournalFrameMeta; data: Buffer }> {
      arrived();
      await held;
      yield* r.frames;
    }
    return { appliedSeq: r.appliedSeq, frames: frames() };
  }
}

describe('catch-up and full resync on the replica\'s core record', () => {
  const mw = new MemoryWorld('cu', 7100);
  afterEach(() => mw.close());
  const { volumeId, addresses } = mw;

  async function world(): Promise<World & { n2net: HeldResync }> {
    let n2net: HeldResync | null = null;
    const w = await mw.start((id, network) => (id === 'n2' ? (n2net = new HeldResync(network, addresses.n2)) : null));
    if (n2net === null) throw new Error('n2 has its held transport');
    return { ...w, n2net };
  }

  it('a full resync from a primary deposed while it streamed lands nothing once the replica answered the new primary', async () => {
    const { stores, reps, sources, n2net } = await world();
    const [a, b, c, d] = mw.blocks(4) as [BlockAddress, BlockAddress, BlockAddress, BlockAddress];
    // n1, primary at epoch 1, wrote seqs 1-3; only seq 1 reached n3; n1's journal is trimmed (n2 must copy it in full).
    for (const [seq, addr] of [[1, a], [2, b], [3, c]] as const) {
      await stores.n1.write({ kind: 'put', address: addr, pg, seq, epoch: 1, data: pattern(seq, 128) }, { sync: true });
    }
    await stores.n1.trimJournal(volumeId, pg, 3);
    await stores.n3.write({ kind: 'put', address: a, pg, seq: 1, epoch: 1, data: pattern(1, 128) }, { sync: true });

    n2net.arm();
    const resync = reps.n2.catchUp(volumeId, pg, addresses.n1, 1);
    await n2net.reached;
    // Meanwhile n1 is replaced: n3 primary at epoch 2 (n1 does not hear of it), peers n2 and forwards seq 2.
    const p2 = mw.placement(2, 'n3', ['n2', 'n3']);
    sources.n2.set(p2);
    sources.n3.set(p2);
    const w = await reps.n3.primaryWrite(d, pattern(40, 128), 2, 'replicated');
    assert.deepEqual([w.seq, w.epoch], [2, 2]);
    assert.deepEqual((await stores.n2.read(d)).data, pattern(40, 128), 'n2 took the new primary\'s write');

    n2net.release();
    await assert.rejects(resync, (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
    // Nothing of n1's stream landed: not its blocks, not its watermark, and the new write stays.
    await assert.rejects(stores.n2.read(b), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
    await assert.rejects(stores.n2.read(c), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
    assert.deepEqual((await stores.n2.read(d)).data, pattern(40, 128));
    assert.equal((await stores.n2.pgState(volumeId, pg)).appliedSeq, 0, 'the watermark did not jump to the deposed primary\'s');

    // From the new primary, n2 catches up to exactly its copy (through the core's `journal` event).
    assert.equal(await reps.n2.catchUp(volumeId, pg, addresses.n3, 2), 2);
    for (const addr of [a, d]) assert.deepEqual((await stores.n2.read(addr)).data, (await stores.n3.read(addr)).data);
    assert.equal(reps.n2.coreRecord(volumeId, pg)?.applied, 2, 'the core record mirrors the caught-up store without a restore');
  });

  it('a write a resync copied and the catch-up after it brought again is journaled as itself: a replica catching up from that node gets the block', async () => {
    const { stores, reps, sources, n2net } = await world();
    const [a, b, c] = mw.blocks(3) as [BlockAddress, BlockAddress, BlockAddress];
    for (const [seq, addr] of [[1, a], [2, b]] as const) {
      // n3 was in sync up to seq 2 and then missed seq 3: it will catch up from a journal, not in full.
      for (const s of [stores.n1, stores.n3]) await s.write({ kind: 'put', address: addr, pg, seq, epoch: 1, data: pattern(seq, 128) }, { sync: true });
    }
    await stores.n1.trimJournal(volumeId, pg, 2);
    n2net.arm();
    const caught = reps.n2.catchUp(volumeId, pg, addresses.n1, 1);
    await n2net.reached;
    // Written on the primary after the copy's watermark (2) was read: the stream carries it, and so does the journal after.
    await stores.n1.write({ kind: 'put', address: c, pg, seq: 3, epoch: 1, data: pattern(3, 128) }, { sync: true });
    n2net.release();
    assert.equal(await caught, 3);
    // n1 is lost; n2 is primary at epoch 2 and n3 catches up from n2's journal (seq 3 on).
    const p2 = mw.placement(2, 'n2', ['n2', 'n3']);
    sources.n2.set(p2);
    sources.n3.set(p2);
    await stores.n2.observeEpoch(volumeId, pg, 2);
    assert.equal(await reps.n3.catchUp(volumeId, pg, addresses.n2, 2), 3);
    for (const addr of [a, b, c]) assert.deepEqual((await stores.n3.read(addr)).data, (await stores.n2.read(addr)).data, `block ${addr.inode}`);
  });

  it('a fetched journal batch is the core\'s: at an epoch older than the record\'s it is refused STALE_EPOCH and nothing is stored', async () => {
    const { stores, reps, sources } = await world();
    const [a] = mw.blocks(1) as [BlockAddress];
    await stores.n1.write({ kind: 'put', address: a, pg, seq: 1, epoch: 1, data: pattern(7, 128) }, { sync: true });
    // n2 has heard of epoch 2 (primary n3) from the metadata service; n1 still serves epoch 1.
    sources.n2.set(mw.placement(2, 'n3', ['n2', 'n3']));
    await assert.rejects(reps.n2.catchUp(volumeId, pg, addresses.n1, 1), (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
    await assert.rejects(stores.n2.read(a), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
    assert.equal((await stores.n2.pgState(volumeId, pg)).appliedSeq, 0);
  });
});
