/**
 * GalleonFs: one mounted volume as a FuseOps file system. Names and attributes are the
 * namespace's (MetadataClient fs* calls, one round trip per kernel request that is not in the
 * attribute cache); file bytes are VolumeData's (vfs/data). Errors are thrown as they come
 * (GalleonError with details.errno, or fsError) and become errnos in one place (vfs/fuse/errno.ts).
 *
 * Close-to-open: open asks the namespace for the inode (fsOpen answers its attributes, never the
 * cache), and the data layer drops cached blocks whose change token differs; flush/fsync/release
 * make the data durable at the volume's write concern and only then commit size and mtime.
 */
import type { Logger } from 'pino';
import type { FsApi, FsAttr, FsCaller, FsSetattr, Volume } from '../../proto/metadata-types.js';
import { fsError } from '../fuse/errno.js';
import type { FileHandle, FsDirEntry, FsStat, FsStatfs, FuseCaller, FuseOps, TimeUpdate } from '../fuse/types.js';
import type { FileData, FlushResult, VolumeData } from '../data/index.js';
import { AttrCache } from './attr-cache.js';
import { changeTokenOf, parentOf, timeSet, toStat, toStatfs, typeOfMode } from './attrs.js';
import { InodePool } from './inode-pool.js';
import { Quota } from './quota.js';
import { callerWithGroups } from './caller.js';

/** Entries asked of the namespace per readdir page (its own bound is 1024). */
export const readdirPageEntries = 1024;
/** Open handles per mount; past it, open/create answer ENFILE. */
export const maxOpenHandles = 65_536;
/** Inodes whose largest size is remembered for the block reaper. */
export const maxSizesRemembered = 65_536;
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_EXCL = 0o200;

/** The namespace calls the file system makes (MetadataClient implements them). */
export type NamespaceApi = Pick<FsApi, 'fsAllocateInodes' | 'fsCreate' | 'fsMknod' | 'fsMkdir' | 'fsSymlink' | 'fsLink' | 'fsUnlink'
  | 'fsRmdir' | 'fsRename' | 'fsSetattr' | 'fsSetxattr' | 'fsRemovexattr' | 'fsCommitWrite' | 'fsOpen' | 'fsClose'
  | 'fsLookup' | 'fsGetattr' | 'fsReaddir' | 'fsReadlink' | 'fsGetxattr' | 'fsListxattr' | 'fsStatfs'>;

export interface GalleonFsOptions {
  api: NamespaceApi;
  volume: Pick<Volume, 'id' | 'name' | 'sizeBytes' | 'blockSizeBytes'>;
  data: VolumeData;
  /** The id of the mount lease this mount holds (open files are counted against it). */
  session: () => string;
  readOnly: boolean;
  /** How long a name or attribute read from the namespace is trusted (the mount's timeouts); 0 = always ask. */
  cacheTtlMs: number;
  log: Logger;
  /** Called after an unlink, rmdir, rename or last close that may have deleted a file (the block reaper's kick). */
  onMaybeDeleted?: () => void;
  nowMs?: () => number;
}

interface Handle { ino: number; file: FileData | null }

/** Counters for `vfs status`. */
export interface FsCounters {
  openHandles: number;
  pendingWriteBytes: number;
  lastSyncMs: number | null;
  commits: number;
}

export class GalleonFs implements FuseOps {
  private readonly cache: AttrCache;
  private readonly handles = new Map<FileHandle, Handle>();
  private nextFh = 1;
  private readonly sizeSeen = new Map<number, number>();
  /** Open inodes of this mount: the size the namespace has committed for each. */
  private readonly committedSize = new Map<number, number>();
  private readonly inodes: InodePool;
  private readonly quota: Quota;
  private readonly vol: string;
  lastSyncMs: number | null = null;
  commits = 0;

