/**
 * Directory delegations in the state machine (metadata/state/logic/ns-delegation.ts): grant,
 * refusal, recall, release, the end of the holder's session, the frozen rule for every other
 * session's access to the directory's entries, and fsCommitBatch (all or nothing, validated like
 * fsCreate + fsCommitWrite). Real state machine on a temp LevelDB (helpers.ts).
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { maxBatchFiles, maxDelegationsPerSession } from '../../../metadata/state/logic/ns-delegation.js';
import { rootIno } from '../../../metadata/state/logic/ns-store.js';
import type { FsAttr, FsBatchFile, FsDelegation, FsStatfs, Lease } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { useStateMachine } from './helpers.js';
import { NsFixture, alice, root } from './ns-helpers.js';

const t = '1700000000000000000';

describe('metadata/state namespace: directory delegations and fsCommitBatch', function () {
  let sm: StateMachine;
  let f: Feeder;
  let n: NsFixture;
  let a: Lease;
  let b: Lease;
  let dir: FsAttr;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  beforeEach(async () => {
    n = await new NsFixture(f).init(10_000, true, { accessMode: 'ReadWriteMany' });
    a = await f.ok<Lease>('acquireLease', 'mount', 'fs', 'node-1', 15_000, 'rw');
    b = await f.ok<Lease>('acquireLease', 'mount', 'fs', 'node-2', 15_000, 'rw');
    dir = await n.mkdir(rootIno, 'd');
  });

  const file = (name: string, size = 4096, ino = n.ino()): FsBatchFile => ({ name, ino, caller: alice, mode: 0o644, size, ctimeNs: t, mtimeNs: t });
  const delegationCode = async (method: string, ...args: unknown[]): Promise<void> => {
    const r = await f.run(method, 'fs', ...args);
    if (r.ok) assert.fail(`${method} succeeded on a delegated directory`);
    assert.equal(r.error.code, 'DELEGATED', `${method}: ${r.error.message}`);
    assert.deepEqual([r.error.details?.dir, r.error.details?.session], [dir.ino, a.id]);
  };

  it('grants one live session at a time, refuses another without a recall, and hands over when the holder lease ends', async () => {
    assert.deepEqual(await f.ok<FsDelegation>('fsDelegate', 'fs', dir.ino, a.id), { granted: true, session: a.id, recallAtMs: null });
    assert.deepEqual(await f.ok<FsDelegation>('fsDelegate', 'fs', dir.ino, a.id), { granted: true, session: a.id, recallAtMs: null }, 'idempotent');
    assert.deepEqual(await f.ok<FsDelegation>('fsDelegate', 'fs', dir.ino, b.id), { granted: false, session: a.id, recallAtMs: null });
    await f.fails('LEASE_NOT_FOUND', 'fsDelegate', 'fs', dir.ino, 'no-such-lease');
    await n.errno('ENOTDIR', 'fsDelegate', (await n.create(rootIno, 'plain')).ino, a.id);
    await f.ok('releaseLease', a.id);
    assert.deepEqual(await f.ok<FsDelegation>('fsDelegate', 'fs', dir.ino, b.id), { granted: true, session: b.id, recallAtMs: null }, 'the ended session lost it');
  });

  it('bounds the directories one session holds', async () => {
    const dirs = [dir];
    for (let i = 1; i <= maxDelegationsPerSession; i++) dirs.push(await n.mkdir(rootIno, `d${i}`));
    for (const d of dirs.slice(0, maxDelegationsPerSession)) assert.equal((await f.ok<FsDelegation>('fsDelegate', 'fs', d.ino, a.id)).granted, true);
    assert.deepEqual(await f.ok<FsDelegation>('fsDelegate', 'fs', dirs[maxDelegationsPerSession]!.ino, a.id), { granted: false, session: null, recallAtMs: null });
  });

  it('freezes the directory entries for every other session until the holder releases; the holder itself passes', async () => {
    const old = await n.create(dir.ino, 'old');
    const other = await n.create(rootIno, 'other');
    await f.ok('fsDelegate', 'fs', dir.ino, a.id);
    await delegationCode('fsCreate', root, dir.ino, 'n1', n.ino(), 0o644, { open: b.id });
    await delegationCode('fsCreate', root, dir.ino, 'n1', n.ino(), 0o644);
    await delegationCode('fsMkdir', root, dir.ino, 'sub', n.ino(), 0o755);
    await delegationCode('fsMknod', root, dir.ino, 'fifo', n.ino(), 'fifo', 0o644);
    await delegationCode('fsSymlink', root, dir.ino, 'sym', n.ino(), 'old');
    await delegationCode('fsLink', root, other.ino, dir.ino, 'hard');
    await delegationCode('fsUnlink', root, dir.ino, 'old');
    await delegationCode('fsRename', root, dir.ino, 'old', rootIno, 'moved', 0);
    await delegationCode('fsRename', root, rootIno, 'other', dir.ino, 'other', 0);
    await delegationCode('fsSetattr', root, dir.ino, { mode: 0o700 });
    await delegationCode('fsSetxattr', root, dir.ino, 'user.a', 'eA==', 0);
    await delegationCode('fsRmdir', root, rootIno, 'd');
    for (const [method, args] of [['fsLookup', [dir.ino, 'old']], ['fsLookup', [dir.ino, 'old', b.id]], ['fsReaddir', [dir.ino, null, 10]], ['fsReaddir', [dir.ino, null, 10, b.id]]] as const) {
      await assert.rejects(sm.query(method, ['fs', ...args]), (e: unknown) => (e as { code?: string }).code === 'DELEGATED', `${method} ${JSON.stringify(args)}`);
    }
    assert.deepEqual(await n.names(rootIno), ['d', 'other'], 'refused commands changed nothing');
    // The holder: its own lookups, listings and creates that name its session pass.
    assert.equal((await sm.query('fsLookup', ['fs', dir.ino, 'old', a.id]) as FsAttr).ino, old.ino);
    assert.equal((await sm.query('fsReaddir', ['fs', dir.ino, null, 10, a.id]) as { entries: unknown[] }).entries.length, 1);
    await f.ok('fsCreate', 'fs', root, dir.ino, 'mine', n.ino(), 0o644, { open: a.id });
    // Not the directory's entries: by-inode access to files in it, and getattr of the directory.
    await f.ok('fsOpen', 'fs', old.ino, b.id);
    await f.ok('fsSetattr', 'fs', root, old.ino, { mode: 0o600 });
    assert.equal((await n.getattr(dir.ino)).ino, dir.ino);
    assert.deepEqual(await f.ok('fsReleaseDelegation', 'fs', dir.ino, b.id), { released: false }, 'only the holder releases');
    assert.deepEqual(await f.ok('fsReleaseDelegation', 'fs', dir.ino, a.id), { released: true });
    await f.ok('fsUnlink', 'fs', root, dir.ino, 'old');
    assert.deepEqual(await n.names(dir.ino), ['mine']);
  });

  it('commits a batch all or nothing, with owners, sizes and times, and the parent counted once', async () => {
    await f.ok('fsDelegate', 'fs', dir.ino, a.id);
    const files = [file('x', 4096), file('y', 10)];
    const before = await sm.query('fsStatfs', ['fs']) as FsStatfs;
    const r = await f.ok<{ attrs: FsAttr[]; parent: FsAttr }>('fsCommitBatch', 'fs', a.id, dir.ino, files, false);
    assert.deepEqual(r.attrs.map((x) => [x.ino, x.type, x.mode, x.uid, x.gid, x.size, x.nlink, x.mtimeNs, x.ctimeNs]),
      files.map((x) => [x.ino, 'file', 0o644, 1000, 1000, x.size, 1, t, t]));
    assert.deepEqual(await n.names(dir.ino, a.id), ['x', 'y']);
    assert.deepEqual(await sm.query('fsLookup', ['fs', dir.ino, 'y', a.id]), r.attrs[1]);
    const after = await sm.query('fsStatfs', ['fs']) as FsStatfs;
    assert.deepEqual([after.inodes - before.inodes, after.usedBytes - before.usedBytes], [2, 4106]);
    // One bad file refuses the whole batch: nothing of it lands.
    await n.errno('EEXIST', 'fsCommitBatch', a.id, dir.ino, [file('z'), file('x')], false);
    await f.fails('INVALID_ARGUMENT', 'fsCommitBatch', 'fs', a.id, dir.ino, [file('z'), { ...file('w'), ino: 999_999_999 }], false);
    await f.fails('INVALID_ARGUMENT', 'fsCommitBatch', 'fs', a.id, dir.ino, [file('z'), file('z')], false);
    await f.fails('INVALID_ARGUMENT', 'fsCommitBatch', 'fs', a.id, dir.ino, [], false);
    await f.fails('INVALID_ARGUMENT', 'fsCommitBatch', 'fs', a.id, dir.ino, Array.from({ length: maxBatchFiles + 1 }, (_, i) => ({ ...file(`n${i}`, 0, 2 + i) })), false);
    await n.errno('ENAMETOOLONG', 'fsCommitBatch', a.id, dir.ino, [file('z'), file('x'.repeat(256))], false);
    assert.deepEqual(await n.names(dir.ino, a.id), ['x', 'y'], 'refused batches changed nothing');
    // Only the holder commits; release ends the delegation with the last batch.
    await f.fails('LEASE_NOT_FOUND', 'fsCommitBatch', 'fs', b.id, dir.ino, [file('z')], false);
    await f.ok('fsCommitBatch', 'fs', a.id, dir.ino, [file('z')], true);
    assert.deepEqual(await n.names(dir.ino, a.id), ['x', 'y', 'z']);
    await f.fails('LEASE_NOT_FOUND', 'fsCommitBatch', 'fs', a.id, dir.ino, [file('v')], false);
    assert.equal((await f.ok<FsDelegation>('fsDelegate', 'fs', dir.ino, b.id)).granted, true, 'released with the batch');
  });

  it('counts a batch file\'s open handles for the session, so an unlink elsewhere keeps it until the last close', async () => {
    await f.ok('fsDelegate', 'fs', dir.ino, a.id);
    const held = file('held', 10);
    await f.ok('fsCommitBatch', 'fs', a.id, dir.ino, [{ ...held, open: 2 }, file('plain', 10)], true);
    await f.ok('fsUnlink', 'fs', root, dir.ino, 'held');
    await f.ok('fsUnlink', 'fs', root, dir.ino, 'plain');
    assert.equal((await sm.query('fsGetattr', ['fs', held.ino]) as FsAttr).nlink, 0, 'kept while open');
    await f.ok('fsClose', 'fs', held.ino, a.id);
    assert.equal((await sm.query('fsGetattr', ['fs', held.ino]) as FsAttr).nlink, 0, 'one handle still open');
    await f.ok('fsClose', 'fs', held.ino, a.id);
    await assert.rejects(sm.query('fsGetattr', ['fs', held.ino]), /ENOENT|not found/i, 'gone at the last close');
    await f.fails('INVALID_ARGUMENT', 'fsCommitBatch', 'fs', a.id, dir.ino, [{ ...file('neg'), open: -1 }], false);
  });

  it('applies the set-gid directory rules of fsCreate to batch files', async () => {
    const sg = await n.mkdir(rootIno, 'sg', root, 0o2775);
    await f.ok('fsSetattr', 'fs', root, sg.ino, { gid: 500 });
    await f.ok('fsDelegate', 'fs', sg.ino, a.id);
    const r = await f.ok<{ attrs: FsAttr[] }>('fsCommitBatch', 'fs', a.id, sg.ino, [{ ...file('g'), mode: 0o2755 }], true);
    assert.deepEqual([r.attrs[0]!.gid, r.attrs[0]!.mode], [500, 0o755], 'group of the directory; set-gid dropped for a caller outside it');
  });

  it('records a recall once, and loses the holder files that were not committed when its lease expires', async () => {
    await f.ok('fsDelegate', 'fs', dir.ino, a.id);
    const first = await f.ok<FsDelegation>('fsRecall', 'fs', dir.ino);
    assert.deepEqual([first.session, first.recallAtMs], [a.id, f.stampMs]);
    f.stampMs += 1_000;
    assert.equal((await f.ok<FsDelegation>('fsRecall', 'fs', dir.ino)).recallAtMs, first.recallAtMs, 'the first stamp stays');
    assert.equal((await f.ok<FsDelegation>('fsDelegate', 'fs', dir.ino, a.id)).recallAtMs, first.recallAtMs, 'the holder sees the recall');
    assert.deepEqual(await sm.query('fsDelegationsOf', ['fs', a.id]), [{ dir: dir.ino, recallAtMs: first.recallAtMs }], 'and reads it without a write');
    assert.deepEqual(await sm.query('fsDelegationsOf', ['fs', b.id]), []);
    f.stampMs += 20_000;
    await f.ok('expireLeases');
    await f.fails('LEASE_NOT_FOUND', 'fsCommitBatch', 'fs', a.id, dir.ino, [file('late')], false);
    assert.deepEqual(await n.names(dir.ino), [], 'nothing half-created');
    assert.deepEqual(await f.ok<FsDelegation>('fsRecall', 'fs', dir.ino), { granted: false, session: null, recallAtMs: null }, 'gone with the session');
    assert.deepEqual(await f.ok('fsReleaseDelegation', 'fs', dir.ino, a.id), { released: false });
  });

  it('reserves space for a holder\'s buffered files: committed + reserved never pass the size; a batch converts, release and the lease\'s end return it', async () => {
    const size = 1024 ** 3;
    const statfs = async (): Promise<FsStatfs> => await sm.query('fsStatfs', ['fs']) as FsStatfs;
    const other = await n.mkdir(rootIno, 'other-dir');
    await f.ok('fsCommitWrite', 'fs', (await n.create(rootIno, 'big')).ino, size / 2, t);
    await f.ok('fsDelegate', 'fs', dir.ino, a.id);
    await f.ok('fsDelegate', 'fs', other.ino, b.id);
    assert.deepEqual(await f.ok('fsReserve', 'fs', dir.ino, a.id, size / 4), { reservedBytes: size / 4 });
    // b asks for more than is left: it gets what is left, and nothing passes the size.
    assert.deepEqual(await f.ok('fsReserve', 'fs', other.ino, b.id, size / 2), { reservedBytes: size / 4 });
    assert.deepEqual([(await statfs()).usedBytes, (await statfs()).freeBytes], [size, 0], 'reservations count as used');
    assert.deepEqual(await f.ok('fsReserve', 'fs', dir.ino, a.id, size / 2), { reservedBytes: size / 4 }, 'no room to grow');
    // Bad input changes nothing.
    await f.fails('LEASE_NOT_FOUND', 'fsReserve', 'fs', dir.ino, b.id, 10);
    await f.fails('INVALID_ARGUMENT', 'fsReserve', 'fs', dir.ino, a.id, -1);
    await f.fails('INVALID_ARGUMENT', 'fsReserve', 'fs', dir.ino, a.id, size + 1);
    await f.fails('INVALID_ARGUMENT', 'fsCommitBatch', 'fs', a.id, dir.ino, [file('x', 10)], false, -5);
    assert.equal((await statfs()).usedBytes, size);
    // A batch of 1 MiB turns reserved bytes into file sizes; `keep` 0 gives back the rest at once.
    await f.ok('fsCommitBatch', 'fs', a.id, dir.ino, [file('x', 1024 ** 2)], false, 0);
    assert.equal((await statfs()).usedBytes, size / 2 + 1024 ** 2 + size / 4);
    assert.deepEqual(await f.ok('fsReserve', 'fs', dir.ino, a.id, 0), { reservedBytes: 0 });
    // b's release returns its reservation; a's lease end returns a's.
    assert.deepEqual(await f.ok('fsReserve', 'fs', dir.ino, a.id, 4096), { reservedBytes: 4096 });
    await f.ok('fsReleaseDelegation', 'fs', other.ino, b.id);
    assert.equal((await statfs()).usedBytes, size / 2 + 1024 ** 2 + 4096);
    await f.ok('releaseLease', a.id);
    assert.equal((await statfs()).usedBytes, size / 2 + 1024 ** 2);
  });
});
