/**
 * Freeing the blocks of a truncated or deleted file on the data plane, a bounded number per
 * step, so a controller (or the mount's background freer) can interleave it with other work
 * and record its progress between steps. Deleting a block that was never written is harmless
 * (the data plane journals a delete of an absent block like any other).
 */
import type { Logger } from 'pino';
import { invariant } from '../../proto/errors.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';

/** Deletes sent per step: bounds the work (and requests in flight) one step costs. */
export const defaultFreeBlocksPerStep = 256;
/** Disjoint pending ranges kept per inode; more are merged into their hull. */
export const maxPendingRangesPerInode = 16;

export type BlockDeleter = Pick<BlockClient, 'deleteBlock'>;

export interface FreeRange {
  fromBlock: number;
  toBlock: number;
}

/**
 * Deletes blocks [fromBlock, min(toBlock, fromBlock + maxBlocksPerStep)) of `ino`, each
 * acknowledged at `concern`; returns the first block not yet freed (== toBlock when done).
 */
export async function freeBlocksStep(
  client: BlockDeleter, volumeId: string, ino: number, range: FreeRange, concern: WriteConcern,
  maxBlocksPerStep = defaultFreeBlocksPerStep, skip: ReadonlySet<number> = new Set(),
): Promise<number> {
  invariant(maxBlocksPerStep >= 1 && range.fromBlock >= 0 && range.fromBlock <= range.toBlock, `free step ${range.fromBlock}..${range.toBlock} by ${maxBlocksPerStep}`);
  const end = Math.min(range.toBlock, range.fromBlock + maxBlocksPerStep);
  const work: Promise<unknown>[] = [];
  for (let b = range.fromBlock; b < end; b++) if (!skip.has(b)) work.push(client.deleteBlock(volumeId, ino, b, concern));
  await Promise.all(work);
  return end;
}

/** Frees [fromBlock, toBlock) of `ino` in steps of at most `maxBlocksPerStep` deletes. */
export async function freeBlocks(
  client: BlockDeleter, volumeId: string, ino: number, fromBlock: number, toBlock: number, concern: WriteConcern,
  maxBlocksPerStep = defaultFreeBlocksPerStep,
): Promise<void> {
  for (let at = fromBlock; at < toBlock;) at = await freeBlocksStep(client, volumeId, ino, { fromBlock: at, toBlock }, concern, maxBlocksPerStep);
}

/**
 * The mount's background freer: pending ranges per inode, freed one bounded step at a time by
 * one worker. A file that grows over a pending range claims it first (`claim`), which waits
 * for the step in flight, so a delete never lands after the write that replaced it.
 * Pending ranges live in memory only: the namespace must record what a crash would lose.
 *
 * Every pending range of an inode lies at or past the end its last flush committed (a flush
 * queues what a truncate cut off past the new end and claims everything below it), so merging
 * ranges into their hull (past `maxPendingRangesPerInode`) never takes in live blocks.
 */
export class BlockFreer {
  private readonly pending = new Map<number, FreeRange[]>();
  private chain: Promise<void> = Promise.resolve();
  private running = false;
  private stopped = false;

  constructor(
    private readonly client: BlockDeleter, private readonly volumeId: string, private readonly concern: WriteConcern,
    private readonly log: Logger | undefined, private readonly maxBlocksPerStep = defaultFreeBlocksPerStep,
  ) {}

  /** Inodes with blocks still queued for freeing. */
  pendingInodes(): number {
    return this.pending.size;
  }

  pendingOf(ino: number): readonly FreeRange[] {
    return this.pending.get(ino) ?? [];
  }

  enqueue(ino: number, range: FreeRange): void {
    if (range.fromBlock >= range.toBlock) return;
    let list = [...this.pendingOf(ino), range].sort((a, b) => a.fromBlock - b.fromBlock);
    if (list.length > maxPendingRangesPerInode) list = [{ fromBlock: list[0]?.fromBlock ?? 0, toBlock: Math.max(...list.map((r) => r.toBlock)) }];
    this.pending.set(ino, list);
    this.kick();
  }

  /**
   * Removes blocks [fromBlock, toBlock) of `ino` from the queue and deletes them now (except
   * `skip`, which the caller overwrites); resolves once they are gone.
   */
  async claim(ino: number, fromBlock: number, toBlock: number, skip: ReadonlySet<number>): Promise<void> {
    // A range stays pending while its step runs, so no overlap means nothing to wait for: a
    // flush never queues behind another file's frees.
    if (!this.pendingOf(ino).some((r) => r.fromBlock < toBlock && fromBlock < r.toBlock)) return;
    return this.serial(async () => {
      const taken: FreeRange[] = [];
      const left: FreeRange[] = [];
      for (const r of this.pendingOf(ino)) {
        const lo = Math.max(r.fromBlock, fromBlock);
        const hi = Math.min(r.toBlock, toBlock);
        if (lo >= hi) { left.push(r); continue; }
        taken.push({ fromBlock: lo, toBlock: hi });
        if (r.fromBlock < lo) left.push({ fromBlock: r.fromBlock, toBlock: lo });
        if (hi < r.toBlock) left.push({ fromBlock: hi, toBlock: r.toBlock });
      }
      this.setPending(ino, left);
      for (const r of taken) {
        for (let at = r.fromBlock; at < r.toBlock;) at = await freeBlocksStep(this.client, this.volumeId, ino, { fromBlock: at, toBlock: r.toBlock }, this.concern, this.maxBlocksPerStep, skip);
      }
    });
  }

  /** Resolves when nothing is pending (or the freer was stopped); rejects with a step's failure. */
  async drain(): Promise<void> {
    while (!this.stopped && this.pending.size > 0) await this.serial(() => this.step());
  }

  stop(): void {
    this.stopped = true;
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    // A failed step is logged and left queued until the next enqueue, claim or drain retries it.
    void this.serial(() => this.step()).then(
      () => { this.running = false; if (this.pending.size > 0 && !this.stopped) this.kick(); },
      () => { this.running = false; },
    );
  }

  /** One bounded step of the first pending range; a failure keeps it queued and is logged. */
  private async step(): Promise<void> {
    const first = this.pending.entries().next();
    if (first.done === true) return;
    const [ino, list] = first.value;
    const r = list[0];
    invariant(r !== undefined, `empty pending list of inode ${ino}`);
    try {
      const next = await freeBlocksStep(this.client, this.volumeId, ino, r, this.concern, this.maxBlocksPerStep);
      const rest = this.pendingOf(ino).map((x) => (x.fromBlock === r.fromBlock && x.toBlock === r.toBlock ? { fromBlock: next, toBlock: r.toBlock } : x));
      this.setPending(ino, rest);
    } catch (err) {
      this.log?.warn({ err, ino, range: r }, 'freeing blocks failed; left queued');
      throw err;
    }
  }

  private setPending(ino: number, list: FreeRange[]): void {
    const live = list.filter((r) => r.fromBlock < r.toBlock);
    if (live.length === 0) this.pending.delete(ino);
    else this.pending.set(ino, live);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.then(() => undefined, () => undefined);
    return run;
  }
}
