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
import type { FsApi, FsAttr, FsCaller, FsCloses, FsSetattr, Volume } from '../../proto/metadata-types.js';
import { GalleonError } from '../../proto/errors.js';
import { maxFileNameBytes, maxFileSizeBytes } from '../../proto/limits.js';
import type { ReadCacheStats } from '../../proto/vfs-types.js';
import { fsError } from '../fuse/errno.js';
import type { FileHandle, FsDirEntry, FsStat, FsStatfs, FuseCaller, FuseOps, TimeUpdate } from '../fuse/types.js';
import type { FileData, FlushResult, VolumeData } from '../data/index.js';
import { AttrCache } from './attr-cache.js';
import { changeTokenOf, parentOf, timeSet, toStat, toStatfs, typeOfMode } from './attrs.js';
import { InodePool } from './inode-pool.js';
import { Quota } from './quota.js';
import { callerWithGroups } from './caller.js';
import { CloseQueue, defaultCloseDelayMs } from './close-queue.js';
import { DirNames, maxTrackedNames } from './dir-names.js';
import { WriteBack, type PendingFile, type WritebackApi } from './writeback.js';

/** Entries asked of the namespace per readdir page (its own bound is 1024). */
export const readdirPageEntries = 1024;
/** Entries fetched ahead when a name of a directory being listed is not in the cache. */
export const readAheadEntries = 512;
/** A listed directory stops being read ahead after this long without a lookup under it. */
export const listingIdleMs = 10_000;
/** Directories being listed that are tracked for read-ahead. */
export const maxListings = 64;
/** Open handles per mount; past it, open/create answer ENFILE. */
export const maxOpenHandles = 65_536;
/** Inodes whose largest size is remembered for the block reaper. */
export const maxSizesRemembered = 65_536;
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_EXCL = 0o200;

/** The namespace calls the file system makes (MetadataClient implements them). */
export type NamespaceApi = Pick<FsApi, 'fsAllocateInodes' | 'fsCreate' | 'fsMknod' | 'fsMkdir' | 'fsSymlink' | 'fsLink' | 'fsUnlink'
  | 'fsRmdir' | 'fsRename' | 'fsSetattr' | 'fsSetxattr' | 'fsRemovexattr' | 'fsCommitWrite' | 'fsOpen' | 'fsClose' | 'fsCloseMany'
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
  /** How long a released handle's close waits for a commit to ride on (close-queue.ts). */
  closeDelayMs?: number;
  /**
   * Write-back of new files under directory delegations (writeback.ts): the delegation calls and
   * the watch. Absent = every create and close is synchronous. Never used by a strict mount
   * (cacheTtlMs 0) or a read-only one.
   */
  writeback?: { api: WritebackApi; writebackMs?: number; holdCommitFile?: string };
}

interface Handle { ino: number; file: FileData | null }

/** A directory this mount listed: `ls -l` now looks up each of its names in listing order. */
interface Listing {
  ino: number;
  lastUseMs: number;
  /** The cache holds every entry up to this name (in the namespace's order) as of `filledAtMs`. */
  filledTo: string;
  filledAtMs: number;
  inflight: Promise<void> | null;
}

/** Sorts after every name (names are at most 255 bytes). */
const endOfNames = '\u{10FFFF}';

/** Counters for `vfs status`. */
export interface FsCounters {
  openHandles: number;
  pendingWriteBytes: number;
  lastSyncMs: number | null;
  commits: number;
  namespaceWrites: number;
  pendingCloses: number;
  /** New files closed under a delegation, not committed yet, and their bytes. */
  writebackFiles: number;
  writebackBytes: number;
  /** fsCommitBatch commands sent (each carries many new files). */
  writebackBatches: number;
  /** Kernel requests served, by op (filled in by the mount: `Mounted.requests()`). */
  fuseRequests?: Record<string, number>;
  readCache: ReadCacheStats;
}

/** The NamespaceApi methods that are Raft writes (counted for `vfs status` and the tests). */
const namespaceWriteMethods: ReadonlySet<string> = new Set<keyof NamespaceApi>([
  'fsAllocateInodes', 'fsCreate', 'fsMknod', 'fsMkdir', 'fsSymlink', 'fsLink', 'fsUnlink', 'fsRmdir', 'fsRename', 'fsSetattr',
  'fsSetxattr', 'fsRemovexattr', 'fsCommitWrite', 'fsOpen', 'fsClose', 'fsCloseMany',
]);
/** The write-back's Raft writes, counted with the others. */
const writebackWriteMethods: ReadonlySet<string> = new Set(['fsDelegate', 'fsReleaseDelegation', 'fsCommitBatch', 'fsReserve']);

