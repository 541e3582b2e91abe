/**
 * The metadata contract shared by the service, its typed client, the daemon's admin endpoint,
 * the CLI and the data plane. Plain JSON-able objects: they cross gRPC and HTTP as they are.
 * Times are milliseconds since the epoch as stamped by the Raft leader (`...AtMs`).
 */

export const WriteConcern = {
  Acknowledged: 'acknowledged',
  Durable: 'durable',
  Replicated: 'replicated',
  Distributed: 'distributed',
} as const;
export type WriteConcern = (typeof WriteConcern)[keyof typeof WriteConcern];
/** Weakest first: a write may ask for a stronger concern than its class's default, never weaker. */
export const writeConcernOrder: readonly WriteConcern[] = ['acknowledged', 'durable', 'replicated', 'distributed'];

/**
 * A volume's block size: the unit of file data on the data plane, fixed at creation (a power
 * of two in this range). The default was chosen by `npm run bench:blocksize` (vfs/README.md).
 */
export const minBlockSizeBytes = 4096;
export const maxBlockSizeBytes = 1024 * 1024;
export const defaultBlockSizeBytes = 128 * 1024;

export const VolumeType = { Ephemeral: 'ephemeral', Persistent: 'persistent', Shared: 'shared' } as const;
export type VolumeType = (typeof VolumeType)[keyof typeof VolumeType];

export const AccessMode = { ReadWriteOnce: 'ReadWriteOnce', ReadOnlyMany: 'ReadOnlyMany', ReadWriteMany: 'ReadWriteMany' } as const;
export type AccessMode = (typeof AccessMode)[keyof typeof AccessMode];

export type ReclaimPolicy = 'Delete' | 'Retain';
export type VolumeBindingMode = 'Immediate' | 'WaitForFirstConsumer';
/** How replicas spread over zones: `none` ignores zones, `prefer` spreads when it can, `require` refuses to place otherwise. */
export type ZoneSpread = 'none' | 'prefer' | 'require';

export interface StorageClassSpec {
  name: string;
  /** The owning tenant (issue #12): the edges set it to the caller's tenant. */
  tenant?: string;
  provisioner?: string;
  parameters?: Record<string, string>;
  replicas?: number;
  encryption?: boolean;
  writeConcern?: WriteConcern;
  zoneSpread?: ZoneSpread;
  reclaimPolicy?: ReclaimPolicy;
  volumeBindingMode?: VolumeBindingMode;
  allowedTopologies?: string[];
  mountOptions?: string[];
}

export interface StorageClass {
  name: string;
  provisioner: string;
  parameters: Record<string, string>;
  replicas: number;
  encryption: boolean;
  /** Only 'AES-256-GCM' is supported; set when encryption is on. */
  encryptionAlgorithm: string | null;
  writeConcern: WriteConcern;
  zoneSpread: ZoneSpread;
  reclaimPolicy: ReclaimPolicy;
  volumeBindingMode: VolumeBindingMode;
  allowedTopologies: string[];
  mountOptions: string[];
  builtIn: boolean;
  createdAtMs: number;
  /** The tenant that owns the class (issue #12); absent: shared by every tenant. */
  tenant?: string;
}

import type { PolicyEntry } from './auth.js';

export interface VolumeSpec {
  name?: string;
  type?: VolumeType;
  /** Bytes, or a string with a K/M/G/T suffix (powers of 1024). */
  size?: number | string;
  storageClass?: string;
  replicas?: number;
  accessMode?: AccessMode;
  labels?: Record<string, string>;
  /** Bytes, or a string with a K/M suffix: a power of two from 4 KiB to 1 MiB. */
  blockSize?: number | string;
  /** The owning tenant (issue #12): the edges set it to the caller's tenant. */
  tenant?: string;
  /**
   * The volume's data key, wrapped by a key provider (dataplane/client/key-providers.ts): given
   * for a class with encryption (a daemon makes it), never for one without.
   */
  dataKey?: WrappedDataKey;
}

export type KeyProviderName = 'internal' | 'vault';