  constructor(private readonly o: GalleonFsOptions) {
    this.vol = o.volume.id;
    this.cache = new AttrCache(o.cacheTtlMs, o.nowMs ?? Date.now);
    this.inodes = new InodePool((n) => o.api.fsAllocateInodes(this.vol, n));
    this.quota = new Quota(o.volume.sizeBytes, async () => (await o.api.fsStatfs(this.vol)).usedBytes);
  }

  counters(): FsCounters {
    let pending = 0;
    const seen = new Set<number>();
    for (const h of this.handles.values()) {
      if (h.file === null || seen.has(h.ino)) continue;
      seen.add(h.ino);
      pending += h.file.dirtyBytes;
    }
    return { openHandles: this.handles.size, pendingWriteBytes: pending, lastSyncMs: this.lastSyncMs, commits: this.commits };
  }

  /** Flushes every open file and commits (what `vfs sync` asks). */
  async syncAll(): Promise<number> {
    const byIno = new Map<number, FileData>();
    for (const h of this.handles.values()) if (h.file !== null) byIno.set(h.ino, h.file);
    for (const [ino, file] of byIno) await this.commit(ino, file, false);
    this.lastSyncMs = Date.now();
    return byIno.size;
  }

  // ---- resolution ---------------------------------------------------------------------------

  private async resolve(path: string): Promise<FsAttr> {
    const hit = this.cache.get(path);
    if (hit !== undefined) return hit;
    if (path === '/') return this.remember('/', await this.o.api.fsGetattr(this.vol, 1));
    const { parent, name } = parentOf(path);
    const dir = await this.resolve(parent);
    if (dir.type !== 'dir') throw fsError('ENOTDIR');
    return this.remember(path, await this.o.api.fsLookup(this.vol, dir.ino, name));
  }

  private remember(path: string, attr: FsAttr): FsAttr {
    this.cache.put(path, attr);
    this.noteSize(attr.ino, attr.size);
    return attr;
  }

  private noteSize(ino: number, size: number): void {
    if (size <= (this.sizeSeen.get(ino) ?? -1)) return;
    this.sizeSeen.delete(ino);
    this.sizeSeen.set(ino, size);
    if (this.sizeSeen.size > maxSizesRemembered) {
      const oldest = this.sizeSeen.keys().next().value;
      if (oldest !== undefined) this.sizeSeen.delete(oldest);
    }
  }

  /** The largest size this mount saw `ino` have (the block reaper's upper bound). */
  knownSize(ino: number): number | undefined {
    return this.sizeSeen.get(ino);
  }

  isOpen(ino: number): boolean {
    return this.openFile(ino) !== undefined;
  }

  private async parentIno(path: string): Promise<{ dir: number; name: string }> {
    const { parent, name } = parentOf(path);
    const d = await this.resolve(parent);
    if (d.type !== 'dir') throw fsError('ENOTDIR');
    return { dir: d.ino, name };
  }

  private writable(): void {
    if (this.o.readOnly) throw fsError('EROFS');
  }

  private stat(a: FsAttr): FsStat {
    const open = this.openFile(a.ino);
    return toStat(a, this.o.volume.blockSizeBytes, open?.size ?? a.size);
  }

  /** Bytes this mount's open files grew past their committed sizes (counted against the quota). */
  private localPendingBytes(): number {
    let sum = 0;
    for (const [ino, committed] of this.committedSize) {
      const f = this.openFile(ino);
      if (f !== undefined) sum += Math.max(0, f.size - committed);
    }
    return sum;
  }

  private setCommitted(ino: number, size: number): void {
    const before = this.committedSize.get(ino);
    if (before !== undefined) this.quota.committed(size - before);
    this.committedSize.set(ino, size);
  }

  private openFile(ino: number): FileData | undefined {
    for (const h of this.handles.values()) if (h.ino === ino && h.file !== null) return h.file;
    return undefined;
  }

  // ---- attributes ---------------------------------------------------------------------------

  async getattr(_c: FuseCaller, path: string): Promise<FsStat> {
    return this.stat(await this.resolve(path));
  }

