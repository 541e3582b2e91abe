/**
 * Frees on the data plane the blocks of deleted files the namespace queued: list a bounded
 * batch (`fsListBlocksToFree`), delete each range a bounded number of blocks per step, ack the
 * seqs (`fsAckBlocksFreed`).
 * - An entry whose inode still exists is a truncate: the mount that truncated deleted the cut
 *   blocks before the namespace shrank (GalleonFs.resize), so it is only acked. Deleting here
 *   could race a regrowth on another node and destroy new data.
 * - An entry whose inode is gone (inode numbers are never reused, so nothing can race it) is
 *   freed up to its `toBlock` when the namespace recorded one (a file an in-place restore
 *   dropped), else up to the largest size this mount saw the inode have. A mount that never saw it leaves
 *   it to one that did, for `reapUnknownAfterRounds` rounds; then it frees up to the volume's
 *   size (a file never outgrows its volume), so nothing leaks.
 * - An entry with `inoEnd` is the reclaim of a mount session that ended holding delegations (it
 *   may have died between its block writes and its fsCommitBatch): the data plane's listing of the
 *   volume's blocks says which inodes of [ino, inoEnd) have blocks; those with no inode record are
 *   freed (the namespace hands those numbers to nobody else, and their mount dropped them).
 * Driven by `kick()` after unlinks and closes, and a slow timer; one batch at a time.
 */
import type { Logger } from 'pino';
import type { FsApi, FsBlocksToFree, WriteConcern } from '../../proto/metadata-types.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { freeBlocksStep, type BlockDeleter } from '../data/free-blocks.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';

/** What the reaper asks of the data plane: deletes, and a listing of the volume's blocks (range reclaims). */
export type ReaperClient = BlockDeleter & Pick<BlockClient, 'listVolumeBlocks'>;

/** Queue entries fetched per batch. */
export const reapBatchEntries = 64;
/** Deletes per step (one step runs at a time). */
export const reapBlocksPerStep = 256;
/** Without kicks, the queue is looked at this often (another node's deletes). */
export const reapIntervalMs = 5_000;
/** Entries listed per batch when draining without a mount (the namespace's listing limit). */
export const maxBlocksToFreeListed = 1_024;
/** Batches a drain runs before it gives up (the entries stay queued for the mounts). */
export const drainMaxBatches = 10_000;
/** Rounds an entry of an inode this mount never saw waits for a mount that did. */
export const reapUnknownAfterRounds = 12;
/** Entries whose rounds are counted (bounded like everything else). */
const maxWaitingEntries = 4_096;

export interface ReaperOptions {
  api: Pick<FsApi, 'fsListBlocksToFree' | 'fsAckBlocksFreed' | 'fsGetattr'>;
  client: ReaperClient;
  volume: { id: string; sizeBytes: number; blockSizeBytes: number; writeConcern: WriteConcern };
  /** Largest size seen for `ino` on this mount, if any. */
  knownSize: (ino: number) => number | undefined;
  isOpenHere: (ino: number) => boolean;
  log: Logger;
}

