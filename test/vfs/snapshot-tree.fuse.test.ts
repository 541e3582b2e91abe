/**
 * Snapshots cover the file tree (issue #11), end to end through real FUSE mounts on a 3-node
 * cluster (`galleon up`): a tree of directories, files (one sparse, one empty, one with an xattr),
 * a symlink and a hard link is written through a mount and snapshotted; then changed. A clone of
 * the snapshot mounts with exactly the old tree and bytes; a mounted clone can be snapshotted and
 * cloned again; the original restored in place (refused while any node mounts it, then unmounted
 * everywhere) reads as the old tree again, every block t1 references still there, and no data
 * node holds a block of the file made after t1 that the restore dropped.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, link, mkdir, open, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Snapshot, Volume } from '../../proto/metadata-types.js';
import { waitFor } from '../cli/helpers.js';
import { describeFuse } from '../support/fuse.js';
import { startMountedCluster, waitMounted, type MountedCluster } from './cluster-mounts.js';
import { treeOf } from './tree-walk.js';
import { holdingsOf } from '../support/holdings.js';

const run = promisify(execFile);

/** Python's os.getxattr/setxattr: Node has no xattr API and attr's tools are not installed here. */
async function xattr(path: string, value?: string): Promise<string | undefined> {
  const code = value === undefined
    ? 'import os,sys\ntry: sys.stdout.write(os.getxattr(sys.argv[1], "user.colour").decode())\nexcept OSError: pass'
    : 'import os,sys; os.setxattr(sys.argv[1], "user.colour", sys.argv[2].encode())';
  const { stdout } = await run('python3', ['-c', code, path, ...(value === undefined ? [] : [value])]);
  return stdout === '' ? undefined : stdout;
}

const treeAt = (dir: string): ReturnType<typeof treeOf> => treeOf(dir, { inodes: true, xattr: (p) => xattr(p) });

