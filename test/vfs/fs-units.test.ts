/**
 * The pure parts of the file system and the mount manager: the mount plan, the path/attribute
 * cache (ttl 0 = always ask, bound, subtree drops), the quota (uncommitted growth counts, a
 * refusal re-reads the count), the inode pool (one allocation for concurrent creates), the
 * volume watch (answers at a change, at its timeout, and at once for a stale index).
 */
import assert from 'node:assert/strict';
import type { FsAttr, Volume } from '../../proto/metadata-types.js';
import { AttrCache } from '../../vfs/fs/attr-cache.js';
import { DirNames, maxTrackedNames, scanMisses } from '../../vfs/fs/dir-names.js';
import { InodePool } from '../../vfs/fs/inode-pool.js';
import { Quota } from '../../vfs/fs/quota.js';
import { toStatfs, typeOfMode, parentOf } from '../../vfs/fs/attrs.js';
import { autoMountAccess, mountPrincipal, planMounts } from '../../vfs/manager/plan.js';
import { flushReason, maxWritebackBytes, maxWritebackFiles } from '../../vfs/fs/writeback.js';
import { reservationAfter } from '../../metadata/state/logic/ns-delegation.js';
import { writebackEnabled, writebackMsOf } from '../../vfs/fs/mount-volume.js';
import { VolumeWatch } from '../../metadata/service/volume-watch.js';
import type { AppliedRecord } from '../../metadata/state/contract.js';
import { slowdown } from '../support/scaling.js';

const attr = (ino: number, size = 0): FsAttr => ({
  ino, type: 'file', mode: 0o644, uid: 0, gid: 0, size, nlink: 1, atimeNs: '0', mtimeNs: '0', ctimeNs: '0', rdev: 0, generation: 1, truncEpoch: 0,
});
const vol = (id: string, name: string, state: Volume['state'] = 'available'): Volume => ({
  id, name, type: 'persistent', sizeBytes: 1 << 30, accessMode: 'ReadWriteMany', storageClass: 'x', replicas: 1, writeConcern: 'replicated',
  blockSizeBytes: 131072, pgCount: 1, state, labels: {}, createdAtMs: 0, updatedAtMs: 0, version: 1,
});

