/**
 * The block store on classic-level. One committer owns the database's write path: callers
 * enqueue ops, and while one batch is being written the next one gathers everything that
 * arrives meanwhile (group commit). A batch is synced when any caller in it asked for `sync`,
 * so 64 concurrent durable writes share one fsync instead of paying 64.
 *
 * Each put/delete is journaled per PG in the same atomic batch as the block and the PG's state,
 * so after a crash the block, its journal entry and the PG watermark agree.
 *
 * Layouts: `inline` keeps bodies as LevelDB values; `segments` (WiscKey) appends bodies to
 * segment files, fdatasyncs them before a synced index batch, and keeps only pointers in
 * LevelDB. Both can be read by either setting: the index entry says where its body is.
 */
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { GalleonError, invariant } from '../../proto/errors.js';
import { defaultMaxBlockBodyBytes } from '../../proto/limits.js';
import { decodeHeader, HeaderFlag, headerBytes, computeCrc, segmentPointerBytes } from './header.js';
import type { BlockHeader } from './header.js';
import { toStoreError, withIoRetry } from './io.js';
import { checkOp } from './check-op.js';
import {
  blockKey, blockPrefix, decodeBlockKey, decodePgKey, journalKey, journalSeqOf, metaKey, pgKey, prefixEnd, Prefix, versionKeyOf, versionPrefix,
} from './keys.js';
import { SegmentPins } from './maintenance.js';
import type { Relocation, StoreMaintenance, TombstonePurge } from './maintenance.js';
import { SegmentFiles, defaultSegmentMaxBytes } from './segments.js';
import { emptyPg, GroupStage, isEmptyPg, JournalKind, pgId, stageEpoch, unstagePg } from './stage.js';
import type { UnversionPending, DropPending, LevelOp, MaintenancePending, MemPg, OpsPending, Pending, RepairPending, Staged, TombstoneAt, TrimPending, WatermarkPending } from './stage.js';
import { noStoreMetrics } from './store-metrics.js';
import { EpochKeyTracker, entryFromValue, hasVersions, pruneVersions, stageVersionFor, versionBelow, versionFrom } from './versions.js';
import type { CurrentEntry, KeptEntry, PruneOptions, PruneResult } from './versions.js';
import type { StoreMetrics } from './store-metrics.js';
import type {
  BlockAddress, BlockHead, BlockOp, BlockStore, BodyLocation, JournalEntry, JournalReadLimits, PgState, StoredBlock, WriteOptions,
} from './types.js';

export type BodyLayout = 'inline' | 'segments';

export interface LevelBlockStoreOptions {
  dir: string;
  layout?: BodyLayout;
  /** LevelDB memtable size: 64 MiB instead of the 4 MiB default cut compaction stalls ~2x. */
  writeBufferSizeBytes?: number;
  /** Upper bound of one group-commit batch (bodies included). */
  maxBatchBytes?: number;
  maxBlockBytes?: number;
  segmentMaxBytes?: number;
  /** Writes are refused with NO_SPACE when the disk would drop below this much free space. */
  minFreeBytes?: number;
  /**
   * Segment layout: bodies up to this size stay inline in LevelDB anyway. 0 by default: inline
   * bodies are rewritten by every LevelDB compaction they pass through, which cost 66 µs of CPU
   * per random 4 KiB durable write against 27 µs in segments (the second fsync per batch, segment
   * then log, is cheaper than that).
   */
  inlineMaxBytes?: number;
  /** The data plane's counters, passed in by whoever builds the store; none by default. */
  metrics?: StoreMetrics;
}

export const defaultMaxBatchBytes = 64 * 1024 * 1024;
export const defaultWriteBufferSizeBytes = 64 * 1024 * 1024;
export const defaultMinFreeBytes = 64 * 1024 * 1024;
export const defaultInlineMaxBytes = 0;
const freeSpaceRefreshMs = 500;
/** A read re-reads the index when segment GC retired the segment it named (twice is enough). */
const maxSegmentReadAttempts = 3;
const scanBatchEntries = 1024;

interface OverlayEntry { op: BlockOp; onlyIfNewer: boolean }

const storeJoinedKey = metaKey('joined-at');

export class LevelBlockStore implements BlockStore {
  joined = false;
  private readonly pgs = new Map<string, MemPg>();
  private readonly pgLoads = new Map<string, Promise<MemPg>>();
  private readonly overlay = new Map<string, OverlayEntry>();
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;
  private freeBytes = Number.POSITIVE_INFINITY;
  /** Newest seq per block key staged by a group whose index batch has not landed yet. */
  private readonly landingSeqs = new Map<string, number>();
  /** Index value (null: deleted) per block key staged by a group that has not landed yet (versions.ts). */
  private readonly landingValues = new Map<string, Buffer | null>();
  private readonly epochKeys = new EpochKeyTracker();
  /** Set when an index batch failed after its group was staged: every later write is refused. */
  private failed: GalleonError | null = null;
  private freeCheckedAtMs = 0;
  /** Segment reads in flight, so segment GC never deletes a file under a reader. */
  private readonly pins = new SegmentPins();

  private constructor(
    private readonly db: ClassicLevel<Buffer, Buffer>,
    private readonly segments: SegmentFiles | null,
    private readonly dir: string,
    private readonly layout: BodyLayout,
    private readonly maxBatchBytes: number,
    readonly maxBlockBytes: number,
    private readonly minFreeBytes: number,
    private readonly inlineMaxBytes: number,
    private readonly metrics: StoreMetrics,
  ) {}

  static async open(opts: LevelBlockStoreOptions): Promise<LevelBlockStore> {
    const layout = opts.layout ?? 'segments';
    const db = new ClassicLevel<Buffer, Buffer>(path.join(opts.dir, 'index'), {
      keyEncoding: 'buffer', valueEncoding: 'buffer',
      writeBufferSize: opts.writeBufferSizeBytes ?? defaultWriteBufferSizeBytes,
      // Bodies are checksummed and usually incompressible; snappy would only burn CPU.
      compression: false,
    });
    await withIoRetry('opening the block index', () => db.open());
    // Segments are always opened: an inline store may still hold bodies written in segments.
    const segments = await SegmentFiles.open(path.join(opts.dir, 'segments'), opts.segmentMaxBytes ?? defaultSegmentMaxBytes);
    const joined = (await withIoRetry('reading the store join record', () => db.get(storeJoinedKey))) !== undefined;
    const store = new LevelBlockStore(db, segments, opts.dir, layout,
      opts.maxBatchBytes ?? defaultMaxBatchBytes, opts.maxBlockBytes ?? defaultMaxBlockBodyBytes, opts.minFreeBytes ?? defaultMinFreeBytes,
      opts.inlineMaxBytes ?? defaultInlineMaxBytes, opts.metrics ?? noStoreMetrics);
    store.joined = joined;
    return store;
  }

  /** Records (synced) that the cluster accepted this store: see `BlockStore.joined`. */
  async markJoined(): Promise<void> {
    if (this.joined) return;
    await withIoRetry('writing the store join record', () => this.db.put(storeJoinedKey, Buffer.from(new Date().toISOString()), { sync: true }));
    this.joined = true;
  }

