/**
 * The contract of the replication core: what a placement group's record is made of, the events
 * that drive it and the actions it returns. Everything here is plain data, so a shell (the block
 * server) or the deterministic simulator (test/sim-dataplane) can carry it over any transport.
 */
import type { WriteConcern } from '../../proto/metadata-types.js';
import type { ReplicaAck, ReplicaInfo } from '../logic/write-concern.js';

export type { ReplicaAck, ReplicaInfo, WriteConcern };

/** One journal entry: a block write (`value` non-null) or a noop filling a dead seq. */
export interface Entry {
  seq: number;
  /** The epoch of the primary that assigned the seq (kept when peering pulls the entry). */
  epoch: number;
  block: number;
  /** An opaque reference to the body (the simulator uses short strings); null for a noop. */
  value: string | null;
  /** For a handed-back block: the version of the write that first made this data. */
  origin?: Version;
}

export interface Version { epoch: number; seq: number }

/** What a store holds for one block: its value and the (epoch, seq) of the write that made it. */
export interface BlockVersion {
  block: number;
  value: string;
  epoch: number;
  seq: number;
  origin?: Version;
}

/**
 * The version of the data itself: a handed-back block is stored under a new seq, but its data is
 * as old as the write that first made it. Hand-back compares these (simulator seed 277: a block
 * handed back by one stale copy, stored under a new seq, made the primary decline a newer,
 * acknowledged one handed back by another, which was then dropped).
 */
export function dataVersion(v: { epoch: number; seq: number; origin?: Version }): Version {
  return v.origin ?? { epoch: v.epoch, seq: v.seq };
}

/** Versions order by epoch, then seq: a write of a later epoch is later in the PG's history. */
export function versionAfter(a: { epoch: number; seq: number }, b: { epoch: number; seq: number } | null): boolean {
  if (b === null) return true;
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.seq > b.seq);
}

/** The metadata service's placement of one PG, as the core needs it. */
export interface PgPlacement {
  epoch: number;
  primary: string;
  replicas: readonly ReplicaInfo[];
  /** Per replica, the epoch it was (re-)added at (absent: member from the start). */
  addedAt: Readonly<Record<string, number>>;
}

/**
 * Journal contents the shell attaches to a `sendFill` action: the entries from `fromSeq` on, or,
 * when the journal was trimmed past `fromSeq`, a full copy (every block and the watermark they
 * reflect) plus the entries above that watermark.
 */
export interface JournalFill {
  entries: Entry[];
  full: { blocks: BlockVersion[]; applied: number } | null;
}

/** Messages between the data nodes of one PG. */
export type PeerMsg =
  | { t: 'forward'; epoch: number; entries: Entry[]; sync: boolean; trimSeq: number }
  | { t: 'ack'; epoch: number; seqs: number[]; durable: boolean; applied: number }
  /** `newer` > `epoch`: the sender has seen a newer epoch (the primary is deposed); else refused (rejoining). */
  | { t: 'nack'; epoch: number; seqs: number[]; newer: number }
  | { t: 'peer'; epoch: number; fromSeq: number }
  | { t: 'peerAnswer'; epoch: number; applied: number; highest: number; fill: JournalFill }
  | { t: 'pull'; epoch: number; fromSeq: number }
  | { t: 'journal'; epoch: number; fill: JournalFill }
  | { t: 'catchUp'; epoch: number }
  | { t: 'handBack'; epoch: number; offers: BlockVersion[] }
  | { t: 'handBackAck'; epoch: number; blocks: number[] };

/** A message whose journal part the shell fills from its store before sending. */
export type FillMsg = { t: 'peerAnswer'; epoch: number; applied: number; highest: number } | { t: 'journal'; epoch: number };

export type ErrorCodeOut = 'NOT_PRIMARY' | 'STALE_EPOCH' | 'UNAVAILABLE' | 'WRITE_CONCERN_UNMET';