describeFuse('snapshots, clones and restores of a mounted file-system volume cover its tree (fuse)', function () {
  this.timeout(300_000);
  let c: MountedCluster;

  before(async function () {
    this.timeout(300_000);
    c = await startMountedCluster('galleon-snaptree-fuse-');
  });

  after(async function () {
    this.timeout(120_000);
    await c?.teardown();
  });

  const json = async <T>(node: number, args: string[]): Promise<T> => {
    const r = await c.cli(node, [...args, '--json']);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  /** Until `volume get` shows the tree ready (the controller's paced steps are done). */
  const treeReady = (volume: string): Promise<Volume> =>
    waitFor(`${volume}'s file tree ready`, 120_000, async () => {
      const v = await json<Volume>(1, ['volume', 'get', volume]);
      return v.treeState === undefined ? v : undefined;
    });

  it('a clone of the snapshot mounts with the old tree; it can be snapshotted and cloned again; restore in place rolls back', async () => {
    const d = c.path(1, 'demo');
    await mkdir(join(d, 'docs/deep/er'), { recursive: true });
    await writeFile(join(d, 'docs/a.txt'), 'hello snapshot\n');
    await writeFile(join(d, 'docs/deep/big.bin'), randomBytes(300_000));
    await writeFile(join(d, 'empty'), '');
    const fh = await open(join(d, 'sparse.bin'), 'w');
    await fh.write(Buffer.from('tail'), 0, 4, 5 * 1024 * 1024);
    await fh.close();
    await symlink('docs/a.txt', join(d, 'link-to-a'));
    await link(join(d, 'docs/a.txt'), join(d, 'docs/deep/er/hard-a'));
    await chmod(join(d, 'docs/deep/big.bin'), 0o640);
    await xattr(join(d, 'docs/a.txt'), 'blue');
    // Read through another node: node 1's kernel may still cache a.txt's link count from before link().
    const before = await treeAt(c.path(2, 'demo'));
    assert.equal(before['docs/a.txt']?.nlink, 2);
    assert.equal(before['docs/a.txt']?.xattr, 'blue');
    assert.equal(Object.keys(before).length, 9);

    const t1 = await json<Snapshot>(1, ['snapshot', 'create', 'demo', '--name', 't1']);
    assert.equal(t1.fileTree?.inodes, 9, 'root, 3 dirs, 4 files (one with 2 links), 1 symlink');

    // Change everything after the snapshot: contents, names, links, attributes, xattrs.
    await writeFile(join(d, 'docs/a.txt'), 'changed after t1\n');
    await xattr(join(d, 'docs/a.txt'), 'red');
    await rm(join(d, 'docs/deep/big.bin'));
    await rename(join(d, 'docs/deep'), join(d, 'docs/moved'));
    await rm(join(d, 'link-to-a'));
    await truncate(join(d, 'sparse.bin'), 10);
    await chmod(join(d, 'empty'), 0o600);
    await writeFile(join(d, 'new.txt'), 'new after t1');
    // A file of several blocks made after t1: the restore drops it and must free its blocks.
    await writeFile(join(d, 'new-big.bin'), randomBytes(200_000));
    const changed = await treeAt(c.path(2, 'demo'));
    assert.notDeepEqual(changed, before);

    // Clone: not mountable until its tree is copied, then every node mounts it with the old tree.
    await json<Volume>(1, ['volume', 'clone', 't1', '--name', 'demo-c1']);
    await treeReady('demo-c1');
    await waitMounted(c.path(1, 'demo-c1'));
    assert.deepEqual(await treeAt(c.path(1, 'demo-c1')), before, 'the clone holds the tree of t1, same inode numbers');
    assert.deepEqual(await treeAt(c.path(2, 'demo')), changed, 'the source keeps its own tree');

    // The mounted clone is a file system like any other: write, snapshot, clone again.
    await writeFile(c.path(1, 'demo-c1', 'docs/from-clone.txt'), 'written in the clone');
    await rm(c.path(1, 'demo-c1', 'empty'));
    const c1Tree = await treeAt(c.path(1, 'demo-c1'));
    await json<Snapshot>(1, ['snapshot', 'create', 'demo-c1', '--name', 't2']);
    await writeFile(c.path(1, 'demo-c1', 'after-t2.txt'), 'not in t2');
    await json<Volume>(1, ['volume', 'clone', 't2', '--name', 'demo-c2']);
    await treeReady('demo-c2');
    await waitMounted(c.path(3, 'demo-c2'));
    assert.deepEqual(await treeAt(c.path(3, 'demo-c2')), c1Tree, 'a clone of a clone holds the clone\'s tree at t2');

    // Restore in place: refused while mounted anywhere (read-only mounts too, each named);
    // unmounted everywhere, it rolls back to t1 and frees the blocks of the files made since.
    const refused = await c.cli(1, ['volume', 'restore', 'demo', '--snapshot', 't1', '--yes']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^Error: volume demo is mounted by node1 \(read-(write|only)\), node2 \(read-(write|only)\), node3 \(read-(write|only)\) — unmount it on each of them first/);
    assert.equal(refused.stderr.trim().split('\n').length, 1);
    const demo = await json<Volume>(1, ['volume', 'get', 'demo']);
    const dropped = { ino: (await stat(c.path(2, 'demo', 'new-big.bin'))).ino, blocks: Math.ceil(200_000 / demo.blockSizeBytes) };
    const holdings = await holdingsOf(c.dir, c.nodes.map((n) => n.bindAddress));
    try {
      assert.ok((await holdings.held(demo.id, dropped.ino, dropped.blocks)).length >= dropped.blocks, 'the data nodes hold the new file before the restore');
      for (const n of [1, 2, 3]) await json(n, ['volume', 'unmount', 'demo']);
      const restored = await json<Volume & { freed?: { blocks: number }; operation?: { state: string; unit: string; progress: { blocksDone: number; blocksTotal: number } } }>(1, ['volume', 'restore', 'demo', '--snapshot', 't1', '--yes', '--wait']);
      // The --wait progress figures (cli/daemon/operations.ts) end where the freeing did.
      assert.equal(restored.operation?.state, 'done');
      assert.equal(restored.operation.unit, 'blocks');
      assert.equal(restored.operation.progress.blocksDone, restored.freed?.blocks);
      assert.equal(restored.operation.progress.blocksTotal, restored.freed?.blocks);
      assert.deepEqual(await holdings.held(demo.id, dropped.ino, dropped.blocks), [], `no data node holds a block of the dropped file (freed ${JSON.stringify(restored.freed)})`);
      assert.ok((restored.freed?.blocks ?? 0) >= dropped.blocks, `freed ${JSON.stringify(restored.freed)}`);
    } finally {
      holdings.close();
    }
    await treeReady('demo');
    await mkdir(d, { recursive: true });
    await json(1, ['volume', 'mount', 'demo', d]);
    assert.deepEqual(await treeAt(d), before, 'restored in place: the tree and bytes of t1');
  });
});
