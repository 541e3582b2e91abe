/**
 * The binding's fast paths (vfs/README.md, "The patch"): kernel requests answered on the libfuse
 * thread instead of a trip through the JS thread. Each is a switch (MountOptions); every test
 * runs the switch both ways and checks the POSIX answer is the same while the count of requests
 * that reached JS (`Mounted.requests()`) differs.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mountFs } from '../../vfs/fuse/mount.js';
import type { Mounted } from '../../vfs/fuse/mount.js';
import type { FuseCaller, MountOptions } from '../../vfs/fuse/types.js';
import { describeFuse, sh, tempMountPoint } from '../support/fuse.js';
import { MemFs } from '../support/memfs.js';
import { pollUntil } from '../support/poll.js';

const base: MountOptions = { fsname: 'galleon:fast', attrTimeoutSec: 0, entryTimeoutSec: 1, allowOther: true };

/** MemFs that records the names of the getxattr calls that reached it. */
class XattrLog extends MemFs {
  readonly asked: string[] = [];
  override async getxattr(c: FuseCaller, path: string, name: string): Promise<Buffer | undefined> {
    this.asked.push(name);
    return super.getxattr(c, path, name);
  }
}

const delta = (after: Record<string, number>, before: Record<string, number>, k: string): number => (after[k] ?? 0) - (before[k] ?? 0);