/** A volume's data key as the metadata service keeps it: only ever wrapped. */
export interface WrappedDataKey {
  provider: KeyProviderName;
  /** Which KEK (and version, for the internal provider) wrapped it. */
  keyId: string;
  /** Base64 (internal) or the KMS's ciphertext string (vault:vN:…). */
  wrapped: string;
}

export interface VolumeKeyRecord extends WrappedDataKey {
  volumeId: string;
  /** Writer ids handed out so far (allocateKeyWriter): the next one is writers + 1. */
  writers: number;
  /** When the wrap last changed (creation or rotation), leader's clock. */
  wrappedAtMs: number;
}

export type VolumeState = 'available' | 'degraded' | 'expanding' | 'deleting';

export interface Volume {
  id: string;
  name: string;
  type: VolumeType;
  sizeBytes: number;
  accessMode: AccessMode;
  storageClass: string;
  replicas: number;
  writeConcern: WriteConcern;
  blockSizeBytes: number;
  pgCount: number;
  state: VolumeState;
  labels: Record<string, string>;
  createdAtMs: number;
  updatedAtMs: number;
  /** Bumped by every change: lets a client do compare-and-set style updates. */
  version: number;
  /** The tenant that owns the volume (issue #12); absent: no tenant (seen only by tenantless users). */
  tenant?: string;
  /** Who may read or write its blocks and mount it (proto/auth.ts `volumeAccess`); absent: by role. */
  policy?: PolicyEntry[];
  /** True when blocks are sealed in the client with the volume's data key (getVolumeKey). */
  encrypted?: boolean;
  /** A clone: blocks it never wrote read through to this snapshot of its parent (issue #11). */
  parent?: { volumeId: string; snapshotId: string; cut: number };
  /**
   * In-place restores, oldest first: from `atEpoch` on, the volume reads as its snapshot at `cut`
   * (plus what was written since). See dataplane/logic/snapshot-versions.ts.
   */
  restores?: { atEpoch: number; cut: number; snapshotId: string }[];
  /**
   * Set while the file tree is being written in paced steps (a clone copying its parent's tree at
   * the snapshot's cut, an in-place restore rolling it back); the volume cannot be mounted until then.
   */
  treeState?: 'copying' | 'restoring';
  /**
   * Freeing of block versions no retained cut needs (issue #11): `requested` counts the requests
   * (a snapshot delete or an in-place restore, in the same command), `done` the newest request a
   * finished prune round covered. Pending while `requested > done`; a data-role daemon resumes it
   * (cli/daemon/prune-runner.ts). Absent: never requested.
   */
  prune?: VolumePrune;
}

export interface VolumePrune {
  requested: number;
  done: number;
  /** Leader stamp of the newest request. */
  requestedAtMs: number;
}

/** Whether a prune was asked for and no round that started after it has finished on every data node. */
export function isPrunePending(v: Pick<Volume, 'prune'>): boolean {
  return v.prune !== undefined && v.prune.requested > v.prune.done;
}

/**
 * A point-in-time image of a volume (issue #11): every block written at a placement epoch below
 * `cut` — the epoch the snapshot command moved every PG of the volume to.
 */
export interface Snapshot {
  id: string;
  name: string;
  volumeId: string;
  volumeName: string;
  cut: number;
  sizeBytes: number;
  blockSizeBytes: number;
  createdAtMs: number;
  /** Clones that read through this snapshot (names); it cannot be deleted while any exist. */
  clones?: string[];
  /** The file tree's counters at the cut (statfs of a clone or a restore starts from them). */
  fileTree?: { inodes: number; usedBytes: number; nextIno: number };
}

export type DataNodeState = 'up' | 'down' | 'draining';

export interface DataNodeRegistration {
  id: string;
  /** Data-plane HTTP address, host:port. */
  address: string;
  zone: string;
  capacityBytes: number;
  /** How often the node heartbeats (default `defaultHeartbeatIntervalMs`): the service's "heard from lately" scales with it. */
  heartbeatIntervalMs?: number;
  /**
   * The node's store never joined the cluster (a new or wiped data dir): it holds nothing, so it
   * leaves every in-sync set it is in (metadata/state/logic/pg-safety.ts). Not stored.
   */
  emptyStore?: boolean;
}

