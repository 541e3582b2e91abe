/**
 * What one data-node process keeps in memory about one placement group: one record per PG
 * (`Replicator` holds them by `volume/pg`) instead of a map per fact. Nothing here survives a
 * restart; what must is in the store (epochs, journal, watermarks).
 */

/** The primary's state at one epoch, from peering on. */
export interface PrimaryPg {
  epoch: number;
  nextSeq: number;
  /** Contiguous applied seq each other replica last reported. */
  replicaApplied: Map<string, number>;
  trimmedTo: number;
  /** Replicas that failed a write at this epoch: what the metadata service was told about them. */
  outOfSync: Map<string, OutOfSyncMark>;
  /** `replicated` writes waiting for an out-of-sync mark to commit (or be refused): called on either. */
  markWaiters: Set<() => void>;
  /**
   * Blocks taken from a hand-back at this epoch, with the version of their data (its origin):
   * a second hand-back of the block is compared with that, not with the new seq (simulator
   * seed 277). A client write to the block removes it. In memory only (server/README.md).
   */
  handedBack: Map<string, { epoch: number; seq: number }>;
}

export interface OutOfSyncMark {
  /** Every failed seq <= covered is in a committed mark (the replica's floor). */
  covered: number;
  /** Highest seq the replica failed. */
  failed: number;
  sending: boolean;
  nudging: boolean;
  /** The metadata service refused the mark (this node is no longer the PG's primary at its epoch). */
  refused: boolean;
}

export interface PgRuntime {
  /** This node as primary: the peered state (a failed peering is not kept: the next request retries). */
  primary: Promise<PrimaryPg> | undefined;
  /** The PrimaryPg the PG was last peered into (background work of an older one stops). */
  serving: PrimaryPg | undefined;
  /** Peerings in progress per epoch, shared by every caller that needs one. */
  peerings: Map<number, Promise<PrimaryPg>>;
  /** Epoch the primary role was claimed at by THIS process (claimPgPrimary). */
  claimedEpoch: number | undefined;
  /** Highest seq this process assigned: never assigned again, even after a re-peering. */
  assignedSeq: number;
  /**
   * Newest epoch heard from replicas' refusals (or a stale copy's fence), in memory at once: the
   * store persists it a moment later, and no write may be admitted in between. 0: none.
   */
  fencedEpoch: number;
  /** Replicas that failed to apply a write (for logs: the first failure warns). */
  failedReplicas: Set<string>;
  /** A catch-up from the primary's journal is running. */
  catchingUp: boolean;
  /** The journal position this replica last trimmed to (undefined: ask the store). */
  replicaTrimmedTo: number | undefined;
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
    primary: undefined, serving: undefined, peerings: new Map(), claimedEpoch: undefined, assignedSeq: 0, fencedEpoch: 0,
    failedReplicas: new Set(), catchingUp: false, replicaTrimmedTo: undefined, applying: new Set(), handedBack: new Set(),
    handingBack: new Set(), rejoining: false, healing: undefined,
  };
}