  async fgetattr(_c: FuseCaller, path: string, fh: FileHandle): Promise<FsStat> {
    const h = this.handles.get(fh);
    if (h === undefined) return this.getattr(_c, path);
    return this.stat(await this.o.api.fsGetattr(this.vol, h.ino));
  }

  async access(_c: FuseCaller, path: string, mode: number): Promise<void> {
    await this.resolve(path);
    if ((mode & 2) !== 0) this.writable();
  }

  async statfs(): Promise<FsStatfs> {
    return toStatfs(await this.o.api.fsStatfs(this.vol));
  }

  private async setattr(c: FuseCaller, path: string, changes: FsSetattr, withGroups = false): Promise<FsAttr> {
    this.writable();
    const a = await this.resolve(path);
    const caller = withGroups ? await callerWithGroups(c) : plainCaller(c);
    const attr = await this.o.api.fsSetattr(this.vol, caller, a.ino, changes);
    this.cache.dropIno(a.ino);
    return this.remember(path, attr);
  }

  async chmod(c: FuseCaller, path: string, mode: number): Promise<void> {
    await this.setattr(c, path, { mode: mode & 0o7777 }, true);
  }

  async chown(c: FuseCaller, path: string, uid: number, gid: number): Promise<void> {
    const changes: FsSetattr = {};
    if (uid !== -1) changes.uid = uid;
    if (gid !== -1) changes.gid = gid;
    await this.setattr(c, path, changes, true);
  }

  async utimens(c: FuseCaller, path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    const changes: FsSetattr = {};
    const at = timeSet(atime);
    const mt = timeSet(mtime);
    if (at !== undefined) changes.atime = at;
    if (mt !== undefined) changes.mtime = mt;
    await this.setattr(c, path, changes);
  }

  async truncate(c: FuseCaller, path: string, size: number): Promise<void> {
    this.writable();
    const a = await this.resolve(path);
    if (a.type === 'dir') throw fsError('EISDIR');
    await this.resize(c, path, a.ino, size);
  }

  async ftruncate(c: FuseCaller, path: string, fh: FileHandle, size: number): Promise<void> {
    this.writable();
    const h = this.handleOf(fh);
    await this.resize(c, path, h.ino, size);
  }

  private async resize(c: FuseCaller, path: string, ino: number, size: number): Promise<void> {
    const open = this.openFile(ino);
    const fresh = open === undefined ? await this.o.api.fsGetattr(this.vol, ino) : null;
    const before = open?.size ?? fresh?.size ?? 0;
    if (size > before) await this.quota.reserve(size - before, this.localPendingBytes());
    // Data first, always through FileData: a shrink must not be followed by a flush of bytes
    // past the new end, and a growth must zero what an earlier truncate left stored past the old
    // end (blocks not freed yet would show through: found by the random-operation test).
    const file = open ?? this.o.data.open(ino, { sizeBytes: before, mtimeNs: BigInt(fresh?.mtimeNs ?? '0'), changeToken: fresh === null ? '' : changeTokenOf(fresh), truncEpoch: fresh?.truncEpoch ?? 0 });
    try {
      await file.truncate(size);
      await file.fsync();
      // What the truncate cut off is deleted before the namespace shrinks (not in the background):
      // a later growth on any node must find holes there, never old bytes.
      await this.o.data.freer.claim(ino, 0, Number.MAX_SAFE_INTEGER, new Set());
    } finally {
      if (open === undefined) await this.o.data.close(file);
    }
    const committedBefore = this.committedSize.get(ino) ?? before;
    const attr = await this.o.api.fsSetattr(this.vol, plainCaller(c), ino, { size });
    // Our own truncate: what we buffer from now on comes after it.
    open?.adoptEpoch(attr.truncEpoch);
    if (this.committedSize.has(ino)) this.setCommitted(ino, attr.size);
    else this.quota.committed(attr.size - committedBefore);
    this.cache.dropIno(ino);
    this.remember(path, attr);
    this.o.data.retag(ino, changeTokenOf(attr));
  }