export interface DataNode extends Omit<DataNodeRegistration, 'emptyStore'> {
  usedBytes: number;
  state: DataNodeState;
  lastHeartbeatAtMs: number;
  registeredAtMs: number;
}

/** Per placement group progress a data node reports in its heartbeat. */
export interface PgReport {
  volumeId: string;
  pg: number;
  epoch: number;
  appliedSeq: number;
}

export interface PlacementGroup {
  volumeId: string;
  pg: number;
  /** Ordered replica set; replicas[0] is not necessarily the primary. */
  replicas: string[];
  primary: string;
  /** Bumped on every change of primary or replica set: nodes refuse requests with an older one. */
  epoch: number;
  /** Replicas known to hold every acknowledged write (eligible to become primary). */
  inSync: string[];
  /**
   * Replica id -> the epoch at which it joined the set after the PG was created (a replacement, or
   * a node added back). A node whose local copy of the PG has seen only older epochs holds data
   * from an earlier membership: it must start from empty, not catch up from its old watermark.
   * Absent (or without the id) for replicas placed when the volume was created.
   */
  addedAtEpoch?: Record<string, number>;
  /**
   * Node id -> the epoch it left the replica set at, for nodes that may still hold a copy from
   * before (metadata/state/logic/departed.ts): until each reports it gone, the data nodes keep
   * every tombstone of the PG, so a hand-back of that copy cannot bring a deleted block back.
   */
  departed?: Record<string, number>;
}

export type LeaseKind = 'pg-primary' | 'mount';

export interface Lease {
  id: string;
  kind: LeaseKind;
  /** What the lease is on: `${volumeId}/${pg}` for pg-primary, the volume id for mount. */
  resource: string;
  holder: string;
  /** mount leases: the access the holder asked for. */
  mode: 'rw' | 'ro' | null;
  grantedAtMs: number;
  expiresAtMs: number;
}

export type MemberRole = 'voter' | 'learner';

export interface Member {
  id: string;
  /** Raft/metadata gRPC address. */
  address: string;
  /** The admin (HTTP/JSON) address of the daemon hosting it, when known. */
  adminAddress: string | null;
  role: MemberRole;
  isLeader: boolean;
  /** Leader's view: replied recently. Non-leader: unknown (null). */
  healthy: boolean | null;
  matchIndex: number | null;
}

export interface ClusterStatus {
  /** The member that answered. */
  nodeId: string;
  leaderId: string | null;
  leaderAddress: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  members: Member[];
  dataNodes: DataNode[];
  /** Placement groups with fewer in-sync replicas than their class asks, or a primary that is down. */
  degradedPgs: number;
  underReplicatedPgs: number;
}

/** What `removeDataNode` did: the node as it was, and the PGs that changed. */
export interface DataNodeRemoval {
  node: DataNode;
  changed: PlacementGroup[];
}

export interface ReadOptions {
  /** Read the local replica's state without confirming leadership (may be stale). */
  stale?: boolean;
}

/** Reads of a directory's entries: as a mount session (a directory it holds the delegation of is not recalled). */
export interface FsReadOptions extends ReadOptions {
  session?: string;
}

/** Identifies a client command so that a retry after a leader change is applied once. */
export interface CommandId {
  clientId: string;
  seq: number;
}

/**
 * The metadata service's operations. Names (or UUIDs) identify volumes; storage classes by name.
 * Every mutating call is applied exactly once per (clientId, seq) the client stamps on it.
 */
export interface MetadataApi extends FsApi, BackupApi {
  createStorageClass(spec: StorageClassSpec): Promise<StorageClass>;
  getStorageClass(name: string, opts?: ReadOptions): Promise<StorageClass>;
  listStorageClasses(opts?: ReadOptions): Promise<StorageClass[]>;
  deleteStorageClass(name: string): Promise<void>;

