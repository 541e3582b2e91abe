import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { FsAttr, FsBlocksToFree, FsStatfs, Lease } from '../../../proto/metadata-types.js';
import { FsRenameFlags, FsXattrFlags } from '../../../proto/metadata-types.js';
import { posixErrnoOf, posixErrnos, GalleonError } from '../../../proto/errors.js';
import { msToNs, rootIno } from '../../../metadata/state/logic/ns-store.js';
import type { Feeder} from './helpers.js';
import { t0, useStateMachine } from './helpers.js';
import { NsFixture, alice, bob, root } from './ns-helpers.js';

describe('metadata/state namespace: create, lookup, mkdir, mknod, symlink', function () {
  let sm: StateMachine;
  let f: Feeder;
  let n: NsFixture;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  beforeEach(async () => { n = await new NsFixture(f).init(); });

  it('gives every volume a root directory: inode 1, 0755 root:root, two links, times of the volume', async () => {
    const r = await n.getattr(rootIno);
    const t = msToNs(n.vol.createdAtMs);
    assert.deepEqual(r, { ino: 1, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeNs: t, mtimeNs: t, ctimeNs: t, rdev: 0, generation: 1, truncEpoch: 0 });
    const st = await sm.query('fsStatfs', ['fs']) as FsStatfs;
    assert.deepEqual([st.totalBytes, st.usedBytes, st.inodes, st.maxNameBytes], [2 ** 30, 0, 1, 255]);
  });

  it('creates a file with the caller as owner and the umask applied, and bumps the parent times', async () => {
    f.stampMs = t0 + 5_000;
    const ino = n.ino();
    const reply = await f.ok<{ attr: FsAttr; parent: FsAttr; created: boolean }>('fsCreate', 'fs', alice, rootIno, 'a.txt', ino, 0o666, { umask: 0o022 });
    assert.deepEqual([reply.attr.ino, reply.attr.type, reply.attr.mode, reply.attr.uid, reply.attr.gid, reply.attr.nlink, reply.attr.size, reply.created],
      [ino, 'file', 0o644, 1000, 1000, 1, 0, true]);
    assert.equal(reply.attr.ctimeNs, msToNs(t0 + 5_000));
    assert.equal(reply.parent.mtimeNs, msToNs(t0 + 5_000));
    assert.equal(reply.parent.ctimeNs, msToNs(t0 + 5_000));
    assert.deepEqual(await n.lookup(rootIno, 'a.txt'), reply.attr);
    assert.deepEqual(await n.getattr(ino), reply.attr);
    assert.equal((await sm.query('fsStatfs', ['fs']) as FsStatfs).inodes, 2);
  });

  it('refuses an existing name (O_EXCL), or answers the existing file without exclusive', async () => {
    const a = await n.create(rootIno, 'a');
    await n.errno('EEXIST', 'fsCreate', root, rootIno, 'a', n.ino(), 0o644);
    const again = await f.ok<{ attr: FsAttr; created: boolean }>('fsCreate', 'fs', root, rootIno, 'a', n.ino(), 0o644, { exclusive: false });
    assert.deepEqual([again.attr.ino, again.created], [a.ino, false]);
    await n.mkdir(rootIno, 'd');
    await n.errno('EISDIR', 'fsCreate', root, rootIno, 'd', n.ino(), 0o644, { exclusive: false });
    await f.fails('INVALID_ARGUMENT', 'fsCreate', 'fs', root, rootIno, 'b', n.ino(), 0o644, 'excl');
    await f.fails('INVALID_ARGUMENT', 'fsCreate', 'fs', root, rootIno, 'b', n.ino(), 0o644, { exclusive: 'no' });
    await f.fails('INVALID_ARGUMENT', 'fsCreate', 'fs', root, rootIno, 'b', n.ino(), 0o644, { mask: 2 });
    await n.errno('EEXIST', 'fsMkdir', root, rootIno, 'a', n.ino(), 0o755);
  });

  it('checks names: 255 bytes pass, 256 are ENAMETOOLONG; ".", "..", "/", NUL and "" are EINVAL', async () => {
    await n.create(rootIno, 'é'.repeat(127) + 'x'); // 255 bytes in UTF-8
    await n.errno('ENAMETOOLONG', 'fsCreate', root, rootIno, 'é'.repeat(128), n.ino(), 0o644);
    for (const bad of ['.', '..', 'a/b', 'a\0b', '']) await n.errno('EINVAL', 'fsCreate', root, rootIno, bad, n.ino(), 0o644);
    await n.queryErrno('ENAMETOOLONG', 'fsLookup', rootIno, 'x'.repeat(256));
  });

  it('needs the parent to be a live directory, and an allocated unused inode number', async () => {
    const file = await n.create(rootIno, 'file');
    await n.errno('ENOTDIR', 'fsCreate', root, file.ino, 'x', n.ino(), 0o644);
    await n.errno('ENOENT', 'fsCreate', root, 9_999, 'x', n.ino(), 0o644);
    await f.fails('INVALID_ARGUMENT', 'fsCreate', 'fs', root, rootIno, 'x', 999_999, 0o644);
    await f.fails('INVALID_ARGUMENT', 'fsCreate', 'fs', root, rootIno, 'x', file.ino, 0o644);
    await f.fails('INVALID_ARGUMENT', 'fsCreate', 'fs', { uid: -1, gid: 0 }, rootIno, 'x', n.ino(), 0o644);
    await f.fails('VOLUME_NOT_FOUND', 'fsCreate', 'nope', root, rootIno, 'x', n.ino(), 0o644);
    await n.queryErrno('ENOENT', 'fsLookup', rootIno, 'x');
    await n.queryErrno('ENOTDIR', 'fsLookup', file.ino, 'x');
  });

  it('counts directory links as 2 + subdirectories and refuses rmdir of a non-empty directory', async () => {
    const d = await n.mkdir(rootIno, 'd');
    assert.equal(d.nlink, 2);
    assert.equal((await n.getattr(rootIno)).nlink, 3);
    await n.mkdir(d.ino, 'e');
    await n.create(d.ino, 'f');
    assert.equal((await n.getattr(d.ino)).nlink, 3);
    await n.errno('ENOTEMPTY', 'fsRmdir', root, rootIno, 'd');
    await n.errno('ENOTDIR', 'fsRmdir', root, d.ino, 'f');
    await n.errno('EISDIR', 'fsUnlink', root, d.ino, 'e');
    await n.errno('ENOENT', 'fsRmdir', root, d.ino, 'zz');
    await f.ok('fsRmdir', 'fs', root, d.ino, 'e');
    await f.ok('fsUnlink', 'fs', root, d.ino, 'f');
    assert.equal((await n.getattr(d.ino)).nlink, 2);
    const r = await f.ok<{ parent: FsAttr; attr: null }>('fsRmdir', 'fs', root, rootIno, 'd');
    assert.deepEqual([r.parent.nlink, r.attr], [2, null]);
    await n.queryErrno('ENOENT', 'fsGetattr', d.ino);
  });

  it('inherits the group and set-gid of a set-gid directory', async () => {
    const d = await n.mkdir(rootIno, 'shared', root, 0o2775);
    await f.ok('fsSetattr', 'fs', root, d.ino, { gid: 50 });
    const sub = await n.mkdir(d.ino, 'sub', alice, 0o755);
    assert.deepEqual([sub.gid, sub.mode], [50, 0o2755]);
    const file = await n.create(d.ino, 'file', alice, 0o2755);
    assert.deepEqual([file.gid, file.mode], [50, 0o755], 'set-gid dropped: alice is not in group 50');
  });

  it('makes fifos, sockets, devices and symlinks', async () => {
    const fifo = (await f.ok<{ attr: FsAttr }>('fsMknod', 'fs', root, rootIno, 'p', n.ino(), 'fifo', 0o644)).attr;
    const dev = (await f.ok<{ attr: FsAttr }>('fsMknod', 'fs', root, rootIno, 'null', n.ino(), 'char', 0o666, 259)).attr;
    const sock = (await f.ok<{ attr: FsAttr }>('fsMknod', 'fs', root, rootIno, 's', n.ino(), 'socket', 0o600)).attr;
    assert.deepEqual([fifo.type, dev.type, dev.rdev, sock.type], ['fifo', 'char', 259, 'socket']);
    await f.fails('INVALID_ARGUMENT', 'fsMknod', 'fs', root, rootIno, 'd', n.ino(), 'dir', 0o755);
    const link = (await f.ok<{ attr: FsAttr }>('fsSymlink', 'fs', alice, rootIno, 'ln', n.ino(), '../target/é')).attr;
    assert.deepEqual([link.type, link.mode, link.size, link.uid], ['symlink', 0o777, 12, 1000]);
    assert.equal(await sm.query('fsReadlink', ['fs', link.ino]), '../target/é');
    await n.queryErrno('EINVAL', 'fsReadlink', fifo.ino);
    await n.errno('ENAMETOOLONG', 'fsSymlink', root, rootIno, 'long', n.ino(), 'x'.repeat(4096));
  });
});

