/**
 * An in-memory file system behind the FUSE mount layer's `FuseOps`: the test double of the
 * FUSE tests and benchmarks (the real namespace and block storage are other pieces). POSIX
 * enough for the mount layer's tests: owners from the caller, ns times, UTIME_NOW/OMIT, links,
 * xattrs. It records what the kernel asked (`writeSizes`), can fail an op on purpose
 * (`failNext`), and can change a file behind the kernel's back (`setSizeBehindKernel`).
 * `discardData` makes writes count bytes without keeping them (reads return zeros): benchmarks.
 */
import { constants } from 'node:fs';
import { fsError } from '../../vfs/fuse/errno.js';
import type { FileHandle, FsDirEntry, FsStat, FsStatfs, FuseCaller, FuseOpName, FuseOps, TimeUpdate } from '../../vfs/fuse/types.js';

const { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK } = constants;

interface Inode {
  stat: FsStat;
  data: Buffer;
  children?: Map<string, Inode>;
  target?: string;
  xattrs: Map<string, Buffer>;
}

export interface MemFsOptions {
  discardData?: boolean;
  /** Inode number of the first file made (the root is 1); large values test 64-bit st_ino. */
  firstIno?: bigint;
  clockNs?: () => bigint;
}

export class MemFs implements FuseOps {
  readonly writeSizes: number[] = [];
  private readonly failures = new Map<FuseOpName, Error>();
  private nextIno: bigint;
  private nextFh = 1;
  private readonly root: Inode;
  private readonly now: () => bigint;

  constructor(private readonly opts: MemFsOptions = {}) {
    this.nextIno = opts.firstIno ?? 2n;
    this.now = opts.clockNs ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.root = this.newInode(1n, S_IFDIR | 0o755, { uid: 0, gid: 0, pid: 0 });
    this.root.stat.nlink = 2;
  }

  /** The next call of `op` throws `err` (a plain Error: a "bug", answered EIO). */
  failNext(op: FuseOpName, err: Error): void { this.failures.set(op, err); }

  setSizeBehindKernel(path: string, size: number): void {
    const ino = this.resolve(path);
    ino.data = resize(ino.data, size);
    ino.stat.size = size;
  }

  private trip(op: FuseOpName): void {
    const err = this.failures.get(op);
    if (err !== undefined) { this.failures.delete(op); throw err; }
  }

  private newInode(ino: bigint, mode: number, c: FuseCaller): Inode {
    const t = this.now();
    const node: Inode = {
      stat: { ino, mode, nlink: 1, uid: c.uid, gid: c.gid, size: 0, atimeNs: t, mtimeNs: t, ctimeNs: t },
      data: Buffer.alloc(0), xattrs: new Map(),
    };
    if ((mode & S_IFMT) === S_IFDIR) node.children = new Map();
    return node;
  }

  private resolve(path: string): Inode {
    let cur = this.root;
    for (const part of path.split('/').filter((x) => x !== '')) {
      const next = cur.children?.get(part);
      if (next === undefined) throw fsError(cur.children ? 'ENOENT' : 'ENOTDIR');
      cur = next;
    }
    return cur;
  }

  private parentOf(path: string): { dir: Inode; name: string } {
    const i = path.lastIndexOf('/');
    const name = path.slice(i + 1);
    if (Buffer.byteLength(name) > 255) throw fsError('ENAMETOOLONG');
    const dir = this.resolve(path.slice(0, i) || '/');
    if (!dir.children) throw fsError('ENOTDIR');
    return { dir, name };
  }

  private add(c: FuseCaller, path: string, mode: number): Inode {
    const { dir, name } = this.parentOf(path);
    if (dir.children?.has(name)) throw fsError('EEXIST');
    const node = this.newInode(this.nextIno++, mode, c);
    dir.children?.set(name, node);
    dir.stat.mtimeNs = dir.stat.ctimeNs = node.stat.ctimeNs;
    return node;
  }

  getattr(_c: FuseCaller, path: string): Promise<FsStat> {
    this.trip('getattr');
    return Promise.resolve({ ...this.resolve(path).stat });
  }

  readdir(_c: FuseCaller, path: string): Promise<FsDirEntry[]> {
    this.trip('readdir');
    const dir = this.resolve(path);
    if (!dir.children) throw fsError('ENOTDIR');
    const out: FsDirEntry[] = [{ name: '.', stat: { ...dir.stat } }, { name: '..' }];
    for (const [name, node] of dir.children) out.push({ name, stat: { ...node.stat } });
    return Promise.resolve(out);
  }

  create(c: FuseCaller, path: string, mode: number): Promise<FileHandle> {
    this.trip('create');
    this.add(c, path, S_IFREG | (mode & 0o7777));
    return Promise.resolve(this.nextFh++);
  }

  open(_c: FuseCaller, path: string): Promise<FileHandle> {
    this.trip('open');
    this.resolve(path);
    return Promise.resolve(this.nextFh++);
  }

  read(_c: FuseCaller, path: string, _fh: FileHandle, buf: Buffer, position: number): Promise<number> {
    this.trip('read');
    const node = this.resolve(path);
    const n = Math.max(0, Math.min(buf.length, node.stat.size - position));
    if (this.opts.discardData) buf.fill(0, 0, n);
    else node.data.copy(buf, 0, position, position + n);
    return Promise.resolve(n);
  }

