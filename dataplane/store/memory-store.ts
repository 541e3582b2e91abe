/**
 * `MemoryBlockStore`: the `BlockStore` contract held in memory, for tests and in-process
 * simulations. It keeps what the replication protocol relies on — per-PG journal and contiguous
 * watermark, out-of-order replica arrivals, `onlyIfNewer`, trims, resync, the epoch record that
 * never goes down, `dropPg` — and it loses what a power loss loses: its `MemoryDisk`
 * (memory-disk.ts, the crash model the simulator's store shares) holds the durable state plus
 * the commits not yet synced, and `crash()` drops those. A clean `close()` (a
 * process exit) keeps them, as the page cache does for the real store. The same conformance suite
 * runs against it and against `LevelBlockStore` (test/dataplane/conformance/store.conformance.ts).
 *
 * Every commit is applied to the running store's view when it is issued (read-your-writes, in
 * issue order) and settles at the end of the event-loop turn with everything issued in that
 * turn (group commit: a group with one synced writer makes every commit so far durable).
 * No checksums, no files: `locate` is always null.
 */
import { GalleonError, invariant } from '../../proto/errors.js';
import { defaultMaxBlockBodyBytes } from '../../proto/limits.js';
import { blockKey, decodeBlockKey } from './keys.js';
import { checkOp } from './check-op.js';
import { MemoryDisk } from './memory-disk.js';
import { pgId, type MemPg } from './stage.js';
import { noStoreMetrics } from './store-metrics.js';
import type { StoreMetrics } from './store-metrics.js';
import type {
  BlockAddress, BlockHead, BlockOp, BlockStore, BodyLocation, JournalEntry, JournalReadLimits, PgState, StoredBlock, WriteOptions,
} from './types.js';

/** A block as stored: its body, or a tombstone (null) that keeps the seq of the delete. */
interface MemBlock { pg: number; seq: number; epoch: number; data: Buffer | null }

/** The PG record the LevelDB store keeps (stage.ts `MemPg`), plus its journal. */
interface MemPgState extends MemPg {
  /** seq -> kind and block key (latin1 text of `blockKey`). */
  journal: Map<number, { kind: 'put' | 'delete' | 'noop'; key: string }>;
}

interface MemState {
  joined: boolean;
  blocks: Map<string, MemBlock>;
  pgs: Map<string, MemPgState>;
}

/** One mutation, applied to the running view at once and to the durable state once synced. */
type Commit =
  | { kind: 'ops'; ops: readonly BlockOp[]; onlyIfNewer: boolean }
  | { kind: 'repair'; address: BlockAddress; block: MemBlock }
  | { kind: 'watermark'; volumeId: string; pg: number; upto: number }
  | { kind: 'trim'; volumeId: string; pg: number; upto: number }
  | { kind: 'epoch'; volumeId: string; pg: number; epoch: number; lower: boolean }
  | { kind: 'drop'; volumeId: string; pg: number; ifEpochAtMost: number }
  | { kind: 'joined' };

function emptyState(): MemState {
  return { joined: false, blocks: new Map(), pgs: new Map() };
}

function cloneState(s: MemState): MemState {
  const pgs = new Map<string, MemPgState>();
  for (const [id, p] of s.pgs) pgs.set(id, { ...p, above: new Set(p.above), journal: new Map(p.journal) });
  // Blocks are never mutated in place (a write replaces the entry), so sharing them is safe.
  return { joined: s.joined, blocks: new Map(s.blocks), pgs };
}

/** The disk a `MemoryBlockStore` keeps its data on (memory-disk.ts): a restart opens the same one. */
export type BlockStoreDisk = MemoryDisk<MemState, Commit>;

export function blockStoreDisk(): BlockStoreDisk {
  return new MemoryDisk<MemState, Commit>({ empty: emptyState, clone: cloneState, apply: (st, c) => { applyCommit(st, c); } });
}

export interface MemoryBlockStoreOptions {
  /** The disk to open (a restart opens the same one); a new empty one by default. */
  disk?: BlockStoreDisk;
  maxBlockBytes?: number;
  metrics?: StoreMetrics;
}

interface Waiter { sync: boolean; settle: () => void; fail: (e: unknown) => void }

