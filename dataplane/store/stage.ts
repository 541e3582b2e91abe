/**
 * One commit group being staged: the commits the committer took from its queue (`Pending`), the
 * index batch they build (`levelOps`), the bodies waiting for their segment offsets, and copies of
 * the PG states they touch (they become live only once the whole group is staged). The store's
 * staging functions (one per commit kind, level-block-store.ts) write into a `GroupStage`; this
 * file holds no I/O beyond the PG-state loader it is given.
 */
import { invariant } from '../../proto/errors.js';
import { decodeHeader, encodeHeader, HeaderFlag, headerBytes, computeCrc, segmentPointerBytes } from './header.js';
import type { BlockHeader } from './header.js';
import { blockPrefix, journalKey, pgKey, versionPrefix } from './keys.js';
import type { Relocation, TombstonePurge } from './maintenance.js';
import type { BlockAddress, BlockOp, StoredBlock } from './types.js';

export const JournalKind = { put: 0, delete: 1, noop: 2 } as const;

export interface MemPg {
  volumeId: string;
  pg: number;
  appliedSeq: number;
  highestSeq: number;
  epoch: number;
  trimmedSeq: number;
  /** Seqs recorded above the contiguous watermark (out-of-order replica arrivals). */
  above: Set<number>;
}

/** A block removed by a resync (deleted on the primary while this replica was away). */
export interface TombstoneAt { tombstone: true; seq: number; epoch: number; pg: number }

type Settle<T> = { resolve: (v: T) => void; reject: (e: unknown) => void };
export type OpsPending = { kind: 'ops'; ops: readonly BlockOp[]; keys: Buffer[]; keyTexts: string[]; sync: boolean; onlyIfNewer: boolean; bytes: number } & Settle<void>;
export type TrimPending = { kind: 'trim'; volumeId: string; pg: number; upto: number; sync: boolean; bytes: 0 } & Settle<number>;
export type EpochPending = { kind: 'epoch'; volumeId: string; pg: number; epoch: number; lower?: true; sync: boolean; bytes: 0 } & Settle<void>;
/** `asVersion`: a version kept on the resync's source, stored under its `v|` key (versions.ts). */
export type RepairPending = { kind: 'repair'; address: BlockAddress; block: StoredBlock | TombstoneAt; asVersion?: true; sync: boolean; bytes: number } & Settle<void>;
export type WatermarkPending = { kind: 'watermark'; volumeId: string; pg: number; upto: number; sync: boolean; bytes: 0 } & Settle<void>;
export type DropPending = { kind: 'drop'; volumeId: string; pg: number; ifEpochAtMost: number; sync: boolean; bytes: 0 } & Settle<boolean>;

/** Space reclamation's commits (maintenance.ts); each resolves with a count or a segment id. */
export type MaintenancePending =
  | ({ kind: 'relocate'; items: readonly Relocation[]; sync: true; bytes: number } & Settle<number>)
  | ({ kind: 'purge'; items: readonly TombstonePurge[]; sync: false; bytes: 0 } & Settle<number>)
  | ({ kind: 'fence'; sync: boolean; bytes: 0 } & Settle<number>);

/** Drops kept versions no snapshot needs, if still exactly as the pruner saw them (versions.ts). */
export type UnversionPending = { kind: 'unversion'; items: readonly { key: Buffer; expect: Buffer }[]; sync: false; bytes: 0 } & Settle<number>;

export type Pending = UnversionPending | OpsPending | TrimPending | EpochPending | RepairPending | WatermarkPending | DropPending | MaintenancePending;

export type LevelOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** A group ready to land: its index batch, and the newest seq it stages per block key. */
export interface Staged {
  levelOps: LevelOp[];
  sync: boolean;
  /** What each trim, drop and maintenance commit resolves with. */
  counts: Map<Pending, number>;
  landingSeqs: Map<string, number>;
}

/** An op staged in this group, as a later op on the same block may have to keep it as a version. */
export interface StagedEntry { pg: number; epoch: number; seq: number; data: Uint8Array | null }

/** A segment body's index entry, holding its slot in `levelOps` (`at`) until its offset is known. */
export interface WaitingBody { key: Buffer; header: Omit<BlockHeader, 'crc'>; crc: number; body: number; at: number }

export const pgId = (volumeId: string, pg: number): string => `${volumeId}\u0000${pg}`;

export function encodePgState(s: MemPg): Buffer {
  const b = Buffer.allocUnsafe(24);
  b.writeUIntBE(s.appliedSeq, 0, 6);
  b.writeUIntBE(s.highestSeq, 6, 6);
  b.writeUIntBE(s.epoch, 12, 6);
  b.writeUIntBE(s.trimmedSeq, 18, 6);
  return b;
}

export function isEmptyPg(s: MemPg): boolean {
  return s.appliedSeq === 0 && s.highestSeq === 0 && s.epoch === 0 && s.trimmedSeq === 0 && s.above.size === 0;
}

export function emptyPg(volumeId: string, pg: number): MemPg {
  return { volumeId, pg, appliedSeq: 0, highestSeq: 0, epoch: 0, trimmedSeq: 0, above: new Set() };
}

