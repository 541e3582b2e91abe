/**
 * Segment garbage collection: a sealed segment whose live bytes fell below a fraction of its size
 * has its live bodies copied forward through the store's normal append path, then is deleted.
 *
 * Why nothing is lost and nothing dangles, at any crash point:
 * - Only segments below a fence are touched: every commit that appended to them has landed, and
 *   no later commit (client write, repair, or this GC's own copies) can point into them.
 * - A copy lands as one ordered commit that re-reads the index entry and applies only if it is
 *   byte-for-byte what the census saw (a block overwritten or deleted meanwhile stays as it is),
 *   with its body appended and fdatasync'd before the synced index batch. Before a file goes, a
 *   synced fence makes every index change that moved pointers away from it durable.
 * - The file is deleted only when every entry the census found in it was moved or changed (a
 *   body that fails its crc is left in place for the scrubber, and keeps its segment alive),
 *   and after reads still using it finished (SegmentPins); a read that finds it retired re-reads
 *   the index, which points at the new copy.
 * A crash before the delete leaves both copies (the old one is garbage the next pass removes); a
 * crash during copying leaves unreferenced bytes in the current segment (garbage too).
 */
import { isGalleonError } from '../../proto/errors.js';
import { segmentPointer } from './index-census.js';
import type { Census } from './index-census.js';
import type { Relocation, StoreMaintenance } from './maintenance.js';
import { Pacer } from './pacer.js';
import { noStoreMetrics } from './store-metrics.js';
import type { StoreMetrics } from './store-metrics.js';

/** Compact a sealed segment when less than this fraction of its bytes is live. */
export const defaultLiveRatioThreshold = 0.5;
/** Copy-forward rate bound, so GC never takes the disk from client writes. */
export const defaultGcBytesPerSecond = 32 * 1024 * 1024;
/** Bodies per relocation commit. */
export const defaultRelocateBatchBytes = 4 * 1024 * 1024;
/** Partly live segments compacted per pass (their live entries are held in memory meanwhile);
 *  wholly dead ones cost no copy and are all deleted. */
export const defaultMaxSegmentsPerPass = 16;
/** A pass stops taking victims past this many bytes copied, so segments that died meanwhile
 *  (free to delete) wait at most one bounded pass. */
export const defaultMaxCopyBytesPerPass = 256 * 1024 * 1024;

export interface SegmentGcOptions {
  liveRatioThreshold?: number;
  maxBytesPerSecond?: number;
  relocateBatchBytes?: number;
  maxSegmentsPerPass?: number;
  maxCopyBytesPerPass?: number;
  /** Partly live segments qualify only below this id (sealed before the previous pass). */
  coldBelow?: number;
  signal?: AbortSignal;
  metrics?: Pick<StoreMetrics, 'gcBytesCopied' | 'gcSegmentsDeleted' | 'gcBytesReclaimed'>;
  /** Observes each step (tests stop a child process at one to crash it there). */
  onStep?: (step: GcStep) => Promise<void> | void;
}

export type GcStep =
  | { step: 'relocated'; segmentId: number; items: number }
  | { step: 'synced'; segments: number }
  | { step: 'deleted'; segmentId: number; bytes: number };

export interface SegmentGcResult {
  /** Sealed segments that qualified, in the order they were compacted. */
  candidates: number[];
  deleted: number;
  bytesCopied: number;
  /** Bytes of deleted segment files minus the live bytes copied out of them. */
  bytesReclaimed: number;
  /** Bodies that failed their crc and were left where they are. */
  damaged: number;
  /** Qualifying segments were left for the next pass (per-pass limits): run it soon. */
  backlog: boolean;
}

/**
 * Sealed segments to compact, emptiest first: every wholly dead one, then at most `maxPartlyLive`
 * below the threshold among those sealed before `coldBelow` — a segment sealed since the last
 * pass is still dying fast (recent writes are the ones overwritten next), and copying its live
 * bodies now would mostly copy bodies about to die. `backlog`: some were left for the next pass.
 */
export function pickVictims(
  sizes: ReadonlyMap<number, number>, liveBytes: ReadonlyMap<number, number>, threshold: number, maxPartlyLive: number, coldBelow = Number.POSITIVE_INFINITY,
): { victims: number[]; backlog: boolean } {
  const ratio = (id: number): number => (liveBytes.get(id) ?? 0) / Math.max(sizes.get(id) ?? 0, 1);
  const dead = [...sizes.keys()].filter((id) => !liveBytes.has(id));
  const partly = [...sizes.keys()].filter((id) => liveBytes.has(id) && id < coldBelow && ratio(id) < threshold).sort((a, b) => ratio(a) - ratio(b) || a - b);
  return { victims: [...dead, ...partly.slice(0, maxPartlyLive)], backlog: partly.length > maxPartlyLive };
}

interface LiveEntry { key: Buffer; value: Buffer; offset: number; length: number }