  createVolume(spec: VolumeSpec): Promise<Volume>;
  getVolume(nameOrId: string, opts?: ReadOptions): Promise<Volume>;
  listVolumes(opts?: ReadOptions): Promise<Volume[]>;
  /** Sets labels; a null value removes that label. */
  updateVolumeLabels(nameOrId: string, labels: Record<string, string | null>, scope?: TenantScope): Promise<Volume>;
  expandVolume(nameOrId: string, size: number | string, scope?: TenantScope): Promise<Volume>;
  deleteVolume(nameOrId: string, scope?: TenantScope): Promise<Volume>;
  /** The wrapped data key of an encrypted volume (KEY_UNAVAILABLE when it has none). */
  getVolumeKey(volumeId: string, opts?: ReadOptions): Promise<VolumeKeyRecord>;
  /** A writer id never handed out before for this volume's key: the block nonces' prefix. */
  allocateKeyWriter(volumeId: string): Promise<number>;
  /** Replaces the wrap of a volume's data key if it is still `expectedWrapped` (rotation). */
  rewrapVolumeKey(volumeId: string, expectedWrapped: string, next: WrappedDataKey): Promise<VolumeKeyRecord>;

  /** Snapshots (issue #11): one command each; creation moves every PG of the volume to a new epoch. */
  createSnapshot(volume: string, name?: string | null, scope?: TenantScope): Promise<Snapshot>;
  listSnapshots(volume?: string, opts?: ReadOptions): Promise<Snapshot[]>;
  getSnapshot(nameOrId: string, opts?: ReadOptions): Promise<Snapshot>;
  /** The snapshot's file tree at its cut, a page at a time (start with cursor null; limit 1..1024 records). */
  getSnapshotTree(nameOrId: string, cursor: string | null, limit: number, opts?: ReadOptions): Promise<SnapshotTreePage>;
  /** Refused (SNAPSHOT_IN_USE) while clones read through it. */
  deleteSnapshot(nameOrId: string, scope?: TenantScope): Promise<Snapshot>;
  /** A new volume reading through to the snapshot for blocks it has not written. */
  /** `dataKey`: the clone's own wrapped key, when its class encrypts (the daemon wraps it). */
  cloneVolume(snapshot: string, name: string, dataKey?: WrappedDataKey | null, scope?: TenantScope): Promise<Volume>;
  /** Rolls the volume back in place to one of its snapshots; refused while mounted read-write. */
  restoreVolume(volume: string, snapshot: string, scope?: TenantScope): Promise<Volume>;
  /**
   * A prune round that read `gen` as the volume's `prune.requested` before its cut list finished on
   * every data node of the volume (nodes only): `prune.done` moves up to `gen`, never down.
   */
  finishVolumePrune(volumeId: string, gen: number): Promise<Volume>;

  registerDataNode(node: DataNodeRegistration): Promise<DataNode>;
  heartbeatDataNode(id: string, usedBytes: number, pgs: PgReport[]): Promise<DataNode>;
  listDataNodes(opts?: ReadOptions): Promise<DataNode[]>;
  /** Removes a data node marked down: it leaves every PG (replacements added, epoch+1); refused while it is up or holds the only in-sync copy of a PG. */
  removeDataNode(id: string): Promise<DataNodeRemoval>;
  getPlacement(volumeId: string, opts?: ReadOptions): Promise<PlacementGroup[]>;

  /** `epoch` (pg-primary only): grant only if `holder` is the PG's primary at exactly that epoch. */
  acquireLease(kind: LeaseKind, resource: string, holder: string, ttlMs: number, mode?: 'rw' | 'ro', epoch?: number): Promise<Lease>;
  renewLease(leaseId: string, ttlMs: number): Promise<Lease>;
  releaseLease(leaseId: string): Promise<void>;

  /**
   * A data node about to serve as `nodeId`, primary of the PG at `epoch`: the first claim of an
   * epoch keeps it, a repeated one (the primary restarted) moves the PG to epoch + 1. Returns the PG.
   */
  claimPgPrimary(volumeId: string, pg: number, nodeId: string, epoch: number): Promise<PlacementGroup>;
  /**
   * The PG's primary (`primaryId` at `epoch`) takes `nodeId` out of the in-sync set after it failed
   * a write; it rejoins once it reports applied seq >= `uptoSeq` at the PG's epoch. Returns the PG.
   */
  markPgReplicaOutOfSync(volumeId: string, pg: number, nodeId: string, epoch: number, primaryId: string, uptoSeq: number): Promise<PlacementGroup>;
  /** A data node holds no copy of the PG from before `epoch` any more (handed back and dropped): its departed entry goes. */
  departedCopyGone(volumeId: string, pg: number, nodeId: string, epoch: number): Promise<PlacementGroup>;

