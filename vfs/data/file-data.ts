/**
 * A file's bytes on the data plane. Block `n` of inode `ino` holds bytes [n·B, n·B + len) of
 * the file, B the volume's block size, len < B only for the last block (partial blocks: a
 * 10 KiB file stores 10 KiB). Never-written blocks (holes) read as zeros.
 *
 * One FileData per inode per mount, shared by every open handle of it (`VolumeData.open`),
 * so a read through one handle sees another's unflushed writes, as on a local disk.
 * Writes are buffered per block (at most `maxDirtyBytes`, counted in whole blocks); a full
 * buffer, `flush()`/`fsync()` and the last `close()` write every dirty block at the volume's
 * write concern and return only once the data plane acknowledged them. The caller commits
 * the returned size/mtime to the namespace only then. A block not fully covered by buffered
 * bytes is read from the data plane and merged at flush time (read-modify-write), never per
 * write: sequential small writes that fill a block cost no read.
 *
 * Invariant: bytes of stored blocks at or past `validStoredBytes` are not this file's data
 * (a truncate left them, or nothing ever wrote them): reads and merges treat them as zeros,
 * and a flush that grows the file over such blocks deletes them first.
 */
import type { Logger } from 'pino';
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import type { BlockCache } from './block-cache.js';
import type { BlockFreer, FreeRange } from './free-blocks.js';
import { addSpan, blockLength, blockRange, blocksOf, clipSpans, gaps, noReadAhead, planReadAhead, readAheadRuns } from './layout.js';
import type { ReadAheadLimits, ReadAheadState, Span } from './layout.js';

/** What FileData needs of the data plane; without `readBlockRange`, read-ahead fetches block by block. */
export type FileBlockIo = Pick<BlockClient, 'readBlock' | 'writeBlocks' | 'deleteBlock'> & Partial<Pick<BlockClient, 'readBlockRange'>>;

/** What a block that does not exist reads as (shared: nobody writes into a fetched body). */
const noBytes = Buffer.alloc(0);

export const defaultMaxDirtyBytes = 16 * 1024 * 1024;
export const defaultReadAheadInitialBytes = 256 * 1024;
export const defaultReadAheadMaxBytes = 16 * 1024 * 1024;
/** The largest single read or write FileData accepts (FUSE sends at most max_write = 128 KiB). */
export const maxIoBytes = 64 * 1024 * 1024;

export interface FileDataEnv {
  client: FileBlockIo;
  volumeId: string;
  blockSizeBytes: number;
  concern: WriteConcern;
  cache: BlockCache;
  freer: BlockFreer;
  maxDirtyBytes: number;
  readAhead: ReadAheadLimits;
  /** Wall clock in nanoseconds since the epoch (injected: tests and the simulator pin it). */
  nowNs: () => bigint;
  log: Logger | undefined;
}

/** What the namespace must record after a flush (`changed` false: nothing to commit). */
export interface FlushResult {
  changed: boolean;
  sizeBytes: number;
  mtimeNs: bigint;
  /** Blocks written to the data plane by this flush. */
  blocksWritten: number;
  /** The truncate epoch this file's bytes belong to: pass it with the commit (`rebase` when the namespace's is newer). */
  truncEpoch: number;
  /**
   * Blocks past the new end that a truncate cut off, now queued on this mount's freer (null:
   * none). Record them with the size: until they are freed, the file must not grow over them
   * on another node (vfs/README.md, known gaps).
   */
  queuedFree: FreeRange | null;
}

/** A dirty block's buffer grows in steps of at least this many bytes (and at least doubles), up to the block size. */
export const dirtyBufferStepBytes = 4096;
/** Spans of blocks a FileData remembers storing past what its file held at open (scattered writes past that: all taken as stored). */
export const maxStoredSpans = 1024;

interface DirtyBlock {
  /**
   * The block's first `buf.length` bytes (at most the block size): what lies past them is zeros.
   * Sized to what was written, so a 4 KiB file in a 128 KiB block holds 4 KiB, not 128 KiB
   * zero-filled per new file (its allocation and GC were a per-file cost of small files).
   */
  buf: Buffer;
  spans: Span[];
  /** The stored bytes below `validStoredBytes` are merged into `buf` (or there are none). */
  baseLoaded: boolean;
}

