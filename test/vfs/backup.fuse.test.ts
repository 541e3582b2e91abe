/**
 * A file-system volume backed up and restored through real FUSE mounts on a 3-node cluster
 * (`galleon up`): a tree of directories, files (one sparse, one empty, one with an xattr), a
 * symlink and a hard link, with modes, owners and times; the restore is a new volume that every
 * node mounts, with the same tree and the same bytes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, chown, link, mkdir, open, rm, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { describeFuse } from '../support/fuse.js';
import { startMountedCluster, waitMounted, type MountedCluster } from './cluster-mounts.js';
import { treeOf } from './tree-walk.js';
import { waitFor } from '../cli/helpers.js';
import type { BackupResult } from '../../dataplane/backup/engine.js';
import type { RestoreResult } from '../../dataplane/backup/restore.js';

const run = promisify(execFile);

const snapshot = (dir: string): ReturnType<typeof treeOf> => treeOf(dir, { owners: true });

describeFuse('backup and restore of a mounted file-system volume (fuse)', function () {
  this.timeout(240_000);
  let c: MountedCluster;

  before(async function () {
    this.timeout(300_000);
    c = await startMountedCluster('galleon-backup-fuse-');
  });

  after(async function () {
    this.timeout(120_000);
    await c?.teardown();
  });

  it('restores the tree and the bytes into a new volume that mounts', async () => {
    const d = c.path(1, 'demo');
    await mkdir(join(d, 'docs/deep/er'), { recursive: true });
    await writeFile(join(d, 'docs/a.txt'), 'hello backup\n');
    await writeFile(join(d, 'docs/deep/big.bin'), randomBytes(700_000));
    await writeFile(join(d, 'empty'), '');
    const fh = await open(join(d, 'sparse.bin'), 'w');
    await fh.write(Buffer.from('tail'), 0, 4, 5 * 1024 * 1024);
    await fh.close();
    await symlink('docs/a.txt', join(d, 'link-to-a'));
    await link(join(d, 'docs/a.txt'), join(d, 'docs/deep/er/hard-a'));
    await chmod(join(d, 'docs/deep/big.bin'), 0o640);
    await chown(join(d, 'docs/deep'), 1234, 5678);
    await run('setfattr', ['-n', 'user.colour', '-v', 'blue', join(d, 'docs/a.txt')]).catch(() => undefined);
    await utimes(join(d, 'empty'), new Date('2020-02-02T02:02:02Z'), new Date('2021-03-03T03:03:03Z'));
    // Read through another node: node 1's kernel may still cache a.txt's link count from before link().
    const before = await snapshot(c.path(2, 'demo'));
    assert.equal(before['docs/a.txt']?.nlink, 2);
    assert.equal(Object.keys(before).length, 9);

    const target = join(c.dir, 'backups');
    await mkdir(target);
    assert.equal((await c.cli(1, ['backup-target', 'add', 'here', '--dir', target, '--json'])).code, 0);
    const b = await c.cli(1, ['backup', 'create', 'demo', '--target', 'here', '--strategy', 'full', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const backup = JSON.parse(b.stdout) as BackupResult;
    // The raw device of demo was never written: the file blocks are the whole backup.
    assert.ok(backup.blocks >= 1 + Math.ceil(700_000 / (128 * 1024)) + 1);
    const r = await c.cli(2, ['backup', 'restore', backup.id, '--name', 'demo-restored', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const restored = JSON.parse(r.stdout) as RestoreResult;
    assert.equal(restored.files, 4);
    for (const n of [1, 3]) {
      await waitMounted(c.path(n, 'demo-restored'));
      assert.deepEqual(await snapshot(c.path(n, 'demo-restored')), before, `node${n}`);
    }
    const x = await run('getfattr', ['--only-values', '-n', 'user.colour', c.path(3, 'demo-restored', 'docs/a.txt')]).catch(() => null);
    if (x !== null) assert.equal(x.stdout, 'blue');
  });

  it('backs up the tree as it was at the snapshot, not as it is when the backup runs', async () => {
    const d = c.path(1, 'demo');
    await writeFile(join(d, 'docs/at-snap.txt'), 'present at the snapshot\n');
    // The tree the snapshot will hold, seen from node 2: node 1's buffered create (write-back) is
    // committed first, and node 2 may show docs' older times for its attribute timeout.
    assert.equal((await c.cli(1, ['vfs', 'sync', 'demo'])).code, 0);
    const docsMtime = (await stat(join(d, 'docs'))).mtimeMs;
    await waitFor('node 2 shows docs as node 1 does', 10_000, async () => (await stat(c.path(2, 'demo', 'docs'))).mtimeMs === docsMtime);
    const atSnap = await snapshot(c.path(2, 'demo'));
    const s = await c.cli(1, ['snapshot', 'create', 'demo', '--name', 'tree-cut', '--json']);
    assert.equal(s.code, 0, s.stderr);
    // After the snapshot: a file gone, one new, one rewritten with another size, a directory gone.
    await unlink(join(d, 'docs/at-snap.txt'));
    await writeFile(join(d, 'after-snap.txt'), 'created after the snapshot\n');
    await writeFile(join(d, 'docs/deep/big.bin'), randomBytes(10_000));
    await rm(join(d, 'docs/deep/er'), { recursive: true });
    const b = await c.cli(1, ['backup', 'create', 'demo', '--target', 'here', '--strategy', 'full', '--snapshot', 'tree-cut', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const backup = JSON.parse(b.stdout) as BackupResult;
    const r = await c.cli(2, ['backup', 'restore', backup.id, '--name', 'demo-at-cut', '--json']);
    assert.equal(r.code, 0, r.stderr);
    await waitMounted(c.path(3, 'demo-at-cut'));
    assert.deepEqual(await snapshot(c.path(3, 'demo-at-cut')), atSnap);
  });
});
