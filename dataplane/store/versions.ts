/**
 * Kept versions of blocks, for snapshots (issue #11; the rules are pure, ../logic/snapshot-versions.ts).
 *
 * A write that replaces a block written at an older epoch first copies the old index entry to
 * `v|block|epoch|seq` (keys.ts) in the same batch: the body stays where it is (a segment pointer
 * is shared until one of the two moves), so keeping a version costs one index entry, no copy.
 * Finding out the old entry's epoch costs one index read, paid once per block per epoch and
 * process: `EpochKeyTracker` remembers the blocks already written at a PG's current epoch.
 * Reads at a cut are one reverse seek (`readBelow` in level-block-store.ts); the pruner walks a
 * volume's versions, asks `versionsToDrop`, and deletes through the commit queue, re-checking
 * each entry (`unversion` commits), at a paced rate.
 */
import type { ClassicLevel } from 'classic-level';
import { invariant } from '../../proto/errors.js';
import { keepArrivingOlder, keepOnOverwrite, versionsToDrop } from '../logic/snapshot-versions.js';
import type { VersionStamp } from '../logic/snapshot-versions.js';
import { decodeHeader, HeaderFlag, headerBytes } from './header.js';
import { blockKey, decodeVersionStamp, prefixEnd, Prefix, versionKeyOf, versionPrefix } from './keys.js';
import { Pacer } from './pacer.js';
import type { GroupStage, StagedEntry } from './stage.js';
import type { BlockAddress, BlockHead, BlockOp, StoredBlock } from './types.js';

/** Blocks remembered per PG as "already written at its current epoch"; past this, the index is read. */
export const maxTrackedKeysPerPg = 65_536;
/** Versions deleted per `unversion` commit. */
export const maxPruneBatch = 256;
/** Default pace of the pruner (versions examined per second). */
export const defaultPruneVersionsPerSecond = 20_000;

/** The block's current entry as the committer sees it: staged in this group, landing, or stored. */
export interface CurrentEntry {
  stamp: VersionStamp;
  pg: number;
  /** The index value (header + pointer or body) when it is landing or stored. */
  value: Buffer | null;
  /** The op when it was staged earlier in this same group (its body has no offset yet). */
  staged: StagedEntry | null;
}

export function entryFromValue(value: Buffer): CurrentEntry | null {
  if (value.length < headerBytes) return null; // damaged: the scrubber's business, nothing to keep
  const h = decodeHeader(value);
  return { stamp: { epoch: h.epoch, seq: h.seq }, pg: h.pg, value, staged: null };
}

/** Stages a copy of `cur` as a kept version of the block `bkey`. */
export function stageKeep(st: GroupStage, bkey: Buffer, cur: CurrentEntry): void {
  const vkey = versionKeyOf(bkey, cur.stamp.epoch, cur.stamp.seq);
  if (cur.staged !== null) {
    if (cur.staged.data === null) st.stageTombstone(vkey, cur.pg, cur.stamp.seq, cur.stamp.epoch);
    else st.stagePut(vkey, cur.pg, cur.stamp.seq, cur.stamp.epoch, cur.staged.data);
    return;
  }
  invariant(cur.value !== null, 'a landed entry has its index value');
  st.levelOps.push({ type: 'put', key: vkey, value: Buffer.from(cur.value) });
}

/**
 * What to keep for one op about to be applied (`applies`) or skipped as older (replica path)
 * over the block's current entry: the current entry, the op itself, or nothing. Returns whether
 * it kept the op itself (a skipped op it keeps must stay in the journal as what it is: see stageOps).
 */
export function stageVersionFor(st: GroupStage, bkey: Buffer, op: BlockOp, cur: CurrentEntry | null, applies: boolean): boolean {
  if (cur === null || op.kind === 'noop') return false;
  const incoming = { epoch: op.epoch, seq: op.seq };
  if (applies) {
    if (keepOnOverwrite(cur.stamp, incoming)) stageKeep(st, bkey, cur);
    return false;
  }
  if (!keepArrivingOlder(cur.stamp, incoming)) return false;
  const vkey = versionKeyOf(bkey, op.epoch, op.seq);
  if (op.kind === 'delete') st.stageTombstone(vkey, op.pg, op.seq, op.epoch);
  else st.stagePut(vkey, op.pg, op.seq, op.epoch, op.data);
  return true;
}

/** Per PG: the blocks written at its newest epoch seen by this process (bounded). */
export class EpochKeyTracker {
  private readonly byPg = new Map<string, { epoch: number; keys: Set<string> }>();

  /** True when the block's current entry is surely at `epoch` already (nothing to keep). */
  writtenAt(pgId: string, epoch: number, keyText: string): boolean {
    const t = this.byPg.get(pgId);
    return t !== undefined && t.epoch === epoch && t.keys.has(keyText);
  }

  note(pgId: string, epoch: number, keyText: string): void {
    let t = this.byPg.get(pgId);
    if (t === undefined || t.epoch < epoch) {
      t = { epoch, keys: new Set() };
      this.byPg.set(pgId, t);
    }
    if (t.epoch === epoch && t.keys.size < maxTrackedKeysPerPg) t.keys.add(keyText);
  }

  forget(pgId: string): void {
    this.byPg.delete(pgId);
  }
}

export interface PruneOptions {
  /** The volume's retained cuts (snapshots, restore targets) and the epoch horizon read with them. */
  cuts: readonly number[];
  horizon: number;
  /** Only count: nothing is deleted. */
  dryRun?: boolean;
  versionsPerSecond?: number;
  signal?: AbortSignal;
}

