/**
 * The file tree at a snapshot on the real state machine (LevelDB, the cold-state cache, prefetch
 * and fetch-and-rerun): a clone of a tree larger than one paced step copies in several
 * fsPurgeDeleted steps and is refused a mount until done; a restore in place rolls the tree back;
 * a snapshot delete leaves no version key behind. Trees are compared through fsReaddir/fsGetattr.
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { decodeSnapshot } from '../../../metadata/state/snapshot-codec.js';
import { rootIno } from '../../../metadata/state/logic/ns-store.js';
import { treeRecordsPerStep } from '../../../metadata/state/logic/ns-tree-work.js';
import type { FsAttr, FsBlocksToFree, FsReaddirPage, Volume } from '../../../proto/metadata-types.js';
import { useStateMachine, type Feeder } from './helpers.js';
import { NsFixture, root } from './ns-helpers.js';

/** `name -> ino:mode:nlink:size` of every entry, walked from the root. */
async function treeOf(sm: StateMachine, volume: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: number, path: string): Promise<void> => {
    let cursor: string | null = null;
    do {
      const page = await sm.query('fsReaddir', [volume, dir, cursor, 100]) as FsReaddirPage;
      for (const e of page.entries) {
        const a: FsAttr = e.attr;
        out.set(`${path}/${e.name}`, `${a.ino}:${a.mode.toString(8)}:${a.nlink}:${a.size}`);
        if (a.type === 'dir') await walk(a.ino, `${path}/${e.name}`);
      }
      cursor = page.cursor;
    } while (cursor !== null);
  };
  await walk(rootIno, '');
  return out;
}

async function drain(sm: StateMachine, f: Feeder): Promise<number> {
  let steps = 0;
  while ((await sm.query('fsPendingPurges', [])) as number > 0) {
    await f.ok('fsPurgeDeleted');
    assert.ok(++steps < 1_000, 'tree work finishes');
  }
  return steps;
}

