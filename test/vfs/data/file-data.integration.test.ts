/**
 * FileData against three real data-node processes: a seeded random-operation test against a
 * plain Buffer model, holes, the cost of a 128 KiB write, the buffer and cache bounds, shared
 * fetches, close-to-open invalidation, freeing truncated blocks, and (last) fsync at
 * `replicated` surviving a kill -9 of the primary.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { BlockClient } from '../../../dataplane/client/block-client.js';
import { StaticPlacementSource } from '../../../dataplane/placement.js';
import { GalleonError } from '../../../proto/errors.js';
import type { WriteConcern } from '../../../proto/metadata-types.js';
import { VolumeData } from '../../../vfs/data/index.js';
import type { FileData, VolumeDataOptions } from '../../../vfs/data/index.js';
import { pgStates, readFromNode, TestCluster } from '../../dataplane/cluster.js';
import { pattern } from '../../dataplane/helpers.js';

const all = ['n1', 'n2', 'n3'];

/** The reference: what a local file would hold. */
class Model {
  buf = Buffer.alloc(0);
  write(offset: number, data: Buffer): void {
    const end = offset + data.length;
    if (end > this.buf.length) this.buf = Buffer.concat([this.buf, Buffer.alloc(end - this.buf.length)]);
    data.copy(this.buf, offset);
  }
  truncate(size: number): void {
    this.buf = size <= this.buf.length ? Buffer.from(this.buf.subarray(0, size)) : Buffer.concat([this.buf, Buffer.alloc(size - this.buf.length)]);
  }
  read(offset: number, length: number): Buffer {
    return Buffer.from(this.buf.subarray(Math.min(offset, this.buf.length), Math.min(offset + length, this.buf.length)));
  }
}

function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
}

