/**
 * The seam between the Raft node driver (metadata/raft/node, metadata/service) and the
 * replicated state machine (metadata/state). The driver knows nothing of volumes; the state
 * machine knows nothing of Raft.
 *
 * A mutating MetadataApi call becomes one Command: its method name and arguments, stamped with
 * the caller's (clientId, seq) and, by the leader when proposing, the leader's wall clock.
 * Apply never reads a clock: every time-dependent decision uses `stampMs`.
 */
import type { DataNode, MetadataApi } from '../../proto/metadata-types.js';
import type { SerializedError } from '../../proto/errors.js';
import type { AuthApi } from '../../proto/auth-api.js';

/** Methods of MetadataApi that change state and are therefore replicated through the log. */
export const commandMethods = [
  'createStorageClass', 'deleteStorageClass',
  'createVolume', 'updateVolumeLabels', 'expandVolume', 'deleteVolume', 'allocateKeyWriter', 'rewrapVolumeKey',
  'createSnapshot', 'deleteSnapshot', 'cloneVolume', 'restoreVolume', 'finishVolumePrune',
  'registerDataNode', 'heartbeatDataNode',
  'acquireLease', 'renewLease', 'releaseLease',
  'claimPgPrimary', 'markPgReplicaOutOfSync', 'departedCopyGone',
  'removeDataNode',
  'fsAllocateInodes', 'fsCreate', 'fsMknod', 'fsMkdir', 'fsSymlink', 'fsLink', 'fsUnlink', 'fsRmdir', 'fsRename',
  'fsSetattr', 'fsSetxattr', 'fsRemovexattr', 'fsCommitWrite', 'fsOpen', 'fsClose', 'fsCloseMany', 'fsAckBlocksFreed',
  'fsDelegate', 'fsRecall', 'fsReleaseDelegation', 'fsCommitBatch', 'fsReserve', 'fsFlushRequest', 'fsFlushAck',
  'addBackupTarget', 'removeBackupTarget', 'createBackupPolicy', 'deleteBackupPolicy', 'claimBackupRun', 'finishBackupRun',

  'createUser', 'deleteUser', 'createToken', 'revokeToken', 'setVolumePolicy',
] as const satisfies readonly (keyof (MetadataApi & AuthApi))[];
export type CommandMethod = (typeof commandMethods)[number];

/** Methods answered from the state machine's local state (after ReadIndex unless stale). */
export const queryMethods = [
  'getStorageClass', 'listStorageClasses', 'getVolume', 'listVolumes', 'listDataNodes', 'getPlacement', 'getVolumeKey',
  'listSnapshots', 'getSnapshot', 'getSnapshotTree',
  'fsLookup', 'fsGetattr', 'fsReaddir', 'fsReadlink', 'fsGetxattr', 'fsListxattr', 'fsStatfs', 'fsListBlocksToFree', 'fsDelegationsOf',
  'fsFlushState', 'fsFlushRequests',
  'getBackupTarget', 'listBackupTargets', 'listBackupPolicies',
  'listUsers', 'listTokens', 'authLookup',
] as const satisfies readonly (keyof (MetadataApi & AuthApi))[];
export type QueryMethod = (typeof queryMethods)[number];

/** Reads the service's own code needs that are not MetadataApi methods (clusterStatus, lease expiry). */
export const internalQueryMethods = ['clusterSummary', 'listLeases', 'listPgReports', 'listCatchUpFloors', 'fsPendingPurges'] as const;
export type InternalQueryMethod = (typeof internalQueryMethods)[number];

/** What `query('clusterSummary', [])` returns: the state's part of ClusterStatus. */
export interface ClusterSummary {
  dataNodes: DataNode[];
  volumes: number;
  pgs: number;
  /** PGs with fewer in-sync replicas on up nodes than their volume asks, or a primary that is not up and in sync. */
  degradedPgs: number;
  /** PGs with fewer replicas on up nodes than their volume asks. */
  underReplicatedPgs: number;
}

