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
 * half-written stays reachable. Space of overwritten bodies is not reclaimed yet (no GC).
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
    this.appender = appender;
    this.currentSize = alignUp(await appender.size());
  }

  private async handle(id: number): Promise<FileHandle> {
    const h = this.handles.get(id);
    if (h !== undefined) return h;
    const fh = await withIoRetry('opening a segment file', () => fsp.open(this.fileOf(id), 'r'));
    this.handles.set(id, fh);
    return fh;
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

  async close(): Promise<void> {
    await this.appending;
    await this.sync();
    await this.appender?.close();
    this.appender = null;
    for (const fh of this.handles.values()) await fh.close();
    this.handles.clear();
  }
}
