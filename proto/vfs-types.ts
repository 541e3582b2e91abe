/**
 * What a daemon's mount manager answers on the admin endpoint (`/v1/vfs/...`): one shape for
 * vfs/manager, which makes it, and the CLI, which shows it (the CLI imports only cli/ and proto/).
 */
export type MountState = 'mounted' | 'refused' | 'failed';

export interface MountInfo {
  volume: string;
  volumeId: string;
  mountPoint: string;
  mode: 'rw' | 'ro';
  /** Raw mode: the volume as one file `data`. */
  raw: boolean;
  auto: boolean;
  state: MountState;
  error: string | null;
  mountedAtMs: number | null;
}

export interface VfsStatus extends MountInfo {
  files: number;
  directories: number;
  counted: 'exact' | 'partial';
  usedBytes: number;
  totalBytes: number;
  inodes: number;
  openHandles: number;
  pendingWriteBytes: number;
  lastSyncMs: number | null;
  /** Namespace commands (Raft writes) this mount has sent since it mounted. */
  namespaceWrites: number;
  /** Released handles whose close has not reached the namespace yet (they ride on the next commit). */
  pendingCloses: number;
  /** New files closed under a directory delegation and not committed yet (write-back), and their bytes. */
  writebackFiles: number;
  writebackBytes: number;
  /** Kernel requests this mount served since it mounted, by op (`native.<op>`: answered in the FUSE binding without JS). */
  fuseRequests?: Record<string, number>;
  /** The mount's block cache since it mounted: bytes held and entries, hits, misses (joined: served by a fetch in flight), fetches, evictions. */
  readCache: ReadCacheStats;
}

export interface ReadCacheStats {
  bytes: number;
  entries: number;
  hits: number;
  misses: number;
  /** Misses served by a fetch already in flight (read-ahead, or a concurrent reader). */
  joined: number;
  /** Fetches that went to the data plane (misses shared by concurrent readers count once). */
  fetches: number;
  evictions: number;
}
