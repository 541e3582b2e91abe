/** File data over the data plane (see vfs/README.md, "File data"). What the FUSE layer uses. */
export { VolumeData } from './volume-data.js';
export type { OpenAttrs, VolumeDataOptions, VolumeDataStats } from './volume-data.js';
export { FileData, defaultMaxDirtyBytes, defaultReadAheadInitialBytes, defaultReadAheadMaxBytes, maxIoBytes } from './file-data.js';
export type { FileBlockIo, FlushResult } from './file-data.js';
export { BlockCache, defaultCacheBytes } from './block-cache.js';
export type { BlockCacheStats } from './block-cache.js';
export { BlockFreer, freeBlocks, freeBlocksStep, defaultFreeBlocksPerStep } from './free-blocks.js';
export type { FreeRange } from './free-blocks.js';