export type PgEvent =
  | { t: 'placement'; p: PgPlacement }
  /** The metadata service granted this node's claim of `epoch` (a repeated claim moves the PG on instead). */
  | { t: 'claimed'; epoch: number }
  | { t: 'lease'; epoch: number; valid: boolean }
  | { t: 'write'; req: number; block: number; value: string; concern: WriteConcern; epoch: number }
  | { t: 'read'; req: number; block: number; epoch: number }
  | { t: 'msg'; from: string; msg: PeerMsg }
  /** A hand-back arriving at the primary, with the primary's own version of each offered block. */
  | { t: 'handBackOffers'; from: string; epoch: number; offers: BlockVersion[]; current: (BlockVersion | null)[] }
  /** The answer to an `inventory` action: every block the local copy holds. */
  | { t: 'inventory'; blocks: BlockVersion[] }
  /** The store finished the `store` action with this token (synced when it asked for sync). */
  | { t: 'stored'; token: number }
  /** The metadata service took this primary's out-of-sync mark of `replica` with this floor. */
  | { t: 'marked'; replica: string; floor: number }
  /** The metadata service refused this primary's out-of-sync mark at `epoch`: it is not the PG's primary there any more. */
  | { t: 'markRefused'; replica: string; epoch: number }
  /** The store action with this token failed (an I/O error: nothing of it may be counted as stored). */
  | { t: 'storeFailed'; token: number }
  /**
   * The shell claimed `p.epoch` and peered the group itself (the block server's peering is not
   * driven by the core yet, server/README.md): serve as primary, assigning seqs above
   * `groupHighest` (the highest seq any member holds) and above every seq this record assigned
   * (the shell keeps one record per PG for the process's life, so that covers earlier epochs).
   */
  | { t: 'peeredByShell'; p: PgPlacement; groupHighest: number; recorded?: number }
  /**
   * The shell, peering as the new primary at `epoch` by itself (the members' answers and the
   * plan's moves are not core events yet), fetched this from a member's journal (`fill.entries`),
   * or copied the member's blocks in full and asks to move the watermark (`fill.full`, its blocks
   * written by the shell). `recorded`: the epoch the store holds (a newer primary may have peered
   * meanwhile: the record rises to it and the batch is refused). The core chooses what is stored
   * (entries above the mirror's watermark and not held; a full copy only when it moves the
   * watermark), so its mirror of the journal follows the store with no `restored` after peering.
   */
  | { t: 'peeringPulled'; epoch: number; recorded: number; fill: JournalFill }
  /** The same peering's plan found `seq` held by no member: a noop entry there, synced (refused as a pull is). */
  | { t: 'peeringNoop'; epoch: number; recorded: number; seq: number }
  /**
   * The shell wrote the local store itself (its replica path, catch-up, full resync or the drop
   * of a stale copy are not driven by the core yet): this is what the store holds now. The mirror
   * of the journal follows it; the epoch is already recorded there (raised, never lowered).
   * `held`: the seqs the store journaled above `applied` — exactly those (a seq a full copy's
   * repair raised the store's highest seq to is not held: believing it held, the record would
   * never store that seq's entry, and the store's watermark would stop below it).
   */
  | { t: 'restored'; epoch: number; applied: number; held: readonly number[]; trimmedTo: number }
  /**
   * The shell admitted a forward's sender against a placement it read and checked that this copy
   * is not stale (its placement reads are not core events yet, server/README.md): serve as a
   * replica of `p`. `recorded`: the newest epoch the shell holds for the PG (store and fences,
   * forged ones lowered); the record rises to it. A `msg forward` from `p.primary` follows.
   */
  | { t: 'replicaByShell'; p: PgPlacement; recorded: number }
  | { t: 'tick' };

