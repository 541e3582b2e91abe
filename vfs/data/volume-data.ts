/**
 * The file data of one mounted volume: one block cache, one background freer, and the open
 * files (one FileData per inode, shared by its open handles, counted).
 *
 * Close-to-open consistency: `open()` of an inode no handle on this mount has open checks the
 * inode's change token (from the namespace, read fresh at open) against the token its cached
 * blocks were read under, and drops them when it differs; the last `close()` flushes at the
 * volume's write concern before it returns. A file closed on one node and opened afterwards on
 * another therefore reads what was written.
 */
import type { Logger } from 'pino';
import { GalleonError, invariant } from '../../proto/errors.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { BlockCache, defaultCacheBytes } from './block-cache.js';
import type { BlockCacheStats } from './block-cache.js';
import { BlockFreer, defaultFreeBlocksPerStep } from './free-blocks.js';
import {
  defaultMaxDirtyBytes, defaultReadAheadInitialBytes, defaultReadAheadMaxBytes, FileData,
} from './file-data.js';
import type { FileBlockIo, FileDataEnv, FlushResult } from './file-data.js';
import { blocksOf } from './layout.js';

export interface VolumeDataOptions {
  client: FileBlockIo;
  volume: { id: string; blockSizeBytes: number; writeConcern: WriteConcern };
  /** Read cache bound for the whole mount (bytes of cached block bodies). */
  cacheBytes?: number;
  /** Write buffer bound per open file, in bytes (whole blocks are counted). */
  maxDirtyBytesPerFile?: number;
  readAheadInitialBytes?: number;
  readAheadMaxBytes?: number;
  freeBlocksPerStep?: number;
  nowNs?: () => bigint;
  log?: Logger;
}

/** What the namespace says about an inode at open. */
export interface OpenAttrs {
  sizeBytes: number;
  mtimeNs: bigint;
  /** Changes whenever the file's content may have changed (e.g. `${size}:${mtimeNs}` or a version). */
  changeToken: string;
  /** The namespace's truncate epoch of the inode (default 0): commits carry it (FileData.rebase). */
  truncEpoch?: number;
}

export interface VolumeDataStats {
  openFiles: number;
  /** Buffered bytes not yet on the data plane (whole blocks). */
  dirtyBytes: number;
  /** When a flush last completed on this mount (null: never). */
  lastFlushNs: bigint | null;
  cache: BlockCacheStats;
  pendingFreeInodes: number;
}

interface OpenFile {
  file: FileData;
  handles: number;
}

export class VolumeData {
  readonly cache: BlockCache;
  readonly freer: BlockFreer;
  private readonly open_ = new Map<number, OpenFile>();
  private readonly env: FileDataEnv;
  /** The latest flush of a file closed since (open files keep their own). */
  private lastFlushNs: bigint | null = null;

