/**
 * Append-only segment files for block bodies (the WiscKey layout): the LevelDB index holds
 * headers and pointers, the bodies go here sequentially so a 1 MiB write is one sequential
 * append instead of a LevelDB WAL write plus compactions. A segment is fdatasync'd before the
 * index batch that points into it is synced, so a synced pointer never points at lost bytes.
 *
 * Appends go through `DirectAppender` (O_DIRECT from page-aligned staging; see its header for
 * why), so every append starts at a 4 KiB boundary and its end is zero-padded to one. Reads
 * use separate buffered handles.
 *
 * Invariants: bytes are only ever appended; a failed append is truncated back, so nothing
 * half-written stays reachable. Only segment GC (segment-gc.ts) deletes files, and only sealed
 * ones that no index entry and no read uses any more.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GalleonError, invariant } from '../../proto/errors.js';
import { alignUp, DirectAppender } from './direct-writer.js';
import { toStoreError, withIoRetry } from './io.js';

export const defaultSegmentMaxBytes = 256 * 1024 * 1024;
const segmentName = (id: number): string => `${String(id).padStart(8, '0')}.seg`;

export class SegmentFiles {
  /** Read handles (buffered; the kernel keeps them coherent with the direct writes). */
  private readonly handles = new Map<number, FileHandle>();
  private readonly opening = new Map<number, Promise<FileHandle>>();
  private appender: DirectAppender | null = null;
  private currentId = 0;
  /** Always a multiple of `directAlignBytes`: every append is padded to it. */
  private currentSize = 0;
  /** Segments written since their last fdatasync. */
  private readonly dirty = new Map<number, DirectAppender>();
  private totalBytes = 0;
  /** Appends share the staging buffers, so they run one at a time. */
  private appending: Promise<unknown> = Promise.resolve();

  private constructor(private readonly dir: string, private readonly segmentMaxBytes: number) {}

  static async open(dir: string, segmentMaxBytes = defaultSegmentMaxBytes): Promise<SegmentFiles> {
    await fsp.mkdir(dir, { recursive: true });
    const s = new SegmentFiles(dir, segmentMaxBytes);
    const ids = (await fsp.readdir(dir)).filter((n) => n.endsWith('.seg')).map((n) => Number(n.slice(0, -4))).sort((a, b) => a - b);
    for (const id of ids) s.totalBytes += (await fsp.stat(path.join(dir, segmentName(id)))).size;
    const last = ids.at(-1);
    // A new process always appends to a fresh segment: the tail of the old one may hold bytes
    // of a crash-interrupted batch that no index entry points to.
    s.currentId = (last ?? 0) + 1;
    await s.openCurrent();
    return s;
  }

  fileOf(id: number): string {
    return path.join(this.dir, segmentName(id));
  }

  bytes(): number {
    return this.totalBytes;
  }

  /** Whether appends bypass the page cache (O_DIRECT) on this file system. */
  get usesDirectIo(): boolean {
    return this.appender?.usesDirectIo ?? false;
  }

  private async openCurrent(): Promise<void> {
    const appender = await withIoRetry('creating a segment file', () => DirectAppender.open(this.fileOf(this.currentId)));
    // The new file's directory entry must be durable before any synced index entry points into
    // it: fdatasync of the file alone does not persist its name.
    await this.syncDir();
    this.appender = appender;
    this.currentSize = alignUp(await appender.size());
  }

  private async syncDir(): Promise<void> {
    const dir = await withIoRetry('opening the segment directory', () => fsp.open(this.dir, 'r'));
    try {
      await withIoRetry('syncing the segment directory', () => dir.sync());
    } finally {
      await dir.close();
    }
  }

  private async handle(id: number): Promise<FileHandle> {
    const h = this.handles.get(id);
    if (h !== undefined) return h;
    // Concurrent first reads of a segment share one open (two would leak a handle).
    let opening = this.opening.get(id);
    if (opening === undefined) {
      opening = withIoRetry('opening a segment file', () => fsp.open(this.fileOf(id), 'r')).then((fh) => {
        this.handles.set(id, fh);
        return fh;
      }).finally(() => this.opening.delete(id));
      this.opening.set(id, opening);
    }
    return opening;
  }

  /**
   * Appends bodies back to back (the end padded to the direct-I/O alignment); returns the
   * segment and each body's offset.
   */
  append(bodies: readonly Uint8Array[]): Promise<{ segmentId: number; offsets: number[] }> {
    const run = this.appending.then(() => this.appendNow(bodies));
    this.appending = run.catch(() => undefined);
    return run;
  }

  private async appendNow(bodies: readonly Uint8Array[]): Promise<{ segmentId: number; offsets: number[] }> {
    const total = bodies.reduce((n, b) => n + b.byteLength, 0);
    if (this.currentSize > 0 && this.currentSize + total > this.segmentMaxBytes) await this.roll();
    const id = this.currentId;
    const appender = this.appender;
    invariant(appender !== null, 'current segment is open');
    const start = this.currentSize;
    const offsets: number[] = [];
    let at = start;
    for (const b of bodies) { offsets.push(at); at += b.byteLength; }
    let padded: number;
    try {
      padded = await appender.write(bodies, start);
    } catch (err) {
      // Nothing half-written: cut the segment back to where this append began.
      await appender.truncate(start).catch(() => undefined);
      throw toStoreError(err, 'appending block bodies to a segment');
    }
    this.currentSize = start + padded;
    this.totalBytes += padded;
    this.dirty.set(id, appender);
    return { segmentId: id, offsets };
  }

  /** fdatasync every segment written since the last sync. */
  async sync(): Promise<void> {
    for (const [id, appender] of [...this.dirty]) {
      await appender.datasync();
      this.dirty.delete(id);
    }
  }

  async read(id: number, offset: number, length: number): Promise<Buffer> {
    const fh = await this.handle(id);
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await withIoRetry('reading a segment', () => fh.read(buf, got, length - got, offset + got));
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got < length) {
      throw new GalleonError('CHECKSUM_MISMATCH', `segment ${id} ends before the block body at ${offset}+${length}`, {
        hint: 'the block is damaged; the scrubber repairs it from another replica',
      });
    }
    return buf;
  }

  private async roll(): Promise<void> {
    const old = this.appender;
    if (old !== null) {
      if (this.dirty.has(this.currentId)) {
        await old.datasync();
        this.dirty.delete(this.currentId);
      }
      await old.close();
    }
    this.currentId += 1;
    await this.openCurrent();
  }

  // ---- for segment GC (segment-gc.ts): listing, sizes, deletion of sealed segments ----------

  /** The segment appends go to now; every lower id is sealed (never appended to again). */
  currentSegmentId(): number {
    return this.currentId;
  }

  /** Ids of the segment files on disk, ascending. */
  async ids(): Promise<number[]> {
    const names = await withIoRetry('listing segment files', () => fsp.readdir(this.dir));
    return names.filter((n) => /^\d+\.seg$/.test(n)).map((n) => Number(n.slice(0, -4))).sort((a, b) => a - b);
  }

  /** Size on disk of a segment file (padding included), 0 when it is gone. */
  async sizeOf(id: number): Promise<number> {
    try {
      return (await fsp.stat(this.fileOf(id))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw toStoreError(err, `reading the size of segment ${id}`);
    }
  }

  /**
   * Removes a sealed segment file. The caller guarantees that no index entry points into it and
   * no read is using it; the open handle (if any) is closed after its pending reads finish.
   */
  async delete(id: number): Promise<number> {
    invariant(id < this.currentId, `segment ${id} is sealed before it is deleted (current is ${this.currentId})`);
    const size = await this.sizeOf(id);
    const fh = this.handles.get(id);
    this.handles.delete(id);
    this.dirty.delete(id);
    await fh?.close();
    // Already gone (a delete cut short by a crash is redone): nothing to do.
    await withIoRetry(`deleting segment ${id}`, () => fsp.unlink(this.fileOf(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    }));
    this.totalBytes = Math.max(0, this.totalBytes - size);
    return size;
  }

  async close(): Promise<void> {
    await this.appending;
    await this.sync();
    await this.appender?.close();
    this.appender = null;
    for (const fh of this.handles.values()) await fh.close();
    this.handles.clear();
  }
}
