/**
 * The block store seam: everything the block server needs from local storage, and nothing
 * about HTTP or replication. One conformance suite (test/dataplane/store) runs against every
 * layout of the implementation.
 */

/** Where a block lives in a volume. `inode` and `blockNo` are non-negative integers < 2^48. */
export interface BlockAddress {
  volumeId: string;
  inode: number;
  blockNo: number;
}

/** One mutation, already ordered by its PG's primary (`seq`) under a placement `epoch`. */
export type BlockOp =
  | { kind: 'put'; address: BlockAddress; pg: number; seq: number; epoch: number; data: Uint8Array }
  | { kind: 'delete'; address: BlockAddress; pg: number; seq: number; epoch: number }
  /** Records a journal position without touching a block (a superseded entry during catch-up). */
  | { kind: 'noop'; address: BlockAddress; pg: number; seq: number; epoch: number };

export interface WriteOptions {
  /** Durable: the batch holding these ops is fsync'd (group commit) before the promise resolves. */
  sync: boolean;
  /**
   * Replica path: writes can arrive out of order, so an op only replaces a block whose stored
   * seq is lower. The journal entry is recorded either way (it keeps the PG's seq contiguous).
   */
  onlyIfNewer?: boolean;
}

export interface StoredBlock {
  data: Buffer;
  epoch: number;
  seq: number;
  pg: number;
}

/** What `readHead` answers: the entry's stamp and, for a live block, its first bytes. */
export interface BlockHead {
  epoch: number;
  seq: number;
  pg: number;
  deleted: boolean;
  /** Empty for a tombstone. */
  head: Buffer;
}

export interface JournalEntry {
  volumeId: string;
  pg: number;
  /** The journal position this entry was recorded at. */
  seq: number;
  kind: 'put' | 'delete' | 'noop';
  address: BlockAddress;
  /**
   * For puts: the block as it is now (its own seq may be newer than `seq` when it was
   * overwritten later; applying it with onlyIfNewer is still correct).
   */
  block?: StoredBlock;
  /** For deletes: the epoch the delete was written at, when the store still knows it. */
  epoch?: number;
}

export interface PgState {
  volumeId: string;
  pg: number;
  /** Every seq <= appliedSeq is in this store (the contiguous watermark). */
  appliedSeq: number;
  /** Highest seq seen (> appliedSeq while a gap is open). */
  highestSeq: number;
  /** Newest placement epoch seen for this PG: requests with an older one are refused. */
  epoch: number;
  /** Journal entries <= trimmedSeq are gone: a replica behind it needs a full resync. */
  trimmedSeq: number;
}

export interface JournalReadLimits {
  maxEntries: number;
  maxBytes: number;
}

/** Location of a block body inside the store's own files (for scrub tooling and tests). */
export interface BodyLocation {
  file: string;
  offset: number;
  length: number;
}

