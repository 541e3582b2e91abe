/**
 * A mounted tree as a comparable record, path → what a user sees (type, mode, size, link count,
 * symlink target, a hash of the bytes), for tests that compare a tree with an earlier copy of it
 * (backups, snapshots, clones). Directory sizes and link counts are left out: they differ by
 * design (vfs/README.md, known differences).
 */
import { createHash } from 'node:crypto';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeNode {
  type: string; mode: number; size: number; nlink: number;
  uid?: number; gid?: number; mtimeMs?: number; ino?: number; target?: string; sha?: string; xattr?: string;
}

export interface TreeWalkOptions {
  /** Owners and mtime (a restore keeps them). */
  owners?: boolean;
  /** Inode numbers (a clone keeps them; a restore from a backup does not). */
  inodes?: boolean;
  /** Reads one extended attribute of a file (undefined: none). */
  xattr?: (path: string) => Promise<string | undefined>;
}

export async function treeOf(rootDir: string, o: TreeWalkOptions = {}): Promise<Record<string, TreeNode>> {
  const out: Record<string, TreeNode> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(rootDir, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = join(rootDir, r);
      const s = await lstat(p);
      const type = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : 'other';
      const n: TreeNode = { type, mode: s.mode & 0o7777, size: type === 'dir' ? 0 : s.size, nlink: type === 'dir' ? 0 : s.nlink };
      if (o.owners === true) Object.assign(n, { uid: s.uid, gid: s.gid, mtimeMs: Math.floor(s.mtimeMs) });
      if (o.inodes === true) n.ino = s.ino;
      if (type === 'symlink') n.target = await readlink(p);
      if (type === 'file') {
        n.sha = createHash('sha256').update(await readFile(p)).digest('hex');
        const x = await o.xattr?.(p);
        if (x !== undefined) n.xattr = x;
      }
      out[r] = n;
      if (type === 'dir') await walk(r);
    }
  };
  await walk('');
  return out;
}
