/**
 * What one data-node process keeps in memory about one placement group: one record per PG
 * (`Replicator` holds them by `volume/pg`) instead of a map per fact. Nothing here survives a
 * restart; what must is in the store (epochs, journal, watermarks).
 */
import type { TimerHandle } from '../clock.js';
import type { PgCore } from '../core/index.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import type { ReplicaAck } from '../logic/write-concern.js';
import type { VolumePlacement } from '../placement.js';
import type { BlockAddress, BlockOp } from '../store/types.js';

/**
 * The primary's state at one epoch, from peering on. The decisions (seqs, acks by concern,
 * out-of-sync marks, fencing, trims) are the replication core's (`core`, ../core); the rest is
 * what the shell needs to carry out its actions (primary-drive.ts).
 */
export interface PrimaryPg {
  volumeId: string;
  pg: number;
  epoch: number;
  /** The PG's core record (`PgRuntime.core`: the same one for every epoch this node serves). */
  core: PgCore;
  /** The PG's runtime record (its `writes` are the core's, whatever epoch ordered them). */
  runtime: PgRuntime;
  /** The metadata calls carrying the core's out-of-sync marks, one in flight per replica. */
  marks: Map<string, MarkCall>;
  /** Replicas with a catch-up request in flight (the core's `catchUp` messages, one at a time per replica). */
  catchUps: Set<string>;
  /**
   * Blocks taken from a hand-back at this epoch, with the version of their data (its origin):
   * a second hand-back of the block is compared with that, not with the new seq (simulator
   * seed 277). A client write to the block removes it. In memory only (server/README.md).
   */
  handedBack: Map<string, { epoch: number; seq: number }>;
}

/** A write the core ordered (or is about to), until the core answers it. */
export interface CoreWrite {
  address: BlockAddress;
  data: Uint8Array | null;
  placement: VolumePlacement;
  /** The store op, built when the core's `store` action names the seq. */
  op: BlockOp | undefined;
  /** The local store's error, reported instead of the core's WRITE_CONCERN_UNMET. */
  localError: Error | undefined;
  /** Test hook (GALLEON_TEST_DIE_AFTER_FORWARD): not stored here; the process dies once a replica stored it. */
  dieAfterForward: boolean;
  resolve: (r: WriteResult) => void;
  reject: (e: Error) => void;
}

export interface MarkCall {
  /** Highest floor the core asked for. */
  want: number;
  sending: boolean;
}

/** What a primary answers for a write acknowledged at its concern. */
export interface WriteResult {
  volumeId: string;
  pg: number;
  seq: number;
  epoch: number;
  concern: WriteConcern;
  acks: Record<string, ReplicaAck>;
}

export interface PgRuntime {
  /**
   * The replication core's record of this PG (../core), one for the process's life: created at
   * the first peering as primary or the first forward as replica, told what the store holds
   * (`restored`) before every peering as primary and when the replica path finds the store ahead
   * of it, so the seqs it assigned in any epoch are never assigned again. Undefined until then.
   */
  core: PgCore | undefined;
  /** Writes the core has not answered yet, by the core's request number (`nextReq`), whatever epoch ordered them. */
  writes: Map<number, CoreWrite>;
  nextReq: number;
  /** This node as primary: the peered state (a failed peering is not kept: the next request retries). */
  primary: Promise<PrimaryPg> | undefined;
  /** The PrimaryPg the PG was last peered into (background work of an older one stops). */
  serving: PrimaryPg | undefined;
  /** Peerings in progress per epoch, shared by every caller that needs one. */
  peerings: Map<number, Promise<PrimaryPg>>;
  /** Epoch the primary role was claimed at by THIS process (claimPgPrimary). */
  claimedEpoch: number | undefined;
  /**
   * Newest epoch heard from replicas' refusals (or a stale copy's fence), in memory at once: the
   * store persists it a moment later, and no write may be admitted in between. 0: none.
   */
  fencedEpoch: number;
  /** Replicas that failed to apply a write (for logs: the first failure warns). */
  failedReplicas: Set<string>;
  /** A catch-up from the primary's journal is running. */
  catchingUp: boolean;
  /**
   * A gap in this replica's journal (seqs held above the core record's watermark): the timer that
   * ticks the record while it is open, and the placement of the last forward (the primary's
   * address for the core's `pull`; replica-path.ts `watchGap`).
   */
  gap: { timer: TimerHandle | undefined; placement: VolumePlacement } | undefined;
  /**
   * The shell wrote the store behind the core record in a way the store cannot show as "ahead"
   * (a drop, a failed store action): the replica path restores the record from the store first.
   */
  coreBehind: boolean;
  /** The replica path's last store action (each reports `stored` only after the ones before it). */
  replicaStored: Promise<unknown>;
  /**
   * Replica-side writes in progress (forwards and catch-up batches, each admitted under an epoch
   * check): peering waits for them, so the seqs it reports include every write admitted before
   * the new epoch was installed, and none can land after it.
   */
  applying: Set<Promise<unknown>>;
  /** Epochs at which this node handed its blocks to the new primary / is doing so. */
  handedBack: Set<number>;
  handingBack: Set<number>;
  /** The local copy is from an earlier membership and is being replaced. */
  rejoining: boolean;
  /** The recorded epoch is being lowered to the assigned one (every epoch check waits). */
  healing: Promise<number> | undefined;
}

export function newPgRuntime(): PgRuntime {
  return {
    core: undefined, writes: new Map(), nextReq: 1,
    primary: undefined, serving: undefined, peerings: new Map(), claimedEpoch: undefined, fencedEpoch: 0,
    failedReplicas: new Set(), catchingUp: false, gap: undefined, coreBehind: false, replicaStored: Promise.resolve(), applying: new Set(), handedBack: new Set(),
    handingBack: new Set(), rejoining: false, healing: undefined,
  };
}
