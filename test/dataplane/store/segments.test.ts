/**
 * Segment files written through O_DIRECT staging: bodies of any size and count read back
 * byte for byte, appends start aligned, and tmpfs (O_DIRECT only on newer kernels) works too.
 */
import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { directAlignBytes, stagingChunkBytes } from '../../../dataplane/store/direct-writer.js';
import { SegmentFiles } from '../../../dataplane/store/segments.js';
import { pattern, removeDir } from '../helpers.js';

/** Bodies that straddle staging chunks: odd sizes, one bigger than both staging halves. */
const bodySizes = [1, 4095, 4096, 4097, 1024 * 1024 + 3, 2 * stagingChunkBytes + 12_345, 700];

async function roundTrip(dir: string): Promise<SegmentFiles> {
  const segs = await SegmentFiles.open(dir);
  const bodies = bodySizes.map((n, i) => pattern(i + 1, n));
  const first = await segs.append(bodies.slice(0, 3));
  const second = await segs.append(bodies.slice(3));
  assert.equal(first.segmentId, second.segmentId);
  const offsets = [...first.offsets, ...second.offsets];
  assert.equal((second.offsets[0] ?? -1) % directAlignBytes, 0, 'each append starts aligned');
  await segs.sync();
  for (const [i, body] of bodies.entries()) {
    const got = await segs.read(first.segmentId, offsets[i] ?? -1, body.byteLength);
    assert.ok(Buffer.compare(got, body) === 0, `body ${i} (${body.byteLength} bytes) reads back`);
  }
  const size = (await stat(segs.fileOf(first.segmentId))).size;
  assert.equal(size % directAlignBytes, 0, 'the file ends on the alignment');
  assert.equal(segs.bytes(), size);
  return segs;
}

describe('SegmentFiles (direct I/O appends)', function () {
  this.timeout(20_000);
  const dirs: string[] = [];
  after(async () => { for (const d of dirs) await removeDir(d); });

  it('reads back every body on a disk file system, appending with O_DIRECT', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'galleon-seg-'));
    dirs.push(dir);
    const segs = await roundTrip(dir);
    try {
      // ext4/xfs take O_DIRECT; the test machines' tmpdir is on one.
      assert.equal(segs.usesDirectIo, true);
    } finally {
      await segs.close();
    }
  });

  it('works on tmpfs too (direct where the kernel allows it, else through the cache)', async function () {
    const dir = await mkdtemp(path.join('/dev/shm', 'galleon-seg-')).catch(() => null);
    if (dir === null) this.skip();
    dirs.push(dir);
    await (await roundTrip(dir)).close();
  });

  it('starts a new process on a fresh segment and keeps reading the old one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'galleon-seg-'));
    dirs.push(dir);
    const a = await SegmentFiles.open(dir);
    const body = pattern(9, 10_000);
    const { segmentId, offsets } = await a.append([body]);
    await a.close();
    const b = await SegmentFiles.open(dir);
    try {
      const next = await b.append([pattern(8, 5)]);
      assert.equal(next.segmentId, segmentId + 1);
      assert.ok(Buffer.compare(await b.read(segmentId, offsets[0] ?? -1, body.byteLength), body) === 0);
    } finally {
      await b.close();
    }
  });
});
