/** The FUSE mount layer's public surface (see vfs/README.md, "FUSE mount layer"). */
export { mountFs, defaultOpTimeoutMs } from './mount.js';
export type { Mounted, MountDeps } from './mount.js';
export { clearStaleMount, unmountDir, isFuseMounted, fuseMountPoints } from './stale.js';
export { errnoOf, fsError, FsError, errnoNumber } from './errno.js';
export { loadFuseBinding } from './binding.js';
export { defaultReadAheadKiB, mountDeviceOf, readAheadPath } from './read-ahead.js';
export type {
  FuseOps, FuseCaller, FsStat, FsStatfs, FsDirEntry, TimeUpdate, FileHandle, MountOptions, FuseOpName,
} from './types.js';