  constructor(o: VolumeDataOptions) {
    const B = o.volume.blockSizeBytes;
    invariant(Number.isInteger(B) && B > 0 && (B & (B - 1)) === 0, `block size ${B} is not a power of two`);
    this.cache = new BlockCache(o.cacheBytes ?? defaultCacheBytes);
    this.freer = new BlockFreer(o.client, o.volume.id, o.volume.writeConcern, o.log, o.freeBlocksPerStep ?? defaultFreeBlocksPerStep);
    // Read-ahead never takes more than a quarter of the cache, so it cannot evict what it fetched.
    const maxAhead = Math.min(o.readAheadMaxBytes ?? defaultReadAheadMaxBytes, Math.floor(this.cache.maxBytes / 4));
    const maxWindowBlocks = Math.max(1, Math.floor(maxAhead / B));
    this.env = {
      client: o.client, volumeId: o.volume.id, blockSizeBytes: B, concern: o.volume.writeConcern,
      cache: this.cache, freer: this.freer,
      maxDirtyBytes: Math.max(o.maxDirtyBytesPerFile ?? defaultMaxDirtyBytes, B),
      readAhead: { initialWindowBlocks: Math.min(maxWindowBlocks, Math.max(1, Math.ceil((o.readAheadInitialBytes ?? defaultReadAheadInitialBytes) / B))), maxWindowBlocks },
      nowNs: o.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n),
      log: o.log,
    };
  }

  get blockSizeBytes(): number {
    return this.env.blockSizeBytes;
  }

  /** The inode's FileData, shared with its other open handles on this mount. */
  open(ino: number, attrs: OpenAttrs): FileData {
    checkIno(ino);
    const of = this.open_.get(ino);
    if (of !== undefined) {
      of.handles++;
      return of.file;
    }
    this.cache.validate(ino, attrs.changeToken);
    const file = new FileData(ino, attrs.sizeBytes, attrs.mtimeNs, this.env, attrs.truncEpoch ?? 0);
    this.open_.set(ino, { file, handles: 1 });
    return file;
  }

  /**
   * Drops one handle; the last one flushes first (at the volume's concern). Commit the result
   * to the namespace, then pass the token it gives the inode to `retag` to keep the cache warm.
   */
  async close(file: FileData): Promise<FlushResult> {
    const of = this.open_.get(file.ino);
    invariant(of !== undefined && of.file === file && of.handles > 0, `close of inode ${file.ino}, which is not open here`);
    try {
      return await file.flush();
    } finally {
      of.handles--;
      if (of.handles === 0) {
        this.open_.delete(file.ino);
        if (file.lastFlushNs !== null && (this.lastFlushNs === null || file.lastFlushNs > this.lastFlushNs)) this.lastFlushNs = file.lastFlushNs;
      }
    }
  }

  /**
   * Drops one handle without flushing: its buffered bytes are discarded when it was the last (a
   * write-back file whose batch can never commit: vfs/fs/writeback.ts).
   */
  discard(file: FileData): void {
    const of = this.open_.get(file.ino);
    invariant(of !== undefined && of.file === file && of.handles > 0, `discard of inode ${file.ino}, which is not open here`);
    of.handles--;
    if (of.handles === 0) this.open_.delete(file.ino);
  }

  /** After committing our own flush: the token the namespace now gives `ino`. */
  retag(ino: number, changeToken: string): void {
    this.cache.retag(ino, changeToken);
  }

  /** For `vfs status`: open files, bytes waiting to be written, the cache, frees still queued. */
  stats(): VolumeDataStats {
    let dirtyBytes = 0;
    let lastFlushNs: bigint | null = this.lastFlushNs;
    for (const { file } of this.open_.values()) {
      dirtyBytes += file.dirtyBytes;
      if (file.lastFlushNs !== null && (lastFlushNs === null || file.lastFlushNs > lastFlushNs)) lastFlushNs = file.lastFlushNs;
    }
    return { openFiles: this.open_.size, dirtyBytes, lastFlushNs, cache: this.cache.stats(), pendingFreeInodes: this.freer.pendingInodes() };
  }

  openHandles(ino: number): number {
    return this.open_.get(ino)?.handles ?? 0;
  }

  /** A deleted (last link gone, last handle closed) file: its blocks are freed in the background. */
  deleteFile(ino: number, sizeBytes: number): void {
    checkIno(ino);
    if (this.open_.has(ino)) {
      throw new GalleonError('FAILED_PRECONDITION', `inode ${ino} is still open on this mount`, { hint: 'free a file\'s blocks after its last close' });
    }
    this.cache.invalidate(ino);
    this.freer.enqueue(ino, { fromBlock: 0, toBlock: blocksOf(sizeBytes, this.env.blockSizeBytes) });
  }

  /** Stops the background freer (what is pending stays pending: the namespace keeps its record). */
  shutdown(): void {
    this.freer.stop();
  }
}

function checkIno(ino: number): void {
  if (!Number.isSafeInteger(ino) || ino < 0) {
    throw new GalleonError('INVALID_ARGUMENT', `invalid inode number ${ino}`, { hint: 'inode numbers are non-negative integers' });
  }
}