  // ---- names --------------------------------------------------------------------------------

  async readdir(_c: FuseCaller, path: string): Promise<FsDirEntry[]> {
    const dir = await this.resolve(path);
    if (dir.type !== 'dir') throw fsError('ENOTDIR');
    const out: FsDirEntry[] = [{ name: '.' }, { name: '..' }];
    let cursor: string | null = null;
    do {
      const page = await this.o.api.fsReaddir(this.vol, dir.ino, cursor, readdirPageEntries);
      for (const e of page.entries) {
        this.remember(path === '/' ? `/${e.name}` : `${path}/${e.name}`, e.attr);
        out.push({ name: e.name, stat: this.stat(e.attr) });
      }
      cursor = page.cursor;
    } while (cursor !== null);
    return out;
  }

  async mkdir(c: FuseCaller, path: string, mode: number): Promise<void> {
    this.writable();
    const { dir, name } = await this.parentIno(path);
    const r = await this.o.api.fsMkdir(this.vol, plainCaller(c), dir, name, await this.inodes.next(), mode & 0o7777);
    this.afterEntry(path, r.attr, r.parent);
  }

  async mknod(c: FuseCaller, path: string, mode: number, rdev: number): Promise<void> {
    this.writable();
    const { dir, name } = await this.parentIno(path);
    const r = await this.o.api.fsMknod(this.vol, plainCaller(c), dir, name, await this.inodes.next(), typeOfMode(mode), mode & 0o7777, rdev);
    this.afterEntry(path, r.attr, r.parent);
  }

  async symlink(c: FuseCaller, target: string, linkPath: string): Promise<void> {
    this.writable();
    const { dir, name } = await this.parentIno(linkPath);
    const r = await this.o.api.fsSymlink(this.vol, plainCaller(c), dir, name, await this.inodes.next(), target);
    this.afterEntry(linkPath, r.attr, r.parent);
  }

  async readlink(_c: FuseCaller, path: string): Promise<string> {
    const a = await this.resolve(path);
    return this.o.api.fsReadlink(this.vol, a.ino);
  }

  async link(c: FuseCaller, existingPath: string, newPath: string): Promise<void> {
    this.writable();
    const a = await this.resolve(existingPath);
    const { dir, name } = await this.parentIno(newPath);
    const r = await this.o.api.fsLink(this.vol, plainCaller(c), a.ino, dir, name);
    this.cache.dropIno(a.ino);
    this.afterEntry(newPath, r.attr, r.parent);
  }

  async unlink(c: FuseCaller, path: string): Promise<void> {
    this.writable();
    const { dir, name } = await this.parentIno(path);
    const victim = this.cache.get(path);
    const r = await this.o.api.fsUnlink(this.vol, plainCaller(c), dir, name);
    this.cache.dropTree(path);
    if (victim !== undefined) this.cache.dropIno(victim.ino);
    if (r.attr !== null) this.cache.dropIno(r.attr.ino);
    if (r.attr === null && victim !== undefined) this.quota.committed(-victim.size);
    if (r.attr === null) this.o.onMaybeDeleted?.();
    this.remember(parentOf(path).parent, r.parent);
  }

  async rmdir(c: FuseCaller, path: string): Promise<void> {
    this.writable();
    const { dir, name } = await this.parentIno(path);
    const r = await this.o.api.fsRmdir(this.vol, plainCaller(c), dir, name);
    this.cache.dropTree(path);
    this.remember(parentOf(path).parent, r.parent);
  }