export class MemoryBlockStore implements BlockStore {
  readonly disk: BlockStoreDisk;
  readonly maxBlockBytes: number;
  private readonly metrics: StoreMetrics;
  /** What the running store sees: the durable state with every unsynced commit applied. */
  private readonly view: MemState;
  private waiters: Waiter[] = [];
  private flushQueued = false;
  private closed = false;

  private constructor(opts: MemoryBlockStoreOptions) {
    this.disk = opts.disk ?? blockStoreDisk();
    this.maxBlockBytes = opts.maxBlockBytes ?? defaultMaxBlockBodyBytes;
    this.metrics = opts.metrics ?? noStoreMetrics;
    this.view = this.disk.recovered();
  }

  static open(opts: MemoryBlockStoreOptions = {}): Promise<MemoryBlockStore> {
    return Promise.resolve(new MemoryBlockStore(opts));
  }

  get joined(): boolean {
    return this.view.joined;
  }

  async markJoined(): Promise<void> {
    if (this.view.joined) return;
    await this.commit({ kind: 'joined' }, true);
  }

  write(op: BlockOp, opts: WriteOptions): Promise<void> {
    return this.writeBatch([op], opts);
  }

  delete(address: BlockAddress, pg: number, seq: number, epoch: number, opts: WriteOptions): Promise<void> {
    return this.writeBatch([{ kind: 'delete', address, pg, seq, epoch }], opts);
  }

  writeBatch(ops: readonly BlockOp[], opts: WriteOptions): Promise<void> {
    this.checkOpen();
    for (const op of ops) { checkOp(op, this.maxBlockBytes); blockKey(op.address); }
    // Copies: the caller may reuse its buffers once the write has landed (server/body-pool.ts).
    const owned = ops.map((op): BlockOp => (op.kind === 'put' ? { ...op, data: Buffer.from(op.data) } : op));
    return this.commit({ kind: 'ops', ops: owned, onlyIfNewer: opts.onlyIfNewer ?? false }, opts.sync).then(() => undefined);
  }

  rewriteBlock(address: BlockAddress, block: StoredBlock): Promise<void> {
    this.checkOpen();
    if (block.data.byteLength > this.maxBlockBytes) throw new GalleonError('INVALID_SIZE', `repair copy of ${block.data.byteLength} bytes exceeds maxBlockBytes`);
    const b: MemBlock = { pg: block.pg, seq: block.seq, epoch: block.epoch, data: Buffer.from(block.data) };
    return this.commit({ kind: 'repair', address, block: b }, true).then(() => undefined);
  }

  dropBlock(address: BlockAddress, pg: number, seq: number, epoch: number, sync = false): Promise<void> {
    return this.commit({ kind: 'repair', address, block: { pg, seq, epoch, data: null } }, sync).then(() => undefined);
  }

  completeResync(volumeId: string, pg: number, uptoSeq: number): Promise<void> {
    return this.commit({ kind: 'watermark', volumeId, pg, upto: uptoSeq }, true).then(() => undefined);
  }

  async trimJournal(volumeId: string, pg: number, uptoSeq: number): Promise<number> {
    return Number(await this.commit({ kind: 'trim', volumeId, pg, upto: uptoSeq }, false));
  }

  async observeEpoch(volumeId: string, pg: number, epoch: number): Promise<number> {
    this.checkOpen();
    if (epoch > this.pgOf(volumeId, pg).epoch) await this.commit({ kind: 'epoch', volumeId, pg, epoch, lower: false }, true);
    return this.pgOf(volumeId, pg).epoch;
  }

  async lowerEpoch(volumeId: string, pg: number, epoch: number): Promise<number> {
    this.checkOpen();
    if (epoch < this.pgOf(volumeId, pg).epoch) await this.commit({ kind: 'epoch', volumeId, pg, epoch, lower: true }, true);
    return this.pgOf(volumeId, pg).epoch;
  }

  async dropPg(volumeId: string, pg: number, opts: { ifEpochAtMost?: number } = {}): Promise<boolean> {
    return (await this.commit({ kind: 'drop', volumeId, pg, ifEpochAtMost: opts.ifEpochAtMost ?? Number.MAX_SAFE_INTEGER }, true)) === true;
  }