describe('vfs/fs and vfs/manager pure parts', () => {
  it('plans mounts: new volumes mounted, deleted or renamed ones unmounted, explicit mounts left alone', () => {
    const plan = planMounts('/m', [vol('a', 'alpha'), vol('b', 'beta'), vol('d', 'dying', 'deleting'), vol('e', '..')], [
      { volumeId: 'b', dir: '/m/beta', auto: true },
      { volumeId: 'c', dir: '/m/gamma', auto: true },
      { volumeId: 'x', dir: '/elsewhere', auto: false },
      { volumeId: 'd', dir: '/m/dying', auto: true },
    ]);
    assert.deepEqual(plan.mount.map((m) => m.dir), ['/m/alpha']);
    assert.deepEqual(plan.unmount.map((m) => m.volumeId), ['c', 'd']);
    const renamed = planMounts('/m', [vol('b', 'beta2')], [{ volumeId: 'b', dir: '/m/beta', auto: true }]);
    assert.deepEqual([renamed.unmount.map((m) => m.dir), renamed.mount.map((m) => m.dir)], [['/m/beta'], ['/m/beta2']]);
    // A clone whose tree is still being copied (or a volume being restored) waits for a later round.
    const copying = planMounts('/m', [{ ...vol('k', 'clone'), treeState: 'copying' }, { ...vol('r', 'back'), treeState: 'restoring' }, vol('a', 'alpha')], []);
    assert.deepEqual(copying.mount.map((m) => m.dir), ['/m/alpha']);
  });

  it('auto-mounts honour access policies: none is not mounted, ro mounts read-only, a changed policy remounts (issue #12)', () => {
    const p = mountPrincipal('node1');
    const withPolicy = (id: string, name: string, policy: Volume['policy'], accessMode: Volume['accessMode'] = 'ReadWriteMany'): Volume => ({ ...vol(id, name), accessMode, ...(policy === undefined ? {} : { policy }) });
    const open = withPolicy('o', 'open', undefined);
    const ro = withPolicy('r', 'ro', [{ subject: 'role:operator', access: 'ro' }]);
    const denied = withPolicy('d', 'denied', [{ subject: 'user:alice', access: 'rw' }]);
    const mine = withPolicy('m', 'mine', [{ subject: 'user:node1', access: 'rw' }, { subject: 'role:operator', access: 'ro' }]);
    const rom = withPolicy('x', 'rom', undefined, 'ReadOnlyMany');
    assert.deepEqual([open, ro, denied, mine, rom].map((v) => autoMountAccess(p, v)), ['rw', 'ro', 'none', 'rw', 'ro']);
    const access = (v: Volume): ReturnType<typeof autoMountAccess> => autoMountAccess(p, v);
    const plan = planMounts('/m', [open, ro, denied, mine, rom], [], access);
    assert.deepEqual(plan.mount.map((m) => [m.dir, m.readOnly]), [['/m/open', false], ['/m/ro', true], ['/m/mine', false], ['/m/rom', true]]);
    assert.deepEqual(plan.denied.map((d) => d.volume.name), ['denied']);
    // A policy set on mounted volumes: rw -> ro remounts read-only, rw -> none unmounts; unchanged ones stay.
    const mounted = [{ volumeId: 'o', dir: '/m/open', auto: true, readOnly: false }, { volumeId: 'r', dir: '/m/ro', auto: true, readOnly: false },
      { volumeId: 'd', dir: '/m/denied', auto: true, readOnly: false }, { volumeId: 'm', dir: '/m/mine', auto: true }];
    const next = planMounts('/m', [open, ro, denied, mine], mounted, access);
    assert.deepEqual(next.unmount.map((m) => m.volumeId), ['r', 'd']);
    assert.deepEqual(next.mount.map((m) => [m.volume.id, m.readOnly]), [['r', true]]);
    assert.deepEqual(next.denied.map((d) => d.volume.id), ['d']);
    // Explicit mounts are never touched by the plan, whatever the policy.
    assert.deepEqual(planMounts('/m', [denied], [{ volumeId: 'd', dir: '/x', auto: false }], access), { mount: [], unmount: [], denied: [] });
  });

  it('caches attributes for the ttl only, never with ttl 0, within its bound, and drops subtrees', () => {
    let now = 0;
    const c = new AttrCache(1000, () => now, 3);
    c.put('/a', attr(2));
    c.put('/a/b', attr(3));
    c.put('/ab', attr(4));
    assert.equal(c.get('/a')?.ino, 2);
    c.dropTree('/a');
    assert.equal(c.get('/a/b'), undefined);
    assert.equal(c.get('/ab')?.ino, 4);
    c.put('/1', attr(5)); c.put('/2', attr(6)); c.put('/3', attr(7));
    assert.equal(c.size, 3);
    now = 1000;
    assert.equal(c.get('/3'), undefined);
    const strict = new AttrCache(0, () => now);
    strict.put('/a', attr(2));
    assert.equal(strict.get('/a'), undefined);
  });

  it('drops an inode\'s every cached name (hard links) and only those, without a scan of every entry', () => {
    const now = 0;
    const c = new AttrCache(1000, () => now, 70_000);
    const attr = (ino: number): FsAttr => ({ ino, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, nlink: 1, atimeNs: '0', mtimeNs: '0', ctimeNs: '0', rdev: 0, generation: 0, truncEpoch: 0 });
    c.put('/a', attr(5));
    c.put('/d/b', attr(5));
    c.put('/c', attr(6));
    c.put('/a', attr(7)); // the name now leads to another inode: not a name of 5 any more
    c.dropIno(5);
    assert.equal(c.get('/d/b'), undefined);
    assert.equal(c.get('/a')?.ino, 7);
    assert.equal(c.get('/c')?.ino, 6);
    c.dropTree('/');
    assert.equal(c.size, 0);
    for (let i = 0; i < 65_536; i++) c.put(`/f${i}`, attr(1_000 + i));
    const few = new AttrCache(1000, () => now, 70_000);
    for (let i = 0; i < 16; i++) few.put(`/f${i}`, attr(1_000 + i));
    const drops = (cache: AttrCache) => (): void => { for (let i = 0; i < 2_000; i++) cache.dropIno(100_000 + i); };
    const ratio = slowdown(drops(few), drops(c));
    assert.equal(c.size, 65_536);
    // A scan of every entry makes this ~4,000× (the size ratio); the per-inode index, ~1×.
    assert.ok(ratio < 30, `drops of uncached inodes beside 65,536 entries ran ${ratio.toFixed(1)}× slower than beside 16`);
  });

  it('answers a name absent from a directory listing known less than the ttl ago, with this mount\'s own changes, never with ttl 0', () => {
    let now = 0;
    const d = new DirNames(1000, () => now, 2);
    d.known('/d', 5, ['a', 'b'], 0);
    assert.equal(d.absent('/d', 5, 'c'), true);
    assert.equal(d.absent('/d', 5, 'a'), false);
    assert.equal(d.absent('/d', 6, 'c'), false, 'another inode at that path (replaced elsewhere) is not known');
    d.changed('/d', 'c', true);
    d.changed('/d', 'a', false);
    assert.equal(d.absent('/d', 5, 'c'), false, 'made here: present at once');
    assert.equal(d.absent('/d', 5, 'a'), true, 'removed here: absent at once');
    now = 500;
    d.refreshing('/d', 5);
    d.changed('/d', 'late', true); // made here while the refresh listing was in flight
    d.known('/d', 5, ['b', 'c', 'x'], 400);
    assert.equal(d.absent('/d', 5, 'late'), false, 'a change made during the refresh is replayed onto its listing');
    assert.equal(d.absent('/d', 5, 'x'), false, 'made by another node: seen after the refresh');
    now = 1400;
    assert.equal(d.stale('/d', 5), true);
    assert.equal(d.absent('/d', 5, 'nothing'), false, 'older than the ttl: never trusted, only refreshed');
    d.refreshing('/new', 9);
    assert.equal(d.absent('/new', 9, 'x'), false, 'a placeholder answers nothing until its listing lands');
    d.known('/d/sub', 7, [], 1400);
    d.known('/e', 8, [], 1400);
    assert.ok(d.size <= 2, 'bounded');
    d.known('/e', 8, [], 1400);
    d.dropTree('/e');
    assert.equal(d.absent('/e', 8, 'x'), false, 'a moved or removed directory is forgotten');
    d.known('/big', 10, Array.from({ length: maxTrackedNames + 1 }, (_, i) => `n${i}`), 1400);
    assert.equal(d.absent('/big', 10, 'x'), false, 'too large to track');
    const two = new DirNames(1000, () => now);
    two.known('/c', 1, [], now);
    two.refreshing('/c', 1);
    two.changed('/c', 'x', true);
    two.refreshing('/c', 1); // a second listing (the kernel's readdir) starts while the first runs
    two.known('/c', 1, [], now); // the first lands: its page was read before x was made
    assert.equal(two.absent('/c', 1, 'x'), false, 'a change is replayed onto every listing in flight');
    two.known('/c', 1, ['x'], now);
    assert.equal(two.absent('/c', 1, 'x'), false);
    let fired = 0;
    for (let i = 0; i < scanMisses; i++) if (d.missed('/scan')) fired++;
    assert.equal(fired, 1, 'a scan of an untracked directory is noticed once per burst of misses');
    d.forget('/scan', true);
    for (let i = 0; i < 2 * scanMisses; i++) assert.equal(d.missed('/scan'), false, 'too large: not tried again for a while');
    const strict = new DirNames(0, () => now);
    assert.equal(strict.missed('/d'), false);
    strict.known('/d', 5, [], now);
    assert.equal(strict.absent('/d', 5, 'x'), false);
  });

  it('counts uncommitted growth against the quota and re-reads the used count before refusing', async () => {
    let used = 0;
    let reads = 0;
    const q = new Quota(10, () => { reads++; return Promise.resolve(used); });
    await q.reserve(6, 0);
    await assert.rejects(q.reserve(5, 6), { code: 'ENOSPC' });
    assert.equal(reads, 2);
    used = 0;
    await q.reserve(4, 6);
    used = 6; // the namespace now counts the 6 bytes this mount committed
    q.committed(6);
    await assert.rejects(q.reserve(5, 4), { code: 'ENOSPC' });
    used = 1;
    await q.reserve(5, 4);
  });

  it('hands out inode numbers from ranges, one allocation for concurrent creates', async () => {
    let calls = 0;
    const pool = new InodePool((n) => { calls++; const start = 2 + (calls - 1) * n; return Promise.resolve({ start, end: start + n }); }, 4);
    const got = await Promise.all([pool.next(), pool.next(), pool.next(), pool.next(), pool.next()]);
    assert.deepEqual(got.sort((a, b) => a - b), [2, 3, 4, 5, 6]);
    assert.equal(calls, 2);
    pool.giveBack(3);
    assert.equal(await pool.next(), 3);
  });

  it('takes inode ranges under the mount session and drops what is left of one when the session changes', async () => {
    const asked: (string | undefined)[] = [];
    let session = 's1';
    const pool = new InodePool((n, owner) => { asked.push(owner); const start = 2 + (asked.length - 1) * n; return Promise.resolve({ start, end: start + n }); }, 4, () => session);
    assert.deepEqual([await pool.next(), await pool.next()], [2, 3]);
    pool.giveBack(3);
    // The lease was taken again (a new session): the old range's numbers are never used again.
    session = 's2';
    assert.equal(await pool.next(), 6);
    assert.deepEqual(asked, ['s1', 's2']);
  });

  it('grows a reservation only as far as the volume has room, and shrinks it when asked', () => {
    assert.equal(reservationAfter(0, 4, 10, 3, 2), 4);
    assert.equal(reservationAfter(0, 8, 10, 3, 2), 5, 'what is free: 10 - 3 committed - 2 reserved');
    assert.equal(reservationAfter(4, 8, 10, 6, 4), 4, 'nothing free: unchanged');
    assert.equal(reservationAfter(4, 1, 10, 6, 4), 1, 'a smaller target gives back');
    assert.equal(reservationAfter(2, 3, 10, 12, 2), 2, 'over-full (a truncate raced): nothing more');
  });

  it('converts modes, paths and statfs as the kernel wants them', () => {
    assert.equal(typeOfMode(0o010644), 'fifo');
    assert.equal(typeOfMode(0o644), 'file');
    assert.deepEqual(parentOf('/a/b'), { parent: '/a', name: 'b' });
    assert.deepEqual(parentOf('/a'), { parent: '/', name: 'a' });
    const s = toStatfs({ totalBytes: 1 << 30, usedBytes: 4096, freeBytes: (1 << 30) - 4096, blockSizeBytes: 131072, inodes: 2, freeInodes: 10, maxNameBytes: 255 });
    assert.deepEqual([s.blocks * s.bsize, s.bfree * s.bsize, s.files, s.namemax], [1 << 30, (1 << 30) - 4096, 12, 255]);
  });

  it('answers a volume watch at a volume change, at its timeout, and at once for an old index', async () => {
    let applied = 10;
    const w = new VolumeWatch(10, () => applied);
    assert.deepEqual(await w.wait(5, 1000), { index: 10, changed: true });
    assert.deepEqual(await w.wait(10, 0), { index: 10, changed: false });
    const pending = w.wait(10, 5000);
    const rec = (index: number, method: string): AppliedRecord => ({ index, kind: 'command', command: { clientId: 'c', seq: 1, stampMs: 0, method: method as never, args: [] } });
    applied = 11;
    w.noteApplied([rec(11, 'fsCreate')]);
    applied = 12;
    w.noteApplied([rec(12, 'createVolume')]);
    assert.deepEqual(await pending, { index: 12, changed: true });
    // A paced step of snapshot tree work may make a clone mountable: it wakes watchers too.
    const later = w.wait(12, 5000);
    applied = 13;
    w.noteApplied([rec(13, 'fsPurgeDeleted')]);
    assert.deepEqual(await later, { index: 13, changed: true });
    w.close();
  });

  it('flushes write-back at its bounds (files or dirty bytes), and the GALLEON_WRITEBACK switch turns it off only at 0 (other values refused), GALLEON_WRITEBACK_MS is checked', () => {
    assert.equal(flushReason(0, 0), null);
    assert.equal(flushReason(maxWritebackFiles - 1, maxWritebackBytes - 1), null);
    assert.equal(flushReason(maxWritebackFiles, 0), 'files');
    assert.equal(flushReason(1, maxWritebackBytes), 'bytes');
    assert.equal(flushReason(3, 10, { maxFiles: 3, maxBytes: 100 }), 'files');
    assert.equal(writebackEnabled({}), true);
    assert.equal(writebackEnabled({ GALLEON_WRITEBACK: '1' }), true);
    assert.equal(writebackEnabled({ GALLEON_WRITEBACK: '0' }), false);
    // A value that is neither is refused, not taken as on.
    assert.throws(() => writebackEnabled({ GALLEON_WRITEBACK: 'off' }), /GALLEON_WRITEBACK="off" is neither 0 nor 1/);
    assert.deepEqual(writebackMsOf({}), {});
    assert.deepEqual(writebackMsOf({ GALLEON_WRITEBACK_MS: '600000' }), { writebackMs: 600_000 });
    for (const bad of ['0', '-5', '1.5', 'soon', '', '99999999999']) {
      assert.throws(() => writebackMsOf({ GALLEON_WRITEBACK_MS: bad }), /is not a whole number of milliseconds from 1 to 2147483647/, bad);
    }
  });
});
