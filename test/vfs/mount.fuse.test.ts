/**
 * The FUSE mount layer on real mounts (vfs/fuse), over the in-memory file system of
 * test/support/memfs.ts. Each test names the fuse-native gap it covers; those tests fail on
 * the unpatched package (GALLEON_FUSE_IMPL=upstream runs them through fuse-native's own
 * index.js and prebuilt binary: see vfs/README.md, "FUSE mount layer").
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chmod, chown, link, mkdir, open, readdir, readFile, readlink, rename, rmdir, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultReadAheadKiB, mountDeviceOf, readAheadPath } from '../../vfs/fuse/read-ahead.js';
import { clearStaleMount, isFuseMounted } from '../../vfs/fuse/stale.js';
import type { FileHandle, FuseCaller } from '../../vfs/fuse/types.js';
import type { MountOptions } from '../../vfs/fuse/types.js';
import { describeFuse, sh, shAsNobody, tempMountPoint } from '../support/fuse.js';
import { mountForTest } from '../support/fuse-impl.js';
import type { TestMount } from '../support/fuse-impl.js';
import { MemFs } from '../support/memfs.js';
import { pollUntil } from '../support/poll.js';

/** MemFs whose reads take 2 ms each, counting how many overlap. */
class SlowReads extends MemFs {
  inFlight = 0;
  maxInFlight = 0;
  bytesRead = 0;

  override async read(c: FuseCaller, path: string, fh: FileHandle, buf: Buffer, position: number): Promise<number> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((res) => setTimeout(res, 2));
      const n = await super.read(c, path, fh, buf, position);
      this.bytesRead += n;
      return n;
    } finally {
      this.inFlight--;
    }
  }
}

const base: MountOptions = { fsname: 'galleon:test', attrTimeoutSec: 0, entryTimeoutSec: 0, allowOther: true };