describe('metadata/state namespace: link, unlink, rename', function () {
  let sm: StateMachine;
  let f: Feeder;
  let n: NsFixture;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  beforeEach(async () => { n = await new NsFixture(f).init(); });

  const toFree = async (): Promise<FsBlocksToFree[]> => sm.query('fsListBlocksToFree', ['fs', 100]) as Promise<FsBlocksToFree[]>;

  it('hard-links files (not directories), and deletes the inode at the last unlink, queueing its blocks', async () => {
    const a = await n.create(rootIno, 'a');
    const d = await n.mkdir(rootIno, 'd');
    const linked = await f.ok<{ attr: FsAttr }>('fsLink', 'fs', root, a.ino, d.ino, 'b');
    assert.equal(linked.attr.nlink, 2);
    await n.errno('EPERM', 'fsLink', root, d.ino, rootIno, 'd2');
    await n.errno('EEXIST', 'fsLink', root, a.ino, rootIno, 'a');
    const first = await f.ok<{ attr: FsAttr }>('fsUnlink', 'fs', root, rootIno, 'a');
    assert.equal(first.attr.nlink, 1);
    assert.deepEqual(await toFree(), []);
    const last = await f.ok<{ attr: FsAttr | null }>('fsUnlink', 'fs', root, d.ino, 'b');
    assert.equal(last.attr, null);
    await n.queryErrno('ENOENT', 'fsGetattr', a.ino);
    assert.deepEqual((await toFree()).map((b) => [b.ino, b.fromBlock]), [[a.ino, 0]]);
    await n.errno('ENOENT', 'fsUnlink', root, rootIno, 'a');
  });

  it('renames a file, replaces a file (the old one is deleted), and treats two names of one inode as a no-op', async () => {
    const a = await n.create(rootIno, 'a');
    const b = await n.create(rootIno, 'b');
    f.stampMs += 1_000;
    const r = await f.ok<{ attr: FsAttr; parent: FsAttr }>('fsRename', 'fs', root, rootIno, 'a', rootIno, 'b');
    assert.equal(r.attr.ino, a.ino);
    assert.equal(r.attr.ctimeNs, msToNs(f.stampMs), 'rename bumps the ctime of the moved inode');
    assert.deepEqual(await n.names(rootIno), ['b']);
    await n.queryErrno('ENOENT', 'fsGetattr', b.ino);
    await f.ok('fsLink', 'fs', root, a.ino, rootIno, 'c');
    const before = await n.getattr(a.ino);
    await f.ok('fsRename', 'fs', root, rootIno, 'b', rootIno, 'c');
    assert.deepEqual(await n.names(rootIno), ['b', 'c'], 'rename between links of one inode does nothing');
    assert.deepEqual(await n.getattr(a.ino), before);
    await n.errno('ENOENT', 'fsRename', root, rootIno, 'zz', rootIno, 'y');
  });

  it('follows the type rules: dir onto file ENOTDIR, file onto dir EISDIR, dir onto non-empty dir ENOTEMPTY', async () => {
    const d1 = await n.mkdir(rootIno, 'd1');
    const d2 = await n.mkdir(rootIno, 'd2');
    await n.create(rootIno, 'f');
    await n.create(d2.ino, 'inside');
    await n.errno('ENOTDIR', 'fsRename', root, rootIno, 'd1', rootIno, 'f');
    await n.errno('EISDIR', 'fsRename', root, rootIno, 'f', rootIno, 'd1');
    await n.errno('ENOTEMPTY', 'fsRename', root, rootIno, 'd1', rootIno, 'd2');
    await f.ok('fsUnlink', 'fs', root, d2.ino, 'inside');
    await f.ok('fsRename', 'fs', root, rootIno, 'd1', rootIno, 'd2');
    assert.deepEqual(await n.names(rootIno), ['d2', 'f']);
    assert.equal((await n.lookup(rootIno, 'd2')).ino, d1.ino);
    assert.equal((await n.getattr(rootIno)).nlink, 3);
  });

  it('refuses to move a directory into its own subtree, and moves it elsewhere with its link counts', async () => {
    const a = await n.mkdir(rootIno, 'a');
    const b = await n.mkdir(a.ino, 'b');
    const c = await n.mkdir(b.ino, 'c');
    await n.errno('EINVAL', 'fsRename', root, rootIno, 'a', c.ino, 'x');
    await n.errno('EINVAL', 'fsRename', root, rootIno, 'a', a.ino, 'x');
    const r = await f.ok<{ parent: FsAttr; newParent: FsAttr }>('fsRename', 'fs', root, b.ino, 'c', rootIno, 'c');
    assert.deepEqual([r.parent.ino, r.parent.nlink, r.newParent.ino, r.newParent.nlink], [b.ino, 2, rootIno, 4]);
    // c's parent is now the root: moving a under c is fine, moving c under a's subtree is not.
    await f.ok('fsRename', 'fs', root, rootIno, 'a', c.ino, 'a');
    await n.errno('EINVAL', 'fsRename', root, rootIno, 'c', b.ino, 'c');
    assert.deepEqual(await n.names(c.ino), ['a']);
  });

  it('supports RENAME_NOREPLACE and RENAME_EXCHANGE', async () => {
    const a = await n.create(rootIno, 'a');
    const d = await n.mkdir(rootIno, 'd');
    const sub = await n.mkdir(d.ino, 'sub');
    await n.errno('EEXIST', 'fsRename', root, rootIno, 'a', rootIno, 'd', FsRenameFlags.NoReplace);
    await n.errno('ENOENT', 'fsRename', root, rootIno, 'a', rootIno, 'zz', FsRenameFlags.Exchange);
    await n.errno('EINVAL', 'fsRename', root, rootIno, 'a', rootIno, 'd', 3);
    await f.ok('fsRename', 'fs', root, rootIno, 'a', d.ino, 'sub', FsRenameFlags.Exchange);
    assert.equal((await n.lookup(d.ino, 'sub')).ino, a.ino);
    assert.equal((await n.lookup(rootIno, 'a')).ino, sub.ino);
    assert.deepEqual([(await n.getattr(rootIno)).nlink, (await n.getattr(d.ino)).nlink], [4, 2], 'the subdirectory moved from d to the root');
    await n.errno('EINVAL', 'fsRename', root, rootIno, 'd', d.ino, 'sub', FsRenameFlags.Exchange);
  });

  it('restricts unlink and rename in a sticky directory to the owners and root', async () => {
    const tmp = await n.mkdir(rootIno, 'tmp', root, 0o1777);
    await n.create(tmp.ino, 'mine', alice);
    await n.errno('EPERM', 'fsUnlink', bob, tmp.ino, 'mine');
    await n.errno('EPERM', 'fsRename', bob, tmp.ino, 'mine', tmp.ino, 'stolen');
    await n.create(tmp.ino, 'bobs', bob);
    await n.errno('EPERM', 'fsRename', alice, tmp.ino, 'mine', tmp.ino, 'bobs');
    await f.ok('fsRename', 'fs', alice, tmp.ino, 'mine', tmp.ino, 'renamed');
    await f.ok('fsUnlink', 'fs', root, tmp.ino, 'bobs');
    await f.ok('fsUnlink', 'fs', alice, tmp.ino, 'renamed');
    await n.mkdir(tmp.ino, 'alices-dir', alice);
    await n.errno('EPERM', 'fsRmdir', bob, tmp.ino, 'alices-dir');
    await f.ok('fsRmdir', 'fs', alice, tmp.ino, 'alices-dir');
    assert.deepEqual(await n.names(tmp.ino), []);
  });
});