  async rename(c: FuseCaller, from: string, to: string): Promise<void> {
    this.writable();
    const src = await this.parentIno(from);
    const dst = await this.parentIno(to);
    const replaced = this.cache.get(to);
    await this.o.api.fsRename(this.vol, plainCaller(c), src.dir, src.name, dst.dir, dst.name, 0);
    this.cache.dropTree(from);
    this.cache.dropTree(to);
    this.cache.dropTree(parentOf(from).parent);
    this.cache.dropTree(parentOf(to).parent);
    if (replaced !== undefined) this.cache.dropIno(replaced.ino);
    this.o.onMaybeDeleted?.();
  }

  private afterEntry(path: string, attr: FsAttr, parent: FsAttr): void {
    this.remember(path, attr);
    this.remember(parentOf(path).parent, parent);
  }

  // ---- xattrs -------------------------------------------------------------------------------

  async setxattr(c: FuseCaller, path: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.writable();
    const a = await this.resolve(path);
    const attr = await this.o.api.fsSetxattr(this.vol, plainCaller(c), a.ino, name, value.toString('base64'), flags);
    this.remember(path, attr);
  }

  async getxattr(_c: FuseCaller, path: string, name: string): Promise<Buffer | undefined> {
    const a = await this.resolve(path);
    return Buffer.from(await this.o.api.fsGetxattr(this.vol, a.ino, name), 'base64');
  }

  async listxattr(_c: FuseCaller, path: string): Promise<string[]> {
    const a = await this.resolve(path);
    return this.o.api.fsListxattr(this.vol, a.ino);
  }

  async removexattr(c: FuseCaller, path: string, name: string): Promise<void> {
    this.writable();
    const a = await this.resolve(path);
    this.remember(path, await this.o.api.fsRemovexattr(this.vol, plainCaller(c), a.ino, name));
  }

  // ---- open files ---------------------------------------------------------------------------

  async create(c: FuseCaller, path: string, mode: number, flags: number): Promise<FileHandle> {
    this.writable();
    const { dir, name } = await this.parentIno(path);
    const ino = await this.inodes.next();
    const r = await this.o.api.fsCreate(this.vol, plainCaller(c), dir, name, ino, mode & 0o7777, { exclusive: (flags & O_EXCL) !== 0 });
    if (!r.created) this.inodes.giveBack(ino);
    this.afterEntry(path, r.attr, r.parent);
    return this.openIno(r.attr.ino, flags);
  }

  async open(_c: FuseCaller, path: string, flags: number): Promise<FileHandle> {
    if ((flags & O_ACCMODE) !== O_RDONLY) this.writable();
    const a = await this.resolve(path);
    if (a.type === 'dir') throw fsError('EISDIR');
    return this.openIno(a.ino, flags);
  }

  private async openIno(ino: number, _flags: number): Promise<FileHandle> {
    if (this.handles.size >= maxOpenHandles) throw fsError('ENFILE');
    const attr = await this.o.api.fsOpen(this.vol, ino, this.o.session());
    let file: FileData | null = null;
    if (attr.type === 'file') {
      if (!this.committedSize.has(ino)) this.committedSize.set(ino, attr.size);
      file = this.o.data.open(ino, { sizeBytes: attr.size, mtimeNs: BigInt(attr.mtimeNs), changeToken: changeTokenOf(attr), truncEpoch: attr.truncEpoch });
    }
    const fh = this.allocFh();
    this.handles.set(fh, { ino, file });
    return fh;
  }

  private allocFh(): FileHandle {
    for (;;) {
      const fh = this.nextFh;
      this.nextFh = this.nextFh >= 0x7fffffff ? 1 : this.nextFh + 1;
      if (!this.handles.has(fh)) return fh;
    }
  }

  private handleOf(fh: FileHandle): Handle {
    const h = this.handles.get(fh);
    if (h === undefined) throw fsError('EBADF');
    return h;
  }

  private fileOf(fh: FileHandle): FileData {
    const h = this.handleOf(fh);
    if (h.file === null) throw fsError('EINVAL', 'not a regular file');
    return h.file;
  }

  async read(_c: FuseCaller, _path: string, fh: FileHandle, buf: Buffer, position: number): Promise<number> {
    return this.fileOf(fh).readTo(buf, position);
  }