describeFuse('vfs/fuse mount layer (real mounts)', function (this: Mocha.Suite) {
  this.timeout(60_000);
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function mounted(opts: Partial<MountOptions> = {}, fs = new MemFs()): Promise<{ dir: string; fs: MemFs; m: TestMount }> {
    const mp = tempMountPoint();
    cleanups.push(() => mp.cleanup());
    const m = await mountForTest(mp.dir, fs, { ...base, ...opts });
    cleanups.push(() => m.unmount());
    return { dir: mp.dir, fs, m };
  }

  it('shows up as fuse.galleon with our fsname, and unmount() frees the directory', async () => {
    const { dir, m } = await mounted();
    const line = (await readFile('/proc/self/mounts', 'utf8')).split('\n').find((l) => l.split(' ')[1] === dir);
    assert.ok(line, 'mount listed in /proc/self/mounts');
    assert.match(line, /^galleon:test \S+ fuse\.galleon /);
    await m.unmount();
    assert.equal(await isFuseMounted(dir), false);
  });

  it('[caller uid/gid] a file and a directory created by uid 65534 are owned by 65534:65534', async () => {
    const { dir } = await mounted();
    assert.equal((await sh(`chmod 1777 ${dir}`)).code, 0);
    const r = await shAsNobody(`touch ${dir}/f && mkdir ${dir}/d`);
    assert.equal(r.code, 0, r.stderr);
    for (const name of ['f', 'd']) {
      const st = await stat(join(dir, name));
      assert.deepEqual([st.uid, st.gid], [65534, 65534], name);
    }
  });

  it('[utimens] touch -m changes only mtime, touch -a only atime, to the nanosecond', async () => {
    const { dir } = await mounted();
    await writeFile(join(dir, 'f'), 'x');
    const before = await stat(join(dir, 'f'), { bigint: true });
    assert.equal((await sh(`touch -m -d '2001-02-03 04:05:06.123456789Z' ${dir}/f`)).code, 0);
    const afterM = await stat(join(dir, 'f'), { bigint: true });
    assert.equal(afterM.mtimeNs, 981173106123456789n);
    assert.equal(afterM.atimeNs, before.atimeNs, 'atime untouched by touch -m');
    assert.equal((await sh(`touch -a -d '1999-12-31 23:59:59.000000007Z' ${dir}/f`)).code, 0);
    const afterA = await stat(join(dir, 'f'), { bigint: true });
    assert.equal(afterA.atimeNs, 946684799000000007n);
    assert.equal(afterA.mtimeNs, 981173106123456789n, 'mtime untouched by touch -a');
  });

  it('[ns times] nanosecond times set in the file system read back exactly through stat', async () => {
    const { dir, fs } = await mounted();
    await writeFile(join(dir, 'f'), 'x');
    const c = { uid: 0, gid: 0, pid: 0 };
    await fs.utimens(c, '/f', 1234567890987654321n, 1600000000000000001n);
    const st = await stat(join(dir, 'f'), { bigint: true });
    assert.equal(st.atimeNs, 1234567890987654321n);
    assert.equal(st.mtimeNs, 1600000000000000001n);
  });

  it('[zero attr timeout] a size changed behind the kernel is seen at once; with a 60 s timeout it is not', async () => {
    for (const [attrTimeoutSec, expected] of [[0, 10], [60, 3]] as const) {
      const { dir, fs } = await mounted({ attrTimeoutSec, entryTimeoutSec: attrTimeoutSec });
      await writeFile(join(dir, 'f'), 'abc');
      assert.equal((await stat(join(dir, 'f'))).size, 3);
      fs.setSizeBehindKernel('/f', 10);
      assert.equal((await stat(join(dir, 'f'))).size, expected, `attr_timeout=${attrTimeoutSec}`);
    }
  });

  it('[big_writes] a 1 MiB dd bs=1M reaches the file system as 8 writes of 128 KiB', async () => {
    const { dir, fs } = await mounted();
    const r = await sh(`dd if=/dev/zero of=${dir}/big bs=1M count=1 status=none`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.writeSizes, new Array(8).fill(131072));
    assert.equal((await stat(join(dir, 'big'))).size, 1 << 20);
  });

  it('[read-ahead] the mount\'s kernel read-ahead is raised, so a sequential reader keeps several 128 KiB reads in flight', async () => {
    // Each read answers after a short delay (a data-plane fetch stands behind a real one), so
    // requests the kernel sends at once overlap here and can be counted.
    const fs = new SlowReads();
    const { dir } = await mounted({}, fs);
    await writeFile(join(dir, 'f'), Buffer.alloc(16 << 20, 7));
    const device = await mountDeviceOf(dir);
    assert.ok(device !== null, 'mount in mountinfo');
    assert.equal((await readFile(readAheadPath(device), 'utf8')).trim(), String(defaultReadAheadKiB));
    const r = await sh(`dd if=${dir}/f of=/dev/null bs=1M status=none`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.bytesRead, 16 << 20, 'every byte crossed FUSE (no page cache)');
    assert.ok(fs.maxInFlight >= 4, `at most ${fs.maxInFlight} reads in flight (the kernel default of 128 KiB allows 1-2)`);
  });

  it('[max_background] a sequential reader keeps more reads in flight than libfuse\'s 12, and the option bounds them', async () => {
    const deep = new SlowReads();
    const { dir } = await mounted({}, deep);
    await writeFile(join(dir, 'f'), Buffer.alloc(32 << 20, 7));
    let r = await sh(`dd if=${dir}/f of=/dev/null bs=1M status=none`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(deep.bytesRead, 32 << 20);
    assert.ok(deep.maxInFlight > 12, `at most ${deep.maxInFlight} reads in flight (libfuse's default max_background is 12)`);
    const capped = new SlowReads();
    const m2 = await mounted({ maxBackgroundRequests: 6 }, capped);
    await writeFile(join(m2.dir, 'f'), Buffer.alloc(32 << 20, 7));
    r = await sh(`dd if=${m2.dir}/f of=/dev/null bs=1M status=none`);
    assert.equal(r.code, 0, r.stderr);
    // The reader's own request may come on top of the background ones.
    assert.ok(capped.maxInFlight <= 7, `${capped.maxInFlight} reads in flight with max_background=6`);
  });

  it('[64-bit inodes] st_ino above 2^32 reaches stat and readdir intact', async () => {
    const { dir } = await mounted({}, new MemFs({ firstIno: 2n ** 40n + 5n }));
    await writeFile(join(dir, 'f'), 'x');
    assert.equal((await stat(join(dir, 'f'), { bigint: true })).ino, 2n ** 40n + 5n);
    const ls = await sh(`ls -i ${dir}`);
    assert.match(ls.stdout, new RegExp(`^${2n ** 40n + 5n} f$`, 'm'));
  });

  it('links, symlinks, rename, chmod, chown, truncate, mknod, statfs, fsync, unlink reach the ops in argument order', async () => {
    const { dir } = await mounted();
    const p = (n: string): string => join(dir, n);
    await writeFile(p('a'), 'hello world');
    await symlink('a', p('s'));
    assert.equal(await readlink(p('s')), 'a');
    assert.equal(await readFile(p('s'), 'utf8'), 'hello world');
    await link(p('a'), p('h'));
    assert.equal((await stat(p('a'))).nlink, 2);
    await rename(p('h'), p('h2'));
    await assert.rejects(stat(p('h')), { code: 'ENOENT' });
    await chmod(p('a'), 0o640);
    await chown(p('a'), 123, 456);
    await truncate(p('a'), 5);
    const st = await stat(p('a'));
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid, st.size], [0o640, 123, 456, 5]);
    assert.equal((await sh(`mkfifo ${p('fifo')} && stat -c %F ${p('fifo')}`)).stdout.trim(), 'fifo');
    const df = await sh(`stat -f -c '%S %b %f' ${dir}`);
    assert.equal(df.stdout.trim(), `4096 ${1 << 20} ${1 << 19}`);
    const fh = await open(p('a'), 'r+');
    await fh.sync();
    await fh.close();
    await unlink(p('h2'));
    assert.equal((await stat(p('a'))).nlink, 1);
    assert.deepEqual((await readdir(dir)).sort(), ['a', 'fifo', 's']);
  });

  it('xattrs: set, size query, get, list, remove, ENODATA', async () => {
    const { dir } = await mounted();
    await writeFile(join(dir, 'f'), '');
    const py = `import os,sys
f=sys.argv[1]
os.setxattr(f,'user.k',b'value')
print(os.getxattr(f,'user.k').decode(), sorted(os.listxattr(f)))
os.removexattr(f,'user.k')
try:
  os.getxattr(f,'user.k')
except OSError as e:
  print(e.errno == 61)`;
    const r = await sh(`python3 - ${join(dir, 'f')} <<'PY'\n${py}\nPY`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "value ['user.k']\nTrue\n");
  });

  it('an op that throws answers EIO (logged) and the mount keeps working', async () => {
    const { dir, fs } = await mounted();
    await writeFile(join(dir, 'f'), 'data');
    fs.failNext('getattr', new TypeError('a bug in the file system'));
    await assert.rejects(stat(join(dir, 'f')), { code: 'EIO' });
    assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'data');
  });

  it('an op that never answers gets ETIMEDOUT after opTimeoutMs and the mount keeps working', async () => {
    const fs = new MemFs();
    const slow = Object.assign(Object.create(fs) as MemFs, {
      getattr: (c: Parameters<MemFs['getattr']>[0], p: string) => (p === '/slow' ? new Promise<never>(() => undefined) : fs.getattr(c, p)),
    });
    const { dir } = await mounted({ opTimeoutMs: 300 }, slow);
    await assert.rejects(stat(join(dir, 'slow')), { code: 'ETIMEDOUT' });
    await writeFile(join(dir, 'f'), 'still here');
    assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'still here');
  });

  it('POSIX errors thrown by ops reach the caller (ENOENT, ENOTEMPTY, EEXIST)', async () => {
    const { dir } = await mounted();
    await assert.rejects(stat(join(dir, 'missing')), { code: 'ENOENT' });
    await mkdir(join(dir, 'd'));
    await writeFile(join(dir, 'd', 'f'), '');
    await assert.rejects(rmdir(join(dir, 'd')), { code: 'ENOTEMPTY' });
    await assert.rejects(mkdir(join(dir, 'd')), { code: 'EEXIST' });
  });

  it('ro mounts answer EROFS to writes', async () => {
    const { dir } = await mounted({ readOnly: true });
    await assert.rejects(writeFile(join(dir, 'f'), 'x'), { code: 'EROFS' });
  });

  it('unmount() succeeds while a file is open (lazy as the last resort)', async () => {
    const { dir, m } = await mounted();
    await writeFile(join(dir, 'f'), 'x');
    const fh = await open(join(dir, 'f'), 'r');
    try {
      await m.unmount();
      assert.equal(await isFuseMounted(dir), false);
    } finally {
      await fh.close();
    }
  });
});

