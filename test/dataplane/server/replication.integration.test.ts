/**
 * Three real data-node processes on loopback: writes at every write concern with the data
 * checked on each replica's own store, fencing of a deposed primary, catch-up of a replica that
 * missed writes, from the primary's journal.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import { writeConcernOrder } from '../../../proto/metadata-types.js';
import { BlockClient } from '../../../dataplane/client/block-client.js';
import { StaticPlacementSource } from '../../../dataplane/placement.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { pgStates, readFromNode, TestCluster } from '../cluster.js';
import { pattern, waitFor } from '../helpers.js';

describe('data plane replication (3 processes)', function () {
  this.timeout(60_000);
  const cluster = new TestCluster();
  const clients: BlockClient[] = [];
  const all = ['n1', 'n2', 'n3'];

  const clientFor = (source: StaticPlacementSource, coalesceWrites = true): BlockClient => {
    const c = new BlockClient({ placement: source, maxAttempts: 3, retryBaseDelayMs: 10, coalesceWrites });
    clients.push(c);
    return c;
  };

  /** Installs a volume of 3 PGs with rotating primaries (each node leads one) and gives a client for it. */
  const volumeLedByEachNode = async (volumeId: string): Promise<BlockClient> => {
    const p = cluster.placement(volumeId, all.map((primary) => ({ replicas: all, primary, epoch: 1 })));
    await cluster.install(p);
    const source = new StaticPlacementSource();
    source.set(p);
    return clientFor(source);
  };

  before(async () => {
    await Promise.all([cluster.start('n1', 'z1'), cluster.start('n2', 'z2'), cluster.start('n3', 'z3')]);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await cluster.stopAll();
  });

  it('acknowledges writes at every concern, and the replicated data is on every replica', async () => {
    const client = await volumeLedByEachNode('vol-wc');
    for (const [ci, concern] of writeConcernOrder.entries()) {
      const blocks = Array.from({ length: 40 }, (_, i) => ({ inode: 10 + ci, blockNo: i * 64, data: pattern(ci * 1000 + i, 4096) }));
      const acks = await client.writeBlocks('vol-wc', blocks, concern);
      assert.equal(acks.length, blocks.length);
      for (const a of acks) assert.equal(a.concern, concern);
      // Read-your-writes at the primary, whatever the concern.
      const back = await client.readBlocks('vol-wc', blocks);
      back.forEach((r, i) => assert.deepEqual(r.data, blocks[i]?.data));
      if (concern === 'replicated' || concern === 'distributed') {
        for (const b of blocks) {
          const copies = await Promise.all(all.map((id) => readFromNode(cluster.node(id).address, 'vol-wc', b.inode, b.blockNo)));
          const holding = copies.filter((c) => c.status === 200 && c.data.equals(b.data)).length;
          assert.ok(holding >= (concern === 'distributed' ? 3 : 2), `${concern}: block ${b.inode}/${b.blockNo} on ${holding} replicas`);
        }
      }
    }
    // The weaker concerns were forwarded too: every replica ends up with every block.
    await waitFor('all replicas to hold every block', async () => {
      for (let ci = 0; ci < writeConcernOrder.length; ci++) {
        for (let i = 0; i < 40; i++) {
          for (const id of all) {
            const r = await readFromNode(cluster.node(id).address, 'vol-wc', 10 + ci, i * 64);
            if (r.status !== 200 || !r.data.equals(pattern(ci * 1000 + i, 4096))) return false;
          }
        }
      }
      return true;
    });
  });

  it('large blocks acknowledged before their forwards land reach every replica intact (replicas reuse request buffers)', async () => {
    const client = await volumeLedByEachNode('vol-big');
    const blocks = Array.from({ length: 36 }, (_, i) => ({ inode: 1, blockNo: i, data: pattern(5000 + i, 1024 * 1024) }));
    // `durable` answers once the primary has it: its forwards land later, in replicate batches read into reused buffers.
    await client.writeBlocks('vol-big', blocks, 'durable');
    await waitFor('every replica to hold every block', async () => {
      for (const b of blocks) {
        for (const id of all) if ((await readFromNode(cluster.node(id).address, 'vol-big', b.inode, b.blockNo)).status !== 200) return false;
      }
      return true;
    }, 20_000);
    for (const b of blocks) {
      for (const id of all) {
        const got = await readFromNode(cluster.node(id).address, 'vol-big', b.inode, b.blockNo);
        assert.ok(got.data.equals(b.data), `block ${b.blockNo} on ${id} holds other bytes than were written`);
      }
    }
  });

  it('refuses distributed with WRITE_CONCERN_UNMET when the replicas share one zone, writing nothing', async () => {
    const p = cluster.placement('vol-onezone', [{ replicas: all, primary: 'n1', epoch: 1 }], 'same-zone');
    await cluster.install(p);
    const source = new StaticPlacementSource();
    source.set(p);
    const client = clientFor(source, false); // one PUT per write (no batch requests)
    await assert.rejects(client.writeBlock('vol-onezone', 1, 0, pattern(1, 512), 'distributed'), (e: unknown) => isGalleonError(e, 'WRITE_CONCERN_UNMET'));
    await assert.rejects(client.readBlock('vol-onezone', 1, 0), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
    await client.writeBlock('vol-onezone', 1, 0, pattern(1, 512), 'replicated');
  });

  it('fences a deposed primary: it can no longer acknowledge, and the new primary serves', async () => {
    const v = 'vol-fence';
    const p1 = cluster.placement(v, [{ replicas: all, primary: 'n1', epoch: 1 }]);
    await cluster.install(p1);
    const oldView = new StaticPlacementSource();
    oldView.set(p1);
    const stale = clientFor(oldView);
    await stale.writeBlock(v, 1, 0, pattern(1, 1024), 'replicated');

    // The metadata service moves the primary to n2 at epoch 2; n1 never hears of it.
    const p2 = cluster.placement(v, [{ replicas: all, primary: 'n2', epoch: 2 }]);
    await cluster.install(p2, ['n2', 'n3']);

    await assert.rejects(stale.writeBlock(v, 1, 0, pattern(2, 1024), 'replicated'), (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
    // n1 learned the new epoch from the refusals and now refuses even the weakest concern.
    await assert.rejects(stale.writeBlock(v, 1, 1, pattern(3, 1024), 'acknowledged'), (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
    const onNew = await readFromNode(cluster.node('n2').address, v, 1, 0);
    assert.deepEqual(onNew.data, pattern(1, 1024), 'the fenced write never reached the new primary');

    const newView = new StaticPlacementSource();
    newView.set(p2);
    const fresh = clientFor(newView, false);
    const ack = await fresh.writeBlock(v, 1, 0, pattern(4, 1024), 'replicated');
    assert.equal(ack.epoch, 2);
    assert.deepEqual((await fresh.readBlock(v, 1, 0)).data, pattern(4, 1024));
    // A client holding the old epoch is told to refresh by the new primary too.
    await assert.rejects(
      stale.writeBlock(v, 1, 0, pattern(5, 1024), 'durable'),
      (e: unknown) => isGalleonError(e, 'STALE_EPOCH') || isGalleonError(e, 'FAILED_PRECONDITION'),
    );
  });

  it('a write sent to a node that is not the primary is refused NOT_PRIMARY, naming the primary', async () => {
    const v = 'vol-notprimary';
    const p = cluster.placement(v, [{ replicas: all, primary: 'n1', epoch: 1 }]);
    await cluster.install(p);
    const wrong = new StaticPlacementSource();
    wrong.set(cluster.placement(v, [{ replicas: all, primary: 'n2', epoch: 1 }])); // a client that believes n2 leads
    const client = clientFor(wrong, false);
    const notPrimary = (e: unknown): boolean => isGalleonError(e, 'NOT_PRIMARY') && e.details.primary === 'n1';
    await assert.rejects(client.writeBlock(v, 1, 0, pattern(1, 512), 'durable'), notPrimary);
    for (const id of all) assert.equal((await readFromNode(cluster.node(id).address, v, 1, 0)).status, 404, `nothing was written on ${id}`);
  });

  it('a replica that missed writes catches up from the primary journal', async () => {
    const v = 'vol-catchup';
    await cluster.install(cluster.placement(v, [{ replicas: all, primary: 'n1', epoch: 1 }]));
    await cluster.kill('n3');
    const source = new StaticPlacementSource();
    source.set(cluster.placement(v, [{ replicas: all, primary: 'n1', epoch: 1 }]));
    const client = clientFor(source);
    const missed = Array.from({ length: 60 }, (_, i) => ({ inode: 3, blockNo: i, data: pattern(500 + i, 8192) }));
    await client.writeBlocks(v, missed, 'replicated'); // n1 + n2 are enough while n3 is down

    const n3 = cluster.node('n3');
    await cluster.start('n3', 'z3', n3.dir);
    await cluster.install(cluster.placement(v, [{ replicas: all, primary: 'n1', epoch: 1 }]));
    // The next write reaches n3 with seq 61: it sees the gap and pulls 1..60 from n1's journal.
    await client.writeBlock(v, 3, 1000, pattern(999, 8192), 'distributed');
    const n3addr = cluster.node('n3').address;
    await waitFor('n3 to catch up', async () => (await pgStates(n3addr)).find((s) => s.volumeId === v)?.appliedSeq === 61);
    for (const b of missed) {
      const r = await readFromNode(n3addr, v, b.inode, b.blockNo);
      assert.equal(r.status, 200);
      assert.ok(r.data.equals(b.data), `block ${b.blockNo} caught up intact`);
    }
  });

  it('a replica behind the trimmed journal resyncs the whole PG, dropping blocks deleted meanwhile', async () => {
    const v = 'vol-resync';
    const at = (epoch: number, replicas: string[]): ReturnType<typeof cluster.placement> => cluster.placement(v, [{ replicas, primary: 'n1', epoch }]);
    await cluster.install(at(1, all));
    const source = new StaticPlacementSource();
    source.set(at(1, all));
    const client = clientFor(source);
    const early = Array.from({ length: 10 }, (_, i) => ({ inode: 8, blockNo: i, data: pattern(7000 + i, 4096) }));
    await client.writeBlocks(v, early, 'distributed');

    // n3 leaves the PG; meanwhile half the early blocks are deleted and the journal moves far on.
    await cluster.install(at(2, ['n1', 'n2']));
    source.set(at(2, ['n1', 'n2']));
    for (let i = 0; i < 5; i++) await client.deleteBlock(v, 8, i, 'replicated');
    const later = Array.from({ length: 1100 }, (_, i) => ({ inode: 9, blockNo: i, data: pattern(8000 + i, 4096) }));
    await client.writeBlocks(v, later, 'replicated');
    const primaryState = async (): Promise<{ appliedSeq: number; trimmedSeq: number } | undefined> => (await pgStates(cluster.node('n1').address)).find((s) => s.volumeId === v);
    await waitFor('the primary to trim its journal', async () => ((await primaryState())?.trimmedSeq ?? 0) > 10);

    // n3 comes back into the PG: its watermark (10) is below the trimmed journal.
    await cluster.install(at(3, all));
    source.set(at(3, all));
    await client.writeBlock(v, 9, 5000, pattern(1, 4096), 'replicated');
    const n3 = cluster.node('n3').address;
    await waitFor('n3 to resync', async () => {
      const [p, r] = [await primaryState(), (await pgStates(n3)).find((s) => s.volumeId === v)];
      return p !== undefined && r !== undefined && r.appliedSeq === p.appliedSeq;
    }, 30_000);
    for (let i = 0; i < 10; i++) {
      const r = await readFromNode(n3, v, 8, i);
      if (i < 5) assert.equal(r.status, 404, `deleted block 8/${i} is gone from n3`);
      else assert.ok(r.status === 200 && r.data.equals(pattern(7000 + i, 4096)), `block 8/${i} kept`);
    }
    for (let i = 0; i < later.length; i += 37) {
      const r = await readFromNode(n3, v, 9, i);
      assert.ok(r.status === 200 && r.data.equals(pattern(8000 + i, 4096)), `block 9/${i} copied to n3`);
    }
  });

  it('leaves replicated data in each replica\'s store files, readable by the store itself', async () => {
    const v = 'vol-wc';
    await cluster.stop('n2');
    const store = await LevelBlockStore.open({ dir: cluster.node('n2').dir });
    try {
      for (let i = 0; i < 40; i++) assert.deepEqual((await store.read({ volumeId: v, inode: 12, blockNo: i * 64 })).data, pattern(2000 + i, 4096));
      const st = await store.listPgs();
      assert.ok(st.some((s) => s.volumeId === v));
    } finally {
      await store.close();
    }
  });
});
