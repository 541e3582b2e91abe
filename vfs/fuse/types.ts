/**
 * The typed contract between a GalleonFS file system and the FUSE mount layer (`mountFs`).
 * Every op is async, receives the calling process (`FuseCaller`) first and answers by
 * resolving or by throwing: a thrown error is mapped to a negative errno in one place
 * (`errno.ts`), anything unknown becomes EIO. Paths are absolute inside the mount ('/' is the
 * root, inode 1 by the VFS convention). Times are nanoseconds since the epoch as bigint.
 */

/** The process that made the request (fuse_get_context), for ownership and permission checks. */
export interface FuseCaller {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

export interface FsStat {
  /** 64-bit inode number (reported as st_ino: the mount passes `use_ino`). */
  ino: bigint | number;
  /** Type and permission bits, as st_mode (S_IFREG | 0o644, ...). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  rdev?: number;
  /** 512-byte units; defaults to ceil(size / 512). */
  blocks?: number;
  blksize?: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface FsStatfs {
  bsize: number;
  frsize?: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail?: number;
  namemax?: number;
}

export interface FsDirEntry {
  name: string;
  /** Given with the listing, the kernel's `ls -l` needs no getattr per entry for st_ino/type. */
  stat?: FsStat;
}

/** utimens(2) per time: a new value in ns, UTIME_NOW ('now': the file system's clock), or UTIME_OMIT. */
export type TimeUpdate = bigint | 'now' | 'omit';

/** A file handle handed back by open/create/opendir: a positive int32, given back on every later op. */
export type FileHandle = number;

export interface FuseOps {
  init?(): Promise<void>;
  getattr(c: FuseCaller, path: string): Promise<FsStat>;
  /** On an open file (fstat, ftruncate's check); falls back to getattr when absent. */
  fgetattr?(c: FuseCaller, path: string, fh: FileHandle): Promise<FsStat>;
  access?(c: FuseCaller, path: string, mode: number): Promise<void>;
  statfs?(c: FuseCaller, path: string): Promise<FsStatfs>;
  opendir?(c: FuseCaller, path: string, flags: number): Promise<FileHandle>;
  /** The whole listing ('.' and '..' included or not, as the file system likes); see README on paging. */
  readdir(c: FuseCaller, path: string): Promise<FsDirEntry[]>;
  releasedir?(c: FuseCaller, path: string, fh: FileHandle): Promise<void>;
  fsyncdir?(c: FuseCaller, path: string, datasync: boolean, fh: FileHandle): Promise<void>;
  create?(c: FuseCaller, path: string, mode: number, flags: number): Promise<FileHandle>;
  open?(c: FuseCaller, path: string, flags: number): Promise<FileHandle>;
  /** Fill `buf` (its length is the request size) from `position`; resolve the bytes read (0 = EOF). */
  read(c: FuseCaller, path: string, fh: FileHandle, buf: Buffer, position: number): Promise<number>;
  /**
   * Resolve the bytes written. `data` is the kernel's memory and is detached when the promise
   * settles: copy it (Buffer.from(data)) if it must outlive the call.
   */
  write?(c: FuseCaller, path: string, fh: FileHandle, data: Buffer, position: number): Promise<number>;
  truncate?(c: FuseCaller, path: string, size: number): Promise<void>;
  ftruncate?(c: FuseCaller, path: string, fh: FileHandle, size: number): Promise<void>;
  flush?(c: FuseCaller, path: string, fh: FileHandle): Promise<void>;
  fsync?(c: FuseCaller, path: string, datasync: boolean, fh: FileHandle): Promise<void>;
  release?(c: FuseCaller, path: string, fh: FileHandle): Promise<void>;
  unlink?(c: FuseCaller, path: string): Promise<void>;
  mkdir?(c: FuseCaller, path: string, mode: number): Promise<void>;
  rmdir?(c: FuseCaller, path: string): Promise<void>;
  mknod?(c: FuseCaller, path: string, mode: number, rdev: number): Promise<void>;
  /** libfuse 2.9 passes no RENAME_NOREPLACE/RENAME_EXCHANGE: the kernel answers EINVAL to them. */
  rename?(c: FuseCaller, from: string, to: string): Promise<void>;
  /** A new name `newPath` for the existing file `existingPath`. */
  link?(c: FuseCaller, existingPath: string, newPath: string): Promise<void>;
  /** A new symbolic link at `linkPath` whose content is `target`. */
  symlink?(c: FuseCaller, target: string, linkPath: string): Promise<void>;
  readlink?(c: FuseCaller, path: string): Promise<string>;
  chmod?(c: FuseCaller, path: string, mode: number): Promise<void>;
  /** -1 leaves that id unchanged, as chown(2). */
  chown?(c: FuseCaller, path: string, uid: number, gid: number): Promise<void>;
  utimens?(c: FuseCaller, path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void>;
  setxattr?(c: FuseCaller, path: string, name: string, value: Buffer, flags: number): Promise<void>;
  /** undefined when the attribute does not exist (ENODATA). */
  getxattr?(c: FuseCaller, path: string, name: string): Promise<Buffer | undefined>;
  listxattr?(c: FuseCaller, path: string): Promise<string[]>;
  removexattr?(c: FuseCaller, path: string, name: string): Promise<void>;
}

export type FuseOpName = Exclude<keyof FuseOps, 'init'>;

export interface MountOptions {
  /** Shown in /proc/mounts and df as the source, e.g. `galleon:<volume>`. */
  fsname: string;
  /** Type suffix: the mount shows as `fuse.<subtype>`. Default 'galleon'. */
  subtype?: string;
  readOnly?: boolean;
  /** Kernel checks mode bits and ownership (needed for POSIX permission semantics). Default true. */
  defaultPermissions?: boolean;
  /** Other users may use the mount (root only, or `user_allow_other` in /etc/fuse.conf). Default false. */
  allowOther?: boolean;
  /** Seconds the kernel caches attributes; 0 = ask every time. Default 1. */
  attrTimeoutSec?: number;
  /** Seconds the kernel caches name lookups (and negative lookups); 0 = ask every time. Default 1. */
  entryTimeoutSec?: number;
  /** Ask for up to `maxWriteBytes` per write request instead of one page. Default true. */
  bigWrites?: boolean;
  /** Largest write request; libfuse 2 caps it at 131072. Default 131072. */
  maxWriteBytes?: number;
  /**
   * An op not answered within this many ms is answered ETIMEDOUT (a late answer is dropped and
   * logged). Default 120000: longer than a metadata or data-plane failover. 0 = never.
   */
  opTimeoutMs?: number;
  /** Clear a dead mount ("Transport endpoint is not connected") on the directory before mounting. Default true. */
  clearStale?: boolean;
  /**
   * The kernel's read-ahead for this mount in KiB (sysfs `read_ahead_kb`, set after mounting;
   * root only, best effort): how many 128 KiB read requests a sequential reader keeps in
   * flight. Default 8192 (read-ahead.ts); 0 leaves the kernel's default (128).
   */
  readAheadKiB?: number;
  /**
   * Fast path: the file system vouches that no inode carries `security.capability` when it is
   * mounted and that none gets it except through this mount's setxattr. The binding then answers
   * getxattr of that name (which the kernel sends before every write) ENODATA itself; the first
   * setxattr of that name turns this off for the rest of the mount. Default false: only a file
   * system that alone holds its namespace may say so (an in-memory one; not a shared volume).
   */
  noCapabilityXattr?: boolean;
  /**
   * Fast path: answer the getattr libfuse sends right after every create with the attributes
   * the file system's fgetattr (else getattr) gives for the new handle, computed with the create
   * instead of in a second trip to the JS thread. Default true.
   */
  createAttr?: boolean;
  /**
   * Fast path: for this many ms after the file system answered them, the binding itself answers
   * a directory's attributes (asked by the kernel for every permission check along a path when
   * `attrTimeoutSec` is 0), a just-created file's attributes once (the permission check of its
   * open) and ENODATA for `security.capability` of a path (asked before every write). Every op
   * that changes a path through this mount drops its entry and its parent's, before and after it
   * runs (rename, rmdir and link drop all). So a change made *outside* this mount's ops (another
   * node, a background commit) shows after at most this long on top of the file system's own
   * caching. Default 0 (off); at most `maxAttrCacheMs`.
   */
  attrCacheMs?: number;
  /**
   * Fast path: the binding answers RELEASE at once (the kernel sends it after `close(2)` has
   * returned and ignores the answer) and queues it; the JS thread runs queued releases in order,
   * before the next request it dispatches or on a wake of its own. A release's error is logged.
   * Default true.
   */
  queueReleases?: boolean;
  /**
   * Read requests the kernel keeps in flight to this mount at once (FUSE's `max_background`;
   * the congestion threshold is set to 3/4 of it). libfuse's default, 12, capped a sequential
   * reader at 12 × 128 KiB however large the read-ahead; every request crosses our JS thread, so
   * a deeper queue hides its latency. Default `defaultMaxBackgroundRequests` (encode.ts).
   */
  maxBackgroundRequests?: number;
}
