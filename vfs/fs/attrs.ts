/**
 * Pure conversions between the namespace's records (proto/metadata-types.ts FsAttr, FsStatfs)
 * and what the FUSE layer hands the kernel (vfs/fuse/types.ts FsStat, FsStatfs). No I/O.
 */
import type { FsAttr, FsFileType, FsStatfs as NsStatfs, FsTimeSet } from '../../proto/metadata-types.js';
import type { FsStat, FsStatfs, TimeUpdate } from '../fuse/types.js';
import { fsError } from '../fuse/errno.js';

/** st_mode type bits (S_IFMT) by namespace type. */
export const typeBits: Readonly<Record<FsFileType, number>> = {
  file: 0o100000, dir: 0o040000, symlink: 0o120000, fifo: 0o010000, socket: 0o140000, char: 0o020000, block: 0o060000,
};
const S_IFMT = 0o170000;
/** statfs reports space in these units: df multiplies by it, so it must divide the volume size. */
export const statfsUnitBytes = 4096;

export function typeOfMode(mode: number): FsFileType {
  const bits = mode & S_IFMT;
  if (bits === 0) return 'file';
  for (const [t, b] of Object.entries(typeBits)) if (b === bits) return t as FsFileType;
  throw fsError('EINVAL', `unknown file type bits ${bits.toString(8)}`);
}

/** The kernel's view of an inode; `sizeBytes` overrides the namespace's size for a file open here. */
export function toStat(a: FsAttr, blockSizeBytes: number, sizeBytes = a.size): FsStat {
  return {
    ino: a.ino, mode: typeBits[a.type] | (a.mode & 0o7777), nlink: a.nlink, uid: a.uid, gid: a.gid,
    size: sizeBytes, rdev: a.rdev, blocks: Math.ceil(sizeBytes / 512), blksize: blockSizeBytes,
    atimeNs: BigInt(a.atimeNs), mtimeNs: BigInt(a.mtimeNs), ctimeNs: BigInt(a.ctimeNs),
  };
}

export function toStatfs(s: NsStatfs): FsStatfs {
  const blocks = Math.floor(s.totalBytes / statfsUnitBytes);
  const free = Math.max(0, Math.min(blocks, Math.floor(s.freeBytes / statfsUnitBytes)));
  return {
    bsize: statfsUnitBytes, frsize: statfsUnitBytes, blocks, bfree: free, bavail: free,
    files: s.inodes + s.freeInodes, ffree: s.freeInodes, favail: s.freeInodes, namemax: s.maxNameBytes,
  };
}

/** utimens(2) per time → the namespace's setattr field (undefined = UTIME_OMIT). */
export function timeSet(t: TimeUpdate): FsTimeSet | undefined {
  if (t === 'omit') return undefined;
  if (t === 'now') return 'now';
  return t.toString();
}

/** What the block cache compares at open (close-to-open): content changes move size or mtime. */
export function changeTokenOf(a: FsAttr): string {
  return `${a.size}:${a.mtimeNs}`;
}

/** '/a/b/c' → ['a', 'b', 'c']; '/' → []. Paths come from the kernel: absolute, no '.' or '..'. */
export function splitPath(path: string): string[] {
  return path.split('/').filter((p) => p !== '');
}

/** '/a/b/c' → { parent: '/a/b', name: 'c' }. */
export function parentOf(path: string): { parent: string; name: string } {
  const i = path.lastIndexOf('/');
  const name = path.slice(i + 1);
  if (name === '') throw fsError('EINVAL', `no name in ${path}`);
  return { parent: i <= 0 ? '/' : path.slice(0, i), name };
}