/**
 * Compacts the sealed segments (`sizes`: every segment file below the fence, with its size) that
 * the census shows mostly dead.
 */
export async function compactSegments(m: StoreMaintenance, census: Census, sizes: ReadonlyMap<number, number>, opts: SegmentGcOptions = {}): Promise<SegmentGcResult> {
  const { victims, backlog } = pickVictims(
    sizes, census.liveBytes, opts.liveRatioThreshold ?? defaultLiveRatioThreshold, opts.maxSegmentsPerPass ?? defaultMaxSegmentsPerPass, opts.coldBelow,
  );
  const result: SegmentGcResult = { candidates: victims, deleted: 0, bytesCopied: 0, bytesReclaimed: 0, damaged: 0, backlog };
  if (victims.length === 0) return result;
  const entries = await liveEntriesOf(m, victims, census);
  const maxCopy = opts.maxCopyBytesPerPass ?? defaultMaxCopyBytesPerPass;
  const pacer = new Pacer(opts.signal === undefined ? {} : { signal: opts.signal });
  /** Victims with nothing left in them, and the live bytes copied out of each. */
  const emptied = new Map<number, number>();
  const aborted = (): boolean => opts.signal?.aborted === true;
  for (const id of victims) {
    if (aborted()) break;
    if (result.bytesCopied >= maxCopy && census.liveBytes.has(id)) { result.backlog = true; continue; }
    const live = (entries.get(id) ?? []).sort((a, b) => a.offset - b.offset);
    const { left, copied } = await copyOut(m, id, live, pacer, opts);
    result.bytesCopied += copied;
    result.damaged += left;
    if (left === 0 && !aborted()) emptied.set(id, copied);
  }
  if (emptied.size > 0) await deleteEmptied(m, emptied, result, opts);
  return result;
}

/** Segments hold no keys: a second walk of the index finds the entries pointing into the victims. */
async function liveEntriesOf(m: StoreMaintenance, victims: readonly number[], census: Census): Promise<Map<number, LiveEntry[]>> {
  const wanted = new Set(victims.filter((id) => census.liveBytes.has(id)));
  const entries = new Map<number, LiveEntry[]>(victims.map((id) => [id, []]));
  if (wanted.size === 0) return entries;
  for await (const batch of m.scanBlockIndex()) {
    for (const [key, value] of batch) {
      const ptr = segmentPointer(value);
      if (ptr === null || !wanted.has(ptr.segmentId)) continue;
      entries.get(ptr.segmentId)?.push({ key, value, offset: ptr.offset, length: ptr.length });
    }
  }
  return entries;
}

/** Copies one victim's live bodies forward in paced batches; `left`: entries that stay (damaged). */
async function copyOut(m: StoreMaintenance, id: number, live: readonly LiveEntry[], pacer: Pacer, opts: SegmentGcOptions): Promise<{ left: number; copied: number }> {
  const rate = opts.maxBytesPerSecond ?? defaultGcBytesPerSecond;
  const batchBytes = opts.relocateBatchBytes ?? defaultRelocateBatchBytes;
  let left = 0;
  let copied = 0;
  for (let i = 0; i < live.length && opts.signal?.aborted !== true;) {
    pacer.begin();
    const batch: Relocation[] = [];
    let bytes = 0;
    for (; i < live.length && (batch.length === 0 || bytes < batchBytes); i++) {
      const e = live[i];
      if (e === undefined) continue;
      try {
        batch.push({ key: e.key, expect: e.value, body: await m.segments.read(id, e.offset, e.length) });
        bytes += e.length;
      } catch (err) {
        if (!isGalleonError(err, 'CHECKSUM_MISMATCH')) throw err;
        left++; // a short segment: the entry stays, and so does the file
      }
    }
    left += await m.relocate(batch);
    copied += bytes;
    (opts.metrics ?? noStoreMetrics).gcBytesCopied.inc(bytes);
    await opts.onStep?.({ step: 'relocated', segmentId: id, items: batch.length });
    await pacer.end({ amount: bytes, perSecond: rate });
  }
  return { left, copied };
}

/** Every pointer that left these segments is made durable (one sync for all), then the files go. */
async function deleteEmptied(m: StoreMaintenance, emptied: ReadonlyMap<number, number>, result: SegmentGcResult, opts: SegmentGcOptions): Promise<void> {
  const metrics = opts.metrics ?? noStoreMetrics;
  await m.fence(true);
  await opts.onStep?.({ step: 'synced', segments: emptied.size });
  for (const [id, copied] of emptied) {
    await m.pins.retire(id);
    // Net of what was copied forward: the live bodies still take their space elsewhere.
    const reclaimed = Math.max(0, (await m.segments.delete(id)) - copied);
    result.deleted++;
    result.bytesReclaimed += reclaimed;
    metrics.gcSegmentsDeleted.inc();
    metrics.gcBytesReclaimed.inc(reclaimed);
    await opts.onStep?.({ step: 'deleted', segmentId: id, bytes: reclaimed });
  }
}
