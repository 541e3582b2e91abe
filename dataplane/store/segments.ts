/**
 * Append-only segment files for block bodies (the WiscKey layout): the LevelDB index holds
 * headers and pointers, the bodies go here sequentially so a 1 MiB write is one sequential
 * append instead of a LevelDB WAL write plus compactions. A segment is fdatasync'd before the
 * index batch that points into it is synced, so a synced pointer never points at lost bytes.
 *
 * Invariants: bytes are only ever appended; a failed append is truncated back, so nothing
 * half-written stays reachable. Only segment GC (segment-gc.ts) deletes files, and only sealed
 * ones that no index entry and no read uses any more.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GalleonError, invariant } from '../../proto/errors.js';
import { toStoreError, withIoRetry } from './io.js';

export const defaultSegmentMaxBytes = 256 * 1024 * 1024;
const segmentName = (id: number): string => `${String(id).padStart(8, '0')}.seg`;

export class SegmentFiles {
  private readonly handles = new Map<number, FileHandle>();
  private currentId = 0;
  private currentSize = 0;
  /** Segments written since their last fdatasync. */
  private readonly dirty = new Set<number>();
  private totalBytes = 0;

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

  private async openCurrent(): Promise<void> {
    const fh = await withIoRetry('creating a segment file', () => fsp.open(this.fileOf(this.currentId), 'a+'));
    this.handles.set(this.currentId, fh);
    this.currentSize = (await fh.stat()).size;
  }

  private async handle(id: number): Promise<FileHandle> {
    const h = this.handles.get(id);
    if (h !== undefined) return h;
    const fh = await withIoRetry('opening a segment file', () => fsp.open(this.fileOf(id), 'r'));
    this.handles.set(id, fh);
    return fh;
  }

  /** Appends bodies back to back; returns the segment and each body's offset. */
  async append(bodies: readonly Uint8Array[]): Promise<{ segmentId: number; offsets: number[] }> {
    const total = bodies.reduce((n, b) => n + b.byteLength, 0);
    if (this.currentSize > 0 && this.currentSize + total > this.segmentMaxBytes) await this.roll();
    const id = this.currentId;
    const fh = this.handles.get(id);
    invariant(fh !== undefined, 'current segment is open');
    const start = this.currentSize;
    const offsets: number[] = [];
    let at = start;
    for (const b of bodies) { offsets.push(at); at += b.byteLength; }
    try {
      let done = 0;
      let rest = [...bodies];
      while (done < total) {
        const { bytesWritten } = await withIoRetry('appending to a segment', () => fh.writev(rest, start + done));
        done += bytesWritten;
        if (done < total) rest = sliceFrom(bodies, done);
      }
    } catch (err) {
      // Nothing half-written: cut the segment back to where this append began.
      await fh.truncate(start).catch(() => undefined);
      throw toStoreError(err, 'appending block bodies to a segment');
    }
    this.currentSize = start + total;
    this.totalBytes += total;
    this.dirty.add(id);
    return { segmentId: id, offsets };
  }

  /** fdatasync every segment written since the last sync. */
  async sync(): Promise<void> {
    for (const id of [...this.dirty]) {
      const fh = this.handles.get(id);
      if (fh !== undefined) await withIoRetry('syncing a segment', () => fh.datasync());
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
    const old = this.handles.get(this.currentId);
    if (old !== undefined && this.dirty.has(this.currentId)) {
      await withIoRetry('syncing a segment', () => old.datasync());
      this.dirty.delete(this.currentId);
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
    await this.sync();
    for (const fh of this.handles.values()) await fh.close();
    this.handles.clear();
  }
}

function sliceFrom(bodies: readonly Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = skip;
  for (const b of bodies) {
    if (left >= b.byteLength) { left -= b.byteLength; continue; }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