describe('vfs file data over the data plane (3 processes)', function () {
  this.timeout(120_000);
  const cluster = new TestCluster();
  const clients: BlockClient[] = [];
  const volumes: VolumeData[] = [];
  const requests: { method: string; path: string }[] = [];
  const onRequest = (message: unknown): void => {
    const r = (message as { request?: { method?: unknown; path?: unknown } }).request;
    if (typeof r?.path === 'string' && typeof r.method === 'string') requests.push({ method: r.method, path: r.path });
  };
  const blockWrites = (): number => requests.filter((r) => (r.method === 'PUT' && r.path.startsWith('/v1/blocks/')) || r.path === '/v1/blocks-batch').length;
  const blockReads = (): number => requests.filter((r) => r.method === 'GET' && r.path.startsWith('/v1/blocks/')).length;

  before(async () => {
    await Promise.all([cluster.start('n1', 'z1'), cluster.start('n2', 'z2'), cluster.start('n3', 'z3')]);
    diagnostics.subscribe('undici:request:create', onRequest);
  });
  after(async () => {
    diagnostics.unsubscribe('undici:request:create', onRequest);
    for (const v of volumes) v.shutdown();
    for (const c of clients) await c.close();
    await cluster.stopAll();
  });

  /** Installs a volume (3 PGs; `primaries` lead them) and returns a client for it. */
  const install = async (volumeId: string, primaries: string[] = all): Promise<BlockClient> => {
    const p = cluster.placement(volumeId, primaries.map((primary) => ({ replicas: all, primary, epoch: 1 })));
    await cluster.install(p);
    const source = new StaticPlacementSource();
    source.set(p);
    const c = new BlockClient({ placement: source, maxAttempts: 3, retryBaseDelayMs: 10 });
    clients.push(c);
    return c;
  };
  const mount = (client: BlockClient, id: string, blockSizeBytes: number, extra: Partial<VolumeDataOptions> = {}, writeConcern: WriteConcern = 'durable'): VolumeData => {
    const v = new VolumeData({ client, volume: { id, blockSizeBytes, writeConcern }, ...extra });
    volumes.push(v);
    return v;
  };
  const attrs = (size: number, token = `${size}`): { sizeBytes: number; mtimeNs: bigint; changeToken: string } => ({ sizeBytes: size, mtimeNs: 0n, changeToken: token });

  // FILEDATA_SEEDS=N runs N seeds (block sizes rotating) instead of the default six.
  const seeds = Array.from({ length: Number(process.env.FILEDATA_SEEDS ?? '6') }, (_, i) => [i + 1, [4096, 16384, 65536][i % 3] ?? 4096] as const);
  for (const [seed, B] of seeds) {
    it(`random writes, reads, truncates, flushes and reopens match a Buffer model (seed ${seed}, ${B}-byte blocks)`, async () => {
      const vol = `rand-${seed}`;
      const client = await install(vol);
      const rnd = prng(seed * 7919);
      const model = new Model();
      const maxSize = 24 * B;
      const opts = { maxDirtyBytesPerFile: 4 * B, cacheBytes: 6 * B };
      const nodes = [mount(client, vol, B, opts), mount(client, vol, B, opts)];
      let version = 0;
      let committedChange = false;
      let v = nodes[0] ?? mount(client, vol, B, opts);
      let f: FileData = v.open(2, attrs(0, 'v0'));
      /** One operation, issued now (the model changes in issue order, as FileData's queue runs them). */
      const issue = (op: number, k: number): Promise<void> => {
        const at = `seed ${seed} op ${op}`;
        if (k < 45) {
          const off = rnd(maxSize);
          const data = pattern(seed * 100_000 + op, 1 + rnd(3 * B));
          model.write(off, data);
          return f.write(off, data).then((n) => {
            assert.equal(n, data.length);
            assert.ok(f.dirtyBytes <= 4 * B, `${at}: buffer holds ${f.dirtyBytes} bytes over its bound`);
          });
        }
        if (k < 75) {
          const off = rnd(maxSize + B);
          const len = rnd(3 * B);
          const want = model.read(off, len);
          return f.read(off, len).then((got) => assert.ok(got.equals(want), `${at}: read ${len} at ${off} differs`));
        }
        if (k < 85) {
          const size = rnd(maxSize);
          model.truncate(size);
          return f.truncate(size);
        }
        const size = model.buf.length;
        return f.flush().then((r) => {
          assert.equal(r.sizeBytes, size, `${at}: flushed size`);
          // The integrator commits every reported change; the namespace's token moves with it.
          if (r.changed) committedChange = true;
        });
      };
      for (let op = 0; op < 300; op++) {
        const k = rnd(100);
        const at = `seed ${seed} op ${op}`;
        if (k < 20) {
          // Several operations in flight at once, as FUSE's threads send them.
          const group = 2 + rnd(3);
          await Promise.all(Array.from({ length: group }, (_, i) => issue(op * 10 + i, 20 + rnd(73))));
        } else if (k < 93) {
          await issue(op, k);
        } else {
          // Reopen on another "node": one of two long-lived mounts (their caches kept across
          // opens when the token is unchanged) or a fresh one (only the data plane remembers).
          // The token changes whenever a close reports a change, as the namespace's would.
          const r = await v.close(f);
          assert.equal(r.sizeBytes, model.buf.length);
          if (r.changed || committedChange) version++;
          committedChange = false;
          await v.freer.drain();
          const pick = rnd(3);
          v = pick < 2 ? nodes[pick] ?? v : mount(client, vol, B, opts);
          f = v.open(2, attrs(r.sizeBytes, `v${version}`));
          assert.ok((await f.read(0, r.sizeBytes + B)).equals(model.buf), `${at}: reopened file differs`);
        }
        assert.equal(f.size, model.buf.length, `${at}: size`);
        assert.ok(v.cache.stats().bytes <= 6 * B, `${at}: cache over its bound`);
      }
      await v.close(f);
    });
  }

  it('reads holes and never-written blocks as zeros, and writes no block for them', async () => {
    const B = 16384;
    const client = await install('holes');
    const v = mount(client, 'holes', B);
    const f = v.open(5, attrs(0));
    await f.write(0, Buffer.from('head'));
    await f.write(10 * B + 5, Buffer.from('tail'));
    await f.truncate(20 * B);
    const r = await v.close(f);
    assert.equal(r.sizeBytes, 20 * B);
    assert.equal(r.blocksWritten, 2);
    const g = mount(client, 'holes', B).open(5, attrs(r.sizeBytes));
    const back = await g.read(0, 30 * B);
    assert.equal(back.length, 20 * B, 'a read past EOF is short');
    const want = Buffer.alloc(20 * B);
    want.write('head', 0);
    want.write('tail', 10 * B + 5);
    assert.ok(back.equals(want));
    for (const b of [1, 5, 9, 11, 19]) {
      const copies = await Promise.all(all.map((id) => readFromNode(cluster.node(id).address, 'holes', 5, b)));
      assert.ok(copies.every((c) => c.status === 404), `hole block ${b} was written`);
    }
    // The partial block holds only its bytes.
    const block10 = await readFromNode(cluster.node('n1').address, 'holes', 5, 10);
    assert.ok(block10.status !== 200 || block10.data.length === B, 'inner block stored whole');
  });

  /** Block writes the data plane sequenced for `volumeId` (each put or delete takes one seq of its PG). */
  const sequenced = async (volumeId: string): Promise<number> => {
    const highest = new Map<number, number>();
    for (const id of all) {
      for (const pg of await pgStates(cluster.node(id).address)) {
        if (pg.volumeId === volumeId) highest.set(pg.pg, Math.max(highest.get(pg.pg) ?? 0, pg.highestSeq));
      }
    }
    return [...highest.values()].reduce((a, b) => a + b, 0);
  };

  // BLOCK_SIZES=4096 shows the point of the default: 32 block writes per 128 KiB write.
  const costSizes = (process.env.BLOCK_SIZES ?? '131072,1048576').split(',').map(Number);
  it('a 128 KiB write costs one data-plane write; 4 KiB writes filling a block cost no read', async () => {
    for (const B of costSizes) {
      const vol = `cost-${B}`;
      const client = await install(vol);
      const v = mount(client, vol, B);
      const f = v.open(2, attrs(0));
      let before = await sequenced(vol);
      requests.length = 0;
      await f.write(0, pattern(B, 131072));
      await f.fsync();
      assert.equal(await sequenced(vol) - before, 1, `${B}-byte blocks: one 128 KiB write + fsync made ${await sequenced(vol) - before} block writes`);
      assert.equal(blockWrites(), 1, 'in one request');
      assert.equal(blockReads(), 0);
      before = await sequenced(vol);
      requests.length = 0;
      for (let off = 131072; off < 262144; off += 4096) await f.write(off, pattern(off, 4096));
      await f.fsync();
      assert.equal(await sequenced(vol) - before, 1, `32 sequential 4 KiB writes made ${await sequenced(vol) - before} block writes`);
      assert.equal(blockReads(), 0, 'no read-modify-write of a block the buffer covers');
      await v.close(f);
    }
  });

  it('a dirty block takes the memory of what was written into it (a 4 KiB file in a 128 KiB block holds 4 KiB), not a whole block', async () => {
    const B = 131072;
    const client = await install('right-sized');
    const v = mount(client, 'right-sized', B);
    const f = v.open(4, attrs(0));
    await f.write(0, pattern(0, 4096));
    assert.equal(f.bufferedBytes, 4096, 'one 4 KiB write');
    assert.equal(f.dirtyBytes, B, 'the buffer bound still counts whole blocks');
    await f.write(4096, pattern(4096, 4096));
    assert.equal(f.bufferedBytes, 8192);
    await f.write(B - 100, pattern(B - 100, 200)); // across into block 1
    assert.equal(f.bufferedBytes, B + 4096, 'block 0 grew to the block size (at most), block 1 holds its first bytes');
    const model = Buffer.alloc(B + 100);
    pattern(0, 4096).copy(model, 0);
    pattern(4096, 4096).copy(model, 4096);
    pattern(B - 100, 200).copy(model, B - 100);
    assert.ok((await f.read(0, B + 100)).equals(model), 'read from the buffer: zeros between the writes');
    const r = await v.close(f);
    assert.equal(r.sizeBytes, B + 100);
    assert.ok((await mount(client, 'right-sized', B).open(4, attrs(B + 100, 'x')).read(0, B + 100)).equals(model), 'stored: every byte, zeros between');
  });

  it('reads the stored block once to merge a small write into it (read-modify-write at flush)', async () => {
    const B = 65536;
    const client = await install('rmw');
    const v = mount(client, 'rmw', B);
    const f = v.open(3, attrs(0));
    await f.write(0, pattern(1, B));
    await v.close(f);
    const w = mount(client, 'rmw', B);
    const g = w.open(3, attrs(B));
    requests.length = 0;
    await g.write(100, Buffer.from('xyz'));
    await g.write(5000, Buffer.from('abc'));
    await w.close(g);
    assert.equal(blockReads(), 1);
    assert.equal(blockWrites(), 1);
    const want = pattern(1, B);
    want.write('xyz', 100);
    want.write('abc', 5000);
    assert.ok((await mount(client, 'rmw', B).open(3, attrs(B)).read(0, B)).equals(want));
  });

  it('reads no block that lies wholly past what the file stored: growth by truncate, sparse writes, a new file (content right on reopen)', async () => {
    const B = 16384;
    const client = await install('no-reads');
    let reads = 0;
    const counted = { readBlock: (vol: string, ino: number, blockNo: number) => { reads++; return client.readBlock(vol, ino, blockNo); }, writeBlocks: client.writeBlocks.bind(client), deleteBlock: client.deleteBlock.bind(client) };
    const v = mount(client, 'no-reads', B, { client: counted });
    const model = Buffer.alloc(12 * B);
    const f = v.open(3, attrs(0));
    await f.write(100, Buffer.alloc(4096, 1)); // a new file: block 0 partly written
    model.fill(1, 100, 100 + 4096);
    await f.flush();
    await f.truncate(6 * B + 10); // grown by truncate, flushed: nothing stored past block 0
    await f.flush();
    await f.write(3 * B + 5, Buffer.alloc(100, 2)); // inside the growth, a partial block
    model.fill(2, 3 * B + 5, 3 * B + 105);
    await f.flush();
    await f.write(10 * B + 7, Buffer.alloc(50, 3)); // sparse: past the end, a hole before it
    model.fill(3, 10 * B + 7, 10 * B + 57);
    await f.flush();
    await f.write(8 * B + 1, Buffer.alloc(20, 4)); // into that hole
    model.fill(4, 8 * B + 1, 8 * B + 21);
    assert.ok((await f.read(9 * B, 10)).equals(Buffer.alloc(10)), 'a hole it made reads as zeros');
    assert.ok((await f.read(4 * B, 10)).equals(Buffer.alloc(10)), 'so does its growth by truncate');
    const r = await v.close(f);
    assert.equal(r.sizeBytes, 10 * B + 57);
    assert.equal(reads, 0, 'block reads for blocks the file never stored');
    // A partial write into a block it did store still merges it (one read), and every byte is right on a fresh mount.
    const h = v.open(3, attrs(r.sizeBytes, 'next'));
    await h.write(3 * B + 200, Buffer.alloc(10, 5));
    model.fill(5, 3 * B + 200, 3 * B + 210);
    await v.close(h);
    assert.equal(reads, 1, 'the merge of a stored block reads it once');
    const fresh = mount(client, 'no-reads', B).open(3, attrs(r.sizeBytes, 'fresh'));
    assert.ok((await fresh.read(0, r.sizeBytes)).equals(model.subarray(0, r.sizeBytes)), 'every byte on a fresh mount');
  });

  it('flushes when the write buffer passes its bound, and never holds more', async () => {
    const B = 16384;
    const client = await install('bound');
    const v = mount(client, 'bound', B, { maxDirtyBytesPerFile: 4 * B });
    const f = v.open(2, attrs(0));
    requests.length = 0;
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      await f.write(i * B, pattern(i, B));
      peak = Math.max(peak, f.dirtyBytes);
    }
    assert.ok(peak <= 4 * B, `buffer peaked at ${peak}`);
    assert.ok(blockWrites() >= 3, `a full buffer flushed before fsync (${blockWrites()} writes)`);
    assert.deepEqual([v.stats().openFiles, v.stats().dirtyBytes], [1, f.dirtyBytes]);
    assert.ok(f.dirtyBytes > 0);
    await f.flush();
    // One write of 5 blocks fills the buffer and flushes inside write(); that change must still
    // reach the caller's commit through the next flush.
    await f.write(20 * B, pattern(20, 5 * B));
    assert.equal(f.dirtyBytes, B, 'the buffer flushed by itself');
    const r = await f.flush();
    assert.deepEqual([r.changed, r.sizeBytes], [true, 25 * B]);
    await v.close(f);
    const after = v.stats();
    assert.deepEqual([after.openFiles, after.dirtyBytes], [0, 0]);
    assert.notEqual(after.lastFlushNs, null);
  });

  it('keeps the cache within its bound, shares concurrent fetches of a block, reads ahead sequentially', async () => {
    const B = 16384;
    const client = await install('cache');
    const v = mount(client, 'cache', B);
    const f = v.open(4, attrs(0));
    await f.write(0, pattern(9, 40 * B));
    await v.close(f);
    const small = mount(client, 'cache', B, { cacheBytes: 8 * B, readAheadMaxBytes: 2 * B });
    const g = small.open(4, attrs(40 * B));
    requests.length = 0;
    const same = await Promise.all(Array.from({ length: 8 }, () => g.read(3 * B + 10, 100)));
    assert.equal(blockReads(), 1, `8 concurrent reads of one block fetched it ${blockReads()} times`);
    assert.ok(same.every((s) => s.equals(pattern(9, 40 * B).subarray(3 * B + 10, 3 * B + 110))));
    const whole = pattern(9, 40 * B);
    const before = small.cache.stats();
    for (let b = 0; b < 40; b++) {
      assert.ok((await g.read(b * B, B)).equals(whole.subarray(b * B, (b + 1) * B)), `block ${b}`);
      assert.ok(small.cache.stats().bytes <= 8 * B, `cache at ${small.cache.stats().bytes} bytes`);
    }
    const s = small.cache.stats();
    assert.ok(s.evictions > 0, 'the bound evicted');
    const ahead = s.hits + s.joined - before.hits - before.joined;
    assert.ok(ahead >= 30, `of 40 sequential block reads ${ahead} found their block fetched ahead`);
    assert.ok(s.fetches - before.fetches <= 41, `${s.fetches - before.fetches} fetches for 40 blocks`);
  });

  it('reads of one file run side by side (a cached read does not wait for another read\'s fetch); a write waits for the reads before it', async () => {
    const B = 16384;
    const client = await install('shared-reads');
    const v = mount(client, 'shared-reads', B);
    const f = v.open(5, attrs(0));
    await f.write(0, pattern(3, 32 * B));
    await v.close(f);
    // The real client, with the fetch of block 20 held until released (or for at most 5 s, so
    // that code serializing reads finishes, in the wrong order, instead of hanging).
    let release!: () => void;
    const gate = new Promise<void>((res) => { release = res; setTimeout(res, 5_000).unref(); });
    const gated = {
      readBlock: async (vol: string, ino: number, blockNo: number) => { if (blockNo === 20) await gate; return client.readBlock(vol, ino, blockNo); },
      writeBlocks: client.writeBlocks.bind(client),
      deleteBlock: client.deleteBlock.bind(client),
    };
    const w = mount(client, 'shared-reads', B, { client: gated, readAheadMaxBytes: B, readAheadInitialBytes: B });
    const g = w.open(5, attrs(32 * B));
    await g.read(0, B);
    const order: string[] = [];
    const slow = g.read(20 * B, B).then((d) => { order.push('slow'); return d; });
    const fast = g.read(B / 2, 100).then((d) => { order.push('fast'); return d; });
    const write = g.write(0, Buffer.from('new')).then(() => order.push('write'));
    assert.ok((await fast).equals(pattern(3, 32 * B).subarray(B / 2, B / 2 + 100)), 'the cached read got its bytes');
    release();
    assert.ok((await slow).equals(pattern(3, 32 * B).subarray(20 * B, 21 * B)));
    await write;
    assert.deepEqual(order, ['fast', 'slow', 'write'], 'the cached read finished first; the write waited for the read queued before it');
    assert.equal((await g.read(0, 3)).toString(), 'new', 'a read after the write sees it');
    await w.close(g);
  });

  it('rebase: a writer told of a truncate made elsewhere cuts its buffer, trims its last block and deletes the blocks it stored past the cut', async () => {
    const B = 16384;
    const client = await install('rebase');
    const nodeA = mount(client, 'rebase', B);
    const nodeB = mount(client, 'rebase', B);
    const whole = pattern(11, 8 * B);
    const a = nodeA.open(9, attrs(0));
    await a.write(0, whole.subarray(0, 5 * B));
    assert.equal((await a.fsync()).truncEpoch, 0);
    // Node B truncates to 1.5 blocks (as vfs/fs does: data first, then the namespace's epoch 1).
    const cut = B + B / 2;
    const b = nodeB.open(9, attrs(5 * B));
    await b.truncate(cut);
    await b.fsync();
    await nodeB.freer.claim(9, 0, Number.MAX_SAFE_INTEGER, new Set());
    await nodeB.close(b);
    // Node A, unaware, writes on: one block flushed past the cut, one more still buffered.
    await a.write(6 * B, whole.subarray(6 * B, 7 * B));
    const r = await a.fsync();
    assert.deepEqual([r.changed, r.sizeBytes, r.truncEpoch], [true, 7 * B, 0]);
    await a.write(7 * B, whole.subarray(7 * B, 8 * B));
    // The namespace kept the size at the cut and answered epoch 1.
    await a.rebase(cut, 1);
    assert.deepEqual([a.size, a.epoch, a.dirtyBytes], [cut, 1, 0]);
    assert.ok((await a.read(0, 8 * B)).equals(whole.subarray(0, cut)), 'node A reads the file as cut');
    for (let blockNo = 2; blockNo < 8; blockNo++) {
      await assert.rejects(client.readBlock('rebase', 9, blockNo), (e: unknown) => e instanceof GalleonError && e.code === 'BLOCK_NOT_FOUND', `block ${blockNo} deleted`);
    }
    const last = await client.readBlock('rebase', 9, 1);
    assert.ok(last.data.equals(whole.subarray(B, cut)), 'the last block is trimmed to the cut');
    // The write after the last flush still changed the file (its mtime): the next commit says so, at the cut and the new epoch.
    const after = await a.flush();
    assert.deepEqual([after.changed, after.sizeBytes, after.truncEpoch, after.blocksWritten], [true, cut, 1, 0]);
    // Told again of an epoch it already has: nothing happens.
    await a.rebase(10, 1);
    assert.equal(a.size, cut);
    // Writes after the rebase grow the file as usual; a regrowth over the cut reads zeros.
    await a.truncate(3 * B);
    assert.ok((await a.read(0, 3 * B)).subarray(cut).equals(Buffer.alloc(3 * B - cut)));
    await nodeA.close(a);
  });

  it('close-to-open: an open after another mount wrote and closed drops cached blocks of the old version', async () => {
    const B = 16384;
    const client = await install('cto');
    const nodeA = mount(client, 'cto', B);
    const nodeB = mount(client, 'cto', B);
    const a1 = nodeA.open(6, attrs(0, 'v0'));
    await a1.write(0, Buffer.alloc(B, 1));
    const r1 = await nodeA.close(a1);
    const b1 = nodeB.open(6, attrs(r1.sizeBytes, 'v1'));
    assert.ok((await b1.read(0, B)).equals(Buffer.alloc(B, 1)));
    await nodeB.close(b1);
    const a2 = nodeA.open(6, attrs(r1.sizeBytes, 'v1'));
    await a2.write(0, Buffer.alloc(B, 2));
    await nodeA.close(a2);
    // Same token: B's cache still answers (the rule is the token, so the namespace must change it).
    const stale = nodeB.open(6, attrs(B, 'v1'));
    assert.ok((await stale.read(0, B)).equals(Buffer.alloc(B, 1)), 'an unchanged token keeps the cache');
    await nodeB.close(stale);
    const fresh = nodeB.open(6, attrs(B, 'v2'));
    assert.ok((await fresh.read(0, B)).equals(Buffer.alloc(B, 2)), 'a new token shows the new content');
    await nodeB.close(fresh);
  });

  it('frees the blocks a truncate cut off, in bounded steps, and a regrown file reads zeros there', async () => {
    const B = 4096;
    const client = await install('free');
    const v = mount(client, 'free', B, { freeBlocksPerStep: 3 });
    const f = v.open(8, attrs(0));
    await f.write(0, pattern(3, 20 * B));
    await f.flush();
    await f.truncate(2 * B + 100);
    assert.deepEqual((await f.flush()).queuedFree, { fromBlock: 3, toBlock: 20 });
    await v.freer.drain();
    for (const b of [3, 7, 19]) {
      const copies = await Promise.all(all.map((id) => readFromNode(cluster.node(id).address, 'free', 8, b)));
      assert.ok(copies.every((c) => c.status === 404), `block ${b} still stored after the freer ran`);
    }
    const tail = await readFromNode(cluster.node('n1').address, 'free', 8, 2);
    assert.ok(tail.status !== 200 || tail.data.length === 100, 'the new last block was trimmed');
    // Shrink then regrow before any freer runs: the exposed range must read as zeros after reopen.
    await f.write(0, pattern(4, 20 * B));
    await f.flush();
    v.freer.stop();
    await f.truncate(B);
    await f.truncate(10 * B);
    const r = await v.close(f);
    const g = mount(client, 'free', B).open(8, attrs(r.sizeBytes));
    const want = Buffer.alloc(10 * B);
    pattern(4, 20 * B).copy(want, 0, 0, B);
    assert.ok((await g.read(0, 10 * B)).equals(want), 'stale blocks showed through a regrown file');
  });

  it('frees every block of a deleted file in the background, and refuses while it is open', async () => {
    const B = 4096;
    const client = await install('unlink');
    const v = mount(client, 'unlink', B, { freeBlocksPerStep: 4 });
    const f = v.open(9, attrs(0));
    await f.write(0, pattern(5, 13 * B + 7));
    assert.throws(() => v.deleteFile(9, 13 * B + 7), /still open/);
    const r = await v.close(f);
    v.deleteFile(9, r.sizeBytes);
    await v.freer.drain();
    for (let b = 0; b <= 13; b++) {
      const copies = await Promise.all(all.map((id) => readFromNode(cluster.node(id).address, 'unlink', 9, b)));
      assert.ok(copies.every((c) => c.status === 404), `block ${b} of a deleted file is still stored`);
    }
  });

  it('raw mode: inode 0 as a file of the volume\'s size agrees with single block writes and reads', async () => {
    const B = 16384;
    const client = await install('raw');
    await client.writeBlock('raw', 0, 3, Buffer.from('short block'), 'durable');
    const v = mount(client, 'raw', B);
    const f = v.open(0, attrs(8 * B));
    const block3 = await f.read(3 * B, B);
    assert.equal(block3.length, B);
    assert.equal(block3.subarray(0, 11).toString(), 'short block');
    assert.ok(block3.subarray(11).equals(Buffer.alloc(B - 11)), 'the rest of a short block reads as zeros');
    await f.write(5 * B + 1, Buffer.from('via file'));
    const r = await v.close(f);
    assert.equal(r.sizeBytes, 8 * B, 'writes inside the device keep its size');
    const stored = await client.readBlock('raw', 0, 5);
    assert.equal(stored.data.length, B);
    assert.equal(stored.data.subarray(1, 9).toString(), 'via file');
  });

  it('fsync at replicated returns only when a second replica holds the data: kill -9 of the primary right after', async () => {
    const B = 65536;
    const client = await install('survive', ['n1', 'n1', 'n1']);
    const v = mount(client, 'survive', B, {}, 'replicated');
    const f = v.open(2, attrs(0));
    const data = pattern(77, 40 * B + 123);
    for (let off = 0; off < data.length; off += 131072) await f.write(off, data.subarray(off, off + 131072));
    await f.fsync();
    await cluster.kill('n1');
    const blocks = Math.ceil(data.length / B);
    const missing: number[] = [];
    for (let b = 0; b < blocks; b++) {
      const want = data.subarray(b * B, (b + 1) * B);
      const copies = await Promise.all(['n2', 'n3'].map((id) => readFromNode(cluster.node(id).address, 'survive', 2, b)));
      if (!copies.some((c) => c.status === 200 && c.data.equals(want))) missing.push(b);
    }
    assert.deepEqual(missing, [], 'blocks fsync\'d at replicated but on no surviving replica');
  });
});