describe('metadata/state namespace: setattr, xattrs, writes, open files, readdir', function () {
  let sm: StateMachine;
  let f: Feeder;
  let n: NsFixture;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  beforeEach(async () => { n = await new NsFixture(f).init(); });

  it('chmod by owner or root only; a caller outside the group loses set-gid', async () => {
    const a = await n.create(rootIno, 'a', alice, 0o644);
    await n.errno('EPERM', 'fsSetattr', bob, a.ino, { mode: 0o777 });
    assert.equal((await f.ok<FsAttr>('fsSetattr', 'fs', alice, a.ino, { mode: 0o2755 })).mode, 0o2755);
    await f.ok('fsSetattr', 'fs', root, a.ino, { gid: 50 });
    assert.equal((await f.ok<FsAttr>('fsSetattr', 'fs', alice, a.ino, { mode: 0o2755 })).mode, 0o755);
    assert.equal((await f.ok<FsAttr>('fsSetattr', 'fs', { uid: 1000, gid: 1000, groups: [50] }, a.ino, { mode: 0o2755 })).mode, 0o2755);
    await f.fails('INVALID_ARGUMENT', 'fsSetattr', 'fs', root, a.ino, { mode: 0o10000 });
    await f.fails('INVALID_ARGUMENT', 'fsSetattr', 'fs', root, a.ino, { colour: 1 });
  });

  it('lets anyone drop only the set-uid/set-gid bits (the kernel asks so, as the writer, when a non-owner writes), nothing more', async () => {
    const a = await n.create(rootIno, 'suid', alice, 0o6777);
    // What the kernel sends after bob's write: the same mode without set-uid and set-gid.
    const dropped = await f.ok<FsAttr>('fsSetattr', 'fs', bob, a.ino, { mode: 0o777 });
    assert.deepEqual([dropped.mode, dropped.uid], [0o777, 1000]);
    await f.ok('fsSetattr', 'fs', alice, a.ino, { mode: 0o4755 });
    assert.equal((await f.ok<FsAttr>('fsSetattr', 'fs', bob, a.ino, { mode: 0o755 })).mode, 0o755, 'set-uid alone');
    await f.ok('fsSetattr', 'fs', alice, a.ino, { mode: 0o2755 });
    // Anything beyond dropping set-id bits is still the owner's: other bits, or adding a set-id bit.
    await n.errno('EPERM', 'fsSetattr', bob, a.ino, { mode: 0o777 });
    await n.errno('EPERM', 'fsSetattr', bob, a.ino, { mode: 0o6755 });
    await n.errno('EPERM', 'fsSetattr', bob, a.ino, { mode: 0o4755 });
    await n.errno('EPERM', 'fsSetattr', bob, a.ino, { mode: 0o2755 });
    assert.equal((await n.getattr(a.ino)).mode, 0o2755);
  });

  it('chown by root, chgrp by the owner into its groups; chown clears set-uid and group-exec set-gid', async () => {
    const a = await n.create(rootIno, 'a', alice, 0o6755);
    await n.errno('EPERM', 'fsSetattr', alice, a.ino, { uid: 1001 });
    await n.errno('EPERM', 'fsSetattr', alice, a.ino, { gid: 7 });
    await n.errno('EPERM', 'fsSetattr', bob, a.ino, { gid: 1001 });
    const g = await f.ok<FsAttr>('fsSetattr', 'fs', { uid: 1000, gid: 1000, groups: [7] }, a.ino, { gid: 7 });
    assert.deepEqual([g.gid, g.mode], [7, 0o755]);
    await f.ok('fsSetattr', 'fs', root, a.ino, { mode: 0o6744 });
    const c = await f.ok<FsAttr>('fsSetattr', 'fs', root, a.ino, { uid: 1001 });
    assert.deepEqual([c.uid, c.mode], [1001, 0o2744], 'set-gid without group exec is mandatory locking: kept');
  });

  it('utimens: now by anyone the kernel let through, explicit times by owner or root, omitted times kept; ctime always moves', async () => {
    const a = await n.create(rootIno, 'a', alice);
    f.stampMs += 10_000;
    const now = await f.ok<FsAttr>('fsSetattr', 'fs', bob, a.ino, { atime: 'now' });
    assert.deepEqual([now.atimeNs, now.mtimeNs, now.ctimeNs], [msToNs(f.stampMs), a.mtimeNs, msToNs(f.stampMs)]);
    await n.errno('EPERM', 'fsSetattr', bob, a.ino, { mtime: '1000000000123456789' });
    const set = await f.ok<FsAttr>('fsSetattr', 'fs', alice, a.ino, { mtime: '1000000000123456789' });
    assert.deepEqual([set.atimeNs, set.mtimeNs], [now.atimeNs, '1000000000123456789']);
    await f.fails('INVALID_ARGUMENT', 'fsSetattr', 'fs', alice, a.ino, { mtime: 12 });
  });

  it('truncates: shrinking queues the blocks past the new size, size on a directory is EISDIR', async () => {
    const a = await n.create(rootIno, 'a');
    // In blocks of the volume (the default block size is the daemon's, 128 KiB since vfs/data).
    const B = n.vol.blockSizeBytes;
    await f.ok('fsCommitWrite', 'fs', a.ino, 3 * B + 10);
    const t = await f.ok<FsAttr>('fsSetattr', 'fs', root, a.ino, { size: B + 1 });
    assert.equal(t.size, B + 1);
    const queued = await sm.query('fsListBlocksToFree', ['fs', 10]) as FsBlocksToFree[];
    assert.deepEqual(queued.map((q) => [q.ino, q.fromBlock]), [[a.ino, 2]]);
    assert.deepEqual(await f.ok('fsAckBlocksFreed', 'fs', queued.map((q) => q.seq)), { freed: 1 });
    assert.deepEqual(await sm.query('fsListBlocksToFree', ['fs', 10]), []);
    await n.errno('EISDIR', 'fsSetattr', root, rootIno, { size: 0 });
    await n.errno('EFBIG', 'fsSetattr', root, a.ino, { size: 2 ** 50 });
    assert.equal((await sm.query('fsStatfs', ['fs']) as FsStatfs).usedBytes, B + 1);
  });

  it('commitWrite only grows the size (writers on two nodes), sets mtime, refuses directories', async () => {
    const a = await n.create(rootIno, 'a');
    assert.equal((await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 8192)).size, 8192);
    const w = await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 100, '1700000000000000001');
    assert.deepEqual([w.size, w.mtimeNs], [8192, '1700000000000000001']);
    await n.errno('EISDIR', 'fsCommitWrite', rootIno, 1);
  });

  it('truncate epoch: every truncate bumps it; a commit from an older epoch cannot regrow the file, one from the current epoch grows it', async () => {
    const a = await n.create(rootIno, 'a');
    assert.equal(a.truncEpoch, 0);
    // Node B opened the file at epoch 0 and buffers writes up to 9000; node A truncates to 100.
    assert.equal((await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 5000, null, null, 0)).size, 5000);
    const cut = await f.ok<FsAttr>('fsSetattr', 'fs', root, a.ino, { size: 100 });
    assert.deepEqual([cut.size, cut.truncEpoch], [100, 1]);
    // B's delayed commit: its bytes came before the truncate, so the size stays 100 (mtime is set).
    const late = await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 9000, '1700000000000000007', null, 0);
    assert.deepEqual([late.size, late.truncEpoch, late.mtimeNs], [100, 1, '1700000000000000007']);
    // Nor below: a stale commit never shrinks what the current epoch committed.
    await f.ok('fsCommitWrite', 'fs', a.ino, 300, null, null, 1);
    assert.equal((await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 50, null, null, 0)).size, 300);
    // B learned epoch 1 from that answer: its next commit grows the file again.
    assert.equal((await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 7000, null, null, 1)).size, 7000);
    // A truncate to the same size still orders the writes buffered before it; growing too.
    assert.equal((await f.ok<FsAttr>('fsSetattr', 'fs', root, a.ino, { size: 7000 })).truncEpoch, 2);
    assert.equal((await f.ok<FsAttr>('fsSetattr', 'fs', root, a.ino, { size: 8000 })).truncEpoch, 3);
    assert.equal((await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 9000, null, null, 2)).size, 8000);
    // Other setattrs leave it; an epoch from the future is refused and changes nothing.
    assert.equal((await f.ok<FsAttr>('fsSetattr', 'fs', root, a.ino, { mode: 0o600 })).truncEpoch, 3);
    const before = await n.getattr(a.ino);
    await f.fails('INVALID_ARGUMENT', 'fsCommitWrite', 'fs', a.ino, 99_999, null, 4);
    await f.fails('INVALID_ARGUMENT', 'fsCommitWrite', 'fs', a.ino, 99_999, null, -1);
    assert.deepEqual(await n.getattr(a.ino), before);
    // No epoch (an older client): the size only grows, as before.
    assert.equal((await f.ok<FsAttr>('fsCommitWrite', 'fs', a.ino, 8500)).size, 8500);
  });

  it('keeps extended attributes with create/replace flags and limits', async () => {
    const a = await n.create(rootIno, 'a', alice);
    const v = Buffer.from('hello').toString('base64');
    await f.ok('fsSetxattr', 'fs', alice, a.ino, 'user.greeting', v);
    await f.ok('fsSetxattr', 'fs', alice, a.ino, 'user.a', v, FsXattrFlags.Create);
    assert.deepEqual(await sm.query('fsListxattr', ['fs', a.ino]), ['user.a', 'user.greeting']);
    assert.equal(await sm.query('fsGetxattr', ['fs', a.ino, 'user.greeting']), v);
    await n.errno('EEXIST', 'fsSetxattr', alice, a.ino, 'user.a', v, FsXattrFlags.Create);
    await n.errno('ENODATA', 'fsSetxattr', alice, a.ino, 'user.none', v, FsXattrFlags.Replace);
    await n.errno('EOPNOTSUPP', 'fsSetxattr', alice, a.ino, 'nonamespace', v);
    await n.errno('EPERM', 'fsSetxattr', alice, a.ino, 'trusted.x', v);
    await n.errno('E2BIG', 'fsSetxattr', alice, a.ino, 'user.big', Buffer.alloc(65_537).toString('base64'));
    await n.errno('ERANGE', 'fsSetxattr', alice, a.ino, 'user.' + 'x'.repeat(251), v);
    await f.ok('fsRemovexattr', 'fs', alice, a.ino, 'user.a');
    await n.errno('ENODATA', 'fsRemovexattr', alice, a.ino, 'user.a');
    await n.queryErrno('ENODATA', 'fsGetxattr', a.ino, 'user.a');
    assert.deepEqual(await sm.query('fsListxattr', ['fs', a.ino]), ['user.greeting']);
  });

  it('keeps an unlinked file while it is open, and deletes it at the last close or when the mount lease ends', async () => {
    const lease = await f.ok<Lease>('acquireLease', 'mount', 'fs', 'node-1', 5_000, 'rw');
    const a = await n.create(rootIno, 'a');
    const b = await n.create(rootIno, 'b');
    await f.ok('fsOpen', 'fs', a.ino, lease.id);
    await f.ok('fsOpen', 'fs', a.ino, lease.id);
    await f.ok('fsOpen', 'fs', b.ino, lease.id);
    await f.fails('LEASE_NOT_FOUND', 'fsOpen', 'fs', a.ino, 'no-such-lease');
    await f.ok('createVolume', { name: 'other', size: '1G' });
    const elsewhere = await f.ok<Lease>('acquireLease', 'mount', 'other', 'node-1', 5_000, 'rw');
    await f.fails('LEASE_NOT_FOUND', 'fsOpen', 'fs', a.ino, elsewhere.id);
    await f.ok('releaseLease', elsewhere.id);
    const gone = await f.ok<{ attr: FsAttr }>('fsUnlink', 'fs', root, rootIno, 'a');
    assert.equal(gone.attr.nlink, 0);
    assert.equal((await n.getattr(a.ino)).nlink, 0, 'open orphan still readable');
    assert.deepEqual(await n.names(rootIno), ['b']);
    await f.ok('fsClose', 'fs', a.ino, lease.id);
    assert.equal((await n.getattr(a.ino)).nlink, 0);
    await f.ok('fsClose', 'fs', a.ino, lease.id);
    await n.queryErrno('ENOENT', 'fsGetattr', a.ino);
    await f.ok('fsUnlink', 'fs', root, rootIno, 'b');
    f.stampMs += 6_000;
    await f.ok('expireLeases');
    await n.queryErrno('ENOENT', 'fsGetattr', b.ino);
    const queued = await sm.query('fsListBlocksToFree', ['fs', 10]) as FsBlocksToFree[];
    assert.deepEqual(queued.map((q) => q.ino), [a.ino, b.ino]);
  });

  it('creates and opens in one command, and closes with a commit or in a batch (fsCreate open, fsCommitWrite closes, fsCloseMany)', async () => {
    const lease = await f.ok<Lease>('acquireLease', 'mount', 'fs', 'node-1', 5_000, 'rw');
    const ino = n.ino();
    await f.fails('LEASE_NOT_FOUND', 'fsCreate', 'fs', root, rootIno, 'x', ino, 0o644, { open: 'no-such-lease' });
    assert.deepEqual(await n.names(rootIno), [], 'a refused create-and-open creates nothing');
    const a = (await f.ok<{ attr: FsAttr }>('fsCreate', 'fs', root, rootIno, 'a', ino, 0o644, { open: lease.id })).attr;
    const again = await f.ok<{ attr: FsAttr; created: boolean }>('fsCreate', 'fs', root, rootIno, 'a', n.ino(), 0o644, { exclusive: false, open: lease.id });
    assert.equal(again.created, false);
    assert.equal(again.attr.ino, a.ino, 'open(O_CREAT) of an existing file opens it (second handle)');
    const b = (await f.ok<{ attr: FsAttr }>('fsCreate', 'fs', root, rootIno, 'b', n.ino(), 0o644, { open: lease.id })).attr;
    await f.ok('fsUnlink', 'fs', root, rootIno, 'a');
    await f.ok('fsUnlink', 'fs', root, rootIno, 'b');
    assert.equal((await n.getattr(a.ino)).nlink, 0, 'the create opened it: unlinked but kept');
    const committed = await f.ok<FsAttr>('fsCommitWrite', 'fs', b.ino, 4096, null, { session: lease.id, inos: [a.ino] });
    assert.equal(committed.size, 4096);
    assert.equal((await n.getattr(a.ino)).nlink, 0, 'one of two handles closed by the commit');
    await f.fails('INVALID_ARGUMENT', 'fsCloseMany', 'fs', { session: lease.id, inos: ['x'] });
    await f.fails('INVALID_ARGUMENT', 'fsCommitWrite', 'fs', b.ino, 1, null, { session: lease.id, inos: Array.from({ length: 1025 }, () => a.ino) });
    assert.equal((await n.getattr(b.ino)).size, 4096, 'a refused commit changes nothing');
    await f.ok('fsCloseMany', 'fs', { session: lease.id, inos: [a.ino, b.ino] });
    await n.queryErrno('ENOENT', 'fsGetattr', a.ino);
    await n.queryErrno('ENOENT', 'fsGetattr', b.ino);
    const queued = await sm.query('fsListBlocksToFree', ['fs', 10]) as FsBlocksToFree[];
    assert.deepEqual(queued.map((q) => q.ino).sort(), [a.ino, b.ino].sort());
  });

  it('lists a directory in pages, in name order, with attributes (readdirplus)', async () => {
    const names = Array.from({ length: 23 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const name of [...names].reverse()) await n.create(rootIno, name);
    const page = await sm.query('fsReaddir', ['fs', rootIno, null, 10]) as { entries: { name: string; attr: FsAttr }[]; cursor: string };
    assert.deepEqual(page.entries.map((e) => e.name), names.slice(0, 10));
    assert.equal(page.cursor, 'f09');
    assert.equal(page.entries[0]!.attr.type, 'file');
    assert.deepEqual(await n.names(rootIno), names);
    await f.fails('INVALID_ARGUMENT', 'fsCreate', 'fs', root, rootIno, 'x', n.ino(), 'rw');
    await assert.rejects(sm.query('fsReaddir', ['fs', rootIno, null, 5_000]), (e) => e instanceof GalleonError && e.code === 'INVALID_ARGUMENT');
  });

  it('maps POSIX errors to errno numbers in one place', () => {
    assert.equal(posixErrnoOf(new GalleonError('POSIX', 'x', { details: { errno: 'ENOTEMPTY' } })), posixErrnos.ENOTEMPTY);
    assert.equal(posixErrnoOf(new GalleonError('VOLUME_NOT_FOUND', 'x')), 2);
    assert.equal(posixErrnoOf(new Error('x')), 5);
  });
});