  clusterStatus(opts?: ReadOptions): Promise<ClusterStatus>;
  addMember(id: string, address: string, adminAddress: string | null): Promise<Member[]>;
  promoteMember(id: string): Promise<Member[]>;
  removeMember(id: string): Promise<Member[]>;
  transferLeadership(toId: string): Promise<void>;
}

// ---- backups (metadata/state/logic/backup-targets.ts, dataplane/backup) ------------------------

/** Where backups are written, recorded in the metadata service so every node sees the same targets. */
export type BackupTarget =
  | { name: string; kind: 'dir'; path: string; createdAtMs: number }
  | {
    name: string; kind: 's3'; endpoint: string; bucket: string; prefix: string; region: string;
    /** Absent: the daemon uses AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of its environment. */
    accessKeyId?: string; secretAccessKey?: string; createdAtMs: number;
  };

export interface BackupTargetSpec {
  name: string;
  /** Absolute path of a directory (local disk or a network file system). */
  dir?: string;
  /** http(s)://host:port of an S3-compatible service. */
  s3?: string;
  bucket?: string;
  prefix?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** A backup schedule with GFS retention; `nextDueMs` and `lastRun` are Raft state so a new leader neither loses nor repeats a run. */
export interface BackupPolicy {
  id: string;
  volumeId: string;
  volume: string;
  target: string;
  schedule: string;
  strategy: 'full' | 'incremental' | 'differential';
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  /** Percent of each new backup's blocks a scheduled verify reads (0: off). */
  verifySamplePercent: number;
  nextDueMs: number;
  /** The run claimed last (claimBackupRun): `done` once its backup finished or failed. */
  lastRun: { dueMs: number; claimedBy: string; claimedAtMs: number; done: boolean; backupId: string | null; error: string | null } | null;
  createdAtMs: number;
}

export interface BackupPolicySpec {
  volume: string;
  target: string;
  schedule: string;
  strategy?: string;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  verifySamplePercent?: number;
  /** The first due time after creation, computed by the caller from the schedule (apply reads no clock). */
  firstDueMs: number;
}

export interface BackupApi {
  addBackupTarget(spec: BackupTargetSpec): Promise<BackupTarget>;
  removeBackupTarget(name: string): Promise<BackupTarget>;
  getBackupTarget(name: string, opts?: ReadOptions): Promise<BackupTarget>;
  listBackupTargets(opts?: ReadOptions): Promise<BackupTarget[]>;
  createBackupPolicy(spec: BackupPolicySpec): Promise<BackupPolicy>;
  deleteBackupPolicy(id: string): Promise<BackupPolicy>;
  listBackupPolicies(opts?: ReadOptions): Promise<BackupPolicy[]>;
  /** Claims the run of `policyId` due at `dueMs` (once: a second claim of the same due time is refused) and moves the policy to `nextDueMs`; or takes over an unfinished run another scheduler claimed. */
  claimBackupRun(policyId: string, dueMs: number, nextDueMs: number, claimedBy: string): Promise<BackupPolicy>;
  /** Records the outcome of the run due at `dueMs`; only its current claimer may. */
  finishBackupRun(policyId: string, dueMs: number, backupId: string | null, error: string | null, claimedBy: string): Promise<BackupPolicy>;
}

// ---- file-system namespace (metadata/state/logic/ns-*.ts; vfs/README.md "Namespace") ---------

/** Inode types; `file` is a regular file. */
export type FsFileType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';
/**
 * Nanoseconds since the epoch as a decimal string, e.g. "1700000000123456789": exact through JSON
 * and gRPC (a JSON number is not exact past 2^53). `BigInt(t)` to compute with it.
 */
export type TimeNs = string;

/** What the kernel needs of an inode (getattr, and every answer that changes one). */
export interface FsAttr {
  ino: number;
  type: FsFileType;
  /** Permission bits with set-uid 0o4000, set-gid 0o2000 and sticky 0o1000; the type is in `type`. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes (regular files), target bytes (symlinks), 0 otherwise. */
  size: number;
  nlink: number;
  atimeNs: TimeNs;
  mtimeNs: TimeNs;
  ctimeNs: TimeNs;
  /** Device number of char/block devices (0 otherwise). */
  rdev: number;
  /** Bumped by every change of the inode: a cheap "did it change" for caches. */
  generation: number;
  /**
   * Truncate epoch: bumped by every size set through setattr. A writer passes the epoch it last
   * saw to fsCommitWrite; a commit from an older epoch cannot change the size
   * (metadata/state/logic/ns-truncate.ts has the rule).
   */
  truncEpoch: number;
  /** How many extended attributes it has; absent when none (a mount answers ENODATA for them without asking). */
  xattrCount?: number;
}

/** Who asks: every namespace command carries it (ownership rules, sticky directories, set-gid). */
export interface FsCaller {
  uid: number;
  gid: number;
  /** Supplementary groups (chown to a group, set-gid kept on chmod). */
  groups?: number[];
}

/** `start` inclusive, `end` exclusive: the caller's to use as inode numbers for creates. */
export interface FsInodeRange {
  start: number;
  end: number;
}

/** Answer of create/mknod/mkdir/symlink/link: the inode, and its parent with new mtime/ctime. */
export interface FsEntryReply {
  attr: FsAttr;
  parent: FsAttr;
  /** fsCreate without `exclusive`: false when the name already held a regular file (opened instead). */
  created: boolean;
}

/** Handles of one mount session to close: one per entry of `inos` (fsCloseMany, fsCommitWrite). */
export interface FsCloses {
  session: string;
  inos: number[];
}

export interface FsCreateOptions {
  /** Applied to `mode` (mode & ~umask). Default 0. */
  umask?: number;
  /** O_EXCL: an existing name is EEXIST (default true); without it an existing regular file is answered. */
  exclusive?: boolean;
  /**
   * A mount lease id: the created (or, without `exclusive`, existing) file is also opened for that
   * session in the same command, as fsOpen would (one Raft write for open(O_CREAT)).
   */
  open?: string;
  /** Handles released since the mount's last command, closed in the same command (as fsCloseMany). */
  closes?: FsCloses;
}

/** fsDelegate / fsRecall: whether the caller holds the directory, who does, and since when a recall is asked. */
export interface FsDelegation {
  granted: boolean;
  session: string | null;
  recallAtMs: number | null;
  /** fsRecall: whether the holder's mount lease is live (a waiter past its first wait waits on while it is). */
  holderLive?: boolean;
}

/** One new file of an fsCommitBatch: what fsCreate + fsCommitWrite would carry, with the mount's own times. */
export interface FsBatchFile {
  name: string;
  ino: number;
  caller: FsCaller;
  mode: number;
  size: number;
  ctimeNs: TimeNs;
  mtimeNs: TimeNs;
  /** Handles the committing session still has open on it (counted as fsOpen would; default 0). */
  open?: number;
}

/** A time to set: 'now' (UTIME_NOW, the leader's stamp) or nanoseconds; absent = UTIME_OMIT. */
export type FsTimeSet = string;

export interface FsSetattr {
  mode?: number;
  uid?: number;
  gid?: number;
  /** Regular files only: truncate or extend (blocks past the new size are queued to free). */
  size?: number;
  atime?: FsTimeSet;
  mtime?: FsTimeSet;
}

export const FsRenameFlags = { NoReplace: 1, Exchange: 2 } as const;
export const FsXattrFlags = { Create: 1, Replace: 2 } as const;

export interface FsRenameReply {
  /** The inode that moved to the new name. */
  attr: FsAttr;
  /** Old and new parent after the change (the same inode when they are one directory). */
  parent: FsAttr;
  newParent: FsAttr;
}

export interface FsUnlinkReply {
  parent: FsAttr;
  /** The unlinked inode after the change; null once it was deleted (no links, not open anywhere). */
  attr: FsAttr | null;
}

export interface FsDirEntry {
  name: string;
  attr: FsAttr;
}

/** One inode of a snapshot's file tree (getSnapshotTree). */
export interface SnapshotTreeInode {
  attr: FsAttr;
  /** Symlinks. */
  target?: string;
  /** Extended attributes, name -> base64 value. */
  xattrs?: Record<string, string>;
}

/** One directory entry of a snapshot's file tree. */
export interface SnapshotTreeEntry { parent: number; name: string; ino: number; type: FsFileType }

/**
 * A page of a snapshot's file tree, inodes before entries. A record can come again on a later
 * page, always with the same value (the walk reads changed records' versions last): key by
 * inode number, and by (parent, name).
 */
export interface SnapshotTreePage {
  inodes: SnapshotTreeInode[];
  entries: SnapshotTreeEntry[];
  /** Pass back to get the next page; null after the last one. */
  cursor: string | null;
}

export interface FsReaddirPage {
  /** In byte order of their names, without "." and "..". */
  entries: FsDirEntry[];
  /** Pass back to get the next page; null after the last entry. */
  cursor: string | null;
}

export interface FsStatfs {
  /** The volume's size: its quota. */
  totalBytes: number;
  /** Sum of the sizes of the volume's regular files (logical bytes, holes included). */
  usedBytes: number;
  freeBytes: number;
  blockSizeBytes: number;
  /** Inodes in use (root included) and how many more the namespace accepts. */
  inodes: number;
  freeInodes: number;
  maxNameBytes: number;
}

/** Blocks of file `ino` from block `fromBlock` on are garbage: the data layer frees them and acks `seq`. */
export interface FsBlocksToFree {
  seq: number;
  ino: number;
  fromBlock: number;
  /**
   * Set for the reclaim of a mount session that ended holding delegations (its batch may never
   * have committed): every block of inodes [ino, inoEnd) that have no inode record is freed.
   */
  inoEnd?: number;
  /** The end to free, when the namespace knows it (a file an in-place restore dropped). */
  toBlock?: number;
}

/** The namespace operations (one command or query each; see vfs/README.md). `volume` is a name or id. */
export interface FsApi {
  /** With `session` (the mount's lease), the range is recorded for the reclaim of a batch that never commits. */
  fsAllocateInodes(volume: string, count: number, session?: string): Promise<FsInodeRange>;
  fsCreate(volume: string, caller: FsCaller, parent: number, name: string, ino: number, mode: number, opts?: FsCreateOptions): Promise<FsEntryReply>;
  fsMknod(volume: string, caller: FsCaller, parent: number, name: string, ino: number, type: FsFileType, mode: number, rdev?: number, umask?: number): Promise<FsEntryReply>;
  fsMkdir(volume: string, caller: FsCaller, parent: number, name: string, ino: number, mode: number, umask?: number): Promise<FsEntryReply>;
  fsSymlink(volume: string, caller: FsCaller, parent: number, name: string, ino: number, target: string): Promise<FsEntryReply>;
  fsLink(volume: string, caller: FsCaller, ino: number, newParent: number, newName: string): Promise<FsEntryReply>;
  fsUnlink(volume: string, caller: FsCaller, parent: number, name: string): Promise<FsUnlinkReply>;
  fsRmdir(volume: string, caller: FsCaller, parent: number, name: string): Promise<FsUnlinkReply>;
  fsRename(volume: string, caller: FsCaller, parent: number, name: string, newParent: number, newName: string, flags?: number): Promise<FsRenameReply>;
  fsSetattr(volume: string, caller: FsCaller, ino: number, changes: FsSetattr): Promise<FsAttr>;
  /** `value` base64; flags FsXattrFlags. */
  fsSetxattr(volume: string, caller: FsCaller, ino: number, name: string, value: string, flags?: number): Promise<FsAttr>;
  fsRemovexattr(volume: string, caller: FsCaller, ino: number, name: string): Promise<FsAttr>;
  /**
   * After data up to `size` is acknowledged: size grows to it (never shrinks), mtime/ctime set.
   * `closes`: handles released since, closed in the same command (as fsCloseMany).
   * With `truncEpoch` older than the inode's (a truncate elsewhere since the writer last looked),
   * the size does not change; the answer's size and truncEpoch tell the writer where to cut.
   */
  fsCommitWrite(volume: string, ino: number, size: number, mtimeNs?: TimeNs, closes?: FsCloses, truncEpoch?: number): Promise<FsAttr>;
  /** `session`: the id of the mount's live mount lease on this volume. */
  fsOpen(volume: string, ino: number, session: string): Promise<FsAttr>;
  fsClose(volume: string, ino: number, session: string): Promise<void>;
  /** One handle of `closes.session` closed per listed inode (an inode listed twice loses two); ≤ 1,024 inodes. */
  fsCloseMany(volume: string, closes: FsCloses): Promise<void>;
  fsAckBlocksFreed(volume: string, seqs: number[]): Promise<{ freed: number }>;
  /**
   * Directory delegations (metadata/state/logic/ns-delegation.ts; not used by the mounts yet):
   * take, recall, release; and the holder's batch of new files, all or nothing (≤ 4,096).
   */
  fsDelegate(volume: string, dir: number, session: string): Promise<FsDelegation>;
  fsRecall(volume: string, dir: number): Promise<FsDelegation>;
  fsReleaseDelegation(volume: string, dir: number, session: string): Promise<{ released: boolean }>;
  fsCommitBatch(volume: string, session: string, dir: number, files: FsBatchFile[], release?: boolean, keepReservedBytes?: number): Promise<{ attrs: FsAttr[]; parent: FsAttr }>;
  /** Sets the holder's reservation of the volume's size for its buffered files in `dir` (a growth only as far as there is room); answers what it holds. */
  fsReserve(volume: string, dir: number, session: string, bytes: number): Promise<{ reservedBytes: number }>;

