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
}

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
}

export type DataNodeState = 'up' | 'down' | 'draining';

export interface DataNodeRegistration {
  id: string;
  /** Data-plane HTTP address, host:port. */
  address: string;
  zone: string;
  capacityBytes: number;
}

export interface DataNode extends DataNodeRegistration {
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

/** Identifies a client command so that a retry after a leader change is applied once. */
export interface CommandId {
  clientId: string;
  seq: number;
}

/**
 * The metadata service's operations. Names (or UUIDs) identify volumes; storage classes by name.
 * Every mutating call is applied exactly once per (clientId, seq) the client stamps on it.
 */
export interface MetadataApi {
  createStorageClass(spec: StorageClassSpec): Promise<StorageClass>;
  getStorageClass(name: string, opts?: ReadOptions): Promise<StorageClass>;
  listStorageClasses(opts?: ReadOptions): Promise<StorageClass[]>;
  deleteStorageClass(name: string): Promise<void>;

  createVolume(spec: VolumeSpec): Promise<Volume>;
  getVolume(nameOrId: string, opts?: ReadOptions): Promise<Volume>;
  listVolumes(opts?: ReadOptions): Promise<Volume[]>;
  /** Sets labels; a null value removes that label. */
  updateVolumeLabels(nameOrId: string, labels: Record<string, string | null>): Promise<Volume>;
  expandVolume(nameOrId: string, size: number | string): Promise<Volume>;
  deleteVolume(nameOrId: string): Promise<Volume>;

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

  clusterStatus(opts?: ReadOptions): Promise<ClusterStatus>;
  addMember(id: string, address: string, adminAddress: string | null): Promise<Member[]>;
  promoteMember(id: string): Promise<Member[]>;
  removeMember(id: string): Promise<Member[]>;
  transferLeadership(toId: string): Promise<void>;
}
