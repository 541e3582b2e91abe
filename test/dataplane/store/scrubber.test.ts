/**
 * The scrubber finds a block damaged on disk (a byte flipped in the real segment file), fetches
 * a good copy from another replica's real store, rewrites it, and counts the repair.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { metrics } from '../../../dataplane/metrics.js';
import { dataplaneLogger } from '../../../dataplane/log.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { Scrubber } from '../../../dataplane/store/scrubber.js';
import type { RepairSource } from '../../../dataplane/store/scrubber.js';
import type { BlockAddress, StoredBlock } from '../../../dataplane/store/types.js';
import { isGalleonError } from '../../../proto/errors.js';
import { pattern, removeDir, tempDir } from '../helpers.js';

/** Another replica, in-process: a second real store. */
class StoreRepairSource implements RepairSource {
  constructor(private readonly other: LevelBlockStore) {}
  fetchBlock(address: BlockAddress): Promise<StoredBlock> {
    return this.other.read(address);
  }
}

async function counter(c: typeof metrics.scrubRepairs): Promise<number> {
  return (await c.get()).values[0]?.value ?? 0;
}

describe('dataplane/store scrubber', () => {
  const dirs: string[] = [];
  const stores: LevelBlockStore[] = [];
  const log = dataplaneLogger('scrub-test');
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const d of dirs.splice(0)) await removeDir(d);
  });

  async function openStore(): Promise<LevelBlockStore> {
    const dir = await tempDir('scrub');
    dirs.push(dir);
    const s = await LevelBlockStore.open({ dir, minFreeBytes: 0, inlineMaxBytes: 0 });
    stores.push(s);
    return s;
  }

  it('repairs a damaged block from another replica and counts it', async () => {
    const [a, b] = [await openStore(), await openStore()];
    const blocks = Array.from({ length: 50 }, (_, i) => ({ kind: 'put' as const, address: { volumeId: 'v', inode: 1, blockNo: i }, pg: 0, seq: i + 1, epoch: 1, data: pattern(i, 4096) }));
    await a.writeBatch(blocks, { sync: true });
    await b.writeBatch(blocks, { sync: true, onlyIfNewer: true });
    const victim = blocks[17];
    assert.ok(victim);
    const loc = await a.locate(victim.address);
    assert.ok(loc);
    const fh = await open(loc.file, 'r+');
    await fh.write(Buffer.from([0xde, 0xad]), 0, 2, loc.offset + 10);
    await fh.close();
    await assert.rejects(a.read(victim.address), (e: unknown) => isGalleonError(e, 'CHECKSUM_MISMATCH'));

    const before = await counter(metrics.scrubRepairs);
    const scrubber = new Scrubber({ store: a, repair: new StoreRepairSource(b), log, metrics, maxBlocksPerSecond: 10_000 });
    const pass = await scrubber.runOnce();
    assert.deepEqual(pass, { scanned: 50, repaired: 1, unrepairable: 0 });
    assert.equal(await counter(metrics.scrubRepairs), before + 1);
    const healed = await a.read(victim.address);
    assert.deepEqual(healed.data, victim.data);
    assert.equal(healed.seq, victim.seq);
    assert.deepEqual(await scrubber.runOnce(), { scanned: 50, repaired: 0, unrepairable: 0 });
  });

  it('reports a block it cannot repair when every other copy is missing', async () => {
    const [a, b] = [await openStore(), await openStore()];
    const address = { volumeId: 'v', inode: 2, blockNo: 0 };
    await a.write({ kind: 'put', address, pg: 0, seq: 1, epoch: 1, data: pattern(5, 1000) }, { sync: true });
    const loc = await a.locate(address);
    assert.ok(loc);
    const fh = await open(loc.file, 'r+');
    await fh.write(Buffer.from([0x00, 0x01, 0x02]), 0, 3, loc.offset);
    await fh.close();
    const pass = await new Scrubber({ store: a, repair: new StoreRepairSource(b), log, maxBlocksPerSecond: 10_000 }).runOnce();
    assert.deepEqual(pass, { scanned: 1, repaired: 0, unrepairable: 1 });
  });

  it('keeps to its rate limit', async () => {
    const a = await openStore();
    await a.writeBatch(Array.from({ length: 64 }, (_, i) => ({ kind: 'put' as const, address: { volumeId: 'v', inode: 3, blockNo: i }, pg: 0, seq: i + 1, epoch: 1, data: pattern(i, 64) })), { sync: false });
    const t = performance.now();
    await new Scrubber({ store: a, repair: new StoreRepairSource(a), log, maxBlocksPerSecond: 200 }).runOnce();
    assert.ok(performance.now() - t >= 250, '64 blocks at 200/s take at least ~300 ms');
  });

  it('keeps to its byte rate with big blocks', async () => {
    const a = await openStore();
    await a.writeBatch(Array.from({ length: 32 }, (_, i) => ({ kind: 'put' as const, address: { volumeId: 'v', inode: 4, blockNo: i }, pg: 0, seq: i + 1, epoch: 1, data: pattern(i, 256 * 1024) })), { sync: false });
    const t = performance.now();
    // 8 MiB at 16 MiB/s: ~500 ms, though 32 blocks at 10,000 blocks/s would allow ~3 ms.
    await new Scrubber({ store: a, repair: new StoreRepairSource(a), log, maxBlocksPerSecond: 10_000, maxBytesPerSecond: 16 * 1024 * 1024 }).runOnce();
    assert.ok(performance.now() - t >= 400, 'the byte budget, not the block budget, sets the pace');
  });
});