  // ---- writes -------------------------------------------------------------------------

  write(op: BlockOp, opts: WriteOptions): Promise<void> {
    return this.writeBatch([op], opts);
  }

  delete(address: BlockAddress, pg: number, seq: number, epoch: number, opts: WriteOptions): Promise<void> {
    return this.writeBatch([{ kind: 'delete', address, pg, seq, epoch }], opts);
  }

  /**
   * Enqueues synchronously (so a read issued right after sees the write) and resolves once the
   * batch holding it is written — synced when `opts.sync`.
   */
  writeBatch(ops: readonly BlockOp[], opts: WriteOptions): Promise<void> {
    this.checkOpen();
    let bytes = 0;
    for (const op of ops) {
      checkOp(op, this.maxBlockBytes);
      if (op.kind === 'put') bytes += op.data.byteLength;
    }
    const onlyIfNewer = opts.onlyIfNewer ?? false;
    // Each op's index key (and its map-key text), encoded once for the overlay, the batch and the settle.
    const keys = ops.map((op) => blockKey(op.address));
    const keyTexts = keys.map((k) => k.toString('latin1'));
    for (const [i, op] of ops.entries()) {
      const k = keyTexts[i];
      if (op.kind === 'noop' || k === undefined) continue;
      const prev = this.overlay.get(k);
      if (prev === undefined || !onlyIfNewer || prev.op.seq < op.seq) this.overlay.set(k, { op, onlyIfNewer });
    }
    return this.enqueue<void>((resolve, reject) => ({ kind: 'ops', ops, keys, keyTexts, sync: opts.sync, onlyIfNewer, bytes, resolve, reject }));
  }

  /**
   * Rewrites a damaged block with a verified copy from another replica: same seq and epoch, no
   * journal entry (the write already has one). Skipped if a newer write landed meanwhile.
   */
  rewriteBlock(address: BlockAddress, block: StoredBlock): Promise<void> {
    this.checkOpen();
    if (block.data.byteLength > this.maxBlockBytes) throw new GalleonError('INVALID_SIZE', `repair copy of ${block.data.byteLength} bytes exceeds maxBlockBytes`);
    return this.enqueue<void>((resolve, reject) => ({ kind: 'repair', address, block, sync: true, bytes: block.data.byteLength, resolve, reject }));
  }

  /**
   * Resync: stores a version the primary keeps of a block (a body, or a tombstone) under its
   * version key, so a replica rebuilt in full serves the snapshots its source serves (issue #11).
   */
  keepVersion(address: BlockAddress, entry: StoredBlock | TombstoneAt): Promise<void> {
    this.checkOpen();
    const bytes = 'data' in entry ? entry.data.byteLength : 0;
    if (bytes > this.maxBlockBytes) throw new GalleonError('INVALID_SIZE', `kept version of ${bytes} bytes exceeds maxBlockBytes`);
    return this.enqueue<void>((resolve, reject) => ({ kind: 'repair', address, block: entry, asVersion: true, sync: false, bytes, resolve, reject }));
  }

  /** Resync: drops a block the primary no longer has (no journal entry), unless newer here. */
  dropBlock(address: BlockAddress, pg: number, seq: number, epoch: number, sync = false): Promise<void> {
    return this.enqueue<void>((resolve, reject) => ({ kind: 'repair', address, block: { tombstone: true, seq, epoch, pg }, sync, bytes: 0, resolve, reject }));
  }

  /**
   * Resync: every write up to `uptoSeq` is now reflected in this store's blocks, so the PG's
   * watermark jumps there and the journal below it (holes, old entries) is dropped.
   */
  completeResync(volumeId: string, pg: number, uptoSeq: number): Promise<void> {
    return this.enqueue<void>((resolve, reject) => ({ kind: 'watermark', volumeId, pg, upto: uptoSeq, sync: true, bytes: 0, resolve, reject }));
  }

  trimJournal(volumeId: string, pg: number, uptoSeq: number): Promise<number> {
    return this.enqueue<number>((resolve, reject) => ({ kind: 'trim', volumeId, pg, upto: uptoSeq, sync: false, bytes: 0, resolve, reject }));
  }

  dropPg(volumeId: string, pg: number, opts: { ifEpochAtMost?: number } = {}): Promise<boolean> {
    pgKey(volumeId, pg); // validates before anything is queued
    return this.enqueue<boolean>((resolve, reject) => ({ kind: 'drop', volumeId, pg, ifEpochAtMost: opts.ifEpochAtMost ?? Number.MAX_SAFE_INTEGER, sync: true, bytes: 0, resolve, reject }));
  }

  async observeEpoch(volumeId: string, pg: number, epoch: number): Promise<number> {
    this.checkOpen();
    const s = await this.loadPg(volumeId, pg);
    if (epoch <= s.epoch) return s.epoch;
    // A fence must survive a restart, so the new epoch is synced before anyone relies on it.
    await this.enqueue<void>((resolve, reject) => ({ kind: 'epoch', volumeId, pg, epoch, sync: true, bytes: 0, resolve, reject }));
    return (await this.loadPg(volumeId, pg)).epoch;
  }

  async lowerEpoch(volumeId: string, pg: number, epoch: number): Promise<number> {
    this.checkOpen();
    const s = await this.loadPg(volumeId, pg);
    if (epoch >= s.epoch) return s.epoch;
    await this.enqueue<void>((resolve, reject) => ({ kind: 'epoch', volumeId, pg, epoch, lower: true, sync: true, bytes: 0, resolve, reject }));
    return (await this.loadPg(volumeId, pg)).epoch;
  }

  /** Queues a commit for the committer (checked open first); resolves as the commit settles. */
  private enqueue<T>(make: (resolve: (v: T) => void, reject: (e: unknown) => void) => Pending): Promise<T> {
    this.checkOpen();
    return new Promise<T>((resolve, reject) => {
      this.queue.push(make(resolve, reject));
      if (this.flushing === null) this.flushing = this.flushLoop();
    });
  }