export interface BlockStore {
  /**
   * Whether the cluster has accepted this store (its node registered with it). A new or wiped
   * data dir has no such record — unlike a store that merely holds nothing yet — so a node can
   * tell "I lost my data" from "I never had any".
   */
  readonly joined: boolean;
  markJoined(): Promise<void>;
  /** Applies ops in one atomic batch (shared with concurrent callers: group commit). */
  writeBatch(ops: readonly BlockOp[], opts: WriteOptions): Promise<void>;
  write(op: BlockOp, opts: WriteOptions): Promise<void>;
  /** Throws BLOCK_NOT_FOUND, or CHECKSUM_MISMATCH: never returns bytes that fail their crc. */
  read(address: BlockAddress): Promise<StoredBlock>;
  /** Replaces a damaged block with a verified copy (same seq/epoch, no journal entry). */
  rewriteBlock(address: BlockAddress, block: StoredBlock): Promise<void>;
  delete(address: BlockAddress, pg: number, seq: number, epoch: number, opts: WriteOptions): Promise<void>;
  /**
   * The version of the block's newest entry, a tombstone included (`deleted`), or null when it
   * has none: a hand-back compare must see a delete as newer than an older copy (issue #13).
   */
  readStamp(address: BlockAddress): Promise<{ epoch: number; seq: number; pg: number; deleted: boolean } | null>;
  /**
   * The block's newest entry like `readStamp`, with the first `maxBytes` of a live body (issue #12:
   * a replica's block head, server/head-route.ts). The head is NOT verified — the crc covers the
   * whole body, which is not read — so it is a claim its reader must check by a full read.
   */
  readHead(address: BlockAddress, maxBytes: number): Promise<BlockHead | null>;
  /**
   * Resync: drop a block the primary no longer has (no journal entry; skipped if newer here).
   * `sync`: durable before it resolves (a hand-back declined for this tombstone).
   */
  dropBlock(address: BlockAddress, pg: number, seq: number, epoch: number, sync?: boolean): Promise<void>;
  /** Resync finished: every write <= uptoSeq is reflected; the watermark jumps there. */
  completeResync(volumeId: string, pg: number, uptoSeq: number): Promise<void>;
  readJournal(volumeId: string, pg: number, fromSeq: number, limits: JournalReadLimits): Promise<JournalEntry[]>;
  /** Drops journal entries with seq <= uptoSeq; returns how many were removed. */
  trimJournal(volumeId: string, pg: number, uptoSeq: number): Promise<number>;
  /** Every live block (of one PG when given), for scrub and full resync. */
  /** Live block addresses without reading bodies (cheap walk for the scrubber). */
  iterateAddresses(filter?: { volumeId?: string; pg?: number }): AsyncIterable<{ address: BlockAddress; pg: number; seq: number }>;
  iterateBlocks(filter?: { volumeId?: string; pg?: number }): AsyncIterable<{ address: BlockAddress; block: StoredBlock }>;
  pgState(volumeId: string, pg: number): Promise<PgState>;
  /**
   * The PG's state once every write it counts is in the index: `pgState` counts writes whose
   * group is staged but whose index batch has not landed yet, which an index read (iterateBlocks)
   * does not see. A reader that sends a watermark with what it read (a full resync's source)
   * takes it from here.
   */
  landedPgState(volumeId: string, pg: number): Promise<PgState>;
  /**
   * The seqs journaled above the contiguous watermark (out-of-order arrivals), ascending: exactly
   * those, never a seq only a repair or resync copy raised `highestSeq` to. The replication
   * shell mirrors them in the PG's core record (a seq it believes held is not stored again).
   */
  heldSeqs(volumeId: string, pg: number): Promise<number[]>;
  /** Records a newer epoch (persisted); returns the newest known. Never lowers it. */
  observeEpoch(volumeId: string, pg: number, epoch: number): Promise<number>;
  /**
   * Lowers a recorded epoch (persisted, synced); returns the epoch now recorded. Only for an epoch
   * the metadata service never assigned (a forged one recorded before data nodes verified epochs):
   * the replicator calls it after a linearizable read showed the PG at `epoch`.
   */
  lowerEpoch(volumeId: string, pg: number, epoch: number): Promise<number>;
  /** PGs this store holds data or state for. */
  listPgs(): Promise<{ volumeId: string; pg: number }[]>;
  /**
   * Forgets a PG this node no longer serves: its blocks, journal and state, in one ordered batch
   * (writes queued before it are dropped too, later ones start a fresh PG). Segment bodies become
   * unreferenced garbage. With `ifEpochAtMost`, nothing is dropped (false) when the PG has seen a
   * newer epoch by then: the node was added back and may hold writes it acknowledged.
   */
  dropPg(volumeId: string, pg: number, opts?: { ifEpochAtMost?: number }): Promise<boolean>;
  locate(address: BlockAddress): Promise<BodyLocation | null>;
  usedBytes(): number;
  close(): Promise<void>;
}

/**
 * The part of `BlockStore` the replication shell uses (server/: Replicator, EpochGate, peering,
 * primary and replica paths, hand-back): what a stand-in store must provide to run it. Both
 * `LevelBlockStore` and `MemoryBlockStore` (memory-store.ts) implement all of `BlockStore`; the
 * conformance suite (test/dataplane/conformance/store.conformance.ts) runs against both.
 */
export type ReplicationStore = Pick<BlockStore,
  | 'write' | 'writeBatch' | 'read' | 'readStamp' | 'rewriteBlock' | 'dropBlock' | 'completeResync' | 'trimJournal'
  | 'iterateAddresses' | 'iterateBlocks' | 'pgState' | 'heldSeqs' | 'observeEpoch' | 'lowerEpoch' | 'dropPg'>;
