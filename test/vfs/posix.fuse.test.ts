/**
 * What a local ext4 does and a GalleonFS mount did not, found by running pjdfstest and fsx
 * against a mount (vfs/README.md, "POSIX conformance"). Each case is our own, on a real
 * `galleon up` cluster, through node 1's automatic mount (default_permissions, 1 s timeouts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, link, mkdir, open, readdir, rename, rmdir, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describeFuse } from '../support/fuse.js';
import { pollUntil } from '../support/poll.js';
import { errnoOf, startMountedCluster, type MountedCluster } from './cluster-mounts.js';

const run = promisify(execFile);
/** ext4's largest file with 4 KiB blocks (proto/limits.ts maxFileSizeBytes). */
const ext4MaxFileBytes = 2 ** 44;
/** An unprivileged user the kernel checks like any other (pjdfstest's choice too). */
const nobody = 65_534;

describeFuse('POSIX behaviour of a mount, as ext4 (fuse)', function () {
  this.timeout(120_000);
  let c: MountedCluster;
  const p = (...rest: string[]): string => c.path(1, 'demo', ...rest);

  before(async function () {
    this.timeout(300_000);
    c = await startMountedCluster('galleon-posix-');
  });

  after(async function () {
    this.timeout(120_000);
    await c?.teardown();
  });

  it('[name length] a name over 255 bytes is ENAMETOOLONG for calls by path, also in a directory the mount has listed', async () => {
    await mkdir(p('listed'));
    await writeFile(p('listed', 'file'), 'x');
    // The mount now knows the directory's every name: before, it answered ENOENT from that.
    assert.deepEqual(await readdir(p('listed')), ['file']);
    const long = p('listed', 'n'.repeat(256));
    assert.equal(await errnoOf(stat(long)), 'ENAMETOOLONG');
    assert.equal(await errnoOf(chmod(long, 0o600)), 'ENAMETOOLONG');
    assert.equal(await errnoOf(truncate(long, 1)), 'ENAMETOOLONG');
    assert.equal(await errnoOf(unlink(long)), 'ENAMETOOLONG');
    assert.equal(await errnoOf(rmdir(long)), 'ENAMETOOLONG');
    assert.equal(await errnoOf(rename(long, p('listed', 'other'))), 'ENAMETOOLONG');
    assert.equal(await errnoOf(link(long, p('listed', 'other'))), 'ENAMETOOLONG');
    assert.equal(await errnoOf(stat(p('listed', 'n'.repeat(255)))), 'ENOENT', '255 bytes is a name that may exist');
  });

  it('[file size] truncate or write past the largest file size is EFBIG (not the quota\'s ENOSPC), and changes nothing', async () => {
    await writeFile(p('sized'), 'abc');
    assert.equal(await errnoOf(truncate(p('sized'), 999_999_999_999_999)), 'EFBIG');
    assert.equal(await errnoOf(truncate(p('sized'), ext4MaxFileBytes + 1)), 'EFBIG');
    const fh = await open(p('sized'), 'r+');
    try {
      assert.equal(await errnoOf(fh.write(Buffer.from('z'), 0, 1, ext4MaxFileBytes)), 'EFBIG');
    } finally {
      await fh.close();
    }
    assert.equal((await stat(p('sized'))).size, 3);
  });

  it('[hard links] a link count or mode changed through one name shows through the other name at once', async () => {
    await writeFile(p('first'), 'linked');
    assert.equal((await stat(p('first'))).nlink, 1); // the kernel now holds the first name's attributes
    await link(p('first'), p('second'));
    assert.equal((await stat(p('first'))).nlink, 2, 'after link, through the old name');
    assert.equal((await stat(p('second'))).nlink, 2);
    await chmod(p('second'), 0o600);
    assert.equal((await stat(p('first'))).mode & 0o7777, 0o600, 'chmod through the other name');
    await unlink(p('second'));
    assert.equal((await stat(p('first'))).nlink, 1, 'after unlink of the other name');
    await writeFile(p('third'), 'x');
    await link(p('first'), p('fourth'));
    await rename(p('third'), p('fourth'));
    assert.equal((await stat(p('first'))).nlink, 1, 'after a rename replaced the other name');
  });

  it('[set-id] a write by a user who is not the owner clears set-uid and set-gid, as the kernel does on ext4', async () => {
    await chmod(c.dir, 0o711); // a temp folder is 0700: let the other user reach the mount
    for (const [name, mode] of [['suid', 0o4777], ['sgid', 0o2777], ['both', 0o6777]] as const) {
      await writeFile(p(name), '');
      await chmod(p(name), mode);
      assert.equal((await stat(p(name))).mode & 0o7777, mode);
      // Before: the kernel's request to drop the bits came as that user's chmod and was refused
      // (EPERM), so the write failed and the bits stayed.
      await run('sh', ['-c', `printf x >> '${p(name)}'`], { uid: nobody, gid: nobody });
      const after = await stat(p(name));
      assert.deepEqual([after.mode & 0o7777, after.size, after.uid], [0o777, 1, 0], name);
    }
    // The owner may still set them, and a non-owner may not change anything else.
    await chmod(p('suid'), 0o4755);
    await assert.rejects(run('chmod', ['0777', p('suid')], { uid: nobody, gid: nobody }), /Operation not permitted/);
    assert.equal((await stat(p('suid'))).mode & 0o7777, 0o4755);
  });

  it('[binding fast paths] new files are answered mostly in the binding; a capability set on one reads back and a write drops it', async () => {
    await mkdir(p('fast'));
    const requests = async (): Promise<Record<string, number>> => {
      const r = await c.cli(1, ['vfs', 'status', 'demo', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { fuseRequests?: Record<string, number> }).fuseRequests ?? {};
    };
    const before = await requests();
    await run('sh', ['-c', `for i in $(seq 1 20); do head -c 4096 /dev/zero > ${p('fast')}/f$i; done`]);
    const after = await requests();
    const d = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
    assert.ok(d('native.getattr') + d('native.fgetattr') >= 60, `native getattr ${d('native.getattr')} + ${d('native.fgetattr')}`);
    assert.ok(d('native.getxattr') >= 19, `native getxattr ${d('native.getxattr')}`);
    const f = p('fast', 'f1');
    const set = await run('sh', ['-c', `setcap cap_net_raw+ep ${f} && getcap ${f}`]);
    assert.match(set.stdout, /cap_net_raw[=+]ep/);
    const w = await run('sh', ['-c', `echo more >> ${f} && getcap ${f}`]);
    assert.equal(w.stdout.trim(), '', `capability kept after a write: ${w.stdout}`);
  });

  it('[binding fast paths] a directory mode changed on node 2 shows on node 1 within the timeout + the binding\'s 0.1 s', async () => {
    await mkdir(p('moded'), { mode: 0o755 });
    assert.equal((await stat(p('moded'))).mode & 0o777, 0o755);
    await chmod(c.path(2, 'demo', 'moded'), 0o711);
    const t0 = performance.now();
    await pollUntil('node 1 sees the new mode', async () => ((await stat(p('moded'))).mode & 0o777) === 0o711, 10_000, 20);
    const ms = performance.now() - t0;
    assert.ok(ms < 1_000 + 100 + 500, `shown after ${ms.toFixed(0)} ms`); // + 0.5 s for a loaded machine's round trips
  });
});