/** `api` with every write counted into `count.n`. */
function countingApi<A extends object>(api: A, count: { n: number }, methods: ReadonlySet<string> = namespaceWriteMethods): A {
  return new Proxy(api, {
    get(target, prop, receiver): unknown {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof v !== 'function' || !methods.has(prop)) return typeof v === 'function' ? v.bind(target) : v;
      return (...args: unknown[]): unknown => { count.n++; return (v as (...a: unknown[]) => unknown).apply(target, args); };
    },
  });
}

export class GalleonFs implements FuseOps {
  private readonly cache: AttrCache;
  private readonly handles = new Map<FileHandle, Handle>();
  private readonly listings = new Map<string, Listing>();
  private readonly names: DirNames;
  private readonly refreshes = new Map<string, Promise<void>>();
  private readonly now: () => number;
  private nextFh = 1;
  private readonly sizeSeen = new Map<number, number>();
  /** Open inodes of this mount: the size the namespace has committed for each. */
  private readonly committedSize = new Map<number, number>();
  private readonly inodes: InodePool;
  private readonly quota: Quota;
  private readonly closes: CloseQueue;
  /** Inodes this mount unlinked while still open somewhere: their last close frees their blocks. */
  private readonly unlinkedOpen = new Set<number>();
  private readonly vol: string;
  lastSyncMs: number | null = null;
  commits = 0;

  private readonly writes = { n: 0 };
  private readonly api: NamespaceApi;
  /** Null: every create is synchronous (strict or read-only mount, or no watch to learn of recalls). */
  private readonly wb: WriteBack | null;

  constructor(private readonly o: GalleonFsOptions) {
    this.vol = o.volume.id;
    this.api = countingApi(o.api, this.writes);
    this.now = o.nowMs ?? Date.now;
    this.cache = new AttrCache(o.cacheTtlMs, this.now);
    this.names = new DirNames(o.cacheTtlMs, this.now);
    // Ranges taken under our session (the namespace reclaims their orphan blocks when it ends holding delegations).
    this.inodes = new InodePool((n, session) => this.api.fsAllocateInodes(this.vol, n, session), undefined, o.session);
    this.quota = new Quota(o.volume.sizeBytes, async () => (await o.api.fsStatfs(this.vol)).usedBytes);
    this.closes = new CloseQueue({
      send: (closes) => this.api.fsCloseMany(this.vol, closes), onClosed: (inos) => this.closed(inos), delayMs: o.closeDelayMs ?? defaultCloseDelayMs, log: o.log,
    });
    this.wb = o.writeback === undefined || o.cacheTtlMs === 0 || o.readOnly ? null : new WriteBack({
      api: countingApi(o.writeback.api, this.writes, writebackWriteMethods), volumeId: this.vol, data: o.data, session: o.session,
      nextIno: () => this.inodes.next(), giveBackIno: (ino) => this.inodes.giveBack(ino), log: o.log, volumeBytes: o.volume.sizeBytes, ...(o.writeback.writebackMs === undefined ? {} : { writebackMs: o.writeback.writebackMs }),
      ...(o.writeback.holdCommitFile === undefined ? {} : { holdCommitFile: o.writeback.holdCommitFile }),
      hooks: { handlesOf: (ino) => this.handlesOf(ino), adopt: (p, attr, parent, sentOpen) => this.adopt(p, attr, parent, sentOpen), lost: (p) => this.lostFile(p) },
    });
  }

  counters(): FsCounters {
    let pending = 0;
    const seen = new Set<number>();
    for (const h of this.handles.values()) {
      if (h.file === null || seen.has(h.ino)) continue;
      seen.add(h.ino);
      pending += h.file.dirtyBytes;
    }
    return {
      openHandles: this.handles.size, pendingWriteBytes: pending, lastSyncMs: this.lastSyncMs, commits: this.commits,
      namespaceWrites: this.writes.n, pendingCloses: this.closes.size,
      writebackFiles: this.wb?.pendingFiles ?? 0, writebackBytes: this.wb?.pendingBytes() ?? 0, writebackBatches: this.wb?.batches ?? 0,
      readCache: this.o.data.cache.stats(),
    };
  }