describeFuse('vfs/fuse stale mounts (kill -9 of the owner)', function (this: Mocha.Suite) {
  this.timeout(60_000);
  let child: ChildProcess | undefined;
  let mp: ReturnType<typeof tempMountPoint> | undefined;
  let remount: TestMount | undefined;
  after(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await remount?.unmount();
    await mp?.cleanup();
  });

  it('a mount left by a killed process is cleared by clearStaleMount and mounts again', async () => {
    mp = tempMountPoint();
    const dir = mp.dir;
    child = spawn(process.execPath, ['--import', 'tsx', 'test/support/fuse-child.ts', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((res, rej) => {
      lines.on('line', (l) => { if (l === 'mounted') res(); });
      child!.once('exit', (code) => rej(new Error(`child exited ${code} before mounting`)));
    });
    assert.equal(await isFuseMounted(dir), true);
    child.kill('SIGKILL');
    await pollUntil('child gone', () => child!.exitCode !== null || child!.signalCode !== null, 10_000, 20);
    await assert.rejects(stat(dir), { code: 'ENOTCONN' });
    assert.equal(await clearStaleMount(dir), true);
    assert.equal(await isFuseMounted(dir), false);
    remount = await mountForTest(dir, new MemFs(), base);
    await writeFile(join(dir, 'f'), 'after restart');
    assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'after restart');
  });

  it('clearStaleMount leaves a live mount and a plain directory alone', async () => {
    assert.ok(mp !== undefined && remount !== undefined, 'runs after the kill -9 test');
    assert.equal(await clearStaleMount(mp.dir), false);
    assert.equal(await isFuseMounted(mp.dir), true);
    assert.equal(await clearStaleMount('/tmp'), false);
  });
});
