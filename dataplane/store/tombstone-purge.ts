/**
 * Tombstone purge. A tombstone (a deleted block's index entry, kept with its seq) exists so that
 * an older put arriving late cannot bring the block back. The rule: a tombstone of PG p at seq s
 * may go once s <= p's trimmed journal seq on this node. Why that is enough, per path that can
 * still deliver an older version of the block here:
 *
 * - Replicated writes, journal catch-up, peering pulls (BlockOp through writeBatch): every op with
 *   seq <= the PG's contiguous applied seq is dropped as a duplicate before any block is looked
 *   at, and trimmedSeq <= appliedSeq always. An op with a higher seq is newer than s anyway.
 * - Full resync (rewriteBlock with the primary's blocks): a resync happens only when this node is
 *   behind the primary's trimmed journal, so the primary has applied every seq up to ours,
 *   the delete at s included: its copy of the block, if any, has a seq above s. Blocks a resync
 *   drops become tombstones at their old seq, below the watermark the resync then jumps to, so
 *   they are purged soon after — by then nothing of that resync is still in flight.
 * - Scrub and read repair rewrite only a block whose local copy exists (damaged), never a
 *   deleted one; a purged block reads BLOCK_NOT_FOUND exactly like a tombstone.
 * - Hand-back (a replaced node returning) sends its blocks to the primary, which compares each
 *   with the stamp of its own newest entry, a tombstone included (`readStamp`). A node that left
 *   the PG is no member, so "every replica applied past s" says nothing about its copy: the
 *   metadata service records it as departed in the PG's placement until it reports the copy gone
 *   (handed back and dropped), and the reclaimer purges no tombstone of a PG with a departed
 *   copy (`keepTombstonesOf`, read after the census: a departure recorded later belongs to a node
 *   that was a member at the census, so it had applied past every candidate's seq). A node
 *   removed from the cluster (`galleon node remove`) is forgotten: it must not return with its
 *   old disk (../server/README.md, "Hand-back").
 * The trimmed seq (rather than the applied seq) also means every replica has applied past s
 * (the primary trims at the lowest seq all replicas reported), so no replica can still need this
 * node's view of the delete through any path we do not know of today.
 *
 * The purge itself is an ordered commit that re-checks each entry is still the very tombstone
 * the census saw and still at or below the trimmed seq (maintenance.ts), in batches at a bounded
 * rate.
 */
import type { StoreMaintenance, TombstonePurge } from './maintenance.js';
import { Pacer } from './pacer.js';
import { noStoreMetrics } from './store-metrics.js';
import type { StoreMetrics } from './store-metrics.js';

export const defaultPurgeBatch = 1024;
/** Tombstones deleted per second at most (each is one small LevelDB delete). */
export const defaultPurgePerSecond = 20_000;
/** Purge candidates one census collects; the rest wait for the next pass. */
export const defaultMaxPurgeCandidates = 50_000;

export interface TombstonePurgeOptions {
  batch?: number;
  maxPerSecond?: number;
  signal?: AbortSignal;
  metrics?: Pick<StoreMetrics, 'tombstonesPurged'>;
}

export async function purgeTombstones(m: StoreMaintenance, candidates: readonly TombstonePurge[], opts: TombstonePurgeOptions = {}): Promise<number> {
  const batch = opts.batch ?? defaultPurgeBatch;
  const rate = opts.maxPerSecond ?? defaultPurgePerSecond;
  const pacer = new Pacer(opts.signal === undefined ? {} : { signal: opts.signal });
  let purged = 0;
  for (let i = 0; i < candidates.length && opts.signal?.aborted !== true; i += batch) {
    pacer.begin();
    const slice = candidates.slice(i, i + batch);
    const n = await m.purgeTombstones(slice);
    purged += n;
    (opts.metrics ?? noStoreMetrics).tombstonesPurged.inc(n);
    await pacer.end({ amount: slice.length, perSecond: rate });
  }
  return purged;
}
