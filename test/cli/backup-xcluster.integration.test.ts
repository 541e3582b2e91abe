/**
 * A backup restored on ANOTHER cluster, from the CLI (issue #11, "Done when"). Two independent
 * `galleon up` clusters (their own folders, ports, CAs, tokens and cluster key files) and one real
 * s3rver: cluster A backs up its mounted, encrypted file-system volume (a tree with directories,
 * files, a symlink, a hard link, an xattr, modes and owners, plus raw blocks) to a directory and
 * to S3; cluster B adds the same directory and bucket under names of its own, lists A's backups
 * and restores them with A's key file (`--source-key-file`), then mounts the restores and
 * compares tree, bytes and raw blocks with A's. Without A's key file, or with a wrong one, the
 * restore fails with one line and leaves no volume. A backup taken after A rotated its key opens
 * with A's key file too (it keeps every version).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, chown, link, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeFuse } from '../support/fuse.js';
import { startMountedCluster, waitMounted, type MountedCluster } from '../vfs/cluster-mounts.js';
import { treeOf, type TreeNode } from '../vfs/tree-walk.js';
import { startS3, type LocalS3 } from '../support/s3.js';
import { makeTempDir, waitFor } from './helpers.js';
import type { BackupResult } from '../../dataplane/backup/engine.js';
import type { BackupSummary } from '../../dataplane/backup/service.js';
import type { RestoreResult } from '../../dataplane/backup/restore.js';
import type { Volume } from '../../proto/metadata-types.js';

const run = promisify(execFile);
const blockSize = 128 * 1024;
const rawBlocks = [3, 40];

// Node has no xattr call: python3's os.setxattr/getxattr go through the same FUSE mount.
const setXattr = (p: string, n: string, v: string): Promise<unknown> => run('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())', p, n, v]);
const getXattr = async (p: string): Promise<string | undefined> => {
  const r = await run('python3', ['-c', 'import os,sys\ntry: print(os.getxattr(sys.argv[1], "user.colour").decode(), end="")\nexcept OSError: pass', p]);
  return r.stdout === '' ? undefined : r.stdout;
};
const treeWithXattrs = (dir: string): Promise<Record<string, TreeNode>> => treeOf(dir, { owners: true, xattr: getXattr });

describeFuse('a backup restored on another cluster (integration, fuse)', function () {
  this.timeout(300_000);
  let root = '';
  let s3: LocalS3 | null = null;
  let a: MountedCluster | null = null;
  let b: MountedCluster | null = null;
  let tree: Record<string, TreeNode> = {};
  const raw = new Map<number, Buffer>();
  const ids: Record<'dir' | 's3', string> = { dir: '', s3: '' };

  const ok = async <T>(c: MountedCluster | null, args: string[]): Promise<T> => {
    assert.ok(c !== null);
    const r = await c.cli(1, [...args, '--json']);
    assert.equal(r.code, 0, `galleon ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const volumesOf = async (c: MountedCluster | null): Promise<string[]> => (await ok<Volume[]>(c, ['volume', 'list'])).map((v) => v.name);
  const readBlock = async (c: MountedCluster | null, volume: string, n: number): Promise<Buffer> => {
    assert.ok(c !== null);
    // --out: stdout reaches the test as text, which would mangle random bytes.
    const out = join(root, `read-${volume}-${n}.bin`);
    const r = await c.cli(1, ['volume', 'read-block', volume, String(n), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    return readFile(out);
  };

  before(async function () {
    this.timeout(600_000);
    root = await makeTempDir('galleon-xcluster-');
    s3 = await startS3(join(root, 's3'), ['xc-backups']);
    a = await startMountedCluster('galleon-xc-a-');
    b = await startMountedCluster('galleon-xc-b-');
    await mkdir(join(root, 'target'));
  });

  after(async function () {
    this.timeout(240_000);
    await b?.teardown();
    await a?.teardown();
    await s3?.stop();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  it('cluster A backs up a mounted, encrypted tree and raw blocks to a directory and to S3', async () => {
    assert.ok(a !== null && s3 !== null);
    const d = a.path(1, 'demo');
    await mkdir(join(d, 'etc/conf.d'), { recursive: true });
    await writeFile(join(d, 'etc/app.conf'), 'mode = cross-cluster\n');
    await writeFile(join(d, 'etc/conf.d/big.bin'), randomBytes(3 * blockSize + 777));
    await writeFile(join(d, 'empty'), '');
    await symlink('etc/app.conf', join(d, 'current'));
    await link(join(d, 'etc/app.conf'), join(d, 'etc/conf.d/app.hard'));
    await chmod(join(d, 'etc/conf.d/big.bin'), 0o600);
    await chmod(join(d, 'etc/conf.d'), 0o750);
    await chown(join(d, 'etc'), 4321, 8765);
    await setXattr(join(d, 'etc/app.conf'), 'user.colour', 'teal');
    for (const n of rawBlocks) {
      const f = join(root, `raw-${n}.bin`);
      raw.set(n, randomBytes(blockSize));
      await writeFile(f, raw.get(n) ?? Buffer.alloc(0));
      await ok(a, ['volume', 'write-block', 'demo', String(n), '--file', f]);
    }
    for (const n of rawBlocks) assert.ok((await readBlock(a, 'demo', n)).equals(raw.get(n) ?? Buffer.alloc(0)), `A's raw block ${n}`);
    // Read through another node: node 1's kernel may still cache a link count from before link().
    tree = await treeWithXattrs(a.path(2, 'demo'));
    assert.equal(tree['etc/app.conf']?.nlink, 2);
    assert.equal(tree['etc/app.conf']?.xattr, 'teal');
    assert.equal(Object.keys(tree).length, 7);
    const demo = await ok<Volume>(a, ['volume', 'get', 'demo']);
    assert.equal(demo.encrypted, true, 'the default class encrypts');

    await ok(a, ['backup-target', 'add', 'here', '--dir', join(root, 'target')]);
    await ok(a, ['backup-target', 'add', 'cloud', '--s3', s3.endpoint, '--bucket', 'xc-backups', '--prefix', 'site-a/', '--access-key', s3.accessKeyId, '--secret-key', s3.secretAccessKey]);
    for (const [k, target] of [['dir', 'here'], ['s3', 'cloud']] as const) {
      const r = await ok<BackupResult>(a, ['backup', 'create', 'demo', '--target', target, '--strategy', 'full']);
      assert.ok(r.blocks >= rawBlocks.length + 5, `${target}: ${r.blocks} blocks`);
      ids[k] = r.id;
    }
  });

  it('cluster B, another key, lists A\'s backups on targets it names its own way', async () => {
    assert.ok(s3 !== null && a !== null && b !== null);
    await ok(b, ['backup-target', 'add', 'from-a', '--dir', join(root, 'target')]);
    await ok(b, ['backup-target', 'add', 'from-a-s3', '--s3', s3.endpoint, '--bucket', 'xc-backups', '--prefix', 'site-a/', '--access-key', s3.accessKeyId, '--secret-key', s3.secretAccessKey]);
    const listed = await ok<BackupSummary[]>(b, ['backup', 'list']);
    const seen = Object.fromEntries(listed.map((x) => [x.id, `${x.target}:${x.state}:${x.volume}`]));
    assert.deepEqual(seen, { [ids.dir]: 'from-a:complete:demo', [ids.s3]: 'from-a-s3:complete:demo' });
    // Verify needs no key (the objects are ciphertext, checked as stored) and finds the target by B's name.
    for (const id of [ids.dir, ids.s3]) assert.equal((await ok<{ ok: boolean }>(b, ['backup', 'verify', id])).ok, true, id);
  });

  it('refuses with one line and makes no volume when A\'s key file is not given, or a wrong one is', async () => {
    assert.ok(a !== null && b !== null);
    const cases: [string[], RegExp][] = [
      [[], /^Error: backup bk-\S+'s data key is wrapped by another cluster's key provider \(internal internal:v1:[0-9a-f]{12}\).* — pass the key file of the cluster that made the backup.*--source-key-file FILE/],
      [['--source-key-file', join(b.dir, 'cluster.key')], /^Error: backup bk-\S+'s data key \(wrapped by internal internal:v1:[0-9a-f]{12}\) does not open with --source-key-file \S+cluster\.key \(.*but \S+ holds internal:v1:[0-9a-f]{12}.*\) — pass the key file of the cluster that made the backup/],
      [['--source-key-file', ' '], /^Error: --source-key-file is empty — name the key file/],
      [['--source-key-file', join(root, 'no-such.key')], /^Error: backup bk-\S+'s data key .* does not open with --source-key-file \S+no-such\.key \(cluster key file \S+ is missing/],
    ];
    for (const [flags, message] of cases) {
      const r = await b.cli(1, ['backup', 'restore', ids.dir, '--name', 'refused', ...flags]);
      assert.notEqual(r.code, 0, `restore ${flags.join(' ')} should fail`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    assert.deepEqual((await volumesOf(b)).filter((v) => v === 'refused'), []);
    // Each refused restore removed its `restoring/` record: nothing is left to resume.
    assert.deepEqual(await readdir(join(root, 'target', 'restoring')).catch(() => []), []);
  });

  for (const k of ['dir', 's3'] as const) {
    it(`${k}: B restores A's backup with A's key file, mounts it, and it is A's tree and raw blocks byte for byte`, async () => {
      assert.ok(a !== null && b !== null);
      const name = `from-a-${k}`;
      let id = ids[k];
      if (k === 's3') {
        // A rotates its key, then backs up again: this backup's data key is wrapped by A's key
        // version 2, and A's key file (v1 and v2) opens it as it opened the v1-wrapped one.
        const rot = await ok<{ keyId: string }>(a, ['key', 'rotate']);
        assert.match(rot.keyId, /^internal:v2:/);
        id = (await ok<BackupResult>(a, ['backup', 'create', 'demo', '--target', 'cloud', '--strategy', 'incremental'])).id;
        const m = JSON.parse(await readFile(join(root, 's3', 'xc-backups', `site-a/manifests/${id}.json._S3rver_object`), 'utf8')) as { encryption?: { keys: Record<string, { keyId: string }> } };
        assert.deepEqual(Object.values(m.encryption?.keys ?? {}).map((w) => w.keyId), [rot.keyId]);
      }
      const r = await ok<RestoreResult>(b, ['backup', 'restore', id, '--name', name, '--source-key-file', join(a.dir, 'cluster.key')]);
      // Sealed with B's key: B's nodes hold only B's key file, and they read it below.
      assert.equal(r.volume.encrypted, true);
      assert.equal(r.files, 3); // app.conf (two names), big.bin, empty
      for (const n of [1, 3]) {
        await waitMounted(b.path(n, name));
        assert.deepEqual(await treeWithXattrs(b.path(n, name)), tree, `node${n}`);
      }
      for (const n of rawBlocks) assert.ok((await readBlock(b, name, n)).equals(raw.get(n) ?? Buffer.alloc(0)), `raw block ${n}`);
    });
  }

  it('the whole path from the CLI: A snapshots the mounted volume, clones it, mounts and changes the clone, backs it up to S3 on a schedule; B restores that', async () => {
    assert.ok(a !== null && b !== null);
    await ok(a, ['snapshot', 'create', 'demo', '--name', 'before-clone']);
    await ok(a, ['volume', 'clone', 'before-clone', '--name', 'demo-clone']);
    await waitFor('the clone\'s tree copied', 120_000, async () => (await ok<Volume>(a, ['volume', 'get', 'demo-clone'])).treeState === undefined);
    await waitMounted(a.path(1, 'demo-clone'));
    await writeFile(a.path(1, 'demo-clone', 'etc/only-in-clone.txt'), 'written through the clone\'s mount\n');
    const p = await ok<{ id: string }>(a, ['backup', 'policy', 'create', '--volume', 'demo-clone', '--target', 'cloud', '--schedule', '*/3 * * * * *', '--strategy', 'incremental']);
    let scheduled: BackupSummary | undefined;
    try {
      scheduled = await waitFor('a scheduled backup of the clone', 90_000, async () => (await ok<BackupSummary[]>(a, ['backup', 'list']))
        .find((x) => x.volume === 'demo-clone' && x.state === 'complete' && x.scheduled?.policyId === p.id));
    } finally {
      await ok(a, ['backup', 'policy', 'delete', p.id]);
    }
    // Read after the backup, not right after the write: node 2's kernel keeps `etc`'s attributes
    // for a while, and a tree read at once showed its mtime from before node 1's create.
    const cloneTree = await treeWithXattrs(a.path(2, 'demo-clone'));
    assert.equal(Object.keys(cloneTree).length, Object.keys(tree).length + 1);
    // B sees it on its own name for the bucket; the clone's unwritten blocks are sealed by its parent: two keys to open.
    assert.ok((await ok<BackupSummary[]>(b, ['backup', 'list'])).some((x) => x.id === scheduled.id && x.target === 'from-a-s3'));
    const r = await ok<RestoreResult>(b, ['backup', 'restore', scheduled.id, '--name', 'clone-from-a', '--source-key-file', join(a.dir, 'cluster.key')]);
    assert.equal(r.volume.encrypted, true);
    await waitMounted(b.path(2, 'clone-from-a'));
    assert.deepEqual(await treeWithXattrs(b.path(2, 'clone-from-a')), cloneTree);
    for (const n of rawBlocks) assert.ok((await readBlock(b, 'clone-from-a', n)).equals(raw.get(n) ?? Buffer.alloc(0)), `raw block ${n} (read through to the clone's parent on A)`);
  });
});
