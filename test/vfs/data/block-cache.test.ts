import assert from 'node:assert/strict';
import { slowdown } from '../../support/scaling.js';
import { BlockCache } from '../../../vfs/data/block-cache.js';

/** A fetch the test resolves by hand. */
function deferred(): { promise: Promise<Buffer>; resolve: (b: Buffer) => void; calls: number } {
  let resolve: (b: Buffer) => void = () => undefined;
  const promise = new Promise<Buffer>((r) => { resolve = r; });
  return { promise, resolve, calls: 0 };
}

describe('vfs/data BlockCache', () => {
  it('evicts least recently used blocks to stay within its byte bound', async () => {
    const c = new BlockCache(3 * 100);
    for (let b = 0; b < 3; b++) c.put(1, b, Buffer.alloc(100, b));
    await c.get(1, 0, () => Promise.reject(new Error('cached')));
    c.put(1, 3, Buffer.alloc(100, 3));
    assert.equal(c.has(1, 1), false, 'block 1 was least recently used');
    assert.equal(c.has(1, 0), true);
    assert.ok(c.stats().bytes <= 300);
    c.put(1, 4, Buffer.alloc(301));
    assert.equal(c.has(1, 4), false, 'a body larger than the cache is not kept');
  });

  it('shares one fetch between concurrent readers', async () => {
    const c = new BlockCache(1000);
    const d = deferred();
    const fetch = (): Promise<Buffer> => { d.calls++; return d.promise; };
    const reads = [c.get(2, 7, fetch), c.get(2, 7, fetch), c.get(2, 7, fetch)];
    d.resolve(Buffer.from('x'));
    const got = await Promise.all(reads);
    assert.equal(d.calls, 1);
    assert.ok(got.every((g) => g.toString() === 'x'));
    assert.equal(c.stats().joined, 2);
  });

  it('never stores a fetch that started before its inode was invalidated', async () => {
    const c = new BlockCache(1000);
    const d = deferred();
    const stale = c.get(3, 0, () => d.promise);
    c.invalidate(3);
    d.resolve(Buffer.from('old'));
    await stale;
    assert.equal(c.has(3, 0), false);
    const fresh = await c.get(3, 0, () => Promise.resolve(Buffer.from('new')));
    assert.equal(fresh.toString(), 'new');
  });

  it('keeps a block a flush wrote over the older bytes of a fetch that was in flight', async () => {
    const c = new BlockCache(1000);
    const d = deferred();
    const prefetch = c.get(6, 2, () => d.promise);
    c.put(6, 2, Buffer.from('new'));
    d.resolve(Buffer.from('old'));
    await prefetch;
    assert.equal((await c.get(6, 2, () => Promise.reject(new Error('must be cached')))).toString(), 'new');
  });

  it('keeps an inode\'s blocks across opens with the same change token only', () => {
    const c = new BlockCache(1000);
    assert.equal(c.validate(4, 'v1'), false);
    c.put(4, 0, Buffer.from('a'));
    c.put(5, 0, Buffer.from('b'));
    assert.equal(c.validate(4, 'v1'), true);
    assert.equal(c.has(4, 0), true);
    assert.equal(c.validate(4, 'v2'), false);
    assert.equal(c.has(4, 0), false);
    assert.equal(c.has(5, 0), true, 'other inodes keep theirs');
    c.put(4, 9, Buffer.from('c'));
    c.invalidate(4, 5);
    assert.equal(c.has(4, 9), false, 'invalidate from a block drops that block and later ones');
  });

  it('a range prefetch registers each block as its fetch: readers join it, it lands under the same rules, a failure reaches only its joiners', async () => {
    const c = new BlockCache(1000);
    let resolve: (b: Buffer[]) => void = () => undefined;
    let calls = 0;
    const done = c.prefetchRun(4, 10, 3, () => { calls++; return new Promise<Buffer[]>((r) => { resolve = r; }); });
    assert.ok(c.has(4, 10) && c.has(4, 12) && !c.has(4, 13), 'each block of the range is in flight');
    const joined = c.get(4, 11, () => Promise.reject(new Error('a second fetch')));
    // A flush writes block 12 meanwhile: its bytes win over the range's older ones.
    c.put(4, 12, Buffer.from('new'));
    resolve([Buffer.from('a'), Buffer.from('b'), Buffer.from('old')]);
    await done;
    assert.equal(calls, 1);
    assert.equal((await joined).toString(), 'b');
    assert.equal((await c.get(4, 10, () => Promise.reject(new Error('cached')))).toString(), 'a');
    assert.equal((await c.get(4, 12, () => Promise.reject(new Error('cached')))).toString(), 'new');
    assert.equal(c.stats().fetches, 3);
    // Invalidated while in flight: nothing lands.
    let late: (b: Buffer[]) => void = () => undefined;
    const dropped = c.prefetchRun(5, 0, 2, () => new Promise<Buffer[]>((r) => { late = r; }));
    c.invalidate(5);
    late([Buffer.from('x'), Buffer.from('y')]);
    await dropped;
    assert.equal(c.has(5, 0) || c.has(5, 1), false);
    // A failed range: the prefetch itself never rejects; a reader that joined it gets the error, a later one fetches again.
    const failed = c.prefetchRun(6, 0, 2, () => Promise.reject(new Error('node down')));
    const waiting = c.get(6, 1, () => Promise.reject(new Error('not asked')));
    await failed;
    await assert.rejects(waiting, /node down/);
    assert.equal((await c.get(6, 1, () => Promise.resolve(Buffer.from('again')))).toString(), 'again');
  });

  it('invalidates one inode\'s blocks only (below fromBlock kept), and its fetches in flight', async () => {
    const c = new BlockCache(1000);
    for (let b = 0; b < 3; b++) c.put(7, b, Buffer.alloc(10, b));
    c.put(8, 0, Buffer.alloc(10, 8));
    const f = deferred();
    const late = c.get(7, 5, () => f.promise);
    c.invalidate(7, 1);
    f.resolve(Buffer.alloc(10, 5));
    await late;
    assert.deepEqual([0, 1, 2, 5].map((b) => c.has(7, b)), [true, false, false, false]);
    assert.equal(c.has(8, 0), true, 'another inode keeps its block');
    assert.equal(c.stats().entries, 2);
    assert.equal(c.stats().bytes, 20);
  });

  it('opens a new inode without touching the rest of a full cache (an index per inode, not a scan of every key)', () => {
    // 65,536 cached 4 KiB-file blocks: a scan of every key per open took ~1 ms each (0.3 ms at 16,384, measured in the daemon).
    const filled = (n: number): BlockCache => {
      const c = new BlockCache(65_536 * 16);
      for (let i = 0; i < n; i++) c.put(1_000 + i, 0, Buffer.alloc(16));
      return c;
    };
    const large = filled(65_536);
    const small = filled(16);
    let next = 100_000;
    const opens = (c: BlockCache) => (): void => { for (let i = 0; i < 2_000; i++, next++) c.validate(next, `new:${next}`); };
    const ratio = slowdown(opens(small), opens(large));
    assert.equal(large.stats().entries, 65_536);
    // A scan of every key makes this ~4,000× (the size ratio); the per-inode index, ~1×.
    assert.ok(ratio < 30, `opens of new inodes beside 65,536 cached blocks ran ${ratio.toFixed(1)}× slower than beside 16`);
  });
  it('remembers a bounded number of inodes: a mount that opens a million files keeps no token or generation per file', () => {
    const c = new BlockCache(1000, 64);
    // 100,000 files created and opened here, none read: before, each left a token (and a generation) behind.
    for (let ino = 1; ino <= 100_000; ino++) { c.retag(ino, `t${ino}`); c.validate(ino, `t${ino}`); }
    assert.ok(c.trackedInodes() <= 64, `${c.trackedInodes()} inodes remembered with nothing cached (bound 64)`);
    // An inode with cached blocks keeps its token however many others come and go.
    c.validate(7, 'v7');
    c.put(7, 0, Buffer.from('x'));
    for (let ino = 200_000; ino < 200_500; ino++) c.validate(ino, 'n');
    assert.equal(c.validate(7, 'v7'), true, 'its blocks survive the reopen');
    assert.equal(c.has(7, 0), true);
    // An inode opened, its token forgotten, then read: the next open with the same token drops nothing
    // stale — it had nothing cached under a token the cache could not check — and caches from then on.
    c.validate(8, 'v8');
    for (let ino = 300_000; ino < 300_100; ino++) c.validate(ino, 'n');
    c.put(8, 0, Buffer.from('y'));
    assert.equal(c.validate(8, 'v8'), false, 'a forgotten token counts as changed: the blocks go (safe side)');
    assert.equal(c.has(8, 0), false);
    // Evicted blocks give their inode's token back to the bounded loose set.
    const d = new BlockCache(10, 4);
    for (let ino = 1; ino <= 1_000; ino++) { d.validate(ino, 't'); d.put(ino, 0, Buffer.alloc(5)); }
    assert.ok(d.trackedInodes() <= 2 + 4, `${d.trackedInodes()} inodes remembered by a cache of two blocks`);
    // A flush rewriting a cached block keeps its inode's token where it is: no other inode's goes.
    const e = new BlockCache(1000, 2);
    e.validate(3, 'c');
    e.put(3, 0, Buffer.from('x'));
    e.validate(1, 'a');
    e.validate(2, 'b');
    e.put(3, 0, Buffer.from('y'));
    assert.equal(e.validate(1, 'a'), true, 'inode 1\'s token survived the rewrite of inode 3\'s block');
    assert.equal(e.validate(3, 'c'), true);
  });
});