  /** `opts.session`: the caller's mount session, which may read a directory it holds the delegation of. */
  fsLookup(volume: string, parent: number, name: string, opts?: FsReadOptions): Promise<FsAttr>;
  fsGetattr(volume: string, ino: number, opts?: ReadOptions): Promise<FsAttr>;
  fsReaddir(volume: string, ino: number, cursor: string | null, limit: number, opts?: FsReadOptions): Promise<FsReaddirPage>;
  fsReadlink(volume: string, ino: number, opts?: ReadOptions): Promise<string>;
  /** The value, base64. */
  fsGetxattr(volume: string, ino: number, name: string, opts?: ReadOptions): Promise<string>;
  fsListxattr(volume: string, ino: number, opts?: ReadOptions): Promise<string[]>;
  fsStatfs(volume: string, opts?: ReadOptions): Promise<FsStatfs>;
  fsListBlocksToFree(volume: string, limit: number, opts?: ReadOptions): Promise<FsBlocksToFree[]>;
  /** The directories `session` holds, with their recall stamps (a holder woken by its watch reads this). */
  fsDelegationsOf(volume: string, session: string, opts?: ReadOptions): Promise<{ dir: number; recallAtMs: number | null }[]>;

  /**
   * Flush of every mount before a snapshot (metadata/state/logic/ns-flush.ts): a new request to
   * the volume's live read-write mount sessions; a session's answer; the newest request of a
   * volume; every request someone has still to answer (the mount managers' watch reads this).
   */
  fsFlushRequest(volume: string): Promise<FsFlushState>;
  fsFlushAck(volume: string, session: string, seq: number, error: string | null): Promise<FsFlushState>;
  fsFlushState(volume: string, opts?: ReadOptions): Promise<FsFlushState>;
  fsFlushRequests(opts?: ReadOptions): Promise<FsFlushState[]>;
}

/** A volume's newest flush request (seq 0: none ever) and who has answered it. */
export interface FsFlushState {
  volumeId: string;
  seq: number;
  requestedAtMs: number | null;
  /** Live mount sessions that have not answered yet. */
  waiting: string[];
  /** Sessions that answered that their flush failed, with its error. */
  failed: { session: string; error: string }[];
  /** Sessions asked whose mount lease ended before they answered: whatever they had buffered is lost. */
  lapsed: string[];
}

/**
 * The tenant a call acts for (issue #12): the auth guard adds it to a tenant user's commands on an
 * existing volume, and the state machine refuses the command, in the same apply, when the volume
 * the name resolves to is not that tenant's (as if it did not exist). So the check and the change
 * cannot be split by a delete and a namesake created by another tenant.
 */
export interface TenantScope { tenant: string }
