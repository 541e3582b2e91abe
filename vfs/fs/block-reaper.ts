/**
 * Frees on the data plane the blocks the namespace queued (unlinked files, shrinking
 * truncates): list a bounded batch (`fsListBlocksToFree`), delete each range a bounded number
 * of blocks per step, ack the seqs (`fsAckBlocksFreed`). The namespace knows where a range
 * starts, not where the old file ended: the end is the largest size this mount saw the inode
 * have, else the volume's size (a file never outgrows its volume). A range whose inode is open
 * on this mount is left for later (its own FileData frees what it cut, and a regrowth must not
 * race a delete). Driven by `kick()` after mutations and a slow timer; one step at a time.
 */
import type { Logger } from 'pino';
import type { FsApi, WriteConcern } from '../../proto/metadata-types.js';
import { freeBlocksStep, type BlockDeleter } from '../data/free-blocks.js';

/** Queue entries fetched per batch. */
export const reapBatchEntries = 64;
/** Deletes per step (one step runs at a time). */
export const reapBlocksPerStep = 256;
/** Without kicks, the queue is looked at this often (another node's deletes). */
export const reapIntervalMs = 5_000;

export interface ReaperOptions {
  api: Pick<FsApi, 'fsListBlocksToFree' | 'fsAckBlocksFreed'>;
  client: BlockDeleter;
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
  freedBlocks = 0;

  constructor(private readonly o: ReaperOptions) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), reapIntervalMs);
    this.timer.unref();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running !== null) { this.again = true; return; }
    this.running = this.runBatch().catch((err: unknown) => this.o.log.warn({ err }, 'block reaper step failed; retrying later'))
      .finally(() => {
        this.running = null;
        if (this.again) { this.again = false; this.kick(); }
      });
  }

  private async runBatch(): Promise<void> {
    const v = this.o.volume;
    const batch = await this.o.api.fsListBlocksToFree(v.id, reapBatchEntries);
    const done: number[] = [];
    for (const e of batch) {
      if (this.stopped) break;
      if (this.o.isOpenHere(e.ino)) continue;
      const size = this.o.knownSize(e.ino) ?? v.sizeBytes;
      const toBlock = Math.max(e.fromBlock, Math.ceil(size / v.blockSizeBytes));
      for (let at = e.fromBlock; at < toBlock && !this.stopped;) {
        const next = await freeBlocksStep(this.o.client, v.id, e.ino, { fromBlock: at, toBlock }, v.writeConcern, reapBlocksPerStep);
        this.freedBlocks += next - at;
        at = next;
      }
      if (!this.stopped) done.push(e.seq);
    }
    if (done.length > 0) await this.o.api.fsAckBlocksFreed(v.id, done);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.running;
  }
}