  read(address: BlockAddress): Promise<StoredBlock> {
    this.checkOpen();
    const b = this.view.blocks.get(blockKey(address).toString('latin1'));
    if (b === undefined || b.data === null) return Promise.reject(notFound(address));
    return Promise.resolve({ data: Buffer.from(b.data), epoch: b.epoch, seq: b.seq, pg: b.pg });
  }

  readStamp(address: BlockAddress): Promise<{ epoch: number; seq: number; pg: number; deleted: boolean } | null> {
    this.checkOpen();
    const b = this.view.blocks.get(blockKey(address).toString('latin1'));
    return Promise.resolve(b === undefined ? null : { epoch: b.epoch, seq: b.seq, pg: b.pg, deleted: b.data === null });
  }

  readHead(address: BlockAddress, maxBytes: number): Promise<BlockHead | null> {
    this.checkOpen();
    const b = this.view.blocks.get(blockKey(address).toString('latin1'));
    if (b === undefined) return Promise.resolve(null);
    return Promise.resolve({ epoch: b.epoch, seq: b.seq, pg: b.pg, deleted: b.data === null, head: b.data === null ? Buffer.alloc(0) : Buffer.from(b.data.subarray(0, maxBytes)) });
  }

  readJournal(volumeId: string, pg: number, fromSeq: number, limits: JournalReadLimits): Promise<JournalEntry[]> {
    this.checkOpen();
    const s = this.pgOf(volumeId, pg);
    if (fromSeq <= s.trimmedSeq) {
      return Promise.reject(new GalleonError('OUT_OF_RANGE', `journal of ${volumeId}/${pg} is trimmed up to seq ${s.trimmedSeq}, seq ${fromSeq} is gone`, {
        hint: 'the replica is too far behind: resync the whole placement group', details: { trimmedSeq: s.trimmedSeq },
      }));
    }
    const out: JournalEntry[] = [];
    let bytes = 0;
    for (const seq of [...s.journal.keys()].filter((q) => q >= fromSeq).sort((a, b) => a - b)) {
      if (out.length >= limits.maxEntries || (out.length > 0 && bytes >= limits.maxBytes)) break;
      const e = s.journal.get(seq);
      invariant(e !== undefined, 'journal seq listed');
      const address = decodeBlockKey(Buffer.from(e.key, 'latin1'));
      const b = e.kind === 'put' ? this.view.blocks.get(e.key) : undefined;
      // Overwritten or deleted later: that later entry is in this journal too and carries it.
      if (e.kind === 'put' && (b === undefined || b.data === null || b.seq !== seq)) { out.push({ volumeId, pg, seq, kind: 'noop', address }); continue; }
      if (b === undefined || b.data === null) { out.push({ volumeId, pg, seq, kind: e.kind, address }); continue; }
      bytes += b.data.length;
      out.push({ volumeId, pg, seq, kind: 'put', address, block: { data: Buffer.from(b.data), epoch: b.epoch, seq: b.seq, pg: b.pg } });
    }
    return Promise.resolve(out);
  }