  async write(_c: FuseCaller, _path: string, fh: FileHandle, data: Buffer, position: number): Promise<number> {
    this.writable();
    const file = this.fileOf(fh);
    const end = position + data.length;
    if (end > file.size) await this.quota.reserve(end - file.size, this.localPendingBytes());
    return file.write(position, data);
  }

  /** Data acknowledged at the volume's concern, then size/mtime committed: only then is it visible elsewhere. */
  private async commit(ino: number, file: FileData, last: boolean): Promise<void> {
    const r = last ? await this.o.data.close(file) : await file.fsync();
    if (!r.changed) return;
    this.noteSize(ino, r.sizeBytes);
    const attr = await this.o.api.fsCommitWrite(this.vol, ino, r.sizeBytes, r.mtimeNs.toString(), r.truncEpoch);
    if (attr.truncEpoch > r.truncEpoch) await this.learnTruncate(ino, last ? null : file, r, attr);
    if (this.committedSize.has(ino)) this.setCommitted(ino, attr.size);
    this.commits++;
    this.lastSyncMs = Date.now();
    this.cache.dropIno(ino);
    this.o.data.retag(ino, changeTokenOf(attr));
  }

  /**
   * Another node truncated the file after the bytes we just committed (the namespace kept its
   * size: metadata/state/logic/ns-truncate.ts): cut what we hold and stored past that size. After
   * the last close the FileData is gone; a short-lived one does the cut (unless the file was
   * opened again meanwhile: that FileData is told instead, and closing it here would settle its
   * owner's unreported change).
   */
  private async learnTruncate(ino: number, open: FileData | null, r: FlushResult, attr: FsAttr): Promise<void> {
    this.o.log.info({ ino, ourSize: r.sizeBytes, size: attr.size, truncEpoch: attr.truncEpoch }, 'a truncate on another node came after our buffered writes; cutting them to its size');
    const existing = open ?? this.openFile(ino) ?? null;
    const file = existing ?? this.o.data.open(ino, { sizeBytes: r.sizeBytes, mtimeNs: r.mtimeNs, changeToken: '', truncEpoch: r.truncEpoch });
    try {
      await file.rebase(attr.size, attr.truncEpoch);
    } finally {
      if (existing === null) await this.o.data.close(file);
    }
  }

  async flush(_c: FuseCaller, _path: string, fh: FileHandle): Promise<void> {
    const h = this.handleOf(fh);
    if (h.file !== null && !this.o.readOnly) await this.commit(h.ino, h.file, false);
  }

  async fsync(c: FuseCaller, path: string, _datasync: boolean, fh: FileHandle): Promise<void> {
    await this.flush(c, path, fh);
  }

  async release(_c: FuseCaller, _path: string, fh: FileHandle): Promise<void> {
    const h = this.handleOf(fh);
    this.handles.delete(fh);
    try {
      if (h.file !== null) {
        if (this.o.readOnly) await this.o.data.close(h.file);
        else await this.commit(h.ino, h.file, true);
      }
    } finally {
      const last = this.openFile(h.ino) === undefined;
      if (last) this.committedSize.delete(h.ino);
      await this.o.api.fsClose(this.vol, h.ino, this.o.session()).catch((err: unknown) => {
        this.o.log.warn({ err, ino: h.ino }, 'fsClose failed; the lease controller drops the handle when the mount ends');
      });
      if (last) this.o.onMaybeDeleted?.();
    }
  }

  /** Every handle closed (unmount): flushes what is buffered. */
  async releaseAll(): Promise<void> {
    for (const fh of [...this.handles.keys()]) {
      await this.release({ uid: 0, gid: 0, pid: 0 }, '', fh).catch((err: unknown) => this.o.log.warn({ err }, 'release at unmount failed'));
    }
  }
}

function plainCaller(c: FuseCaller): FsCaller {
  return { uid: c.uid, gid: c.gid };
}