export interface PruneResult {
  examined: number;
  dropped: number;
  /** Body bytes of the dropped versions (what a dry run would free). */
  bytes: number;
}

type Db = ClassicLevel<Buffer, Buffer>;
type Unversion = (items: { key: Buffer; expect: Buffer }[]) => Promise<number>;

/** Walks the volume's versions block by block; drops (or counts) those no cut needs. */
export async function pruneVersions(db: Db, volumeId: string, unversion: Unversion, opts: PruneOptions): Promise<PruneResult> {
  const result: PruneResult = { examined: 0, dropped: 0, bytes: 0 };
  const pacer = new Pacer(opts.signal === undefined ? {} : { signal: opts.signal });
  const prefix = versionPrefix(volumeId);
  let block: { bkey: Buffer; entries: { key: Buffer; value: Buffer; stamp: VersionStamp }[] } | null = null;
  let pending: { key: Buffer; expect: Buffer }[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    pacer.begin();
    const n = pending.length;
    result.dropped += opts.dryRun === true ? n : await unversion(pending);
    pending = [];
    await pacer.end({ amount: n, perSecond: opts.versionsPerSecond ?? defaultPruneVersionsPerSecond });
  };
  const decide = async (): Promise<void> => {
    if (block === null) return;
    const liveValue = await db.get(block.bkey);
    const live = liveValue === undefined || liveValue.length < headerBytes ? null : entryFromValue(liveValue)?.stamp ?? null;
    const drop = versionsToDrop(block.entries.map((e) => e.stamp), live, opts.cuts, opts.horizon);
    for (const d of drop) {
      const e = block.entries.find((x) => x.stamp.epoch === d.epoch && x.stamp.seq === d.seq);
      invariant(e !== undefined, 'a dropped version is one of the block\'s');
      const h = decodeHeader(e.value);
      if ((h.flags & HeaderFlag.tombstone) === 0) result.bytes += h.length;
      pending.push({ key: e.key, expect: e.value });
    }
    if (pending.length >= maxPruneBatch) await flush();
  };
  for await (const [key, value] of db.iterator({ gte: prefix, lt: prefixEnd(prefix) })) {
    if (opts.signal?.aborted === true) break;
    result.examined++;
    const bkey = Buffer.from(key.subarray(0, key.length - 12));
    bkey[0] = Prefix.block;
    if (block === null || !block.bkey.equals(bkey)) {
      await decide();
      block = { bkey, entries: [] };
    }
    if (value.length >= headerBytes) block.entries.push({ key, value, stamp: decodeVersionStamp(key) });
  }
  await decide();
  await flush();
  return result;
}

/** Whether any version of the block is kept (a tombstone above them must stay: see stagePurge). */
export async function hasVersions(db: Db, bkey: Buffer): Promise<boolean> {
  const p = Buffer.from(bkey);
  p[0] = Prefix.version;
  for await (const _ of db.keys({ gte: p, lt: prefixEnd(p), limit: 1 })) return true;
  return false;
}

/** The newest kept version of `address` below `below` as [key, value], or null (one reverse seek). */
export async function versionBelow(db: Db, address: Parameters<typeof blockKey>[0], below: number): Promise<readonly [Buffer, Buffer] | null> {
  const p = versionPrefix(address);
  const upper = versionKeyOf(blockKey(address), below, 0);
  for await (const entry of db.iterator({ gte: p, lt: upper, reverse: true, limit: 1 })) return entry;
  return null;
}

/**
 * The oldest kept version of the block `bkey` written at or after `seq` as [key, value], or
 * null. A block's versions sort by (epoch, seq) and a PG's seqs grow with its epochs, so the walk
 * stops at the first version at or past `seq`.
 */
export async function versionFrom(db: Db, bkey: Buffer, seq: number): Promise<readonly [Buffer, Buffer] | null> {
  const p = Buffer.from(bkey);
  p[0] = Prefix.version;
  for await (const [key, value] of db.iterator({ gte: p, lt: prefixEnd(p) })) {
    if (decodeVersionStamp(key).seq >= seq) return [key, value];
  }
  return null;
}

/** What snapshot reads and pruning need of a store (LevelBlockStore has it; see readBelow there). */
/** A kept version (`kept`) or a live tombstone of a PG, as a full resync ships it (`data` null: a tombstone). */
export interface KeptEntry { address: BlockAddress; kept: boolean; seq: number; epoch: number; pg: number; data: Uint8Array | null }

export interface VersionedStore {
  iterateKept(volumeId: string, pg: number): AsyncIterable<KeptEntry>;
  keepVersion(address: BlockAddress, entry: StoredBlock | { tombstone: true; seq: number; epoch: number; pg: number }): Promise<void>;
  readBelow(address: BlockAddress, below: number): Promise<{ kind: 'block'; block: StoredBlock } | { kind: 'deleted'; epoch: number; seq: number } | { kind: 'absent' }>;
  /** `readBelow`'s stamp and the body's first `maxBytes` only (null: absent below the cut). */
  readHeadBelow(address: BlockAddress, below: number, maxBytes: number): Promise<BlockHead | null>;
  iterateVersionedAddresses(volumeId: string): AsyncIterable<BlockAddress>;
  pruneVersions(volumeId: string, opts: PruneOptions): Promise<PruneResult>;
  listVersions(volumeId: string): Promise<{ address: BlockAddress; epoch: number; seq: number }[]>;
}

export function isVersionedStore(s: object): s is VersionedStore {
  return 'readBelow' in s && 'pruneVersions' in s;
}