export class BlockReaper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly waiting = new Map<number, number>();
  freedBlocks = 0;

  constructor(private readonly o: ReaperOptions) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), reapIntervalMs);
    this.timer.unref();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running !== null) { this.again = true; return; }
    this.running = this.runBatch().then(() => undefined, (err: unknown) => this.o.log.warn({ err }, 'block reaper step failed; retrying later'))
      .finally(() => {
        this.running = null;
        if (this.again) { this.again = false; this.kick(); }
      });
  }

  /**
   * Without a mount (the daemon that ran an in-place restore): frees every queued entry that
   * carries its own end, batch by batch, until none is listed; entries of unlinked files are left
   * to the mounts' reapers. Returns the blocks freed.
   */
  async drainKnownEnds(maxBatches = drainMaxBatches): Promise<number> {
    const before = this.freedBlocks;
    for (let i = 0; i < maxBatches && !this.stopped; i++) {
      if (await this.runBatch(maxBlocksToFreeListed, true) === 0) return this.freedBlocks - before;
    }
    throw new GalleonError(ErrorCode.TIMEOUT, `volume ${this.o.volume.id}: blocks still queued for freeing after ${maxBatches} batches`, { hint: 'they stay queued: a read-write mount of the volume frees them' });
  }

  /** One batch; returns how many listed entries carried their own end (`knownOnly`: the only ones handled). */
  private async runBatch(limit = reapBatchEntries, knownOnly = false): Promise<number> {
    const v = this.o.volume;
    const batch = await this.o.api.fsListBlocksToFree(v.id, limit);
    const done: number[] = [];
    let withEnds = 0;
    for (const e of batch) {
      if (this.stopped) break;
      if (e.inoEnd !== undefined) {
        if (knownOnly) continue;
        if (await this.reclaimRange(e.ino, e.inoEnd)) done.push(e.seq);
        continue;
      }
      if (e.toBlock !== undefined) withEnds++;
      else if (knownOnly) continue;
      if (this.o.isOpenHere(e.ino)) continue;
      if (await this.exists(e.ino)) { done.push(e.seq); continue; }
      const toBlock = this.endOf(e);
      if (toBlock === null) continue;
      for (let at = e.fromBlock; at < toBlock && !this.stopped;) {
        const next = await freeBlocksStep(this.o.client, v.id, e.ino, { fromBlock: at, toBlock }, v.writeConcern, reapBlocksPerStep);
        this.freedBlocks += next - at;
        at = next;
      }
      if (!this.stopped) { done.push(e.seq); this.waiting.delete(e.seq); }
    }
    if (done.length > 0) await this.o.api.fsAckBlocksFreed(v.id, done);
    return withEnds;
  }

  /** The first block past what to free: the entry's own end (a restore's dropped file), else the size this mount saw. */
  private endOf(e: FsBlocksToFree): number | null {
    const v = this.o.volume;
    if (e.toBlock !== undefined) return Math.max(e.fromBlock, e.toBlock);
    const size = this.o.knownSize(e.ino) ?? this.waitedOut(e.seq, v.sizeBytes);
    return size === null ? null : Math.max(e.fromBlock, Math.ceil(size / v.blockSizeBytes));
  }

  /** Frees the blocks of inodes in [from, to) that have no inode: true when done (false: stopped midway). */
  private async reclaimRange(from: number, to: number): Promise<boolean> {
    const v = this.o.volume;
    const byIno = new Map<number, number[]>();
    for (const a of await this.o.client.listVolumeBlocks(v.id)) {
      if (a.inode >= from && a.inode < to) byIno.set(a.inode, [...(byIno.get(a.inode) ?? []), a.blockNo]);
    }
    for (const [ino, blocks] of byIno) {
      if (this.stopped) return false;
      if (this.o.isOpenHere(ino) || await this.exists(ino)) continue;
      // At most reapBlocksPerStep deletes in flight, as for any other entry.
      for (let i = 0; i < blocks.length && !this.stopped; i += reapBlocksPerStep) {
        const step = blocks.slice(i, i + reapBlocksPerStep);
        await Promise.all(step.map((b) => this.o.client.deleteBlock(v.id, ino, b, v.writeConcern)));
        this.freedBlocks += step.length;
      }
    }
    return !this.stopped;
  }

  private async exists(ino: number): Promise<boolean> {
    try {
      await this.o.api.fsGetattr(this.o.volume.id, ino);
      return true;
    } catch (err) {
      if ((err as { details?: { errno?: unknown } }).details?.errno === 'ENOENT') return false;
      throw err;
    }
  }

  /** null while another mount may know the size; the volume's size once the entry waited long enough. */
  private waitedOut(seq: number, volumeBytes: number): number | null {
    const rounds = (this.waiting.get(seq) ?? 0) + 1;
    if (rounds >= reapUnknownAfterRounds) return volumeBytes;
    if (this.waiting.size < maxWaitingEntries || this.waiting.has(seq)) this.waiting.set(seq, rounds);
    return null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.running;
  }
}