  async *iterateAddresses(filter: { volumeId?: string; pg?: number } = {}): AsyncIterable<{ address: BlockAddress; pg: number; seq: number }> {
    for (const [key, b] of [...this.view.blocks].sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0))) {
      if (b.data === null || (filter.pg !== undefined && b.pg !== filter.pg)) continue;
      const address = decodeBlockKey(Buffer.from(key, 'latin1'));
      if (filter.volumeId !== undefined && address.volumeId !== filter.volumeId) continue;
      yield { address, pg: b.pg, seq: b.seq };
      await Promise.resolve();
    }
  }

  async *iterateBlocks(filter: { volumeId?: string; pg?: number } = {}): AsyncIterable<{ address: BlockAddress; block: StoredBlock }> {
    for await (const { address } of this.iterateAddresses(filter)) {
      const b = this.view.blocks.get(blockKey(address).toString('latin1'));
      if (b !== undefined && b.data !== null) yield { address, block: { data: Buffer.from(b.data), epoch: b.epoch, seq: b.seq, pg: b.pg } };
    }
  }

  pgState(volumeId: string, pg: number): Promise<PgState> {
    this.checkOpen();
    const s = this.pgOf(volumeId, pg);
    return Promise.resolve({ volumeId, pg, appliedSeq: s.appliedSeq, highestSeq: s.highestSeq, epoch: s.epoch, trimmedSeq: s.trimmedSeq });
  }

  /** Writes apply at once here (nothing is staged): the same as `pgState`. */
  landedPgState(volumeId: string, pg: number): Promise<PgState> {
    return this.pgState(volumeId, pg);
  }

  heldSeqs(volumeId: string, pg: number): Promise<number[]> {
    this.checkOpen();
    return Promise.resolve([...this.pgOf(volumeId, pg).above].sort((a, b) => a - b));
  }

  listPgs(): Promise<{ volumeId: string; pg: number }[]> {
    const held = [...this.view.pgs.values()].filter((s) => !isEmpty(s));
    held.sort((a, b) => (a.volumeId < b.volumeId ? -1 : a.volumeId > b.volumeId ? 1 : a.pg - b.pg));
    return Promise.resolve(held.map((s) => ({ volumeId: s.volumeId, pg: s.pg })));
  }

  locate(): Promise<BodyLocation | null> {
    return Promise.resolve(null);
  }

  usedBytes(): number {
    let n = 0;
    for (const b of this.view.blocks.values()) n += b.data?.length ?? 0;
    return n;
  }

  /** A clean stop: commits in flight settle; nothing is lost (the disk keeps unsynced commits). */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.waiters.length > 0) await new Promise<void>((resolve) => { setImmediate(resolve); });
    this.closed = true;
  }

  /**
   * Power loss: this store stops at once (every call and every commit still in flight fails
   * UNAVAILABLE) and its disk keeps only what was synced. `MemoryBlockStore.open({ disk })`
   * restarts from there.
   */
  crash(): void {
    this.closed = true;
    this.disk.loseUnsynced();
    const lost = this.waiters;
    this.waiters = [];
    for (const w of lost) w.fail(closedError());
  }

  /** Applies a commit to the running view now; settles with its group at the end of the turn. */
  private commit(c: Commit, sync: boolean): Promise<number | boolean | undefined> {
    this.checkOpen();
    const result = applyCommit(this.view, c);
    this.disk.record(c);
    return new Promise((resolve, reject) => {
      this.waiters.push({ sync, settle: () => resolve(result), fail: reject });
      if (this.flushQueued) return;
      this.flushQueued = true;
      setImmediate(() => { this.flushQueued = false; this.flush(); });
    });
  }

  /** One group commit: synced when any commit in it asked for it (an fsync covers every earlier commit). */
  private flush(): void {
    const group = this.waiters;
    if (group.length === 0) return;
    this.waiters = [];
    if (group.some((w) => w.sync)) this.disk.syncThrough();
    this.metrics.groupCommits.inc();
    for (const w of group) w.settle();
  }

  private pgOf(volumeId: string, pg: number): MemPgState {
    return this.view.pgs.get(pgId(volumeId, pg)) ?? emptyPgState(volumeId, pg);
  }

  private checkOpen(): void {
    if (this.closed) throw closedError();
  }
}

function closedError(): GalleonError {
  return new GalleonError('UNAVAILABLE', 'block store is closed', { hint: 'the node is shutting down; retry on another replica' });
}

function notFound(address: BlockAddress): GalleonError {
  return new GalleonError('BLOCK_NOT_FOUND', `block ${address.volumeId}/${address.inode}/${address.blockNo} does not exist`, {
    hint: 'a block that was never written reads as absent; the caller treats it as zeros', details: { ...address },
  });
}

function emptyPgState(volumeId: string, pg: number): MemPgState {
  return { volumeId, pg, appliedSeq: 0, highestSeq: 0, epoch: 0, trimmedSeq: 0, above: new Set(), journal: new Map() };
}

function isEmpty(s: MemPgState): boolean {
  return s.appliedSeq === 0 && s.highestSeq === 0 && s.epoch === 0 && s.trimmedSeq === 0 && s.above.size === 0;
}

function touch(st: MemState, volumeId: string, pg: number): MemPgState {
  const id = pgId(volumeId, pg);
  let s = st.pgs.get(id);
  if (s === undefined) { s = emptyPgState(volumeId, pg); st.pgs.set(id, s); }
  return s;
}