export class FileData {
  private readonly dirty = new Map<number, DirtyBlock>();
  private sizeBytes: number;
  /** Bytes [0, validStoredBytes) of stored blocks are file data; past it, zeros. */
  private validStoredBytes: number;
  /**
   * Blocks wholly at or past this were not stored when the file was opened here (its size then;
   * lowered by a shrink, whose cut-off blocks are deleted before the file grows over them) …
   */
  private openedStoredBytes: number;
  /** … except these, stored by this FileData's flushes since (block-number spans, at most `maxStoredSpans`). */
  private storedBlocks: Span[] = [];
  /** The largest size this file had since the last flush: what a shrink may leave behind. */
  private highWaterBytes: number;
  /** Lowest block a truncate cut off since the last flush (null: none). */
  private truncatedFromBlock: number | null = null;
  private mtimeNs: bigint;
  /** The namespace's truncate epoch this file's buffered bytes were written under. */
  private truncEpoch: number;
  private changed = false;
  private ra: ReadAheadState = noReadAhead;
  /** When the last flush completed (the env's clock), null before the first. */
  lastFlushNs: bigint | null = null;
  /** Settles when every operation queued so far has settled. */
  private tail: Promise<void> = Promise.resolve();
  /** Settles when every exclusive operation (write, truncate, flush) queued so far has settled. */
  private exclusiveTail: Promise<void> = Promise.resolve();

  constructor(readonly ino: number, sizeBytes: number, mtimeNs: bigint, private readonly env: FileDataEnv, truncEpoch = 0) {
    invariant(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0, `file size ${sizeBytes}`);
    invariant(Number.isSafeInteger(truncEpoch) && truncEpoch >= 0, `truncate epoch ${truncEpoch}`);
    this.truncEpoch = truncEpoch;
    invariant(env.maxDirtyBytes >= env.blockSizeBytes, `buffer bound ${env.maxDirtyBytes} below one block of ${env.blockSizeBytes}`);
    this.sizeBytes = sizeBytes;
    this.validStoredBytes = sizeBytes;
    this.openedStoredBytes = sizeBytes;
    this.highWaterBytes = sizeBytes;
    this.mtimeNs = mtimeNs;
  }

  get size(): number {
    return this.sizeBytes;
  }

  /** The mtime the next flush reports (the last write's, or what the file was opened with). */
  get mtime(): bigint {
    return this.mtimeNs;
  }

  get epoch(): number {
    return this.truncEpoch;
  }

  /** Bytes held by the write buffer (whole blocks: what its bound counts, since each may grow to one). */
  get dirtyBytes(): number {
    return this.dirty.size * this.env.blockSizeBytes;
  }

  /** Bytes of memory the write buffer's blocks take now (each sized to what was written into it). */
  get bufferedBytes(): number {
    let n = 0;
    for (const d of this.dirty.values()) n += d.buf.length;
    return n;
  }

