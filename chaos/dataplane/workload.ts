/**
 * Concurrent writers over a fixed set of blocks of one volume. Each writer issues one write at
 * a time (a unique value per write, mostly at the class's `replicated` concern, some weaker so
 * the check has to tell what may be lost), records it, and on an error backs off briefly and
 * carries on. Writers share the blocks, so writes to one block race each other.
 */
import type { BlockClient } from '../../dataplane/client/block-client.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { Random } from '../lib/random.js';
import { delay, withTimeout } from '../lib/wait.js';
import { encodeBlock } from './content.js';
import type { WriteHistory } from './history.js';

export interface BlockRef {
  inode: number;
  blockNo: number;
}

export function blockKey(b: BlockRef): string {
  return `${b.inode}/${b.blockNo}`;
}

/** Spread over two inodes and far-apart block numbers, so the blocks land in many PGs. */
export function chaosBlocks(count: number): BlockRef[] {
  return Array.from({ length: count }, (_, i) => ({ inode: 1 + (i % 2), blockNo: i * 37 }));
}

/**
 * Cold blocks: written once at `replicated` before the load and never again, one per object
 * (blocksPerObject 64 apart) so they spread over the PGs. The hot blocks are rewritten many
 * times a second, which hides a PG that lost old data; a cold block keeps its one value to the
 * end, so any loss of it shows in the final reads.
 */
export function coldBlocks(count: number): BlockRef[] {
  return Array.from({ length: count }, (_, i) => ({ inode: 4, blockNo: i * 64 }));
}

/** Writes each cold block once at `replicated`, recorded like any write; retried until acknowledged. */
export async function writeColdBlocks(history: WriteHistory, client: BlockClient, volumeId: string, blocks: readonly BlockRef[], blockSizeBytes: number, opTimeoutMs: number, writer: number): Promise<void> {
  for (const b of blocks) {
    const value = `cold-${blockKey(b)}`;
    for (let attempt = 1; ; attempt++) {
      const w = history.begin(writer, blockKey(b), value, 'replicated');
      try {
        await withTimeout(client.writeBlock(volumeId, b.inode, b.blockNo, encodeBlock(value, blockSizeBytes), 'replicated'), opTimeoutMs);
        history.acked(w);
        break;
      } catch (err) {
        history.failed(err);
        if (attempt >= maxColdWriteAttempts) throw err;
        await delay(coldRetryDelayMs);
      }
    }
  }
}
const maxColdWriteAttempts = 20;
const coldRetryDelayMs = 250;

export interface WorkloadOptions {
  volumeId: string;
  blocks: readonly BlockRef[];
  blockSizeBytes: number;
  /** Our bound on one write, the client's own retries included. */
  opTimeoutMs: number;
  errorBackoffMs: number;
  /** Fraction of writes at a concern weaker than `replicated` (split between acknowledged and durable). */
  weakFraction: number;
}

export class Workload {
  private stopping = false;

  constructor(private readonly history: WriteHistory, private readonly options: WorkloadOptions) {}

  stop(): void {
    this.stopping = true;
  }

  async runWriter(writer: number, client: BlockClient, seed: number): Promise<void> {
    const rnd = new Random(seed);
    const o = this.options;
    for (let n = 0; !this.stopping; n++) {
      const block = rnd.pick(o.blocks);
      const r = rnd.next();
      const concern: WriteConcern = r < o.weakFraction / 2 ? 'acknowledged' : r < o.weakFraction ? 'durable' : 'replicated';
      const value = `w${writer}-${n}`;
      const w = this.history.begin(writer, blockKey(block), value, concern);
      try {
        await withTimeout(client.writeBlock(o.volumeId, block.inode, block.blockNo, encodeBlock(value, o.blockSizeBytes), concern), o.opTimeoutMs);
        this.history.acked(w);
      } catch (err) {
        this.history.failed(err);
        await delay(o.errorBackoffMs);
      }
    }
  }
}