export class GroupStage {
  readonly levelOps: LevelOp[] = [];
  readonly counts = new Map<Pending, number>();
  /** PGs dropped in this group (their pgId). */
  readonly dropped = new Set<string>();
  /** Copies of the PG states this group touches, by pgId. */
  readonly touched = new Map<string, MemPg>();
  /**
   * Bodies to append, in order, with the index entries waiting for their offsets. Each holds
   * its place in `levelOps`, so a later op on the same block in this group (a delete, an inline
   * put, a newer write) still lands after it and wins.
   */
  readonly bodies: Uint8Array[] = [];
  readonly waiting: WaitingBody[] = [];
  /** Newest seq per block key within this group, for onlyIfNewer decisions. */
  readonly batchSeq = new Map<string, number>();
  /** The newest client/replica op per block key within this group (kept versions, versions.ts). */
  readonly batchEntries = new Map<string, StagedEntry>();
  /**
   * Stored index values of the blocks whose version this group may have to keep, read for the
   * whole group in one `getMany` before staging (undefined: no entry). Only blocks neither staged
   * nor landing when read: nothing else can change them until this group lands.
   */
  readonly prefetched = new Map<string, Buffer | undefined>();

  constructor(
    readonly sync: boolean,
    private readonly loadPg: (volumeId: string, pg: number) => Promise<MemPg>,
    /** Bodies up to this many bytes stay inline in the index (Infinity for the inline layout). */
    private readonly inlineMaxBytes: number,
  ) {}

  /** This group's working copy of a PG's state (made from the live one on first use). */
  async stateOf(volumeId: string, pg: number): Promise<MemPg> {
    const id = pgId(volumeId, pg);
    const t = this.touched.get(id);
    if (t !== undefined) return t;
    const live = await this.loadPg(volumeId, pg);
    const copy = { ...live, above: new Set(live.above) };
    this.touched.set(id, copy);
    return copy;
  }

  stageTombstone(bkey: Buffer, pg: number, seq: number, epoch: number): void {
    const h = { flags: HeaderFlag.tombstone, epoch, seq, pg, length: 0 };
    const value = Buffer.allocUnsafe(headerBytes);
    encodeHeader(value, { ...h, crc: computeCrc(h, new Uint8Array(0)) });
    this.levelOps.push({ type: 'put', key: bkey, value });
  }

  stagePut(bkey: Buffer, pg: number, seq: number, epoch: number, data: Uint8Array): void {
    if (data.byteLength <= this.inlineMaxBytes) {
      const h = { flags: 0, epoch, seq, pg, length: data.byteLength };
      const value = Buffer.allocUnsafe(headerBytes + data.byteLength);
      encodeHeader(value, { ...h, crc: computeCrc(h, data) });
      value.set(data, headerBytes);
      this.levelOps.push({ type: 'put', key: bkey, value });
      return;
    }
    const h = { flags: HeaderFlag.inSegment, epoch, seq, pg, length: data.byteLength };
    this.waiting.push({ key: bkey, header: h, crc: computeCrc(h, data), body: this.bodies.length, at: this.levelOps.length });
    this.levelOps.push({ type: 'put', key: bkey, value: Buffer.alloc(0) }); // filled in after the append
    this.bodies.push(data);
  }

  /** Fills in the index entries of the appended bodies, now that their offsets are known. */
  placeBodies(segmentId: number, offsets: readonly number[]): void {
    for (const w of this.waiting) {
      const offset = offsets[w.body];
      invariant(offset !== undefined, 'every appended body has an offset');
      const value = Buffer.allocUnsafe(headerBytes + segmentPointerBytes);
      encodeHeader(value, { ...w.header, crc: w.crc });
      value.writeUInt32BE(segmentId, headerBytes);
      value.writeUIntBE(offset, headerBytes + 4, 6);
      this.levelOps[w.at] = { type: 'put', key: w.key, value };
    }
  }

  /** Appends the touched PG states to the batch; returns them to become live. */
  stagePgStates(): Map<string, MemPg> {
    for (const [id, s] of this.touched) {
      // A dropped PG nothing wrote to since: its state key is gone and stays gone.
      if (this.dropped.has(id) && isEmptyPg(s)) continue;
      this.levelOps.push({ type: 'put', key: pgKey(s.volumeId, s.pg), value: encodePgState(s) });
    }
    return this.touched;
  }
}

/** Records a new PG epoch (only ever raised, except by `lowerEpoch` for a forged one). */
export async function stageEpoch(st: GroupStage, p: EpochPending): Promise<void> {
  const s = await st.stateOf(p.volumeId, p.pg);
  s.epoch = p.lower === true ? Math.min(s.epoch, p.epoch) : Math.max(s.epoch, p.epoch);
}

/** Undoes what this group staged so far for the PG (blocks, journal entries, pending bodies). */
export function unstagePg(st: GroupStage, volumeId: string, pg: number): void {
  const bPrefix = blockPrefix(volumeId);
  const vPrefix = versionPrefix(volumeId);
  const jPrefix = journalKey(volumeId, pg, 0).subarray(0, -6);
  const startsWith = (key: Buffer, prefix: Buffer): boolean => key.subarray(0, prefix.length).equals(prefix);
  const { levelOps, waiting, batchSeq } = st;
  for (const op of [...levelOps]) {
    if (op.type !== 'put') continue;
    const isBlock = (startsWith(op.key, bPrefix) || startsWith(op.key, vPrefix)) && op.value.length >= headerBytes && decodeHeader(op.value).pg === pg;
    if (isBlock) { batchSeq.delete(op.key.toString('latin1')); st.batchEntries.delete(op.key.toString('latin1')); }
    if (isBlock || startsWith(op.key, jPrefix)) levelOps.push({ type: 'del', key: op.key });
  }
  for (let i = waiting.length - 1; i >= 0; i--) {
    const w = waiting[i];
    if (w === undefined || w.header.pg !== pg || !(startsWith(w.key, bPrefix) || startsWith(w.key, vPrefix))) continue;
    batchSeq.delete(w.key.toString('latin1'));
    st.batchEntries.delete(w.key.toString('latin1'));
    // Its index slot (a placeholder until the append) becomes a delete; the body is garbage.
    levelOps[w.at] = { type: 'del', key: w.key };
    waiting.splice(i, 1);
  }
}