/** Commands the leader's own controllers issue (not part of the public API). */
export type InternalCommand =
  | { method: 'markDataNodeDown'; args: [nodeId: string] }
  | { method: 'expireLeases'; args: [] }
  /** Removes a bounded number of keys of deleted volumes' namespaces (while fsPendingPurges > 0). */
  | { method: 'fsPurgeDeleted'; args: [] }
  /** A resynced replica joins the PG's in-sync set; refused (STALE_EPOCH) unless `epoch` is the PG's current one. */
  | { method: 'markPgReplicaInSync'; args: [volumeId: string, pg: number, nodeId: string, epoch: number] };

export interface Command {
  clientId: string;
  seq: number;
  /** The proposing leader's clock, in ms since the epoch. */
  stampMs: number;
  method: CommandMethod | InternalCommand['method'];
  args: unknown[];
}

export type CommandResult = { ok: true; value: unknown } | { ok: false; error: SerializedError };

/** A committed log entry as the state machine sees it. */
export type AppliedRecord =
  | { index: number; kind: 'noop' }
  | { index: number; kind: 'command'; command: Command }
  | { index: number; kind: 'member'; change: 'add-voter' | 'add-learner' | 'promote-learner' | 'remove-node'; memberId: string; address: string | null; adminAddress: string | null };

export interface MemberRecord {
  id: string;
  address: string;
  adminAddress: string | null;
}

export interface StateMachine {
  /** Index of the last record applied (0 for a new store). Survives restarts exactly. */
  appliedIndex(): number;
  /**
   * Applies records in order, in ONE atomic LevelDB batch together with the new applied index.
   * Records at or below appliedIndex() are skipped (never re-applied). A retried command
   * (same clientId and seq as one already applied) is not applied again; its first result is
   * returned. Returns one result per record ('noop'/'member' records get { ok: true, value: null }).
   */
  apply(records: AppliedRecord[]): Promise<CommandResult[]>;
  /** Answers a read from local state. Throws GalleonError for not-found and bad arguments. */
  query(method: QueryMethod | InternalQueryMethod, args: unknown[]): Promise<unknown>;
  /** Members and their addresses as recorded by applied 'member' records. */
  members(): Promise<MemberRecord[]>;
  /**
   * Makes everything applied durable (one synced write) and returns that index: the Raft driver
   * compacts its log only up to a checkpoint, since the database itself is the snapshot.
   */
  checkpoint(): Promise<number>;
  /**
   * A point-in-time stream of the whole state (one LevelDB iterator), at the index it reports,
   * as self-checking chunks of about `maxChunkBytes`. Only one chunk is in memory at a time.
   * `close()` releases the iterator (also when the consumer stops early).
   */
  openSnapshotStream(maxChunkBytes?: number): Promise<SnapshotStream>;
  /**
   * Starts receiving the snapshot taken at `index` into a staging area beside the live state
   * (which stays as it is, serving reads and applies); each chunk is applied there as it
   * arrives. A new call abandons the previous unfinished one (never a finished one: Raft may be
   * about to install it); the same index again, once finished, only checks the chunks. Install
   * a finished one with installRestored().
   */
  beginRestore(index: number): Promise<SnapshotSink>;
  /**
   * Replaces the live state with the finished staged snapshot taken at `index`, crash-safely
   * (a crash leaves the old state or the new one, and a later open finishes the switch).
   * Throws FAILED_PRECONDITION when no finished staged snapshot at `index` exists.
   */
  installRestored(index: number): Promise<void>;
  /** The whole state at appliedIndex(), as one buffer (tests, small states, old log stores). */
  snapshot(): Promise<{ index: number; data: Uint8Array }>;
  /** Replaces the whole state with a one-buffer snapshot taken elsewhere (atomically). */
  restore(index: number, data: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface SnapshotStream {
  /** The applied index of the state the chunks carry. */
  index: number;
  chunks: AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

export interface SnapshotSink {
  /** Checks and applies one chunk (in order: a chunk out of sequence fails with CHECKSUM_MISMATCH). */
  write(chunk: Uint8Array): Promise<void>;
  /** After the last chunk: makes the staged state durable and returns its index. */
  finish(): Promise<number>;
  /** Drops the staged state. */
  abort(): Promise<void>;
}
