/** What the daemon's admin endpoint says about itself; shared by the daemon and the CLI. */

export const allRoles = ['metadata', 'data'] as const;
export type Role = (typeof allRoles)[number];

export const replicationStrategies = ['synchronous', 'asynchronous'] as const;
export type ReplicationStrategy = (typeof replicationStrategies)[number];

export const persistenceLevels = ['basic', 'enhanced', 'high', 'maximum'] as const;
export type PersistenceLevel = (typeof persistenceLevels)[number];

/** What `cluster leave` did. */
export interface LeaveResult {
  nodeId: string;
  removed: boolean;
  transferredLeadershipTo: string | null;
}

/** The daemon's effective configuration: defaults, then the config file, then flags. */
export interface DaemonConfig {
  /** null until resolved from --node-id or the id persisted under storagePath. */
  nodeId: string | null;
  roles: Role[];
  storagePath: string;
  bindAddress: string;
  ipcAddress: string;
  /** Data-plane (block traffic, HTTP) address this node registers as a data node. */
  dataAddress: string;
  peerAddresses: string[];
  blockSizeBytes: number;
  replicationStrategy: ReplicationStrategy;
  persistenceLevel: PersistenceLevel;
  zone: string;
  /** Joining nodes are promoted to voters while the quorum has fewer than this. */
  targetVoters: number;
  /** Data role: how often this node heartbeats to the metadata service. */
  heartbeatIntervalMs: number;
  /** Data role: ttl of the pg-primary leases it takes (every node of a cluster should agree). */
  leaseTtlMs: number;
  /** Metadata role: a data node silent this long is marked down; > leaseTtlMs + its margin. */
  dataNodeDownAfterMs: number;
  configFile: string | null;
  /** Mount every volume at `<mountPoint>/<volume-name>` (the mount manager, vfs/manager); null: only explicit mounts. */
  mountPoint: string | null;
  /** Cluster key file of the internal key provider (null: <storage>/cluster.key). */
  keyFile: string | null;
  /** Vault transit engine that wraps new volumes' data keys (token: GALLEON_KMS_TOKEN or VAULT_TOKEN). */
  kms: { address: string; keyName: string } | null;
  /** Issue #12: the node credential's file; null: authentication is off (every port is open). */
  nodeTokenFile: string | null;
  /** Mutual TLS on every endpoint (the default); false only with --insecure-plaintext / `[security] tls = false`. */
  tls: boolean;
  /** This node's TLS folder (ca.crt, tls.crt, tls.key); null: `<storagePath>/tls`. */
  tlsDir: string | null;
  /**
   * Encrypted reads of this node's clients (admin, mounts, backups) that no other in-sync replica
   * answers: `best-effort` serves and counts them, `strict` refuses them (dataplane/client/README.md "No witness").
   */
  freshness: FreshnessSetting;
}

/** The rollback check's modes (the same list as dataplane/logic/freshness.ts `freshnessModes`, which config.ts may not import). */
export const freshnessSettings = ['best-effort', 'strict'] as const;
export type FreshnessSetting = (typeof freshnessSettings)[number];

export type RoleState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' | 'left';

export interface DaemonStatus {
  nodeId: string;
  pid: number;
  version: string;
  startedAtMs: number;
  uptimeMs: number;
  roles: Role[];
  storagePath: string;
  bindAddress: string;
  ipcAddress: string;
  healthy: boolean;
  /** Which transport security is in force on every endpoint of this node. */
  security: {
    mode: 'mutual-tls' | 'plaintext'; tlsDir: string | null; certSubject: string | null; certNotAfter: string | null;
    /** The certificate in force now (a rotation shows here within cli/lib/tls-watch.ts `tlsReloadIntervalMs`). */
    certSerial: string | null;
    /** Serials on the revocation list this node enforces. */
    revokedCertificates: number;
    /** What this node's clients do with an encrypted read no other replica could check. */
    freshness: FreshnessSetting;
  };
  metadata: {
    state: RoleState;
    error: string | null;
    raftRole: 'leader' | 'voter' | 'learner' | 'unknown';
    leaderId: string | null;
    term: number | null;
    commitIndex: number | null;
    appliedIndex: number | null;
  } | null;
  data: { state: RoleState; registered: boolean; address: string } | null;
}