  /** Bytes [offset, offset + length), short at end of file; holes and unwritten tails are zeros. */
  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(offset, length);
    const out = Buffer.allocUnsafe(length);
    const n = await this.readTo(out, offset);
    return out.subarray(0, n);
  }

  /**
   * Reads into `target` (the FUSE request's own buffer: no copy in between) from `offset`;
   * returns the bytes read, fewer than `target.length` at end of file. Reads share the lock:
   * the kernel sends several reads of one file at once, and none of them changes the file.
   */
  async readTo(target: Buffer, offset: number): Promise<number> {
    checkRange(offset, target.length);
    return this.shared(async () => {
      const end = Math.min(this.sizeBytes, offset + target.length);
      if (offset >= end) return 0;
      const { first, last } = blockRange(offset, end - offset, this.env.blockSizeBytes);
      const parts: Promise<void>[] = [];
      for (let b = first; b <= last; b++) parts.push(this.readInto(target, offset, end, b));
      // Ahead before waiting: the window's fetches overlap this read's own.
      this.readAhead(first, last);
      await Promise.all(parts);
      return end - offset;
    });
  }

  /**
   * Buffers `data` at `offset`. A block that would take the buffer past its bound flushes it
   * first (and waits), so the buffer never holds more than `maxDirtyBytes`.
   */
  async write(offset: number, data: Uint8Array): Promise<number> {
    checkRange(offset, data.byteLength);
    return this.locked(async () => {
      if (data.byteLength === 0) return 0;
      const B = this.env.blockSizeBytes;
      const end = offset + data.byteLength;
      const priorSize = this.sizeBytes;
      // Size first: a flush in the middle of this write must find its blocks inside the file.
      this.grow(end);
      const { first, last } = blockRange(offset, data.byteLength, B);
      for (let b = first; b <= last; b++) {
        if (!this.dirty.has(b) && this.dirtyBytes + B > this.env.maxDirtyBytes) await this.flushLocked();
        const bs = b * B;
        const from = Math.max(offset, bs) - bs;
        const to = Math.min(end, bs + B) - bs;
        const d = this.dirtyBlock(b, priorSize);
        this.fit(d, to);
        d.buf.set(data.subarray(bs + from - offset, bs + to - offset), from);
        d.spans = addSpan(d.spans, from, to);
      }
      invariant(this.dirtyBytes <= this.env.maxDirtyBytes, `write buffer at ${this.dirtyBytes} bytes, over its bound`);
      return data.byteLength;
    });
  }

  /** Sets the size: a shrink zeroes the rest of the new last block; cut-off blocks are freed later. */
  async truncate(sizeBytes: number): Promise<void> {
    checkRange(sizeBytes, 0);
    return this.locked(async () => {
      await this.cut(sizeBytes);
      this.sizeBytes = sizeBytes;
      this.highWaterBytes = Math.max(this.highWaterBytes, sizeBytes);
      this.touch();
    });
  }

  /** Our own truncate was committed: the namespace answered its new epoch (never older than ours). */
  adoptEpoch(truncEpoch: number): void {
    invariant(Number.isSafeInteger(truncEpoch) && truncEpoch >= this.truncEpoch, `truncate epoch ${truncEpoch} older than ours (${this.truncEpoch})`);
    this.truncEpoch = truncEpoch;
  }

  /**
   * The namespace refused our commit's size: a truncate on another node (epoch `truncEpoch`)
   * came after the bytes we buffered (metadata/state/logic/ns-truncate.ts). As on a local disk
   * after write-then-truncate, what we hold past `sizeBytes` goes: the buffer is cut, the new
   * last block rewritten trimmed and the blocks we stored past it deleted before this returns
   * (another node growing the file must find holes there). Nothing is left to commit. A file
   * already at that epoch or newer (opened again since) has nothing to learn.
   */
  async rebase(sizeBytes: number, truncEpoch: number): Promise<void> {
    checkRange(sizeBytes, 0);
    return this.locked(async () => {
      if (truncEpoch <= this.truncEpoch) return;
      if (sizeBytes < this.sizeBytes) {
        const changed = this.changed;
        await this.cut(sizeBytes);
        this.sizeBytes = sizeBytes;
        await this.flushLocked();
        this.changed = changed;
        await this.env.freer.claim(this.ino, 0, Number.MAX_SAFE_INTEGER, new Set());
      }
      this.truncEpoch = truncEpoch;
    });
  }

  /** A shrink's part of truncate (size unchanged here): the buffer past `sizeBytes` and the trimmed last block. */
  private async cut(sizeBytes: number): Promise<void> {
    const B = this.env.blockSizeBytes;
    const tail = Math.floor(sizeBytes / B);
    // The new last block may need buffering: make room first, before anything changes.
    if (sizeBytes < this.sizeBytes && !this.dirty.has(tail) && this.dirtyBytes + B > this.env.maxDirtyBytes) await this.flushLocked();
    if (sizeBytes < this.sizeBytes) {
      for (const b of [...this.dirty.keys()]) if (b * B >= sizeBytes) this.dirty.delete(b);
      const cut = sizeBytes - tail * B;
      const d = this.dirty.get(tail);
      if (cut > 0 && d !== undefined) {
        if (cut < d.buf.length) d.buf.fill(0, cut);
        d.spans = clipSpans(d.spans, cut);
      } else if (cut > 0 && tail * B < this.validStoredBytes) {
        // Rewritten at flush, trimmed to the new length, so a later growth reads zeros there.
        this.dirty.set(tail, { buf: Buffer.alloc(0), spans: [], baseLoaded: false });
      }
      this.validStoredBytes = Math.min(this.validStoredBytes, sizeBytes);
      this.openedStoredBytes = Math.min(this.openedStoredBytes, sizeBytes);
      this.storedBlocks = clipSpans(this.storedBlocks, blocksOf(sizeBytes, B));
      const from = blocksOf(sizeBytes, B);
      this.truncatedFromBlock = Math.min(this.truncatedFromBlock ?? from, from);
      this.env.cache.invalidate(this.ino, tail);
    }
    invariant(this.dirtyBytes <= this.env.maxDirtyBytes, `write buffer at ${this.dirtyBytes} bytes after a truncate, over its bound`);
  }

  /** Writes every dirty block at the volume's concern; resolves once all are acknowledged. */
  async flush(): Promise<FlushResult> {
    return this.locked(() => this.flushLocked(true));
  }

  /** Same as flush: durability is the write concern's, reached before flush resolves. */
  async fsync(): Promise<FlushResult> {
    return this.flush();
  }

  private async flushLocked(reported = false): Promise<FlushResult> {
    const B = this.env.blockSizeBytes;
    const blocks = [...this.dirty.keys()].sort((a, b) => a - b);
    const newBlocks = blocksOf(this.sizeBytes, B);
    const cutFrom = this.truncatedFromBlock;
    const cutTo = blocksOf(this.highWaterBytes, B);
    // Blocks a truncate cut off that the file has grown over again: stale, deleted now (below).
    if (cutFrom !== null && cutFrom < Math.min(cutTo, newBlocks)) this.env.freer.enqueue(this.ino, { fromBlock: cutFrom, toBlock: Math.min(cutTo, newBlocks) });
    // Stale blocks this size would expose go first (awaited), so they never read as data.
    await this.env.freer.claim(this.ino, 0, newBlocks, new Set(blocks));
    await Promise.all(blocks.map((b) => this.loadBase(b)));
    const writes = blocks.map((b) => {
      const d = this.dirty.get(b);
      invariant(d !== undefined, `dirty block ${b} vanished during flush`);
      const len = blockLength(b, this.sizeBytes, B);
      invariant(len > 0, `dirty block ${b} past the end of a ${this.sizeBytes}-byte file`);
      return { inode: this.ino, blockNo: b, data: this.bodyOf(d, len) };
    });
    // Many blocks leave in batch requests per primary (issue #14); one block (a small file) as before, one PUT.
    if (writes.length > 0) await this.env.client.writeBlocks(this.env.volumeId, writes, this.env.concern, { batch: writes.length > 1 });
    for (const w of writes) this.env.cache.put(this.ino, w.blockNo, w.data);
    this.dirty.clear();
    for (const b of blocks) this.noteStored(b);
    this.validStoredBytes = this.sizeBytes;
    this.highWaterBytes = this.sizeBytes;
    this.truncatedFromBlock = null;
    this.lastFlushNs = this.env.nowNs();
    // Those past the new end are freed in the background, queued only once the flush succeeded,
    // so a failed flush frees nothing the namespace still counts as the file's.
    const queuedFree = cutFrom !== null && Math.max(cutFrom, newBlocks) < cutTo ? { fromBlock: Math.max(cutFrom, newBlocks), toBlock: cutTo } : null;
    if (queuedFree !== null) this.env.freer.enqueue(this.ino, queuedFree);
    const result = { changed: this.changed, sizeBytes: this.sizeBytes, mtimeNs: this.mtimeNs, blocksWritten: writes.length, queuedFree, truncEpoch: this.truncEpoch };
    // Only a flush whose result reaches the caller settles the change: one made room in the
    // buffer inside write() or truncate(), and nobody commits its result.
    if (reported) this.changed = false;
    return result;
  }

  /** Fills `out`'s bytes of block `b` (out[0] is file offset `offset`): buffered, stored, or zeros. */
  private async readInto(out: Buffer, offset: number, end: number, b: number): Promise<void> {
    const B = this.env.blockSizeBytes;
    const bs = b * B;
    const from = Math.max(offset, bs) - bs;
    const to = Math.min(end, bs + B) - bs;
    const at = bs + from - offset;
    const d = this.dirty.get(b);
    if (d !== undefined) {
      if (!covers(d.spans, from, to)) await this.loadBase(b);
      const copied = from < d.buf.length ? d.buf.copy(out, at, from, Math.min(to, d.buf.length)) : 0;
      out.fill(0, at + copied, at + to - from);
      return;
    }
    const valid = Math.min(to, this.validStoredBytes - bs);
    let copied = 0;
    if (valid > from && !this.absent(b)) {
      const stored = await this.fetch(b);
      if (from < stored.byteLength) copied = stored.copy(out, at, from, Math.min(valid, stored.byteLength));
    }
    // The target is not zeroed (a FUSE buffer): holes and bytes past what is stored read as zeros.
    out.fill(0, at + copied, at + to - from);
  }

  /** Merges the stored bytes of block `b` under the buffered ones (read-modify-write). */
  private async loadBase(b: number): Promise<void> {
    const d = this.dirty.get(b);
    if (d === undefined || d.baseLoaded) return;
    const valid = Math.min(this.env.blockSizeBytes, this.validStoredBytes - b * this.env.blockSizeBytes);
    const holes = valid > 0 && !this.absent(b) ? gaps(d.spans, 0, valid) : [];
    if (holes.length > 0) {
      const stored = await this.fetch(b);
      this.fit(d, Math.min(valid, stored.byteLength));
      for (const [s, e] of holes) if (s < stored.byteLength) stored.copy(d.buf, s, s, Math.min(e, stored.byteLength));
    }
    d.baseLoaded = true;
  }

  /** The buffered block `b`; a new one needs no stored bytes when none of the file's were there before this write. */
  private dirtyBlock(b: number, priorSize: number): DirtyBlock {
    let d = this.dirty.get(b);
    if (d === undefined) {
      d = { buf: Buffer.alloc(0), spans: [], baseLoaded: b * this.env.blockSizeBytes >= Math.min(this.validStoredBytes, priorSize) || this.absent(b) };
      this.dirty.set(b, d);
    }
    return d;
  }

  /**
   * Block `b` is known not to be stored: it lies wholly past what the file held when opened here
   * and no flush of ours wrote it since (a new file, a growth by truncate, a hole of a sparse
   * write). Its bytes are zeros without asking the data plane — on an encrypted volume every
   * read, a not-found one too, also waits for the other replicas' heads (the rollback check).
   * What another node wrote there meanwhile is not seen, as any write of another node to an open
   * file (close-to-open); a reopen reads it.
   */
  private absent(b: number): boolean {
    return b * this.env.blockSizeBytes >= this.openedStoredBytes && !inSpans(this.storedBlocks, b);
  }

  /** A flush stored block `b`; past `maxStoredSpans` scattered spans, every block up to the highest is taken as maybe stored. */
  private noteStored(b: number): void {
    if (b * this.env.blockSizeBytes < this.openedStoredBytes) return;
    this.storedBlocks = addSpan(this.storedBlocks, b, b + 1);
    if (this.storedBlocks.length > maxStoredSpans) {
      this.openedStoredBytes = Math.max(...this.storedBlocks.map((sp) => sp[1])) * this.env.blockSizeBytes;
      this.storedBlocks = [];
    }
  }

  /** Grows `d.buf` (zeros) to hold at least its first `bytes` bytes. */
  private fit(d: DirtyBlock, bytes: number): void {
    if (bytes <= d.buf.length) return;
    const B = this.env.blockSizeBytes;
    invariant(bytes <= B, `${bytes} bytes in a ${B}-byte block`);
    const size = Math.min(B, Math.max(Math.ceil(bytes / dirtyBufferStepBytes) * dirtyBufferStepBytes, 2 * d.buf.length));
    const grown = Buffer.alloc(size);
    d.buf.copy(grown);
    d.buf = grown;
  }

  /** The `len` bytes a flush stores for `d` (its buffer is dropped after the flush: no copy when it has that size). */
  private bodyOf(d: DirtyBlock, len: number): Buffer {
    if (d.buf.length === len) return d.buf;
    const body = Buffer.alloc(len);
    d.buf.copy(body, 0, 0, Math.min(len, d.buf.length));
    return body;
  }

  private fetch(b: number): Promise<Buffer> {
    return this.env.cache.get(this.ino, b, () => this.fetchOne(b));
  }

  private async fetchOne(b: number): Promise<Buffer> {
    try {
      return (await this.env.client.readBlock(this.env.volumeId, this.ino, b)).data;
    } catch (err) {
      if (isGalleonError(err, 'BLOCK_NOT_FOUND')) return noBytes;
      throw err;
    }
  }

  /** Blocks [from, from + count) in one range read (one request per object), or block by block without one. */
  private async fetchRun(from: number, count: number): Promise<Buffer[]> {
    const read = this.env.client.readBlockRange;
    try {
      if (read === undefined) return await Promise.all(Array.from({ length: count }, (_, i) => this.fetchOne(from + i)));
      return (await read.call(this.env.client, this.env.volumeId, this.ino, from, count)).map((r) => r?.data ?? noBytes);
    } catch (err) {
      // A reader that joined it gets the error, as with a fetch of its own; one that comes later fetches again.
      this.env.log?.debug({ err, ino: this.ino, from, count }, 'read-ahead failed');
      throw err;
    }
  }

  private readAhead(first: number, last: number): void {
    const plan = planReadAhead(this.ra, first, last, this.env.readAhead);
    this.ra = plan.state;
    const limit = blocksOf(this.validStoredBytes, this.env.blockSizeBytes);
    // Known not stored (`absent`) reads as zeros: nothing to fetch.
    const held = (b: number): boolean => this.dirty.has(b) || this.env.cache.has(this.ino, b) || this.absent(b);
    for (const [s, e] of readAheadRuns(plan.from, plan.to, limit, held, Math.max(1, Math.floor(plan.state.windowBlocks / 2)))) {
      void this.env.cache.prefetchRun(this.ino, s, e - s, () => this.fetchRun(s, e - s));
    }
  }

  private grow(end: number): void {
    this.sizeBytes = Math.max(this.sizeBytes, end);
    this.highWaterBytes = Math.max(this.highWaterBytes, this.sizeBytes);
    this.touch();
  }

  private touch(): void {
    this.mtimeNs = this.env.nowNs();
    this.changed = true;
  }

  /** Exclusive: runs after every operation queued before it, and before any queued after it. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    const done = run.then(noop, noop);
    this.tail = done;
    this.exclusiveTail = done;
    return run;
  }

  /** Shared: runs after the exclusive operations queued before it, alongside other shared ones. */
  private shared<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusiveTail.then(fn);
    const prev = this.tail;
    this.tail = Promise.all([prev, run.then(noop, noop)]).then(noop);
    return run;
  }
}

function noop(): void {}

/** Whether a sorted span list covers `n`. */
function inSpans(spans: readonly Span[], n: number): boolean {
  for (const [s, e] of spans) {
    if (n < s) return false;
    if (n < e) return true;
  }
  return false;
}

function covers(spans: readonly Span[], from: number, to: number): boolean {
  return gaps(spans, from, to).length === 0;
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || length > maxIoBytes) {
    throw new GalleonError('INVALID_ARGUMENT', `invalid file range: ${length} bytes at offset ${offset}`, { hint: `offsets are non-negative integers; at most ${maxIoBytes} bytes per call` });
  }
}
