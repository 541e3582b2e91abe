/**
 * One walk of the block index (a LevelDB snapshot) that tells space reclamation where the space
 * is: live body bytes per segment, and the tombstones that may be purged. Segment files hold raw
 * bodies without keys, so the index is the only place that knows which bodies are live; a walk
 * costs nothing on the write path (no per-write bookkeeping) and is always exact for sealed
 * segments, whose live bytes can only shrink after it.
 */
import { decodeHeader, HeaderFlag, headerBytes, segmentPointerBytes } from './header.js';
import { decodeBlockKey, Prefix } from './keys.js';
import type { StoreMaintenance, TombstonePurge } from './maintenance.js';

export interface Census {
  /** Block index entries walked. */
  entries: number;
  /** Live body bytes per segment id (segments with none are absent). */
  liveBytes: Map<number, number>;
  /** Index entries pointing into a segment already deleted: must stay 0. */
  danglingPointers: number;
  tombstones: number;
  /** Tombstones at or below their PG's trimmed journal, at most `maxPurgeCandidates`. */
  purgeable: TombstonePurge[];
}

export interface CensusOptions {
  maxPurgeCandidates: number;
  /** Segment files on disk below `sealedBelow`: a pointer to a lower id not among them dangles. */
  onDisk?: ReadonlySet<number>;
  sealedBelow?: number;
  signal?: AbortSignal;
}

/** A body pointer of an index entry, or null for inline bodies and tombstones. */
export function segmentPointer(value: Buffer): { segmentId: number; offset: number; length: number } | null {
  // Reads the header fields in place: the census calls this for every block.
  const flags = value[4] ?? 0;
  if ((flags & HeaderFlag.inSegment) === 0 || (flags & HeaderFlag.tombstone) !== 0 || value.length < headerBytes + segmentPointerBytes) return null;
  return { segmentId: value.readUInt32BE(headerBytes), offset: value.readUIntBE(headerBytes + 4, 6), length: value.readUInt32BE(24) };
}

export async function takeCensus(m: StoreMaintenance, opts: CensusOptions): Promise<Census> {
  const census: Census = { entries: 0, liveBytes: new Map(), danglingPointers: 0, tombstones: 0, purgeable: [] };
  const trimmedByPg = new Map<string, number>();
  for await (const batch of m.scanBlockIndex()) {
    if (opts.signal?.aborted === true) break;
    census.entries += batch.length;
    for (const [key, value] of batch) {
      if (value.length < headerBytes) continue; // damaged: the scrubber's business
      if (((value[4] ?? 0) & HeaderFlag.tombstone) !== 0) {
        if (key[0] === Prefix.version) continue; // a kept version: the snapshot pruner's business
        census.tombstones++;
        if (census.purgeable.length >= opts.maxPurgeCandidates) continue;
        const h = decodeHeader(value);
        const { volumeId } = decodeBlockKey(key);
        const id = `${volumeId}\u0000${h.pg}`;
        let trimmed = trimmedByPg.get(id);
        if (trimmed === undefined) {
          trimmed = await m.trimmedSeq(volumeId, h.pg);
          trimmedByPg.set(id, trimmed);
        }
        if (h.seq <= trimmed) census.purgeable.push({ key, expect: value, volumeId, pg: h.pg });
        continue;
      }
      const ptr = segmentPointer(value);
      if (ptr === null) continue;
      const missing = opts.onDisk !== undefined && ptr.segmentId < (opts.sealedBelow ?? 0) && !opts.onDisk.has(ptr.segmentId);
      if (missing || m.pins.isRetired(ptr.segmentId)) census.danglingPointers++;
      census.liveBytes.set(ptr.segmentId, (census.liveBytes.get(ptr.segmentId) ?? 0) + ptr.length);
    }
  }
  return census;
}