  /** Flushes every open file and commits (what `vfs sync` asks). */
  async syncAll(): Promise<number> {
    const byIno = new Map<number, FileData>();
    for (const h of this.handles.values()) if (h.file !== null) byIno.set(h.ino, h.file);
    const pending = this.wb?.pendingFiles ?? 0;
    await this.wb?.flushAll(false);
    for (const [ino, file] of byIno) if (this.wb?.isPending(ino) !== true) await this.commit(ino, file, false);
    this.lastSyncMs = Date.now();
    return byIno.size + pending;
  }

  // ---- resolution ---------------------------------------------------------------------------

  private async resolve(path: string): Promise<FsAttr> {
    const hit = this.cache.get(path);
    if (hit !== undefined) return (this.wb?.isPending(hit.ino) === true ? this.wb.attrOf(hit.ino) : undefined) ?? hit;
    if (path === '/') return this.remember('/', await this.api.fsGetattr(this.vol, 1));
    const { parent, name } = parentOf(path);
    // The kernel passes names up to 1,024 bytes; a listing this mount knows would call one absent.
    if (Buffer.byteLength(name) > maxFileNameBytes) throw fsError('ENAMETOOLONG');
    const dir = await this.resolve(parent);
    if (dir.type !== 'dir') throw fsError('ENOTDIR');
    const local = this.wb?.lookup(dir.ino, name);
    if (local !== undefined) return local;
    if (this.wb?.absent(dir.ino, name) === true) throw fsError('ENOENT');
    if (this.names.absent(parent, dir.ino, name)) throw fsError('ENOENT');
    if (this.names.stale(parent, dir.ino) || (this.refreshes.has(parent) || this.names.missed(parent))) {
      // One listing (fresh names and attributes of the whole directory) instead of a lookup per name.
      await this.refreshDir(parent, dir.ino);
      const again = this.cache.get(path);
      if (again !== undefined) return again;
      if (this.names.absent(parent, dir.ino, name)) throw fsError('ENOENT');
    }
    // With our session: a directory delegated to this mount answers us (the frozen rule is for the others).
    const [attr] = await Promise.all([this.api.fsLookup(this.vol, dir.ino, name, { session: this.o.session() }), this.readAhead(parent, dir.ino, name)]);
    return this.remember(path, attr);
  }

  /** Lists a tracked directory again (dir-names.ts); concurrent callers share one listing. */
  private refreshDir(dirPath: string, ino: number): Promise<void> {
    const running = this.refreshes.get(dirPath);
    if (running !== undefined) return running;
    const run = this.listAll(dirPath, ino, maxTrackedNames).then((names) => {
      if (names === null) this.names.forget(dirPath, true);
    }, (err: unknown) => {
      this.names.forget(dirPath);
      this.o.log.debug({ err, dirPath }, 'directory refresh failed; lookups go one by one');
    }).finally(() => this.refreshes.delete(dirPath));
    this.refreshes.set(dirPath, run);
    return run;
  }

  /**
   * Every entry of a directory, its attributes remembered (unless this mount changed something
   * meanwhile: the page may predate it), its names made known; null past `maxEntries`.
   */
  private async listAll(dirPath: string, ino: number, maxEntries: number, out?: FsDirEntry[]): Promise<string[] | null> {
    const startedMs = this.now();
    this.names.refreshing(dirPath, ino);
    try {
      return await this.listPages(dirPath, ino, maxEntries, startedMs, out);
    } catch (err) {
      this.names.forget(dirPath);
      throw err;
    }
  }