describeFuse('vfs/fuse fast paths in the binding (real mounts)', function (this: Mocha.Suite) {
  this.timeout(60_000);
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function mounted(opts: Partial<MountOptions>, fs = new XattrLog()): Promise<{ dir: string; fs: XattrLog; m: Mounted }> {
    const mp = tempMountPoint();
    cleanups.push(() => mp.cleanup());
    const m = await mountFs(mp.dir, fs, { ...base, ...opts });
    cleanups.push(() => m.unmount());
    return { dir: mp.dir, fs, m };
  }

  const writeFiles = async (dir: string, n: number): Promise<void> => {
    const r = await sh(`for i in $(seq 1 ${n}); do head -c 4096 /dev/zero > ${dir}/f$i; done`);
    assert.equal(r.code, 0, r.stderr);
  };

  for (const on of [true, false]) {
    it(`[no caps ${on ? 'on' : 'off'}] getxattr("security.capability") before each write is ${on ? 'answered in C' : 'asked of JS'}`, async () => {
      const { dir, fs, m } = await mounted({ noCapabilityXattr: on });
      const before = m.requests();
      await writeFiles(dir, 5);
      const after = m.requests();
      const inJs = fs.asked.filter((n) => n === 'security.capability').length;
      assert.equal(inJs, on ? 0 : 5, `JS was asked ${inJs} times`);
      assert.equal(delta(after, before, 'native.getxattr'), on ? 5 : 0);
      assert.equal(m.noCapabilityXattr(), on);
    });
  }

  it('[no caps] a setxattr of security.capability turns the fast path off: setcap reads back, and a write drops it as on ext4', async () => {
    const { dir, fs, m } = await mounted({ noCapabilityXattr: true });
    await writeFiles(dir, 1);
    const f = join(dir, 'f1');
    const set = await sh(`setcap cap_net_raw+ep ${f} && getcap ${f}`);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /cap_net_raw[=+]ep/);
    assert.equal(m.noCapabilityXattr(), false, 'the binding stopped answering the capability itself');
    // A write must drop the file capability (the kernel asks for it, then removes it): only
    // possible if the getxattr reaches the file system now.
    const asked = fs.asked.length;
    const w = await sh(`echo more >> ${f} && getcap ${f}`);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout.trim(), '', `capability kept after a write: ${w.stdout}`);
    assert.ok(fs.asked.length > asked, 'the write asked JS for the capability');
  });

  for (const on of [true, false]) {
    it(`[create attr ${on ? 'on' : 'off'}] the getattr after create is ${on ? 'answered from the create' : 'asked of JS'}, with the same attributes`, async () => {
      const { dir, m } = await mounted({ createAttr: on });
      const before = m.requests();
      const r = await sh(`umask 027; touch ${dir}/a ${dir}/b ${dir}/c`);
      assert.equal(r.code, 0, r.stderr);
      const after = m.requests();
      const native = delta(after, before, 'native.getattr') + delta(after, before, 'native.fgetattr');
      assert.equal(native, on ? 3 : 0);
      const st = await stat(join(dir, 'b'));
      assert.equal(st.mode & 0o7777, 0o640);
      assert.equal(st.size, 0);
      assert.equal(st.uid, 0);
    });
  }

  for (const ms of [200, 0]) {
    it(`[attr cache ${ms} ms] directory attributes of the permission checks are ${ms > 0 ? 'answered in C' : 'asked of JS'}`, async () => {
      const { dir, m } = await mounted({ attrCacheMs: ms });
      await mkdir(join(dir, 'd'));
      const before = m.requests();
      const r = await sh(`for i in 1 2 3 4 5; do head -c 4096 /dev/zero > ${dir}/d/f$i; done`);
      assert.equal(r.code, 0, r.stderr);
      const after = m.requests();
      const native = delta(after, before, 'native.getattr');
      const inJs = delta(after, before, 'getattr');
      if (ms > 0) assert.ok(native >= 10 && inJs <= 15, `native ${native}, JS ${inJs}`);
      else assert.ok(native <= 5 && inJs >= 20, `native ${native}, JS ${inJs}`);
      assert.equal(delta(after, before, 'native.getxattr'), ms > 0 ? 5 : 0, 'a new file has no capability');
    });
  }

  it('[attr cache] every change through the mount shows at once: chmod, mkdir, create (mtime), rename, write (size)', async () => {
    const { dir } = await mounted({ attrCacheMs: 1_000 });
    const d = join(dir, 'd');
    await mkdir(d);
    await chmod(d, 0o700);
    assert.equal((await stat(d)).mode & 0o777, 0o700);
    // The file system's clock is Date.now(): wait a tick between changes so the times differ.
    const tick = (): Promise<void> => new Promise((res) => setTimeout(res, 5));
    const m0 = (await stat(d, { bigint: true })).mtimeNs;
    await tick();
    await mkdir(join(d, 'sub'));
    const m1 = (await stat(d, { bigint: true })).mtimeNs;
    assert.ok(m1 > m0, 'mkdir moved the directory mtime');
    await tick();
    await writeFile(join(d, 'f'), '');
    assert.ok((await stat(d, { bigint: true })).mtimeNs > m1, 'create moved the directory mtime');
    const r = await sh(`echo hello >> ${d}/f && stat -c %s ${d}/f`);
    assert.equal(r.stdout.trim(), '6', 'the write shows in the size at once');
    await rename(d, join(dir, 'e'));
    assert.equal((await stat(join(dir, 'e'))).mode & 0o777, 0o700);
    await assert.rejects(stat(d), { code: 'ENOENT' });
  });

  it('[attr cache] a change made behind the mount shows within attrCacheMs (and at once with the cache off)', async () => {
    for (const ms of [1_000, 0]) {
      const { dir, fs } = await mounted({ attrCacheMs: ms });
      await mkdir(join(dir, 'd'), { mode: 0o755 });
      assert.equal((await stat(join(dir, 'd'))).mode & 0o777, 0o755);
      await fs.chmod({ uid: 0, gid: 0, pid: 0 }, '/d', 0o711);
      const t0 = performance.now();
      if (ms === 0) assert.equal((await stat(join(dir, 'd'))).mode & 0o777, 0o711);
      else assert.equal((await stat(join(dir, 'd'))).mode & 0o777, 0o755, 'answered from the cache');
      await pollUntil('the new mode', async () => ((await stat(join(dir, 'd'))).mode & 0o777) === 0o711, 5_000, 20);
      // The bound is the cache's ms; + 700 ms for stat round trips on a loaded machine.
      assert.ok(performance.now() - t0 < ms + 700, `shown after ${performance.now() - t0} ms`);
    }
  });

  it('[attr cache] a capability set on a new file is read back, and a write drops it', async () => {
    const { dir, fs } = await mounted({ attrCacheMs: 1_000 });
    await writeFiles(dir, 1);
    const f = join(dir, 'f1');
    const set = await sh(`setcap cap_net_raw+ep ${f} && getcap ${f}`);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /cap_net_raw[=+]ep/);
    const asked = fs.asked.length;
    const w = await sh(`echo more >> ${f} && getcap ${f}`);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout.trim(), '', `capability kept after a write: ${w.stdout}`);
    assert.ok(fs.asked.length > asked, 'the write asked JS for the capability');
  });

  /** MemFs that records releases and unlinks, in the order they reach it. */
  class OpLog extends XattrLog {
    readonly ops: string[] = [];
    // MemFs's release takes no arguments; the mount passes (caller, path, fh).
    override async release(...args: unknown[]): Promise<void> {
      this.ops.push(`release ${String(args[1])}`);
      return super.release();
    }
    override async unlink(c: FuseCaller, path: string): Promise<void> {
      this.ops.push(`unlink ${path}`);
      return super.unlink(c, path);
    }
  }

  for (const on of [true, false]) {
    it(`[release queue ${on ? 'on' : 'off'}] RELEASE is ${on ? 'answered in C and run by JS afterwards' : 'a trip to JS'}; every release reaches the file system`, async () => {
      const fs = new OpLog();
      const { dir, m } = await mounted({ queueReleases: on }, fs);
      const before = m.requests();
      await writeFiles(dir, 20);
      await pollUntil('20 releases run', () => fs.ops.filter((o) => o.startsWith('release')).length >= 20, 5_000, 10);
      const after = m.requests();
      assert.equal(delta(after, before, 'native.release'), on ? 20 : 0);
      assert.equal(delta(after, before, 'release'), on ? 0 : 20);
      assert.deepEqual(fs.ops.filter((o) => o.startsWith('release')).sort(), Array.from({ length: 20 }, (_, i) => `release /f${i + 1}`).sort());
    });
  }
});