describe('metadata/state: snapshot trees on the real machine', function () {
  this.timeout(120_000);
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((s, feeder) => { sm = s; f = feeder; });

  it('copies a clone in paced steps, restores in place, and collects every version after the deletes', async () => {
    const fx = await new NsFixture(f).init(5_000);
    const dirs = [await fx.mkdir(rootIno, 'a'), await fx.mkdir(rootIno, 'b')];
    for (let i = 0; i < 400; i += 1) await fx.create(dirs[i % 2]!.ino, `f${i}`);
    await f.ok('createSnapshot', 'fs', 's1');
    const before = await treeOf(sm, 'fs');
    assert.equal(before.size, 402);
    for (let i = 0; i < 400; i += 4) await f.ok('fsUnlink', 'fs', root, dirs[i % 2]!.ino, `f${i}`);
    await f.ok('fsSetattr', 'fs', root, dirs[1]!.ino, { mode: 0o700 });
    await f.ok('fsRename', 'fs', root, rootIno, 'a', dirs[1]!.ino, 'a-moved');
    await fx.create(rootIno, 'new');
    const changed = await treeOf(sm, 'fs');
    assert.notDeepEqual(changed, before);

    const clone = await f.ok<Volume>('cloneVolume', 's1', 'fs-clone');
    assert.equal(clone.treeState, 'copying');
    const refused = await f.run('acquireLease', 'mount', 'fs-clone', 'node-a', 10_000, 'rw');
    assert.ok(!refused.ok && refused.error.code === 'FAILED_PRECONDITION', 'not mountable while copying');
    const steps = await drain(sm, f);
    assert.ok(steps >= Math.ceil(802 / treeRecordsPerStep), `several paced steps (${steps})`);
    assert.equal((await sm.query('getVolume', ['fs-clone']) as Volume).treeState, undefined);
    assert.deepEqual(await treeOf(sm, 'fs-clone'), before, 'the clone holds the tree of s1, same inode numbers');
    assert.ok((await f.run('acquireLease', 'mount', 'fs-clone', 'node-a', 10_000, 'rw')).ok, 'mountable once copied');

    await f.ok('createSnapshot', 'fs', 's2');
    const restored = await f.ok<Volume>('restoreVolume', 'fs', 's1');
    assert.equal(restored.treeState, 'restoring');
    await drain(sm, f);
    assert.deepEqual(await treeOf(sm, 'fs'), before, 'restored in place to s1');
    const names = new Set<string>();
    for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
      const page = await sm.query('getSnapshotTree', ['s2', cursor, 128]) as { entries: { name: string }[]; cursor: string | null };
      for (const e of page.entries) names.add(e.name);
      cursor = page.cursor;
    }
    assert.ok(names.has('new') && names.has('a-moved') && !names.has('a'), 's2 still reads the tree it was taken of');

    await f.ok('releaseLease', ((await sm.query('listLeases', [])) as { id: string }[])[0]!.id);
    await f.ok('deleteVolume', 'fs-clone');
    await f.ok('deleteSnapshot', 's1');
    await f.ok('deleteSnapshot', 's2');
    await drain(sm, f);
    assert.deepEqual(await treeOf(sm, 'fs'), before, 'collection changes no live record');
    const keys = decodeSnapshot((await sm.snapshot()).data).entries.map((e) => e.key.toString('utf8'));
    assert.ok(keys.some((k) => k.startsWith('ni/')), 'the dump holds the namespace');
    assert.deepEqual(keys.filter((k) => k.startsWith('nx/')), [], 'no version key left once no snapshot reads it');
    const stats = await sm.query('getSnapshotTree', ['s1', null, 1]).catch((e: unknown) => e) as { code?: string };
    assert.equal(stats.code, 'SNAPSHOT_NOT_FOUND');
  });

  it('a restore queues the blocks of files made after the cut (with their ends), and only those', async () => {
    const fx = await new NsFixture(f).init(1_000);
    const kept = await fx.create(rootIno, 'kept');
    await f.ok('fsCommitWrite', 'fs', kept.ino, 5 * 4096);
    const gone = await fx.create(rootIno, 'unlinked-after');
    await f.ok('fsCommitWrite', 'fs', gone.ino, 4096);
    await f.ok('createSnapshot', 'fs', 's1');
    // After the cut: a new file of 3 blocks and a half, an empty one, a rewrite of `kept`, an unlink.
    const made = await fx.create(rootIno, 'made-after');
    await f.ok('fsCommitWrite', 'fs', made.ino, 3 * 4096 + 100);
    await fx.create(rootIno, 'empty-after');
    await f.ok('fsCommitWrite', 'fs', kept.ino, 9 * 4096);
    await f.ok('fsUnlink', 'fs', root, rootIno, 'unlinked-after');
    const queued = async (): Promise<FsBlocksToFree[]> => sm.query('fsListBlocksToFree', ['fs', 100]) as Promise<FsBlocksToFree[]>;
    const before = await queued();
    assert.deepEqual(before.map((e) => [e.ino, e.toBlock]), [[gone.ino, undefined]], 'the unlink queued its file without an end');

    await f.ok('restoreVolume', 'fs', 's1');
    await drain(sm, f);
    const after = (await queued()).slice(before.length);
    const emptyIno = made.ino + 1;
    assert.deepEqual(after.map((e) => ({ ino: e.ino, fromBlock: e.fromBlock, toBlock: e.toBlock })).sort((a, b) => a.ino - b.ino),
      [{ ino: made.ino, fromBlock: 0, toBlock: 4 }, { ino: emptyIno, fromBlock: 0, toBlock: 0 }],
      'the files made after the cut, to the end they had; not the restored ones');
    assert.equal((await fx.getattr(kept.ino)).size, 5 * 4096, 'kept is back at its size at the cut');
    assert.equal((await fx.getattr(gone.ino)).size, 4096, 'the unlinked file is back');
    await fx.queryErrno('ENOENT', 'fsGetattr', made.ino);
  });

  it('refuses a restore while any mount holds the volume, read-only too, naming where (nothing changes)', async () => {
    await new NsFixture(f).init(100, true, { accessMode: 'ReadOnlyMany' });
    await f.ok('createSnapshot', 'fs', 's1');
    assert.ok((await f.run('acquireLease', 'mount', 'fs', 'node-b', 10_000, 'ro')).ok);
    const refused = await f.run('restoreVolume', 'fs', 's1');
    assert.ok(!refused.ok);
    assert.equal(refused.error.code, 'FAILED_PRECONDITION');
    assert.equal(refused.error.message, 'volume fs is mounted by node-b (read-only)');
    assert.match(refused.error.hint ?? '', /unmount it on each of them first/);
    const vol = await sm.query('getVolume', ['fs']) as Volume;
    assert.equal(vol.restores, undefined, 'nothing restored');
    await f.ok('releaseLease', ((await sm.query('listLeases', [])) as { id: string }[])[0]!.id);
    assert.equal((await f.ok<Volume>('restoreVolume', 'fs', 's1')).restores?.length, 1, 'restores once unmounted');
  });
});