  private async listPages(dirPath: string, ino: number, maxEntries: number, startedMs: number, out?: FsDirEntry[]): Promise<string[] | null> {
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const epoch = this.cache.epoch;
      const page = await this.api.fsReaddir(this.vol, ino, cursor, readdirPageEntries, { session: this.o.session() });
      if (this.cache.epoch === epoch) this.rememberPage(dirPath, page.entries);
      for (const e of page.entries) {
        names.push(e.name);
        out?.push({ name: e.name, stat: this.stat(e.attr) });
      }
      if (names.length > maxEntries) return null;
      cursor = page.cursor;
    } while (cursor !== null);
    this.names.known(dirPath, ino, names, startedMs);
    return names;
  }

  /**
   * libfuse 2 has no readdirplus: after a readdir the kernel looks every name up. When a name of
   * a directory this mount is listing is not in the cache (its entry expired: a long listing
   * outlives the attribute timeout), the next `readAheadEntries` entries after it come in one
   * page, fresh from the namespace, so the following lookups are answered from the cache.
   * Never in a strict mount (ttl 0: nothing is cached).
   */
  private readAhead(dirPath: string, dirIno: number, name: string): Promise<void> | null {
    const l = this.listings.get(dirPath);
    const now = this.now();
    if (l === undefined || l.ino !== dirIno || now - l.lastUseMs > listingIdleMs) return null;
    l.lastUseMs = now;
    if (l.inflight !== null) return l.inflight;
    if (now - l.filledAtMs < this.o.cacheTtlMs && name <= l.filledTo) return null;
    const epoch = this.cache.epoch;
    l.inflight = this.api.fsReaddir(this.vol, dirIno, name, readAheadEntries, { session: this.o.session() }).then((page) => {
      if (this.cache.epoch === epoch) this.rememberPage(dirPath, page.entries);
      l.filledTo = page.cursor ?? endOfNames;
      l.filledAtMs = now;
    }, (err: unknown) => { this.o.log.debug({ err, dirPath }, 'read-ahead failed; lookups go one by one'); })
      .finally(() => { l.inflight = null; });
    return l.inflight;
  }

  private rememberPage(dirPath: string, entries: { name: string; attr: FsAttr }[]): void {
    for (const e of entries) this.remember(dirPath === '/' ? `/${e.name}` : `${dirPath}/${e.name}`, e.attr);
  }

  private noteListing(dirPath: string, ino: number, startedMs: number): void {
    if (this.o.cacheTtlMs === 0) return;
    this.listings.delete(dirPath);
    this.listings.set(dirPath, { ino, lastUseMs: this.now(), filledTo: endOfNames, filledAtMs: startedMs, inflight: null });
    if (this.listings.size > maxListings) {
      const oldest = this.listings.keys().next().value;
      if (oldest !== undefined) this.listings.delete(oldest);
    }
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
    if (a.type === 'dir' && this.wb !== null) a = this.wb.dirAttr(a);
    const open = this.openFile(a.ino) ?? (this.wb?.isPending(a.ino) === true ? this.wb.attrOf(a.ino) : undefined);
    return toStat(a, this.o.volume.blockSizeBytes, open?.size ?? a.size);
  }

  /** Bytes this mount's open files grew past their committed sizes (counted against the quota). */
  private localPendingBytes(): number {
    let sum = 0;
    for (const [ino, committed] of this.committedSize) {
      const f = this.openFile(ino);
      if (f !== undefined && this.wb?.isPending(ino) !== true) sum += Math.max(0, f.size - committed);
    }
    // Buffered new files (write-back) are not counted here: their reservation is, in the namespace's count.
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
    // Within the attribute timeout what this mount just learned of the inode will do (libfuse
    // asks this right after every create); a strict mount (ttl 0) caches nothing and asks.
    const local = this.wb?.attrOf(h.ino);
    if (local !== undefined) return this.stat(local);
    const hit = this.cache.get(path);
    if (hit !== undefined && hit.ino === h.ino) return this.stat(hit);
    return this.stat(await this.api.fsGetattr(this.vol, h.ino));
  }

  async access(_c: FuseCaller, path: string, mode: number): Promise<void> {
    await this.resolve(path);
    if ((mode & 2) !== 0) this.writable();
  }

  async statfs(): Promise<FsStatfs> {
    const s = await this.api.fsStatfs(this.vol);
    if (this.wb === null || this.wb.pendingFiles === 0) return toStatfs(s);
    // This mount's buffered new files count here at once (their bytes everywhere: the namespace counts their reservation).
    const files = Math.min(this.wb.pendingFiles, s.freeInodes);
    return toStatfs({ ...s, inodes: s.inodes + files, freeInodes: s.freeInodes - files });
  }

  private async setattr(c: FuseCaller, path: string, changes: FsSetattr, withGroups = false): Promise<FsAttr> {
    this.writable();
    await this.settle(path, false);
    const a = await this.resolve(path);
    const caller = withGroups ? await callerWithGroups(c) : plainCaller(c);
    const attr = await this.api.fsSetattr(this.vol, caller, a.ino, changes);
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
    await this.settle(path, false);
    const a = await this.resolve(path);
    if (a.type === 'dir') throw fsError('EISDIR');
    await this.resize(c, path, a.ino, size);
  }

  async ftruncate(c: FuseCaller, path: string, fh: FileHandle, size: number): Promise<void> {
    this.writable();
    const h = this.handleOf(fh);
    if (this.wb?.isPending(h.ino) === true) await this.wb.flushFile(h.ino);
    await this.resize(c, path, h.ino, size);
  }

  private async resize(c: FuseCaller, path: string, ino: number, size: number): Promise<void> {
    // Before the quota: a size no file may have is EFBIG on ext4, not ENOSPC.
    if (size > maxFileSizeBytes) throw fsError('EFBIG');
    const open = this.openFile(ino);
    const fresh = open === undefined ? await this.api.fsGetattr(this.vol, ino) : null;
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
    const attr = await this.api.fsSetattr(this.vol, plainCaller(c), ino, { size });
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
    // Our own listing of a directory we hold shows our buffered files: they are committed first.
    await this.wb?.settle(dir.ino, false);
    const out: FsDirEntry[] = [{ name: '.' }, { name: '..' }];
    const startedMs = this.now();
    await this.listAll(path, dir.ino, Number.MAX_SAFE_INTEGER, out);
    this.noteListing(path, dir.ino, startedMs);
    return out;
  }

  async mkdir(c: FuseCaller, path: string, mode: number): Promise<void> {
    this.writable();
    await this.settle(path, true);
    const { dir, name } = await this.parentIno(path);
    const startedMs = this.now();
    const r = await this.api.fsMkdir(this.vol, plainCaller(c), dir, name, await this.inodes.next(), mode & 0o7777);
    this.afterEntry(path, r.attr, r.parent);
    this.names.known(path, r.attr.ino, [], startedMs);
  }

  async mknod(c: FuseCaller, path: string, mode: number, rdev: number): Promise<void> {
    this.writable();
    await this.settle(path, true);
    const { dir, name } = await this.parentIno(path);
    const r = await this.api.fsMknod(this.vol, plainCaller(c), dir, name, await this.inodes.next(), typeOfMode(mode), mode & 0o7777, rdev);
    this.afterEntry(path, r.attr, r.parent);
  }

  async symlink(c: FuseCaller, target: string, linkPath: string): Promise<void> {
    this.writable();
    await this.settle(linkPath, true);
    const { dir, name } = await this.parentIno(linkPath);
    const r = await this.api.fsSymlink(this.vol, plainCaller(c), dir, name, await this.inodes.next(), target);
    this.afterEntry(linkPath, r.attr, r.parent);
  }

  async readlink(_c: FuseCaller, path: string): Promise<string> {
    const a = await this.resolve(path);
    return this.api.fsReadlink(this.vol, a.ino);
  }

  async link(c: FuseCaller, existingPath: string, newPath: string): Promise<void> {
    this.writable();
    await this.settle(existingPath, false);
    await this.settle(newPath, true);
    const a = await this.resolve(existingPath);
    const { dir, name } = await this.parentIno(newPath);
    const r = await this.api.fsLink(this.vol, plainCaller(c), a.ino, dir, name);
    this.cache.dropIno(a.ino);
    this.afterEntry(newPath, r.attr, r.parent);
  }

  async unlink(c: FuseCaller, path: string): Promise<void> {
    this.writable();
    await this.settle(path, true);
    const { dir, name } = await this.parentIno(path);
    const victim = this.cache.get(path);
    const r = await this.api.fsUnlink(this.vol, plainCaller(c), dir, name);
    this.afterRemoval(path);
    if (victim !== undefined) this.cache.dropIno(victim.ino);
    if (r.attr !== null) this.cache.dropIno(r.attr.ino);
    if (r.attr === null && victim !== undefined) this.quota.committed(-victim.size);
    if (r.attr === null) this.o.onMaybeDeleted?.();
    else if (r.attr.nlink === 0 && this.unlinkedOpen.size < maxSizesRemembered) this.unlinkedOpen.add(r.attr.ino);
    this.remember(parentOf(path).parent, r.parent);
  }

  async rmdir(c: FuseCaller, path: string): Promise<void> {
    this.writable();
    await this.wb?.flushAll(true);
    const { dir, name } = await this.parentIno(path);
    const r = await this.api.fsRmdir(this.vol, plainCaller(c), dir, name);
    this.afterRemoval(path);
    this.remember(parentOf(path).parent, r.parent);
  }

  async rename(c: FuseCaller, from: string, to: string): Promise<void> {
    this.writable();
    await this.wb?.flushAll(true);
    const src = await this.parentIno(from);
    const dst = await this.parentIno(to);
    const replaced = this.cache.get(to);
    await this.api.fsRename(this.vol, plainCaller(c), src.dir, src.name, dst.dir, dst.name, 0);
    this.afterRemoval(from);
    this.cache.dropTree(to);
    this.names.dropTree(to);
    this.names.changed(parentOf(to).parent, parentOf(to).name, true);
    this.cache.dropTree(parentOf(from).parent);
    this.cache.dropTree(parentOf(to).parent);
    if (replaced !== undefined) this.cache.dropIno(replaced.ino);
    this.o.onMaybeDeleted?.();
  }

  /** A name this mount made (create, mknod, mkdir, symlink, link). */
  private afterEntry(path: string, attr: FsAttr, parent: FsAttr): void {
    this.remember(path, attr);
    const p = parentOf(path);
    this.remember(p.parent, parent);
    this.names.changed(p.parent, p.name, true);
  }

  /** A name this mount removed (unlink, rmdir, rename's source). */
  private afterRemoval(path: string): void {
    const p = parentOf(path);
    this.cache.dropTree(path);
    this.names.changed(p.parent, p.name, false);
    this.names.dropTree(path);
  }

  // ---- xattrs -------------------------------------------------------------------------------

  async setxattr(c: FuseCaller, path: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.writable();
    await this.settle(path, false);
    const a = await this.resolve(path);
    const attr = await this.api.fsSetxattr(this.vol, plainCaller(c), a.ino, name, value.toString('base64'), flags);
    this.cache.dropIno(a.ino);
    this.remember(path, attr);
  }

  /**
   * `ls -l` asks security.selinux and system.posix_acl_access of every entry: a name the
   * namespace can never hold, or any name of an inode whose attributes (as fresh as the attribute
   * timeout allows) count no xattrs, is ENODATA without a round trip.
   */
  async getxattr(_c: FuseCaller, path: string, name: string): Promise<Buffer | undefined> {
    if (!storableXattr(name)) throw fsError('ENODATA');
    const a = await this.resolve(path);
    if ((a.xattrCount ?? 0) === 0) throw fsError('ENODATA');
    return Buffer.from(await this.api.fsGetxattr(this.vol, a.ino, name), 'base64');
  }

  async listxattr(_c: FuseCaller, path: string): Promise<string[]> {
    const a = await this.resolve(path);
    if ((a.xattrCount ?? 0) === 0) return [];
    return this.api.fsListxattr(this.vol, a.ino);
  }

  async removexattr(c: FuseCaller, path: string, name: string): Promise<void> {
    this.writable();
    await this.settle(path, false);
    const a = await this.resolve(path);
    const attr = await this.api.fsRemovexattr(this.vol, plainCaller(c), a.ino, name);
    this.cache.dropIno(a.ino);
    this.remember(path, attr);
  }

  // ---- open files ---------------------------------------------------------------------------

  async create(c: FuseCaller, path: string, mode: number, flags: number): Promise<FileHandle> {
    this.writable();
    if (this.handles.size >= maxOpenHandles) throw fsError('ENFILE');
    const local = await this.createLocal(c, path, mode, flags);
    if (local !== null) return local;
    const { dir, name } = await this.parentIno(path);
    const ino = await this.inodes.next();
    // Created and opened in one command (one Raft write for open(O_CREAT)).
    const r = await this.withCloses((closes, session) => this.api.fsCreate(this.vol, plainCaller(c), dir, name, ino, mode & 0o7777, {
      exclusive: (flags & O_EXCL) !== 0, open: session, ...(closes === undefined ? {} : { closes }),
    })).catch((err: unknown) => {
      // Another node made it since this mount's listing: known now, not only after a refresh.
      if (err instanceof GalleonError && err.details.errno === 'EEXIST') this.names.changed(parentOf(path).parent, name, true);
      throw err;
    });
    if (!r.created) this.inodes.giveBack(ino);
    this.wb?.noteName(dir, name);
    this.afterEntry(path, r.attr, r.parent);
    return this.addHandle(r.attr);
  }

  /** A create in a directory this mount holds (writeback.ts): no namespace command; null when not. */
  private async createLocal(c: FuseCaller, path: string, mode: number, flags: number): Promise<FileHandle | null> {
    if (this.wb === null) return null;
    const { parent, name } = parentOf(path);
    const d = await this.resolve(parent);
    if (d.type !== 'dir') throw fsError('ENOTDIR');
    const attr = await this.wb.create(d.ino, parent, d, name, plainCaller(c), mode & 0o7777, (flags & O_EXCL) !== 0);
    if (attr === null) return null;
    this.remember(path, attr);
    this.names.changed(parent, name, true);
    return this.addHandle(attr);
  }

  /**
   * Before an operation the write-back does not do itself: a buffered file it touches is
   * committed first, and a held directory whose entries it changes (`releaseParent`) is given
   * back, so the operation runs as it always did.
   */
  private async settle(path: string, releaseParent: boolean): Promise<void> {
    if (this.wb === null || !this.wb.holdsAny) return;
    const a = await this.resolve(path).catch(() => null);
    if (a !== null && this.wb.isPending(a.ino)) await this.wb.flushFile(a.ino);
    if (a?.type === 'dir') await this.wb.settle(a.ino, true);
    if (!releaseParent || path === '/') return;
    const p = await this.resolve(parentOf(path).parent).catch(() => null);
    if (p !== null) await this.wb.settle(p.ino, true);
  }

  private handlesOf(ino: number): number {
    let n = 0;
    for (const h of this.handles.values()) if (h.ino === ino) n++;
    return n;
  }

  /**
   * A batch created `p`, counting `sentOpen` of our handles open: from now on it is an ordinary
   * file of this mount (handles released meanwhile close through the close queue; the
   * write-back's own reference is dropped through commit(), which commits any bytes written
   * after the batch's flush).
   */
  private async adopt(p: PendingFile, attr: FsAttr, parent: FsAttr, sentOpen: number): Promise<void> {
    // No quota change: the batch turned reserved bytes into file sizes (the namespace's count stays).
    const n = this.handlesOf(p.ino);
    for (let i = n; i < sentOpen; i++) this.closes.add(this.o.session(), p.ino);
    for (let i = 0; i < n; i++) this.o.data.open(p.ino, { sizeBytes: attr.size, mtimeNs: BigInt(attr.mtimeNs), changeToken: changeTokenOf(attr), truncEpoch: attr.truncEpoch });
    if (n > 0) this.committedSize.set(p.ino, attr.size);
    const path = p.dirPath === '/' ? `/${p.name}` : `${p.dirPath}/${p.name}`;
    this.cache.dropIno(p.ino);
    this.remember(path, attr);
    this.remember(p.dirPath, parent);
    this.o.data.retag(p.ino, changeTokenOf(attr));
    this.commits++;
    this.lastSyncMs = Date.now();
    await this.commit(p.ino, p.file, true);
  }

  /** A buffered file whose batch can never commit (the delegation ended under us): gone, as after a crash. */
  private lostFile(p: PendingFile): void {
    const path = p.dirPath === '/' ? `/${p.name}` : `${p.dirPath}/${p.name}`;
    this.afterRemoval(path);
  }

  async open(_c: FuseCaller, path: string, flags: number): Promise<FileHandle> {
    if ((flags & O_ACCMODE) !== O_RDONLY) this.writable();
    const a = await this.resolve(path);
    if (a.type === 'dir') throw fsError('EISDIR');
    return this.openIno(a.ino, flags);
  }

  private async openIno(ino: number, _flags: number): Promise<FileHandle> {
    if (this.handles.size >= maxOpenHandles) throw fsError('ENFILE');
    const local = this.wb?.isPending(ino) === true ? await this.wb.fileOf(ino) : null;
    const attr = local === null ? undefined : this.wb?.attrOf(ino);
    if (attr !== undefined) return this.addHandle(attr);
    return this.addHandle(await this.api.fsOpen(this.vol, ino, this.o.session()));
  }

  /** A handle over `attr`, which the namespace has just counted open for this mount's session. */
  private addHandle(attr: FsAttr): FileHandle {
    const ino = attr.ino;
    let file: FileData | null = null;
    const buffered = this.wb?.isPending(ino) === true ? this.wb.attrOf(ino) : undefined;
    if (buffered !== undefined) {
      // A buffered new file: its FileData is the write-back's; no namespace handle until its batch.
      file = this.wb?.fileOfNow(ino) ?? null;
    } else if (attr.type === 'file') {
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
    // As ext4: nothing at or past the largest file size (EFBIG), a write across it is cut short.
    if (position >= maxFileSizeBytes) throw fsError('EFBIG');
    const bytes = position + data.length > maxFileSizeBytes ? data.subarray(0, maxFileSizeBytes - position) : data;
    const end = position + bytes.length;
    if (end > file.size) {
      if (this.wb?.isPending(file.ino) === true) await this.wb.grow(file.ino, end);
      else await this.quota.reserve(end - file.size, this.localPendingBytes());
    }
    return file.write(position, bytes);
  }

  /** Data acknowledged at the volume's concern, then size/mtime committed: only then is it visible elsewhere. */
  private async commit(ino: number, file: FileData, last: boolean): Promise<void> {
    const r = last ? await this.o.data.close(file) : await file.fsync();
    if (!r.changed) return;
    this.noteSize(ino, r.sizeBytes);
    const attr = await this.withCloses((closes) => this.api.fsCommitWrite(this.vol, ino, r.sizeBytes, r.mtimeNs.toString(), closes, r.truncEpoch));
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

  /** Sends a command that carries the handles released since the last one (close-queue.ts). */
  private async withCloses<T>(send: (closes: FsCloses | undefined, session: string) => Promise<T>): Promise<T> {
    const session = this.o.session();
    const closes = this.closes.take(session);
    try {
      const r = await send(closes, session);
      this.closes.settled(closes, undefined);
      return r;
    } catch (err) {
      this.closes.settled(closes, err);
      throw err;
    }
  }

  async flush(_c: FuseCaller, _path: string, fh: FileHandle): Promise<void> {
    const h = this.handleOf(fh);
    // close(2) of a buffered new file returns now: the flusher commits it (writeback.ts).
    if (this.wb?.isPending(h.ino) === true) return;
    if (h.file !== null && !this.o.readOnly) await this.commit(h.ino, h.file, false);
  }

  async fsync(c: FuseCaller, path: string, _datasync: boolean, fh: FileHandle): Promise<void> {
    const h = this.handleOf(fh);
    if (this.wb?.isPending(h.ino) === true) await this.wb.flushFile(h.ino);
    await this.flush(c, path, fh);
  }

  async release(_c: FuseCaller, _path: string, fh: FileHandle): Promise<void> {
    const h = this.handleOf(fh);
    this.handles.delete(fh);
    if (this.wb?.isPending(h.ino) === true) {
      this.wb.released();
      return;
    }
    // Queued first: a commit this release makes carries its own close.
    this.closes.add(this.o.session(), h.ino);
    try {
      if (h.file !== null) {
        if (this.o.readOnly) await this.o.data.close(h.file);
        else await this.commit(h.ino, h.file, true);
      }
    } finally {
      if (this.openFile(h.ino) === undefined) this.committedSize.delete(h.ino);
    }
  }

  /** Every handle closed (unmount): flushes what is buffered and sends every pending close. */
  async releaseAll(): Promise<void> {
    for (const fh of [...this.handles.keys()]) {
      await this.release({ uid: 0, gid: 0, pid: 0 }, '', fh).catch((err: unknown) => this.o.log.warn({ err }, 'release at unmount failed'));
    }
    await this.wb?.close().catch((err: unknown) => this.o.log.error({ err }, 'write-back flush at unmount failed; buffered new files are lost'));
    await this.closes.flush();
  }

  /**
   * Closes landed. The block reaper is kicked when one of them may have deleted a file this mount
   * unlinked while open; other nodes' deletions are found by its timer.
   */
  private closed(inos: number[]): void {
    let kick = false;
    for (const ino of inos) if (this.unlinkedOpen.delete(ino)) kick = true;
    if (kick) this.o.onMaybeDeleted?.();
  }

  /** Handles released whose close has not reached the namespace yet (tests, `vfs status`). */
  get pendingCloses(): number {
    return this.closes.size;
  }
}

/** The namespaces the namespace stores (metadata/state/logic/ns-attrs.ts); system. (POSIX ACLs) is not one. */
const xattrNamespaces = ['user.', 'trusted.', 'security.'];

function storableXattr(name: string): boolean {
  return xattrNamespaces.some((ns) => name.startsWith(ns) && name.length > ns.length);
}

function plainCaller(c: FuseCaller): FsCaller {
  return { uid: c.uid, gid: c.gid };
}

