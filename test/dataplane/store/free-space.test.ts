/**
 * The free-space reserve on a real store with the disk at its reserve (the reserve is set just
 * below what the file system has free): new data is refused on its own, while epoch records,
 * trims and space reclamation, which are how a full disk gets space back, still go through.
 */
import assert from 'node:assert/strict';
import { statfs } from 'node:fs/promises';
import { dataplaneLogger } from '../../../dataplane/log.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { Reclaimer } from '../../../dataplane/store/reclaimer.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { isGalleonError } from '../../../proto/errors.js';
import { pattern, removeDir, tempDir } from '../helpers.js';

const log = dataplaneLogger('free-space-test');
const blockBytes = 16 * 1024;
const segmentMaxBytes = 128 * 1024;
/** What the file system may still take above the reserve: less than GC copies here, far less than a big write. */
const headroomBytes = 64 * 1024;
const addr = (b: number): BlockAddress => ({ volumeId: 'v', inode: 1, blockNo: b });

describe('dataplane/store free-space reserve (disk at its reserve)', function () {
  this.timeout(20_000);
  let dir: string | undefined;
  let store: LevelBlockStore | undefined;
  let seq = 0;

  before(async () => {
    dir = await tempDir('free-space');
    const filling = await LevelBlockStore.open({ dir, minFreeBytes: 0, inlineMaxBytes: 0, segmentMaxBytes });
    // Overwritten rounds leave dead bodies; the last round rewrites two thirds, so some victims
    // of segment GC still hold live bodies that must be copied before their segment goes.
    for (let v = 0; v < 6; v++) {
      await Promise.all(Array.from({ length: 32 }, (_, b) => (v === 5 && b % 3 === 0 ? Promise.resolve()
        : filling.write({ kind: 'put', address: addr(b), pg: 0, seq: ++seq, epoch: 1, data: pattern(b * 10 + v, blockBytes) }, { sync: true }))));
    }
    await filling.close();
    const fs = await statfs(dir);
    store = await LevelBlockStore.open({ dir, minFreeBytes: fs.bavail * fs.bsize - headroomBytes, inlineMaxBytes: 0, segmentMaxBytes });
  });

  after(async () => {
    await store?.close();
    await removeDir(dir);
  });

  it('refuses a write that cuts into the reserve on its own; an epoch record and a trim in the same group go through', async () => {
    const s = store;
    assert.ok(s);
    // A delete adds no data: it is admitted, and while it commits the next three gather into one group.
    const first = s.delete(addr(31), 0, ++seq, 1, { sync: true });
    const big = s.write({ kind: 'put', address: addr(40), pg: 0, seq: ++seq, epoch: 1, data: pattern(99, 1024 * 1024) }, { sync: true });
    const epoch = s.observeEpoch('v', 0, 7);
    const trim = s.trimJournal('v', 0, 32);
    const [bigResult, epochResult, trimResult] = await Promise.allSettled([big, epoch, trim, first]);
    assert.ok(bigResult.status === 'rejected' && isGalleonError(bigResult.reason, 'NO_SPACE'), `the big write is refused with NO_SPACE: ${JSON.stringify(bigResult)}`);
    assert.equal(epochResult.status, 'fulfilled', `the epoch record is not refused: ${JSON.stringify(epochResult)}`);
    assert.equal(trimResult.status, 'fulfilled', `the trim is not refused: ${JSON.stringify(trimResult)}`);
    assert.equal((await s.pgState('v', 0)).epoch, 7);
    await assert.rejects(s.read(addr(40)), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'), 'nothing of the refused write applied');
  });

  it('reclaims dead space with segment GC while the disk is at its reserve, copying live bodies as needed', async () => {
    const s = store;
    assert.ok(s);
    const before = s.usedBytes();
    const pass = await new Reclaimer({ store: s, log, gc: { maxBytesPerSecond: 1024 ** 3, maxSegmentsPerPass: 1000 } }).runOnce();
    assert.ok(pass.gc.bytesCopied > headroomBytes, `GC had to copy more than the headroom (${pass.gc.bytesCopied} B)`);
    assert.ok(pass.gc.deleted > 0, 'segments were deleted');
    assert.ok(s.usedBytes() < before / 2, `segment bytes ${before} -> ${s.usedBytes()}`);
    for (let b = 0; b < 31; b++) assert.ok((await s.read(addr(b))).data.equals(pattern(b * 10 + (b % 3 === 0 ? 4 : 5), blockBytes)), `block ${b} reads its newest version`);
  });
});