/** Applies one commit to a state; returns what the commit resolves with (a count, a flag). */
function applyCommit(st: MemState, c: Commit): number | boolean | undefined {
  switch (c.kind) {
    case 'ops': for (const op of c.ops) applyOp(st, op, c.onlyIfNewer); return undefined;
    case 'repair': return applyRepair(st, c.address, c.block);
    case 'watermark': return applyWatermark(touch(st, c.volumeId, c.pg), c.upto);
    case 'trim': return applyTrim(touch(st, c.volumeId, c.pg), c.upto);
    case 'epoch': {
      const s = touch(st, c.volumeId, c.pg);
      s.epoch = c.lower ? Math.min(s.epoch, c.epoch) : Math.max(s.epoch, c.epoch);
      return undefined;
    }
    case 'drop': return applyDrop(st, c.volumeId, c.pg, c.ifEpochAtMost);
    case 'joined': st.joined = true; return undefined;
    default: { const never: never = c; invariant(false, `unknown commit ${JSON.stringify(never)}`); }
  }
}

/** A client or replica write: journaled unless a duplicate; its block applied unless a newer one is stored. */
function applyOp(st: MemState, op: BlockOp, onlyIfNewer: boolean): void {
  const s = touch(st, op.address.volumeId, op.pg);
  if (op.seq <= s.trimmedSeq || op.seq <= s.appliedSeq || s.above.has(op.seq)) return; // a duplicate delivery
  s.above.add(op.seq);
  while (s.above.delete(s.appliedSeq + 1)) s.appliedSeq += 1;
  s.highestSeq = Math.max(s.highestSeq, op.seq);
  s.epoch = Math.max(s.epoch, op.epoch);
  const key = blockKey(op.address).toString('latin1');
  const current = st.blocks.get(key);
  const apply = op.kind !== 'noop' && (!onlyIfNewer || current === undefined || current.seq < op.seq);
  // The block already holds this very write (a resync copied it first): journaled as itself.
  const sameWrite = op.kind !== 'noop' && current !== undefined && current.seq === op.seq;
  s.journal.set(op.seq, { kind: apply || sameWrite ? op.kind : 'noop', key });
  if (!apply) return;
  st.blocks.set(key, { pg: op.pg, seq: op.seq, epoch: op.epoch, data: op.kind === 'put' ? Buffer.from(op.data) : null });
}

/** Read repair, resync copies and drops: no journal entry; skipped when a newer write is stored. */
function applyRepair(st: MemState, address: BlockAddress, block: MemBlock): undefined {
  const key = blockKey(address).toString('latin1');
  const current = st.blocks.get(key);
  if (current !== undefined && current.seq > block.seq) return undefined;
  const s = touch(st, address.volumeId, block.pg);
  s.highestSeq = Math.max(s.highestSeq, block.seq);
  st.blocks.set(key, block);
  return undefined;
}

function applyWatermark(s: MemPgState, upto: number): undefined {
  if (upto <= s.appliedSeq) return undefined;
  for (const q of [...s.journal.keys()]) if (q <= upto) s.journal.delete(q);
  s.appliedSeq = upto;
  for (const q of [...s.above]) if (q <= upto) s.above.delete(q);
  while (s.above.delete(s.appliedSeq + 1)) s.appliedSeq += 1;
  s.highestSeq = Math.max(s.highestSeq, s.appliedSeq);
  s.trimmedSeq = Math.max(s.trimmedSeq, upto);
  return undefined;
}

/** Drops the journal up to `upto`, never past the contiguous watermark; returns entries dropped. */
function applyTrim(s: MemPgState, requested: number): number {
  const upto = Math.min(requested, s.appliedSeq);
  if (upto <= s.trimmedSeq) return 0;
  let count = 0;
  for (const q of [...s.journal.keys()]) if (q <= upto) { s.journal.delete(q); count++; }
  s.trimmedSeq = upto;
  return count;
}

function applyDrop(st: MemState, volumeId: string, pg: number, ifEpochAtMost: number): boolean {
  const id = pgId(volumeId, pg);
  if ((st.pgs.get(id)?.epoch ?? 0) > ifEpochAtMost) return false;
  for (const [key, b] of [...st.blocks]) if (b.pg === pg && decodeBlockKey(Buffer.from(key, 'latin1')).volumeId === volumeId) st.blocks.delete(key);
  st.pgs.delete(id);
  return true;
}
