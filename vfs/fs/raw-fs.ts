/**
 * Raw mode: the volume as one file, `/data`, the volume's size, backed by the reserved raw inode
 * 0 (the same blocks `volume write-block`/`read-block` use). `dd`, `mkfs.ext4` and
 * `mount -o loop` work on it. Its size is fixed: truncating to another size (what `dd` without
 * `conv=notrunc` does) is EPERM, writing past the end ENOSPC. Durability as for files: buffered,
 * acknowledged at the volume's concern at fsync and close. No namespace is involved, so nothing
 * is committed after a flush; one writer at a time is the volume's access mode's job (mount raw
 * volumes ReadWriteOnce).
 */
import { maxFileNameBytes } from '../../proto/limits.js';
import type { Volume } from '../../proto/metadata-types.js';
import { fsError } from '../fuse/errno.js';
import type { FileHandle, FsDirEntry, FsStat, FsStatfs, FuseCaller, FuseOps } from '../fuse/types.js';
import type { FileData, VolumeData } from '../data/index.js';
import { statfsUnitBytes } from './attrs.js';
import type { FsCounters } from './galleon-fs.js';

export const rawFileName = 'data';
/** st_ino of the file as the kernel sees it (0 is not a valid st_ino). */
const rawFileStIno = 2;
const O_ACCMODE = 3;

export class RawFs implements FuseOps {
  private file: FileData | null = null;
  private readonly handles = new Set<FileHandle>();
  private nextFh = 1;
  private readonly bornNs = BigInt(Date.now()) * 1_000_000n;
  private lastSyncMs: number | null = null;

  constructor(private readonly volume: Pick<Volume, 'sizeBytes' | 'blockSizeBytes'>, private readonly data: VolumeData, private readonly readOnly: boolean) {}

  private isData(path: string): boolean {
    if (path === `/${rawFileName}`) return true;
    if (path === '/') return false;
    throw fsError('ENOENT');
  }

  getattr(_c: FuseCaller, path: string): Promise<FsStat> {
    const file = this.isData(path);
    return Promise.resolve({
      ino: file ? rawFileStIno : 1, mode: file ? (this.readOnly ? 0o100400 : 0o100600) : 0o040755, nlink: file ? 1 : 2, uid: 0, gid: 0,
      size: file ? this.volume.sizeBytes : 0, blksize: this.volume.blockSizeBytes, atimeNs: this.bornNs, mtimeNs: this.bornNs, ctimeNs: this.bornNs,
    });
  }

  readdir(_c: FuseCaller, path: string): Promise<FsDirEntry[]> {
    if (this.isData(path)) throw fsError('ENOTDIR');
    return Promise.resolve([{ name: '.' }, { name: '..' }, { name: rawFileName }]);
  }

  statfs(): Promise<FsStatfs> {
    const blocks = Math.floor(this.volume.sizeBytes / statfsUnitBytes);
    return Promise.resolve({ bsize: statfsUnitBytes, frsize: statfsUnitBytes, blocks, bfree: 0, bavail: 0, files: 2, ffree: 0, namemax: maxFileNameBytes });
  }

  open(_c: FuseCaller, path: string, flags: number): Promise<FileHandle> {
    if (!this.isData(path)) throw fsError('EISDIR');
    if (this.readOnly && (flags & O_ACCMODE) !== 0) throw fsError('EROFS');
    this.file = this.data.open(0, { sizeBytes: this.volume.sizeBytes, mtimeNs: this.bornNs, changeToken: 'raw' });
    const fh = this.nextFh++;
    this.handles.add(fh);
    return Promise.resolve(fh);
  }

  private fileOf(fh: FileHandle): FileData {
    if (!this.handles.has(fh) || this.file === null) throw fsError('EBADF');
    return this.file;
  }

  async read(_c: FuseCaller, _p: string, fh: FileHandle, buf: Buffer, position: number): Promise<number> {
    return this.fileOf(fh).readTo(buf, position);
  }

  async write(_c: FuseCaller, _p: string, fh: FileHandle, data: Buffer, position: number): Promise<number> {
    if (this.readOnly) throw fsError('EROFS');
    if (position + data.length > this.volume.sizeBytes) throw fsError('ENOSPC', 'raw mode: the file is the volume and cannot grow');
    return this.fileOf(fh).write(position, data);
  }

  truncate(_c: FuseCaller, path: string, size: number): Promise<void> {
    if (!this.isData(path)) throw fsError('EISDIR');
    if (size !== this.volume.sizeBytes) throw fsError('EPERM', 'raw mode: the file has the volume\'s size (use dd conv=notrunc)');
    return Promise.resolve();
  }

  ftruncate(c: FuseCaller, path: string, _fh: FileHandle, size: number): Promise<void> {
    return this.truncate(c, path, size);
  }

  async flush(_c: FuseCaller, _p: string, fh: FileHandle): Promise<void> {
    if (this.readOnly) return;
    const r = await this.fileOf(fh).fsync();
    if (r.changed) this.lastSyncMs = Date.now();
  }

  async fsync(c: FuseCaller, p: string, _d: boolean, fh: FileHandle): Promise<void> {
    await this.flush(c, p, fh);
  }

  async release(_c: FuseCaller, _p: string, fh: FileHandle): Promise<void> {
    const file = this.fileOf(fh);
    this.handles.delete(fh);
    await this.data.close(file);
    if (this.handles.size === 0) this.file = null;
  }

  /** What `vfs status` counts. */
  counters(): FsCounters {
    return { openHandles: this.handles.size, pendingWriteBytes: this.file?.dirtyBytes ?? 0, lastSyncMs: this.lastSyncMs, commits: 0, namespaceWrites: 0, pendingCloses: 0,
      writebackFiles: 0, writebackBytes: 0, writebackBatches: 0, readCache: this.data.cache.stats(),
    };
  }

  async syncAll(): Promise<number> {
    if (this.file === null) return 0;
    await this.file.fsync();
    this.lastSyncMs = Date.now();
    return 1;
  }

  async releaseAll(): Promise<void> {
    for (const fh of [...this.handles]) await this.release({ uid: 0, gid: 0, pid: 0 }, '', fh);
  }
}