  /**
   * Two-stage pipeline: while group N's index batch is being written (and synced), group N+1 is
   * prepared and its bodies appended and synced to segments. Index batches land strictly in
   * order, and a group is acknowledged only when its own batch has landed.
   */
  private async flushLoop(): Promise<void> {
    let landing: Promise<void> | null = null;
    for (;;) {
      if (this.queue.length === 0) {
        if (landing === null) break;
        await landing;
        landing = null;
        continue;
      }
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length) {
        const next = this.queue[n];
        invariant(next !== undefined, 'queue index in range');
        if (n > 0 && bytes + next.bytes > this.maxBatchBytes) break;
        bytes += next.bytes;
        n += 1;
      }
      const taken = this.queue.splice(0, n);
      // Trims, resync and repairs read the index: they wait until everything before them landed.
      if (landing !== null && taken.some((p) => p.kind !== 'ops' && p.kind !== 'epoch')) {
        await landing;
        landing = null;
      }
      let group = taken;
      let staged: Staged;
      try {
        if (this.failed !== null) throw this.failed;
        group = await this.admitBySpace(taken);
        if (group.length === 0) continue;
        staged = await this.prepare(group);
      } catch (err) {
        this.settle(group, err, null);
        continue;
      }
      const previous: Promise<void> | null = landing;
      landing = this.land(group, staged, previous);
      if (previous !== null) await previous;
    }
    this.flushing = null;
  }

  /** Writes a prepared group's index batch after the previous one; never rejects. */
  private async land(group: Pending[], staged: Staged, previous: Promise<void> | null): Promise<void> {
    if (previous !== null) await previous;
    try {
      if (this.failed !== null) throw this.failed;
      if (staged.levelOps.length > 0) {
        await withIoRetry('writing the block index batch', () => this.writeIndexBatch(staged.levelOps, staged.sync));
        this.metrics.groupCommits.inc();
      }
      this.settle(group, null, staged.counts);
    } catch (err) {
      // The PG states in memory already include this group: the store cannot go on safely.
      this.failed ??= toStoreError(err, 'writing the block index batch');
      this.settle(group, this.failed, null);
    } finally {
      for (const [k, seq] of staged.landingSeqs) if (this.landingSeqs.get(k) === seq) this.landingSeqs.delete(k);
      for (const op of staged.levelOps) {
        const k = op.key.toString('latin1');
        if (this.landingValues.get(k) === (op.type === 'put' ? op.value : null)) this.landingValues.delete(k);
      }
    }
  }

  /**
   * A chained batch costs about half the CPU per op of `db.batch(array)` (abstract-level clones
   * and re-validates every op of an array batch); it is rebuilt on each retry.
   */
  private writeIndexBatch(ops: readonly LevelOp[], sync: boolean): Promise<void> {
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    return batch.write({ sync });
  }

  private settle(group: Pending[], err: unknown, counts: Map<Pending, number> | null): void {
    const e = err === null ? null : toStoreError(err, 'writing a block batch');
    for (const p of group) {
      if (e !== null) p.reject(e);
      else if (p.kind === 'trim' || p.kind === 'unversion' || p.kind === 'relocate' || p.kind === 'purge' || p.kind === 'fence') p.resolve(counts?.get(p) ?? 0);
      else if (p.kind === 'drop') p.resolve((counts?.get(p) ?? 0) > 0);
      else p.resolve();
      if (p.kind !== 'ops') continue;
      for (const [i, op] of p.ops.entries()) {
        const k = p.keyTexts[i];
        if (k === undefined) continue;
        if (this.overlay.get(k)?.op === op) this.overlay.delete(k);
      }
    }
  }

  /**
   * The free-space reserve is for new data: a write that would cut into it is refused on its own
   * (NO_SPACE, nothing of it applied) and the rest of its group goes on. Epoch records, trims,
   * drops, repairs and space reclamation's copies are never refused for the reserve: they are
   * how a full disk gets space back (a relocation frees its old segment) and stays consistent.
   */
  private async admitBySpace(group: Pending[]): Promise<Pending[]> {
    const admitted: Pending[] = [];
    for (const p of group) {
      if (p.kind !== 'ops' || p.bytes === 0) {
        admitted.push(p);
        continue;
      }
      try {
        await this.checkFreeSpace(p.bytes);
        admitted.push(p);
      } catch (err) {
        this.settle([p], err, null);
      }
    }
    return admitted;
  }

  /** Stages a group: one staging function per commit kind, then the bodies and PG states. */
  private async prepare(group: Pending[]): Promise<Staged> {
    const st = new GroupStage(group.some((p) => p.sync), (v, pg) => this.loadPg(v, pg), this.layout === 'inline' ? Number.POSITIVE_INFINITY : this.inlineMaxBytes);
    await this.prefetchCurrent(st, group);
    for (const p of group) {
      switch (p.kind) {
        case 'ops': await this.stageOps(st, p); break;
        case 'epoch': await stageEpoch(st, p); break;
        case 'repair': await this.stageRepair(st, p); break;
        case 'watermark': await this.stageWatermark(st, p); break;
        case 'drop': st.counts.set(p, await this.stageDropPg(st, p)); break;
        case 'trim': st.counts.set(p, await this.stageTrim(st, p)); break;
        case 'relocate': case 'purge': case 'fence': st.counts.set(p, await this.stageMaintenance(st, p)); break;
        case 'unversion': st.counts.set(p, await this.stageUnversion(st, p)); break;
        default: { const never: never = p; invariant(false, `unknown commit kind ${JSON.stringify(never)}`); }
      }
    }
    return this.finishStage(st);
  }

  /** Appends the group's bodies (synced before a synced index batch may point at them), then the PG states. */
  private async finishStage(st: GroupStage): Promise<Staged> {
    if (st.bodies.length > 0) {
      invariant(this.segments !== null, 'segment layout has segment files');
      const { segmentId, offsets } = await this.segments.append(st.bodies);
      st.placeBodies(segmentId, offsets);
    }
    if (st.sync && this.segments !== null) await this.segments.sync();
    // The next group is prepared against these states before this batch lands (pipeline).
    for (const [id, s] of st.stagePgStates()) this.pgs.set(id, s);
    for (const [k, seq] of st.batchSeq) this.landingSeqs.set(k, seq);
    for (const op of st.levelOps) if (op.key[0] === Prefix.block) this.landingValues.set(op.key.toString('latin1'), op.type === 'put' ? op.value : null);
    return { levelOps: st.levelOps, sync: st.sync, counts: st.counts, landingSeqs: st.batchSeq };
  }

  /** Client and replica writes: each op is journaled; its block is staged unless a newer one exists. */
  private async stageOps(st: GroupStage, p: OpsPending): Promise<void> {
    for (const [i, op] of p.ops.entries()) {
      const s = st.touched.get(pgId(op.address.volumeId, op.pg)) ?? await st.stateOf(op.address.volumeId, op.pg);
      if (op.seq <= s.trimmedSeq || op.seq <= s.appliedSeq || s.above.has(op.seq)) continue; // a duplicate delivery
      // No block of this PG (stored, staged or landing) can be newer than the newest seq seen.
      const newestInPg = op.seq > s.highestSeq;
      s.above.add(op.seq);
      while (s.above.delete(s.appliedSeq + 1)) s.appliedSeq += 1;
      s.highestSeq = Math.max(s.highestSeq, op.seq);
      s.epoch = Math.max(s.epoch, op.epoch);
      const bkey = p.keys[i] ?? blockKey(op.address);
      const ks = p.keyTexts[i] ?? bkey.toString('latin1');
      const jval = Buffer.allocUnsafe(1 + bkey.length);
      jval[0] = op.kind === 'put' ? JournalKind.put : op.kind === 'delete' ? JournalKind.delete : JournalKind.noop;
      bkey.copy(jval, 1);

      let apply = op.kind !== 'noop';
      // The block already holds this very write (a full resync copied it before the journal
      // brought it): its entry stays a put, so a catch-up from this journal carries the block.
      let sameWrite = false;
      if (apply && p.onlyIfNewer) {
        const current = st.batchSeq.get(ks) ?? this.landingSeqs.get(ks) ?? (newestInPg ? undefined : await this.storedSeq(bkey));
        apply = current === undefined || current < op.seq;
        sameWrite = current === op.seq;
      }
      const pid = pgId(op.address.volumeId, op.pg);
      const keptOp = op.kind !== 'noop' && !this.epochKeys.writtenAt(pid, op.epoch, ks) && stageVersionFor(st, bkey, op, await this.currentEntry(st, ks, bkey), apply);
      // A skipped op stays a put/delete in the journal when it is kept as a version (catch-up then
      // ships it from the version, so every replica rebuilt from this one keeps it too: the chaos
      // run's pg 12) or when the block already holds this very write (sameWrite).
      if (!apply && !keptOp && !sameWrite) jval[0] = JournalKind.noop;
      st.levelOps.push({ type: 'put', key: journalKey(op.address.volumeId, op.pg, op.seq), value: jval });
      if (!apply) continue;
      this.epochKeys.note(pid, op.epoch, ks);
      st.batchSeq.set(ks, op.seq);
      st.batchEntries.set(ks, { pg: op.pg, epoch: op.epoch, seq: op.seq, data: op.kind === 'put' ? op.data : null });
      if (op.kind === 'delete') st.stageTombstone(bkey, op.pg, op.seq, op.epoch);
      else if (op.kind === 'put') st.stagePut(bkey, op.pg, op.seq, op.epoch, op.data);
    }
  }

  /** The block's current entry: staged earlier in this group, in a landing group, or stored. */
  private async currentEntry(st: GroupStage, ks: string, bkey: Buffer): Promise<CurrentEntry | null> {
    const staged = st.batchEntries.get(ks);
    if (staged !== undefined) return { stamp: { epoch: staged.epoch, seq: staged.seq }, pg: staged.pg, value: null, staged };
    const landing = this.landingValues.get(ks);
    if (landing !== undefined) return landing === null ? null : entryFromValue(landing);
    // A repair or relocation earlier in this group keeps the stored entry's stamp.
    const stored = st.prefetched.has(ks) ? st.prefetched.get(ks) : await this.db.get(bkey);
    return stored === undefined ? null : entryFromValue(stored);
  }

  /**
   * Reads, in one `getMany` for the whole group, the stored entries `currentEntry` will need: the
   * first write of each block after an epoch change must know the old entry's epoch, and one
   * read per op in the committer cost 2.5–4× the CPU of such a write (epoch-write.bench.ts).
   */
  private async prefetchCurrent(st: GroupStage, group: readonly Pending[]): Promise<void> {
    const keys: Buffer[] = [];
    const texts: string[] = [];
    for (const p of group) {
      if (p.kind !== 'ops') continue;
      for (const [i, op] of p.ops.entries()) {
        const ks = p.keyTexts[i];
        const bkey = p.keys[i];
        if (op.kind === 'noop' || ks === undefined || bkey === undefined || st.prefetched.has(ks) || this.landingValues.has(ks)) continue;
        if (this.epochKeys.writtenAt(pgId(op.address.volumeId, op.pg), op.epoch, ks)) continue;
        st.prefetched.set(ks, undefined);
        keys.push(bkey);
        texts.push(ks);
      }
    }
    if (keys.length === 0) return;
    const values = await withIoRetry('reading the block index', () => this.db.getMany(keys));
    invariant(values.length === texts.length, 'getMany answers every key');
    for (const [i, t] of texts.entries()) st.prefetched.set(t, values[i]);
  }

  /** Drops kept versions the pruner found unneeded, unless they changed since (versions.ts). */
  private async stageUnversion(st: GroupStage, p: UnversionPending): Promise<number> {
    let n = 0;
    for (const it of p.items) {
      const cur = await this.db.get(it.key);
      if (cur === undefined || !cur.equals(it.expect) || st.batchSeq.has(it.key.toString('latin1'))) continue;
      st.levelOps.push({ type: 'del', key: it.key });
      n++;
    }
    return n;
  }

  /** Scrub/read repair and resync drops: no journal entry; skipped if a newer write is here. */
  private async stageRepair(st: GroupStage, p: RepairPending): Promise<void> {
    const bkey = blockKey(p.address);
    if (p.asVersion === true) {
      const vkey = versionKeyOf(bkey, p.block.epoch, p.block.seq);
      if ('tombstone' in p.block) st.stageTombstone(vkey, p.block.pg, p.block.seq, p.block.epoch);
      else st.stagePut(vkey, p.block.pg, p.block.seq, p.block.epoch, p.block.data);
      const vs = await st.stateOf(p.address.volumeId, p.block.pg);
      vs.highestSeq = Math.max(vs.highestSeq, p.block.seq);
      return;
    }
    const ks = bkey.toString('latin1');
    const current = st.batchSeq.get(ks) ?? (await this.storedSeqLenient(bkey));
    if (current !== undefined && current > p.block.seq) {
      // A resync's block older than a write that landed here first (a forward above the
      // watermark): kept as a version when an epoch boundary lies between, as a late replica
      // write is, or the cut between reads newer data here than on the source (simulator seed 17).
      const b = p.block;
      const op: BlockOp = 'tombstone' in b ? { kind: 'delete', address: p.address, pg: b.pg, seq: b.seq, epoch: b.epoch } : { kind: 'put', address: p.address, pg: b.pg, seq: b.seq, epoch: b.epoch, data: b.data };
      stageVersionFor(st, bkey, op, await this.currentEntry(st, ks, bkey), false);
      return;
    }
    st.batchSeq.set(ks, p.block.seq);
    // A later op of this group that replaces it must see it as the entry it replaces (its keep rule,
    // `currentEntry`): a resync's block and a newer epoch's forward often share a group.
    st.batchEntries.set(ks, { pg: p.block.pg, epoch: p.block.epoch, seq: p.block.seq, data: 'tombstone' in p.block ? null : p.block.data });
    // Keeps "newest seq seen" an upper bound of every block's seq (see the onlyIfNewer check).
    const rs = await st.stateOf(p.address.volumeId, p.block.pg);
    rs.highestSeq = Math.max(rs.highestSeq, p.block.seq);
    if ('tombstone' in p.block) st.stageTombstone(bkey, p.block.pg, p.block.seq, p.block.epoch);
    else st.stagePut(bkey, p.block.pg, p.block.seq, p.block.epoch, p.block.data);
  }

  /** Resync complete: the watermark jumps to `upto` and the journal at or below it goes. */
  private async stageWatermark(st: GroupStage, p: WatermarkPending): Promise<void> {
    const s = await st.stateOf(p.volumeId, p.pg);
    if (p.upto <= s.appliedSeq) return;
    for await (const key of this.db.keys({ gte: journalKey(p.volumeId, p.pg, 0), lte: journalKey(p.volumeId, p.pg, p.upto) })) st.levelOps.push({ type: 'del', key });
    s.appliedSeq = p.upto;
    for (const q of [...s.above]) if (q <= p.upto) s.above.delete(q);
    while (s.above.delete(s.appliedSeq + 1)) s.appliedSeq += 1;
    s.highestSeq = Math.max(s.highestSeq, s.appliedSeq);
    s.trimmedSeq = Math.max(s.trimmedSeq, p.upto);
  }

  /** Drops the journal up to `upto` (never past the contiguous watermark); returns entries dropped. */
  private async stageTrim(st: GroupStage, p: TrimPending): Promise<number> {
    const s = await st.stateOf(p.volumeId, p.pg);
    const upto = Math.min(p.upto, s.appliedSeq);
    if (upto <= s.trimmedSeq) return 0;
    let count = 0;
    for await (const key of this.db.keys({ gte: journalKey(p.volumeId, p.pg, 0), lte: journalKey(p.volumeId, p.pg, upto) })) {
      st.levelOps.push({ type: 'del', key });
      count += 1;
    }
    s.trimmedSeq = upto;
    return count;
  }

  /** Deletes a PG's blocks, journal and state (1), unless it saw an epoch above `ifEpochAtMost` (0). */
  private async stageDropPg(st: GroupStage, p: DropPending): Promise<number> {
    const s = await st.stateOf(p.volumeId, p.pg);
    if (s.epoch > p.ifEpochAtMost) return 0;
    unstagePg(st, p.volumeId, p.pg);
    const bPrefix = blockPrefix(p.volumeId);
    for await (const [key, value] of this.db.iterator({ gte: bPrefix, lt: prefixEnd(bPrefix) })) {
      if (value.length >= headerBytes && decodeHeader(value).pg === p.pg) st.levelOps.push({ type: 'del', key });
    }
    const vPrefix = versionPrefix(p.volumeId);
    for await (const [key, value] of this.db.iterator({ gte: vPrefix, lt: prefixEnd(vPrefix) })) {
      if (value.length >= headerBytes && decodeHeader(value).pg === p.pg) st.levelOps.push({ type: 'del', key });
    }
    const jPrefix = journalKey(p.volumeId, p.pg, 0).subarray(0, -6);
    for await (const key of this.db.keys({ gte: jPrefix, lt: prefixEnd(jPrefix) })) st.levelOps.push({ type: 'del', key });
    st.levelOps.push({ type: 'del', key: pgKey(p.volumeId, p.pg) });
    this.epochKeys.forget(pgId(p.volumeId, p.pg));
    const id = pgId(p.volumeId, p.pg);
    st.touched.set(id, emptyPg(p.volumeId, p.pg));
    st.dropped.add(id);
    return 1;
  }

  /**
   * Space reclamation inside the ordered commit: every earlier group has landed (the flush loop
   * waits for that before preparing one of these), so the index read here is the truth, and a
   * block changed earlier in this very group is in `batchSeq` (or its PG in `dropped`).
   */
  private async stageMaintenance(st: GroupStage, p: MaintenancePending): Promise<number> {
    if (p.kind === 'fence') {
      // A synced fence must sync the log even when nothing else is in its batch.
      if (p.sync) st.levelOps.push({ type: 'put', key: metaKey('gc-fence'), value: Buffer.from(String(this.segments?.currentSegmentId() ?? 0)) });
      return this.segments?.currentSegmentId() ?? 0;
    }
    return p.kind === 'purge' ? this.stagePurge(st, p.items) : this.stageRelocate(st, p.items);
  }

  /**
   * The index entry as the census saw it, or null: an entry changed (or gone) since holds nothing
   * in the old segment any more, and a block overwritten meanwhile is never resurrected.
   */
  private async unchangedEntry(st: GroupStage, key: Buffer, expect: Buffer): Promise<BlockHeader | null> {
    if (st.batchSeq.has(key.toString('latin1'))) return null;
    const current = await this.db.get(key);
    if (current === undefined || !current.equals(expect)) return null;
    const h = decodeHeader(current);
    return st.dropped.has(pgId(decodeBlockKey(key).volumeId, h.pg)) ? null : h;
  }

  private async stagePurge(st: GroupStage, items: readonly TombstonePurge[]): Promise<number> {
    let purged = 0;
    for (const t of items) {
      const h = await this.unchangedEntry(st, t.key, t.expect);
      // The trimmed seq only grows: the live one is at or below what this batch stores.
      if (h === null || (h.flags & HeaderFlag.tombstone) === 0 || h.seq > (await this.trimmedSeqOf(t.volumeId, t.pg))) continue;
      // Over kept versions, the tombstone is what hides them from later snapshots: it stays.
      if (await hasVersions(this.db, t.key)) continue;
      st.levelOps.push({ type: 'del', key: t.key });
      st.batchSeq.set(t.key.toString('latin1'), h.seq);
      purged++;
    }
    return purged;
  }

  /** Returns how many items left their old segment (copied, or left for the scrubber as damaged). */
  private async stageRelocate(st: GroupStage, items: readonly Relocation[]): Promise<number> {
    let counted = 0;
    for (const r of items) {
      const h = await this.unchangedEntry(st, r.key, r.expect);
      if (h === null) continue;
      const { crc, ...fields } = h;
      // Never copy forward (and so re-bless) a body that fails its crc: it stays for the scrubber.
      if (computeCrc(fields, r.body) !== crc) { counted++; continue; }
      st.batchSeq.set(r.key.toString('latin1'), h.seq);
      st.stagePut(r.key, h.pg, h.seq, h.epoch, r.body);
    }
    return counted;
  }

  private async storedSeq(bkey: Buffer): Promise<number | undefined> {
    const v = await this.db.get(bkey);
    if (v === undefined) return undefined;
    return decodeHeader(v).seq;
  }

  /** Like storedSeq, but a damaged header counts as absent (that is what a repair replaces). */
  private async storedSeqLenient(bkey: Buffer): Promise<number | undefined> {
    try {
      return await this.storedSeq(bkey);
    } catch {
      return undefined;
    }
  }

  private async checkFreeSpace(bytes: number): Promise<void> {
    const now = Date.now();
    if (now - this.freeCheckedAtMs > freeSpaceRefreshMs || this.freeBytes - bytes < this.minFreeBytes) {
      const st = await statfs(this.dir);
      this.freeBytes = st.bavail * st.bsize;
      this.freeCheckedAtMs = now;
    }
    if (this.freeBytes - bytes < this.minFreeBytes) {
      throw new GalleonError('NO_SPACE', `data disk has ${this.freeBytes} bytes free, a ${bytes}-byte write would leave less than the ${this.minFreeBytes}-byte reserve`, {
        hint: 'free disk space or add capacity; the write was not applied',
      });
    }
    this.freeBytes -= bytes;
  }

  // ---- reads --------------------------------------------------------------------------

  async read(address: BlockAddress): Promise<StoredBlock> {
    this.checkOpen();
    const key = blockKey(address);
    const pending = this.overlay.get(key.toString('latin1'));
    if (pending !== undefined && !pending.onlyIfNewer) return this.fromOverlay(pending.op, address);
    const stored = await this.readStored(key, address);
    if (pending !== undefined && (stored === null || stored.seq < pending.op.seq)) return this.fromOverlay(pending.op, address);
    if (stored === null) throw notFound(address);
    return stored;
  }

  async readStamp(address: BlockAddress): Promise<{ epoch: number; seq: number; pg: number; deleted: boolean } | null> {
    const h = await this.readHead(address, 0);
    return h === null ? null : { epoch: h.epoch, seq: h.seq, pg: h.pg, deleted: h.deleted };
  }

  async readHead(address: BlockAddress, maxBytes: number): Promise<BlockHead | null> {
    this.checkOpen();
    const key = blockKey(address);
    const pending = this.overlay.get(key.toString('latin1'));
    const value = await withIoRetry('reading the block index', () => this.db.get(key));
    const h = value === undefined || value.length < headerBytes ? null : decodeHeader(value);
    if (pending !== undefined && (!pending.onlyIfNewer || h === null || h.seq < pending.op.seq)) {
      const op = pending.op;
      return { epoch: op.epoch, seq: op.seq, pg: op.pg, deleted: op.kind !== 'put', head: op.kind === 'put' ? Buffer.from(op.data.subarray(0, maxBytes)) : Buffer.alloc(0) };
    }
    if (h === null || value === undefined) return null;
    return this.headOfValue(value, maxBytes, () => this.read(address));
  }

  /**
   * `readBelow` without the body (issue #12: the rollback check's heads below a snapshot's cut,
   * server/head-route.ts): the stamp of the newest entry below the cut and its first `maxBytes`,
   * not verified (the crc covers the whole body; a reader believes a claim only after a full read).
   */
  async readHeadBelow(address: BlockAddress, below: number, maxBytes: number): Promise<BlockHead | null> {
    const at = await this.newestBelow(address, below);
    if (at !== null && 'op' in at) {
      const op = at.op;
      return { epoch: op.epoch, seq: op.seq, pg: op.pg, deleted: op.kind !== 'put', head: op.kind === 'put' ? Buffer.from(op.data.subarray(0, maxBytes)) : Buffer.alloc(0) };
    }
    if (at === null || at.value.length < headerBytes) return null;
    return this.headOfValue(at.value, maxBytes, async () => {
      const r = await this.readBelow(address, below);
      if (r.kind !== 'block') throw notFound(address);
      return r.block;
    });
  }

  /** The stamp and first bytes an index value (live or kept) describes; `moved`: the verified read when segment GC is moving its body. */
  private async headOfValue(value: Buffer, maxBytes: number, moved: () => Promise<StoredBlock>): Promise<BlockHead> {
    const h = decodeHeader(value);
    const stamp = { epoch: h.epoch, seq: h.seq, pg: h.pg };
    if ((h.flags & HeaderFlag.tombstone) !== 0) return { ...stamp, deleted: true, head: Buffer.alloc(0) };
    const n = Math.min(maxBytes, h.length);
    if ((h.flags & HeaderFlag.inSegment) === 0 || n === 0) return { ...stamp, deleted: false, head: Buffer.from(value.subarray(headerBytes, headerBytes + n)) };
    invariant(this.segments !== null, 'segments are open');
    const segmentId = value.readUInt32BE(headerBytes);
    // Segment GC is moving this body: a full (verified) read follows the index to its new place.
    if (value.length < headerBytes + segmentPointerBytes || !this.pins.pin(segmentId)) {
      const b = await moved();
      return { epoch: b.epoch, seq: b.seq, pg: b.pg, deleted: false, head: b.data.subarray(0, maxBytes) };
    }
    try {
      return { ...stamp, deleted: false, head: await this.segments.read(segmentId, value.readUIntBE(headerBytes + 4, 6), n) };
    } finally {
      this.pins.unpin(segmentId);
    }
  }

  /**
   * A copy, not a view: the body of a write in flight may live in a request buffer that is reused
   * once the write has landed (server/body-pool.ts), while the reader may still be sending it.
   */
  private fromOverlay(op: BlockOp, address: BlockAddress): StoredBlock {
    if (op.kind !== 'put') throw notFound(address);
    return { data: Buffer.from(op.data), epoch: op.epoch, seq: op.seq, pg: op.pg };
  }

  /** The verified block, or null when absent or deleted. */
  private async readStored(key: Buffer, address: BlockAddress, attempt = 1): Promise<StoredBlock | null> {
    const value = await withIoRetry('reading the block index', () => this.db.get(key));
    if (value === undefined) return null;
    return this.readValue(value, address, key, attempt);
  }

  /** The verified block an index value describes (null: a tombstone); re-reads `key` if GC moved it. */
  private async readValue(value: Buffer, address: BlockAddress, key: Buffer, attempt = 1): Promise<StoredBlock | null> {
    const h = decodeHeader(value);
    if ((h.flags & HeaderFlag.tombstone) !== 0) {
      this.verify(h, new Uint8Array(0), address);
      return null;
    }
    let body: Buffer;
    if ((h.flags & HeaderFlag.inSegment) !== 0) {
      invariant(this.segments !== null, 'segments are open');
      if (value.length < headerBytes + segmentPointerBytes) throw mismatch(address, 'index entry too short for a segment pointer');
      const segmentId = value.readUInt32BE(headerBytes);
      if (!this.pins.pin(segmentId)) {
        // Segment GC moved this body and is deleting the old file: the index points elsewhere now.
        invariant(attempt < maxSegmentReadAttempts, `block index still points into retired segment ${segmentId}`);
        return this.readStored(key, address, attempt + 1);
      }
      try {
        body = await this.segments.read(segmentId, value.readUIntBE(headerBytes + 4, 6), h.length);
      } finally {
        this.pins.unpin(segmentId);
      }
    } else {
      body = value.subarray(headerBytes);
      if (body.length !== h.length) throw mismatch(address, `body is ${body.length} bytes, header says ${h.length}`);
    }
    this.verify(h, body, address);
    return { data: body, epoch: h.epoch, seq: h.seq, pg: h.pg };
  }

  private verify(h: BlockHeader, body: Uint8Array, address: BlockAddress): void {
    const { crc, ...fields } = h;
    if (computeCrc(fields, body) !== crc) {
      this.metrics.checksumMismatches.inc();
      throw mismatch(address, 'crc32c does not match');
    }
  }

  /**
   * The newest entry of the block written at an epoch below `below` (a snapshot's cut): the live
   * entry when it is that old, else one reverse seek among the kept versions. `absent`: no entry
   * below the cut; `deleted`: a tombstone is (the block did not exist at the cut), with its seq.
   */
  async readBelow(address: BlockAddress, below: number): Promise<{ kind: 'block'; block: StoredBlock } | { kind: 'deleted'; epoch: number; seq: number } | { kind: 'absent' }> {
    const at = await this.newestBelow(address, below);
    if (at !== null && 'op' in at) {
      return at.op.kind === 'put' ? { kind: 'block', block: this.fromOverlay(at.op, address) } : { kind: 'deleted', epoch: at.op.epoch, seq: at.op.seq };
    }
    if (at === null) return { kind: 'absent' };
    const h = decodeHeader(at.value);
    const block = await this.readValue(at.value, address, at.key);
    return block === null ? { kind: 'deleted', epoch: h.epoch, seq: h.seq } : { kind: 'block', block };
  }

  /**
   * Where the newest entry of the block below the cut is: a staged op not landed yet, the live
   * index entry when it is that old, or a kept version (one reverse seek); null: none.
   */
  private async newestBelow(address: BlockAddress, below: number): Promise<{ op: BlockOp } | { key: Buffer; value: Buffer } | null> {
    this.checkOpen();
    const key = blockKey(address);
    const pending = this.overlay.get(key.toString('latin1'));
    const liveValue = await withIoRetry('reading the block index', () => this.db.get(key));
    const live = liveValue === undefined ? null : decodeHeader(liveValue);
    if (pending !== undefined && pending.op.epoch < below && (live === null || live.seq < pending.op.seq)) return { op: pending.op };
    if (live !== null && live.epoch < below && liveValue !== undefined) return { key, value: liveValue };
    const kept = await versionBelow(this.db, address, below);
    return kept === null ? null : { key: kept[0], value: kept[1] };
  }

  /**
   * What a full resync ships besides the live blocks (issue #11): every kept version of the PG's
   * blocks and every live tombstone over kept versions (it hides them from later cuts; one over
   * none is the resync's own drop of a block the primary lacks), bodies verified.
   */
  async *iterateKept(volumeId: string, pg: number): AsyncIterable<KeptEntry> {
    for (const prefix of [versionPrefix(volumeId), blockPrefix(volumeId)]) {
      const kept = prefix[0] === Prefix.version;
      for await (const [key, value] of this.db.iterator({ gte: prefix, lt: prefixEnd(prefix) })) {
        if (value.length < headerBytes) continue;
        const h = decodeHeader(value);
        const tombstone = (h.flags & HeaderFlag.tombstone) !== 0;
        if (h.pg !== pg || (!kept && (!tombstone || !await hasVersions(this.db, key)))) continue;
        const address = decodeBlockKey(key);
        const block = await this.readValue(value, address, key);
        yield { address, kept, seq: h.seq, epoch: h.epoch, pg, data: block?.data ?? null };
      }
    }
  }

  /** Every block address of the volume with a live entry or a kept version (backups list a snapshot with readBelow). */
  async *iterateVersionedAddresses(volumeId: string): AsyncIterable<BlockAddress> {
    const seen = new Set<string>();
    for (const prefix of [blockPrefix(volumeId), versionPrefix(volumeId)]) {
      for await (const key of this.db.keys({ gte: prefix, lt: prefixEnd(prefix) })) {
        const a = decodeBlockKey(key);
        const id = `${a.inode}/${a.blockNo}`;
        if (seen.has(id)) continue;
        seen.add(id);
        yield a;
      }
    }
  }

  /** Drops (or with `dryRun` counts) the volume's kept versions no cut in `opts.cuts` needs; paced. */
  pruneVersions(volumeId: string, opts: PruneOptions): Promise<PruneResult> {
    this.checkOpen();
    const unversion = (items: { key: Buffer; expect: Buffer }[]): Promise<number> =>
      this.enqueue<number>((resolve, reject) => ({ kind: 'unversion', items, sync: false, bytes: 0, resolve, reject }));
    return pruneVersions(this.db, volumeId, unversion, opts);
  }

  /** Kept versions of one volume (tests and `snapshot get`): [epoch, seq] per block address. */
  async listVersions(volumeId: string): Promise<{ address: BlockAddress; epoch: number; seq: number }[]> {
    const out: { address: BlockAddress; epoch: number; seq: number }[] = [];
    const prefix = versionPrefix(volumeId);
    for await (const key of this.db.keys({ gte: prefix, lt: prefixEnd(prefix) })) {
      out.push({ address: decodeBlockKey(key), epoch: key.readUIntBE(key.length - 12, 6), seq: key.readUIntBE(key.length - 6, 6) });
    }
    return out;
  }

  async locate(address: BlockAddress): Promise<BodyLocation | null> {
    const value = await this.db.get(blockKey(address));
    if (value === undefined || this.segments === null) return null;
    const h = decodeHeader(value);
    if ((h.flags & HeaderFlag.inSegment) === 0) return null;
    return { file: this.segments.fileOf(value.readUInt32BE(headerBytes)), offset: value.readUIntBE(headerBytes + 4, 6), length: h.length };
  }

  async readJournal(volumeId: string, pg: number, fromSeq: number, limits: JournalReadLimits): Promise<JournalEntry[]> {
    this.checkOpen();
    const s = await this.loadPg(volumeId, pg);
    if (fromSeq <= s.trimmedSeq) {
      throw new GalleonError('OUT_OF_RANGE', `journal of ${volumeId}/${pg} is trimmed up to seq ${s.trimmedSeq}, seq ${fromSeq} is gone`, {
        hint: 'the replica is too far behind: resync the whole placement group', details: { trimmedSeq: s.trimmedSeq },
      });
    }
    const out: JournalEntry[] = [];
    let bytes = 0;
    const end = prefixEnd(journalKey(volumeId, pg, 0).subarray(0, -6));
    for await (const [key, value] of this.db.iterator({ gte: journalKey(volumeId, pg, Math.max(1, fromSeq)), lt: end })) {
      if (out.length >= limits.maxEntries || (out.length > 0 && bytes >= limits.maxBytes)) break;
      const entry = await this.journalEntry(volumeId, pg, journalSeqOf(key), value);
      bytes += entry.block?.data.length ?? 0;
      out.push(entry);
    }
    return out;
  }

  /**
   * One journal entry as catch-up ships it. A put overwritten (or deleted) later is served from
   * the version kept of it when there is one (issue #11: a replica rebuilt by catch-up must keep
   * what snapshots need, and it keeps versions only when it sees the older write), else as a
   * noop (the later entry, also in this journal, carries the block). A delete carries the epoch
   * of its tombstone (live or kept), or, superseded and not kept, the epoch of the entry that
   * superseded it (the same epoch, or it would have been kept): the receiver's versions depend
   * on the epochs it applies, so it must never hear an epoch newer than the write's.
   */
  private async journalEntry(volumeId: string, pg: number, seq: number, value: Buffer): Promise<JournalEntry> {
    const bkey = value.subarray(1);
    const address = decodeBlockKey(bkey);
    const kind = value[0];
    if (kind === JournalKind.noop) return { volumeId, pg, seq, kind: 'noop', address };
    const live = await withIoRetry('reading the block index', () => this.db.get(bkey));
    const liveSeq = live === undefined || live.length < headerBytes ? undefined : decodeHeader(live).seq;
    const kept = liveSeq === seq ? null : await versionFrom(this.db, bkey, seq);
    const found = kept ?? (live !== undefined && liveSeq !== undefined && liveSeq >= seq ? [bkey, live] as const : null);
    if (kind === JournalKind.delete) {
      const epoch = found === null ? undefined : decodeHeader(found[1]).epoch;
      return { volumeId, pg, seq, kind: 'delete', address, ...(epoch === undefined ? {} : { epoch }) };
    }
    const h = found === null ? null : decodeHeader(found[1]);
    const block = found === null || h?.seq !== seq ? null : await this.readValue(found[1], address, found[0]);
    if (block === null) return { volumeId, pg, seq, kind: 'noop', address };
    return { volumeId, pg, seq, kind: 'put', address, block };
  }

  async *iterateAddresses(filter: { volumeId?: string; pg?: number } = {}): AsyncIterable<{ address: BlockAddress; pg: number; seq: number }> {
    const prefix = blockPrefix(filter.volumeId);
    for await (const [key, value] of this.db.iterator({ gte: prefix, lt: prefixEnd(prefix) })) {
      if (value.length < headerBytes) continue;
      const h = decodeHeader(value);
      if ((h.flags & HeaderFlag.tombstone) !== 0) continue;
      if (filter.pg !== undefined && h.pg !== filter.pg) continue;
      yield { address: decodeBlockKey(key), pg: h.pg, seq: h.seq };
    }
  }

  async *iterateBlocks(filter: { volumeId?: string; pg?: number } = {}): AsyncIterable<{ address: BlockAddress; block: StoredBlock }> {
    for await (const { address } of this.iterateAddresses(filter)) {
      const block = await this.readStored(blockKey(address), address);
      if (block !== null) yield { address, block };
    }
  }

  async pgState(volumeId: string, pg: number): Promise<PgState> {
    this.checkOpen();
    const s = await this.loadPg(volumeId, pg);
    return { volumeId, pg, appliedSeq: s.appliedSeq, highestSeq: s.highestSeq, epoch: s.epoch, trimmedSeq: s.trimmedSeq };
  }

  async landedPgState(volumeId: string, pg: number): Promise<PgState> {
    const st = await this.pgState(volumeId, pg);
    // An empty commit after every group staged so far: index batches land in order, so once it
    // settles every write the state above counts is in the index.
    await this.fence(false);
    return st;
  }

  async heldSeqs(volumeId: string, pg: number): Promise<number[]> {
    this.checkOpen();
    return [...(await this.loadPg(volumeId, pg)).above].sort((a, b) => a - b);
  }

  /** An empty commit after every group queued so far (`sync`: the log synced too). */
  private fence(sync: boolean): Promise<number> {
    return this.enqueue<number>((resolve, reject) => ({ kind: 'fence', sync, bytes: 0, resolve, reject }));
  }

  async listPgs(): Promise<{ volumeId: string; pg: number }[]> {
    const out = new Map<string, { volumeId: string; pg: number }>();
    const p = Buffer.from([Prefix.pg]);
    for await (const key of this.db.keys({ gte: p, lt: prefixEnd(p) })) {
      const d = decodePgKey(key);
      out.set(pgId(d.volumeId, d.pg), d);
    }
    for (const s of this.pgs.values()) {
      // Loaded in memory, the state is the truth: an empty one (never used, or dropped) is not held.
      if (isEmptyPg(s)) out.delete(pgId(s.volumeId, s.pg));
      else out.set(pgId(s.volumeId, s.pg), { volumeId: s.volumeId, pg: s.pg });
    }
    return [...out.values()];
  }

  usedBytes(): number {
    return this.segments?.bytes() ?? 0;
  }

  /** The seam for segment GC and tombstone purge (maintenance.ts). */
  maintenance(): StoreMaintenance {
    invariant(this.segments !== null, 'segments are open');
    const prefix = blockPrefix();
    return {
      segments: this.segments,
      pins: this.pins,
      scanBlockIndex: () => this.scanIndexes([prefix, versionPrefix()]),
      fence: (sync) => this.fence(sync),
      relocate: (items) => this.enqueue<number>((resolve, reject) => ({
        kind: 'relocate', items, sync: true, bytes: items.reduce((n, r) => n + r.body.byteLength, 0), resolve, reject,
      })),
      purgeTombstones: (items) => this.enqueue<number>((resolve, reject) => ({ kind: 'purge', items, sync: false, bytes: 0, resolve, reject })),
      trimmedSeq: (volumeId, pg) => this.trimmedSeqOf(volumeId, pg),
    };
  }

  /** Without loading the PG: a census must not make PGs it only reads appear in listPgs. */
  private async trimmedSeqOf(volumeId: string, pg: number): Promise<number> {
    const live = this.pgs.get(pgId(volumeId, pg));
    if (live !== undefined) return live.trimmedSeq;
    return (await this.db.get(pgKey(volumeId, pg)))?.readUIntBE(18, 6) ?? 0;
  }

  /** Kept versions point into segments too: space reclamation walks both key ranges. */
  private async *scanIndexes(prefixes: readonly Buffer[]): AsyncIterable<readonly (readonly [Buffer, Buffer])[]> {
    for (const p of prefixes) yield* this.scanIndex(p);
  }

  /** Batches of entries (nextv): a census walks millions, and one promise per entry doubles its cost. */
  private async *scanIndex(prefix: Buffer): AsyncIterable<readonly (readonly [Buffer, Buffer])[]> {
    const it = this.db.iterator({ gte: prefix, lt: prefixEnd(prefix) });
    try {
      for (;;) {
        const batch = await it.nextv(scanBatchEntries);
        if (batch.length === 0) return;
        yield batch;
      }
    } finally {
      await it.close();
    }
  }

  /** Loads a PG's state once; the out-of-order set is rebuilt from the journal above the watermark. */
  private loadPg(volumeId: string, pg: number): Promise<MemPg> {
    const id = pgId(volumeId, pg);
    const live = this.pgs.get(id);
    if (live !== undefined) return Promise.resolve(live);
    let loading = this.pgLoads.get(id);
    if (loading === undefined) {
      loading = (async () => {
        const v = await this.db.get(pgKey(volumeId, pg));
        const s: MemPg = {
          volumeId, pg, above: new Set(),
          appliedSeq: v?.readUIntBE(0, 6) ?? 0,
          highestSeq: v?.readUIntBE(6, 6) ?? 0,
          epoch: v?.readUIntBE(12, 6) ?? 0,
          trimmedSeq: v?.readUIntBE(18, 6) ?? 0,
        };
        const end = prefixEnd(journalKey(volumeId, pg, 0).subarray(0, -6));
        for await (const key of this.db.keys({ gt: journalKey(volumeId, pg, s.appliedSeq), lt: end })) s.above.add(journalSeqOf(key));
        while (s.above.delete(s.appliedSeq + 1)) s.appliedSeq += 1;
        // Another caller may have finished loading first; keep the one already live.
        const already = this.pgs.get(id);
        if (already !== undefined) return already;
        this.pgs.set(id, s);
        this.pgLoads.delete(id);
        return s;
      })();
      this.pgLoads.set(id, loading);
    }
    return loading;
  }

  private checkOpen(): void {
    if (this.closed) throw new GalleonError('UNAVAILABLE', 'block store is closed', { hint: 'the node is shutting down; retry on another replica' });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing !== null) await this.flushing;
    this.closed = true;
    await this.segments?.close();
    await this.db.close();
  }
}

function notFound(address: BlockAddress): GalleonError {
  return new GalleonError('BLOCK_NOT_FOUND', `block ${address.volumeId}/${address.inode}/${address.blockNo} does not exist`, {
    hint: 'a block that was never written reads as absent; the caller treats it as zeros', details: { ...address },
  });
}

function mismatch(address: BlockAddress, why: string): GalleonError {
  return new GalleonError('CHECKSUM_MISMATCH', `block ${address.volumeId}/${address.inode}/${address.blockNo} is damaged: ${why}`, {
    hint: 'the scrubber repairs it from another replica; read it from another replica meanwhile', details: { ...address },
  });
}