  write(_c: FuseCaller, path: string, _fh: FileHandle, data: Buffer, position: number): Promise<number> {
    this.trip('write');
    this.writeSizes.push(data.length);
    const node = this.resolve(path);
    const end = position + data.length;
    if (!this.opts.discardData) {
      if (end > node.data.length) node.data = resize(node.data, Math.max(end, node.data.length * 2));
      data.copy(node.data, position);
    }
    node.stat.size = Math.max(node.stat.size, end);
    node.stat.mtimeNs = node.stat.ctimeNs = this.now();
    return Promise.resolve(data.length);
  }

  truncate(_c: FuseCaller, path: string, size: number): Promise<void> {
    this.setSizeBehindKernel(path, size);
    const node = this.resolve(path);
    node.stat.mtimeNs = node.stat.ctimeNs = this.now();
    return Promise.resolve();
  }

  ftruncate(c: FuseCaller, path: string, _fh: FileHandle, size: number): Promise<void> {
    return this.truncate(c, path, size);
  }

  unlink(_c: FuseCaller, path: string): Promise<void> {
    const { dir, name } = this.parentOf(path);
    const node = dir.children?.get(name);
    if (node === undefined) throw fsError('ENOENT');
    if (node.children) throw fsError('EISDIR');
    dir.children?.delete(name);
    node.stat.nlink -= 1;
    return Promise.resolve();
  }

  mkdir(c: FuseCaller, path: string, mode: number): Promise<void> {
    const node = this.add(c, path, S_IFDIR | (mode & 0o7777));
    node.stat.nlink = 2;
    return Promise.resolve();
  }

  rmdir(_c: FuseCaller, path: string): Promise<void> {
    const { dir, name } = this.parentOf(path);
    const node = dir.children?.get(name);
    if (node === undefined) throw fsError('ENOENT');
    if (!node.children) throw fsError('ENOTDIR');
    if (node.children.size > 0) throw fsError('ENOTEMPTY');
    dir.children?.delete(name);
    return Promise.resolve();
  }

  mknod(c: FuseCaller, path: string, mode: number, rdev: number): Promise<void> {
    this.add(c, path, mode).stat.rdev = rdev;
    return Promise.resolve();
  }

  rename(_c: FuseCaller, from: string, to: string): Promise<void> {
    const src = this.parentOf(from);
    const node = src.dir.children?.get(src.name);
    if (node === undefined) throw fsError('ENOENT');
    const dst = this.parentOf(to);
    src.dir.children?.delete(src.name);
    dst.dir.children?.set(dst.name, node);
    return Promise.resolve();
  }

  link(_c: FuseCaller, existingPath: string, newPath: string): Promise<void> {
    const node = this.resolve(existingPath);
    const { dir, name } = this.parentOf(newPath);
    if (dir.children?.has(name)) throw fsError('EEXIST');
    dir.children?.set(name, node);
    node.stat.nlink += 1;
    return Promise.resolve();
  }

  symlink(c: FuseCaller, target: string, linkPath: string): Promise<void> {
    const node = this.add(c, linkPath, S_IFLNK | 0o777);
    node.target = target;
    node.stat.size = Buffer.byteLength(target);
    return Promise.resolve();
  }

  readlink(_c: FuseCaller, path: string): Promise<string> {
    const node = this.resolve(path);
    if (node.target === undefined) throw fsError('EINVAL');
    return Promise.resolve(node.target);
  }

  chmod(_c: FuseCaller, path: string, mode: number): Promise<void> {
    const node = this.resolve(path);
    node.stat.mode = (node.stat.mode & S_IFMT) | (mode & 0o7777);
    node.stat.ctimeNs = this.now();
    return Promise.resolve();
  }

  chown(_c: FuseCaller, path: string, uid: number, gid: number): Promise<void> {
    const node = this.resolve(path);
    if (uid !== -1) node.stat.uid = uid;
    if (gid !== -1) node.stat.gid = gid;
    node.stat.ctimeNs = this.now();
    return Promise.resolve();
  }

  utimens(_c: FuseCaller, path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    const node = this.resolve(path);
    const t = this.now();
    if (atime !== 'omit') node.stat.atimeNs = atime === 'now' ? t : atime;
    if (mtime !== 'omit') node.stat.mtimeNs = mtime === 'now' ? t : mtime;
    node.stat.ctimeNs = t;
    return Promise.resolve();
  }

  statfs(): Promise<FsStatfs> {
    return Promise.resolve({ bsize: 4096, blocks: 1 << 20, bfree: 1 << 19, bavail: 1 << 19, files: 1 << 20, ffree: 1 << 19 });
  }

  setxattr(_c: FuseCaller, path: string, name: string, value: Buffer): Promise<void> {
    this.resolve(path).xattrs.set(name, Buffer.from(value));
    return Promise.resolve();
  }

  getxattr(_c: FuseCaller, path: string, name: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.resolve(path).xattrs.get(name));
  }

  listxattr(_c: FuseCaller, path: string): Promise<string[]> {
    return Promise.resolve([...this.resolve(path).xattrs.keys()]);
  }

  removexattr(_c: FuseCaller, path: string, name: string): Promise<void> {
    if (!this.resolve(path).xattrs.delete(name)) throw fsError('ENODATA');
    return Promise.resolve();
  }

  release(): Promise<void> { return Promise.resolve(); }
  flush(): Promise<void> { return Promise.resolve(); }
  fsync(): Promise<void> { return Promise.resolve(); }
}

function resize(buf: Buffer, size: number): Buffer {
  const out = Buffer.alloc(size);
  buf.copy(out, 0, 0, Math.min(size, buf.length));
  return out;
}