export type PgAction =
  | { t: 'store'; token: number; entries: Entry[]; full: JournalFill['full']; sync: boolean }
  /** Record the epoch durably before anything that depends on it leaves. */
  | { t: 'epoch'; epoch: number }
  | { t: 'trim'; upto: number }
  /** Forget the local copy (blocks, journal, watermark); the epoch record stays. */
  | { t: 'drop' }
  | { t: 'send'; to: string; msg: PeerMsg }
  | { t: 'sendFill'; to: string; fromSeq: number; msg: FillMsg }
  /** `acks`: every replica's answer when the write was acknowledged (the map keeps changing afterwards). */
  | { t: 'answer'; req: number; ok: true; seq: number; epoch: number; concern: WriteConcern; acks: ReadonlyMap<string, ReplicaAck> }
  | { t: 'answer'; req: number; ok: false; code: ErrorCodeOut; message: string }
  /** Serve a read from the local store (the core decided this node may). */
  | { t: 'serveRead'; req: number; block: number }
  /** Read this PG's placement again (a message named an epoch above the one known here). */
  | { t: 'refreshPlacement' }
  | { t: 'claim'; epoch: number }
  | { t: 'outOfSync'; replica: string; floor: number; epoch: number }
  | { t: 'inventory' };

/**
 * Deliberate protocol breaks, for the simulator only: each one must be caught by its checks.
 * Production code never sets them (the shell passes none).
 */
export interface CoreFaults {
  /** Acknowledge `replicated` once the local write is accepted, as for `acknowledged`. */
  ackReplicatedAfterLocalWrite?: boolean;
  /** A replica stores forwards and journal answers of an older epoch; a primary admits client requests at one (admission.ts). */
  acceptOldEpoch?: boolean;
  /** A new primary does not pull what replicas hold beyond its own journal during peering. */
  skipPeeringCatchUp?: boolean;
  /** The primary trims its journal at its own watermark, not at the slowest replica's. */
  trimBeforeReplicasApplied?: boolean;
  /** The primary takes every handed-back block, whatever version it holds itself. */
  handBackWithoutCompare?: boolean;
  /** A replica serves reads from its local copy, however far behind it is. */
  readFromReplica?: boolean;
  // Bugs the simulator found, kept as switches so their tests do not depend on one seed's trace:
  /** Acknowledge `replicated` without waiting for the other replicas' answers or out-of-sync marks (the old window). */
  ackBeforeOutOfSyncMark?: boolean;
  /** Compare a handed-back block with the version it is stored under, not the version of its data. */
  handBackByStoredVersion?: boolean;
  /** Record an epoch above the known placement before reading the placement. */
  recordUnknownEpoch?: boolean;
  /** Decline a handed-back block before this node's newer version is durable. */
  declineBeforeSync?: boolean;
}

export type BreakName = keyof CoreFaults;
/** The breaks the issue lists: each must be caught within 300 seeds. */
export const breakNames: readonly BreakName[] = [
  'ackReplicatedAfterLocalWrite', 'acceptOldEpoch', 'skipPeeringCatchUp', 'trimBeforeReplicasApplied', 'handBackWithoutCompare', 'readFromReplica',
];
/** Bugs the simulator found in the core, reintroduced on purpose: their regression tests. */
export const regressionBreakNames: readonly BreakName[] = ['ackBeforeOutOfSyncMark', 'handBackByStoredVersion', 'recordUnknownEpoch', 'declineBeforeSync'];

/** Limits, in ticks and counts. */
export interface CoreLimits {
  /** A forward not acknowledged after this many ticks is sent again. */
  forwardRetryTicks: number;
  /** After this many sends without an answer the replica has failed the write. */
  forwardAttempts: number;
  /** A gap in the replica's journal still open after this many ticks is pulled from the primary. */
  gapTicks: number;
  /** Peering (and hand-back) questions without an answer are asked again after this many ticks. */
  resendTicks: number;
  /** The journal is trimmed once every replica is this many entries past the last trim. */
  trimEveryEntries: number;
  /** At most this many writes wait for their concern at once; more are refused UNAVAILABLE. */
  maxPendingWrites: number;
}

export const defaultCoreLimits: CoreLimits = {
  forwardRetryTicks: 3, forwardAttempts: 3, gapTicks: 3, resendTicks: 5, trimEveryEntries: 1024, maxPendingWrites: 4096,
};

/** What the store holds for the PG when the node starts (its durable state). */
export interface PgRestore {
  epoch: number;
  applied: number;
  trimmedTo: number;
  /** Seqs held above `applied` (a journal with gaps). */
  held: readonly number[];
  /** Seqs an earlier record of this process assigned (a record rebuilt after a forged epoch was lowered). */
  lastAssigned?: number;
}
