/**
 * Streamed snapshots of the state machine: a point-in-time stream of chunks from one iterator,
 * received chunk by chunk into a staging database, installed by a crash-safe switch.
 */
import assert from 'node:assert/strict';
import { access, rename, writeFile } from 'node:fs/promises';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { openStateMachine } from '../../../metadata/state/index.js';
import { decodeSnapshotChunk } from '../../../metadata/state/snapshot-codec.js';
import { oldDirOf, stagingDirOf } from '../../../metadata/state/snapshot-stage.js';
import { isGalleonError } from '../../../proto/errors.js';
import type { SnapshotTreePage, StorageClass } from '../../../proto/metadata-types.js';
import { rootIno } from '../../../metadata/state/logic/ns-store.js';
import { NsFixture, root } from './ns-helpers.js';
import { Feeder, removeDir, tempDir } from './helpers.js';

const chunkBytes = 2048;

async function collect(sm: StateMachine): Promise<{ index: number; chunks: Uint8Array[] }> {
  const stream = await sm.openSnapshotStream(chunkBytes);
  const chunks: Uint8Array[] = [];
  for await (const c of stream.chunks) chunks.push(c);
  return { index: stream.index, chunks };
}

async function classes(sm: StateMachine): Promise<string[]> {
  return ((await sm.query('listStorageClasses', [])) as StorageClass[]).map((c) => c.name);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

describe('metadata/state streamed snapshots', function () {
  this.timeout(30_000);
  const dirs: string[] = [];
  const open: StateMachine[] = [];
  const fresh = async (): Promise<{ dir: string; sm: StateMachine }> => {
    const dir = await tempDir();
    dirs.push(dir);
    const sm = await openStateMachine(dir);
    open.push(sm);
    return { dir, sm };
  };
  /** A machine with `n` storage classes (each ~300 bytes of state). */
  const filled = async (n: number): Promise<{ dir: string; sm: StateMachine; f: Feeder }> => {
    const m = await fresh();
    const f = new Feeder(m.sm);
    for (let i = 0; i < n; i += 1) await f.ok('createStorageClass', { name: `sc-${i}`, replicas: 1, writeConcern: 'durable', zoneSpread: 'none' });
    return { ...m, f };
  };

  afterEach(async () => {
    for (const sm of open.splice(0)) await sm.close().catch(() => undefined);
    for (const d of dirs.splice(0)) {
      await removeDir(d);
      for (let i = 0; i <= 200; i += 1) await removeDir(stagingDirOf(d, i));
      await removeDir(oldDirOf(d));
    }
  });

  it('streams the state in bounded chunks and installs it elsewhere chunk by chunk, equal to the source', async () => {
    const a = await filled(40);
    const b = await fresh();
    await new Feeder(b.sm, 'other').ok('createStorageClass', { name: 'only-on-b', replicas: 1, writeConcern: 'durable' });
    const { index, chunks } = await collect(a.sm);
    assert.equal(index, a.sm.appliedIndex());
    assert.ok(chunks.length >= 4, `several chunks (${chunks.length})`);
    for (const [i, c] of chunks.entries()) {
      const d = decodeSnapshotChunk(c);
      assert.equal(d.seq, i);
      assert.equal(d.last, i === chunks.length - 1);
      // Bounded, except a chunk of one entry larger than the bound (a client session here).
      assert.ok(c.byteLength <= chunkBytes + 4 || d.count === 1, `chunk ${i} is ${c.byteLength} bytes with ${d.count} entries`);
    }
    const sink = await b.sm.beginRestore(index);
    for (const c of chunks.slice(0, 2)) await sink.write(c);
    // Half-way the live state is untouched and still serves.
    assert.ok((await classes(b.sm)).includes('only-on-b'));
    for (const c of chunks.slice(2)) await sink.write(c);
    assert.equal(await sink.finish(), index);
    await b.sm.installRestored(index);
    assert.equal(b.sm.appliedIndex(), index);
    assert.deepEqual(await classes(b.sm), await classes(a.sm));
    assert.deepEqual(Buffer.from((await b.sm.snapshot()).data), Buffer.from((await a.sm.snapshot()).data));
    // It survives a reopen, and the replaced state is gone from disk.
    await b.sm.close();
    const reopened = await openStateMachine(b.dir);
    open.push(reopened);
    assert.equal(reopened.appliedIndex(), index);
    assert.ok(!(await exists(stagingDirOf(b.dir, index))));
  });

  it('a stream is a point in time: applies after it opened are not in it', async () => {
    const a = await filled(10);
    const stream = await a.sm.openSnapshotStream(chunkBytes);
    const at = stream.index;
    await a.f.ok('createStorageClass', { name: 'later', replicas: 1, writeConcern: 'durable' });
    const chunks: Uint8Array[] = [];
    for await (const c of stream.chunks) chunks.push(c);
    const b = await fresh();
    const sink = await b.sm.beginRestore(at);
    for (const c of chunks) await sink.write(c);
    assert.equal(await sink.finish(), at);
    await b.sm.installRestored(at);
    assert.ok(!(await classes(b.sm)).includes('later'));
    assert.ok((await classes(a.sm)).includes('later'));
  });

  it('refuses a chunk out of order, a corrupt chunk, an unfinished stream and a wrong index, leaving the state alone', async () => {
    const a = await filled(20);
    const { index, chunks } = await collect(a.sm);
    const b = await fresh();
    let sink = await b.sm.beginRestore(index);
    await assert.rejects(sink.write(chunks[1]!), (e) => isGalleonError(e, 'CHECKSUM_MISMATCH'));
    const flipped = Buffer.from(chunks[0]!);
    flipped[40] = (flipped[40] ?? 0) ^ 0xff;
    sink = await b.sm.beginRestore(index);
    await assert.rejects(sink.write(flipped), (e) => isGalleonError(e, 'CHECKSUM_MISMATCH'));
    sink = await b.sm.beginRestore(index);
    await sink.write(chunks[0]!);
    await assert.rejects(sink.finish(), (e) => isGalleonError(e, 'CHECKSUM_MISMATCH'));
    await assert.rejects(b.sm.installRestored(index), (e) => isGalleonError(e, 'FAILED_PRECONDITION'));
    sink = await b.sm.beginRestore(index);
    for (const c of chunks) await sink.write(c);
    await sink.finish();
    await assert.rejects(b.sm.installRestored(index + 1), (e) => isGalleonError(e, 'FAILED_PRECONDITION'));
    assert.equal(b.sm.appliedIndex(), 0);
    assert.deepEqual(await classes(b.sm), ['encrypted-storage', 'fast-local-ssd']);
  });

  it('a crash in the middle of the switch is finished at the next open; an unfinished staging is dropped', async () => {
    const a = await filled(10);
    const { index, chunks } = await collect(a.sm);
    const b = await fresh();
    const sink = await b.sm.beginRestore(index);
    for (const c of chunks) await sink.write(c);
    await sink.finish();
    await b.sm.close();
    // The switch file was written and the first of the two renames happened, then the process died.
    await writeFile(`${b.dir}.switch`, String(index));
    await rename(b.dir, oldDirOf(b.dir));
    const after = await openStateMachine(b.dir);
    open.push(after);
    assert.equal(after.appliedIndex(), index);
    assert.ok(!(await exists(oldDirOf(b.dir))));
    assert.deepEqual(await classes(after), await classes(a.sm));

    const c = await fresh();
    const partial = await c.sm.beginRestore(index);
    await partial.write(chunks[0]!);
    await c.sm.close();
    const reopened = await openStateMachine(c.dir);
    open.push(reopened);
    assert.equal(reopened.appliedIndex(), 0);
    assert.ok(!(await exists(stagingDirOf(c.dir, index))));
  });

  it('a new transfer never deletes a finished staging Raft may still install; the same index again reuses it', async () => {
    const a = await filled(10);
    const first = await collect(a.sm);
    await a.f.ok('createStorageClass', { name: 'newer', replicas: 1, writeConcern: 'durable' });
    const second = await collect(a.sm);
    const b = await fresh();
    const s1 = await b.sm.beginRestore(first.index);
    for (const c of first.chunks) await s1.write(c);
    await s1.finish();
    // Another transfer (a later index) starts and is cut half-way.
    const s2 = await b.sm.beginRestore(second.index);
    await s2.write(second.chunks[0]!);
    // The same index once more: nothing is rewritten, the chunks are still checked.
    const again = await b.sm.beginRestore(first.index);
    await assert.rejects(again.write(first.chunks[1]!), (e) => isGalleonError(e, 'CHECKSUM_MISMATCH'));
    const again2 = await b.sm.beginRestore(first.index);
    for (const c of first.chunks) await again2.write(c);
    assert.equal(await again2.finish(), first.index);
    await b.sm.installRestored(first.index);
    assert.equal(b.sm.appliedIndex(), first.index);
    assert.ok(!(await classes(b.sm)).includes('newer'));
  });

  it('carries the file tree of volume snapshots (inode and entry versions) to the member that installs it', async () => {
    const a = await fresh();
    const fx = await new NsFixture(new Feeder(a.sm)).init(1_000);
    const dir = await fx.mkdir(rootIno, 'd');
    for (let i = 0; i < 30; i += 1) await fx.create(dir.ino, `f${i}`);
    await fx.f.ok('createSnapshot', 'fs', 'before');
    // After the snapshot: its old records live on only as versions (nx keys) in the database.
    for (let i = 0; i < 30; i += 3) await fx.f.ok('fsUnlink', 'fs', root, dir.ino, `f${i}`);
    await fx.f.ok('fsRename', 'fs', root, rootIno, 'd', rootIno, 'd2');
    const tree = async (sm: StateMachine): Promise<string[]> => {
      const out: string[] = [];
      for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
        const page = await sm.query('getSnapshotTree', ['before', cursor, 16]) as SnapshotTreePage;
        out.push(...page.entries.map((e) => `${e.parent}/${e.name}=${e.ino}`), ...page.inodes.map((i) => `#${i.attr.ino}:${i.attr.nlink}`));
        cursor = page.cursor;
      }
      return [...new Set(out)].sort();
    };
    const expected = await tree(a.sm);
    assert.ok(expected.includes(`${dir.ino}/f0=${dir.ino + 1}`) && expected.includes(`${rootIno}/d=${dir.ino}`), 'the snapshot reads the tree as it was');
    assert.equal(expected.filter((e) => e.includes('/')).length, 31);
    const b = await fresh();
    const { index, chunks } = await collect(a.sm);
    const sink = await b.sm.beginRestore(index);
    for (const c of chunks) await sink.write(c);
    await b.sm.installRestored(await sink.finish());
    assert.deepEqual(await tree(b.sm), expected);
  });

  it('checkpoint answers the applied index and changes nothing', async () => {
    const a = await filled(3);
    const before = Buffer.from((await a.sm.snapshot()).data);
    assert.equal(await a.sm.checkpoint(), a.sm.appliedIndex());
    assert.deepEqual(Buffer.from((await a.sm.snapshot()).data), before);
  });
});
