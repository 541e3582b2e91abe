/** The FUSE file system of a volume (see vfs/README.md). */
export { GalleonFs, readdirPageEntries, maxOpenHandles } from './galleon-fs.js';
export type { GalleonFsOptions, NamespaceApi, FsCounters } from './galleon-fs.js';
export { mountVolume, describeRefusal, mountLeaseTtlMs, mountLeaseRenewMs, defaultCacheTimeoutSec } from './mount-volume.js';
export type { VolumeMount, MountVolumeOptions } from './mount-volume.js';
export { AttrCache } from './attr-cache.js';
export { BlockReaper } from './block-reaper.js';
