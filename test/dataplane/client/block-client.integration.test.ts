/**
 * The client's write coalescing against three real data-node processes: concurrent small writes
 * leave in a few binary batch requests, and every write keeps its own epoch and its own result.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { isGalleonError } from '../../../proto/errors.js';
import { BlockClient } from '../../../dataplane/client/block-client.js';
import type { BlockClientOptions } from '../../../dataplane/client/block-client.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { StaticPlacementSource } from '../../../dataplane/placement.js';
import { readFromNode, TestCluster } from '../cluster.js';
import { pattern } from '../helpers.js';

describe('data plane client write batches (3 processes)', function () {
  this.timeout(60_000);
  const cluster = new TestCluster();
  const clients: BlockClient[] = [];
  const all = ['n1', 'n2', 'n3'];
  let batchRequests = 0;
  const paths: string[] = [];
  const onRequest = (message: unknown): void => {
    const path = (message as { request?: { path?: unknown } }).request?.path;
    if (path === '/v1/blocks-batch') batchRequests++;
    if (typeof path === 'string') paths.push(path);
  };

  before(async () => {
    await Promise.all([cluster.start('n1', 'z1'), cluster.start('n2', 'z2'), cluster.start('n3', 'z3')]);
    diagnostics.subscribe('undici:request:create', onRequest);
  });
  after(async () => {
    diagnostics.unsubscribe('undici:request:create', onRequest);
    for (const c of clients) await c.close();
    await cluster.stopAll();
  });

  const groups = (epoch: number): { replicas: string[]; primary: string; epoch: number }[] =>
    [{ replicas: all, primary: 'n1', epoch }, { replicas: all, primary: 'n2', epoch }, { replicas: all, primary: 'n3', epoch }];

  /** Installs `volumeId` at epoch 1 (each node leads one PG) and gives a client that knows it (closed after the suite). */
  const clientOfNewVolume = async (volumeId: string, opts: Omit<BlockClientOptions, 'placement'>): Promise<BlockClient> => {
    const p = cluster.placement(volumeId, groups(1));
    await cluster.install(p);
    const source = new StaticPlacementSource();
    source.set(p);
    const client = new BlockClient({ placement: source, ...opts });
    clients.push(client);
    return client;
  };

  it('sends concurrent small writes in a few batches; each write gets its own ack, in seq order per PG', async () => {
    const client = await clientOfNewVolume('vol-batch', { maxInFlight: 64 });
    const blocks = Array.from({ length: 300 }, (_, i) => ({ inode: 1 + (i % 5), blockNo: i * 64, data: pattern(i, 4096) }));
    batchRequests = 0;
    const acks = await client.writeBlocks('vol-batch', blocks, 'durable');
    assert.ok(batchRequests > 0 && batchRequests <= blocks.length / 4, `${blocks.length} writes went in ${batchRequests} batch requests`);
    const seqs = new Map<number, number[]>();
    for (const a of acks) {
      assert.equal(a.concern, 'durable');
      assert.equal(a.epoch, 1);
      seqs.set(a.pg, [...(seqs.get(a.pg) ?? []), a.seq]);
    }
    for (const [pg, list] of seqs) {
      const sorted = [...list].sort((x, y) => x - y);
      assert.deepEqual(sorted, Array.from({ length: list.length }, (_, i) => i + 1), `PG ${pg}: one seq per write, none skipped or shared`);
    }
    // Each acknowledged body is on its primary's disk, byte for byte.
    await Promise.all(blocks.map(async (b, i) => {
      const primary = `n${1 + (acks[i]?.pg ?? 0)}`;
      const got = await readFromNode(cluster.node(primary).address, 'vol-batch', b.inode, b.blockNo);
      assert.equal(got.status, 200);
      assert.ok(got.data.equals(b.data), `block ${b.inode}/${b.blockNo} differs on ${primary}`);
    }));
  });

  it('splits a burst of near-limit small writes into batches the primary accepts', async () => {
    const client = await clientOfNewVolume('vol-burst', { maxInFlight: 256 });
    // 256 writes of 60 KiB to one PG: 15 MiB at once, more than one batch may carry.
    const blocks: { inode: number; blockNo: number; data: Buffer }[] = [];
    for (let inode = 1; blocks.length < 256; inode++) {
      for (let blockNo = 0; blockNo < 64 && blocks.length < 256 && pgOf(inode, 0, 3) === 0; blockNo++) blocks.push({ inode, blockNo, data: pattern(900 + blocks.length, 60 * 1024) });
    }
    const acks = await client.writeBlocks('vol-burst', blocks, 'acknowledged');
    assert.ok(acks.every((a) => a.pg === 0));
    assert.equal(new Set(acks.map((a) => a.seq)).size, blocks.length);
  });

  it('a flush\'s large blocks leave in batch requests with `batch`, from a client that does not coalesce (issue #14); without it, one PUT each', async () => {
    const client = await clientOfNewVolume('vol-flush', { coalesceWrites: false });
    const ino = 7;
    const blocks = Array.from({ length: 96 }, (_, b) => ({ inode: ino, blockNo: b, data: pattern(2000 + b, 128 * 1024) }));
    const puts = (): number => paths.filter((p) => p.startsWith('/v1/blocks/')).length;
    batchRequests = 0;
    paths.length = 0;
    const acks = await client.writeBlocks('vol-flush', blocks, 'replicated', { batch: true });
    assert.equal(puts(), 0, 'no single-block PUT');
    // 12 MiB over the objects of 64 blocks: a few requests of at most 8 MiB each, not 96.
    assert.ok(batchRequests >= 2 && batchRequests <= 6, `${blocks.length} blocks of 128 KiB went in ${batchRequests} batch requests`);
    assert.ok(acks.every((a) => a.concern === 'replicated' && a.seq > 0));
    await Promise.all(blocks.map(async (b, i) => {
      const got = await readFromNode(cluster.node(`n${1 + (acks[i]?.pg ?? 0)}`).address, 'vol-flush', b.inode, b.blockNo);
      assert.ok(got.status === 200 && got.data.equals(b.data), `block ${b.blockNo}`);
    }));
    batchRequests = 0;
    paths.length = 0;
    await client.writeBlocks('vol-flush', blocks.slice(0, 8), 'replicated');
    assert.equal(batchRequests, 0);
    assert.equal(puts(), 8);
  });

  it('fails writes still queued when the client closes, without opening a connection for them', async () => {
    const client = await clientOfNewVolume('vol-close', { maxAttempts: 2, retryBaseDelayMs: 1 });
    const pending = client.writeBlock('vol-close', 1, 0, pattern(1, 4096), 'durable');
    await client.close();
    await assert.rejects(pending, (err: unknown) => isGalleonError(err, 'UNAVAILABLE'));
    for (const id of all) assert.equal((await readFromNode(cluster.node(id).address, 'vol-close', 1, 0)).status, 404);
  });

  it('refuses only the writes with a stale epoch when they share batches with current ones', async () => {
    const current = cluster.placement('vol-new', groups(1));
    const moved = cluster.placement('vol-old', groups(2));
    await cluster.install(current);
    await cluster.install(moved);
    const source = new StaticPlacementSource();
    source.set(current);
    source.set(cluster.placement('vol-old', groups(1))); // this client never learns epoch 2
    const client = new BlockClient({ placement: source, maxAttempts: 2, retryBaseDelayMs: 5 });
    clients.push(client);
    const writes = Array.from({ length: 60 }, (_, i) => ({ volume: i % 2 === 0 ? 'vol-new' : 'vol-old', blockNo: i * 64, data: pattern(500 + i, 4096) }));
    const settled = await Promise.allSettled(writes.map((w) => client.writeBlock(w.volume, 7, w.blockNo, w.data, 'durable')));
    settled.forEach((r, i) => {
      if (writes[i]?.volume === 'vol-new') assert.equal(r.status, 'fulfilled', `write ${i} to the current volume failed`);
      else assert.ok(r.status === 'rejected' && isGalleonError(r.reason, 'STALE_EPOCH'), `write ${i} at a stale epoch was not refused as STALE_EPOCH`);
    });
    for (const id of all) {
      const stale = await readFromNode(cluster.node(id).address, 'vol-old', 7, 64);
      assert.equal(stale.status, 404, `a stale write reached ${id}`);
    }
  });
});
