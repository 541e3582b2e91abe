/**
 * Pure encoders between our typed values and the patched binding's wire shapes (no I/O):
 * the stat and statfs word arrays the C side reads (layout in native/fuse-native-2.2.6.patch),
 * utimens' (seconds, nanoseconds) pairs with UTIME_NOW/UTIME_OMIT, and the `-o` option string.
 */
import type { FsStat, FsStatfs, MountOptions, TimeUpdate } from './types.js';

/** mode, uid, gid, size(2), dev, nlink, ino(2), rdev, blksize, blocks(2), 3 × time(sec 2, nsec 1). */
export const statWords = 22;
/** bsize, frsize, blocks(2), bfree(2), bavail(2), files(2), ffree(2), favail(2), fsid, flag, namemax. */
export const statfsWords = 17;
/** Linux's UTIME_NOW / UTIME_OMIT (tv_nsec values of utimensat(2)). */
export const UTIME_NOW = 2 ** 30 - 1;
export const UTIME_OMIT = 2 ** 30 - 2;
export const nsPerSec = 1_000_000_000n;
const defaultNameMaxBytes = 255;
/**
 * Background (read-ahead, async read) requests the kernel keeps in flight to a mount: enough for
 * the default 8 MiB read-ahead in 128 KiB requests (read-ahead.ts). libfuse's default is 12.
 */
export const defaultMaxBackgroundRequests = 64;
/** The kernel takes up to 65535 (a u16); past a few hundred there is nothing to gain. */
export const maxBackgroundRequestsLimit = 1024;
/** libfuse 2.9's receive buffer limits a write request to 128 KiB. */
export const maxWriteBytesLimit = 131072;

function put64(words: Uint32Array, at: number, v: bigint | number): number {
  const u = BigInt.asUintN(64, BigInt(v));
  words[at] = Number(u & 0xffffffffn);
  words[at + 1] = Number(u >> 32n);
  return at + 2;
}

/** Floor division, so times before 1970 get a negative second and a positive nanosecond. */
export function splitNs(ns: bigint): { sec: bigint; nsec: number } {
  let sec = ns / nsPerSec;
  let rem = ns % nsPerSec;
  if (rem < 0n) { sec -= 1n; rem += nsPerSec; }
  return { sec, nsec: Number(rem) };
}

function putTime(words: Uint32Array, at: number, ns: bigint): number {
  const { sec, nsec } = splitNs(ns);
  const next = put64(words, at, sec);
  words[next] = nsec;
  return next + 1;
}

export function encodeStat(s: FsStat | undefined): Uint32Array {
  const w = new Uint32Array(statWords);
  if (s === undefined) return w;
  if (!Number.isSafeInteger(s.size) || s.size < 0) throw new RangeError(`bad size ${s.size}`);
  w[0] = s.mode; w[1] = s.uid; w[2] = s.gid;
  let at = put64(w, 3, s.size);
  w[at++] = 0; // st_dev: the kernel sets the mount's own
  w[at++] = s.nlink;
  at = put64(w, at, s.ino);
  w[at++] = s.rdev ?? 0;
  w[at++] = s.blksize ?? 4096;
  at = put64(w, at, s.blocks ?? Math.ceil(s.size / 512));
  at = putTime(w, at, s.atimeNs);
  at = putTime(w, at, s.mtimeNs);
  at = putTime(w, at, s.ctimeNs);
  if (at !== statWords) throw new Error(`stat layout wrote ${at} words, expected ${statWords}`);
  return w;
}

export function encodeStatfs(s: FsStatfs | undefined): Uint32Array {
  const w = new Uint32Array(statfsWords);
  if (s === undefined) return w;
  w[0] = s.bsize; w[1] = s.frsize ?? s.bsize;
  let at = 2;
  for (const v of [s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail ?? s.ffree]) at = put64(w, at, v);
  w[at++] = 0; // fsid: the kernel ignores it for FUSE
  w[at++] = 0; // flag: the kernel reports the mount's own (ro, nosuid, ...)
  w[at++] = s.namemax ?? defaultNameMaxBytes;
  if (at !== statfsWords) throw new Error(`statfs layout wrote ${at} words, expected ${statfsWords}`);
  return w;
}

export function decodeTime(sec: number, nsec: number): TimeUpdate {
  if (nsec === UTIME_NOW) return 'now';
  if (nsec === UTIME_OMIT) return 'omit';
  return BigInt(sec) * nsPerSec + BigInt(nsec);
}

export function u64(low: number, high: number): number {
  return low + high * 4294967296;
}

/** libfuse splits -o on commas; a backslash escapes one. */
function escapeOpt(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/,/g, '\\,');
}

function timeoutSec(name: string, v: number | undefined, dflt: number): number {
  const t = v ?? dflt;
  if (!Number.isFinite(t) || t < 0) throw new RangeError(`${name} must be a number of seconds >= 0, got ${v}`);
  return t;
}

/** The `-o` string handed to libfuse (zero timeouts kept: fuse-native dropped them by truthiness). */
export function fuseOptionString(o: MountOptions): string {
  const maxWrite = o.maxWriteBytes ?? maxWriteBytesLimit;
  if (!Number.isInteger(maxWrite) || maxWrite < 4096 || maxWrite > maxWriteBytesLimit) {
    throw new RangeError(`maxWriteBytes must be an integer in 4096..${maxWriteBytesLimit}, got ${maxWrite}`);
  }
  const background = o.maxBackgroundRequests ?? defaultMaxBackgroundRequests;
  if (!Number.isInteger(background) || background < 1 || background > maxBackgroundRequestsLimit) {
    throw new RangeError(`maxBackgroundRequests must be an integer in 1..${maxBackgroundRequestsLimit}, got ${background}`);
  }
  const attr = timeoutSec('attrTimeoutSec', o.attrTimeoutSec, 1);
  const entry = timeoutSec('entryTimeoutSec', o.entryTimeoutSec, 1);
  const opts = [
    `fsname=${escapeOpt(o.fsname)}`,
    `subtype=${escapeOpt(o.subtype ?? 'galleon')}`,
    'use_ino', 'readdir_ino',
    `attr_timeout=${attr}`, `entry_timeout=${entry}`, `negative_timeout=${entry}`,
  ];
  if (o.defaultPermissions ?? true) opts.push('default_permissions');
  if (o.allowOther ?? false) opts.push('allow_other');
  if (o.readOnly ?? false) opts.push('ro');
  if (o.bigWrites ?? true) opts.push('big_writes', `max_write=${maxWrite}`);
  opts.push(`max_background=${background}`, `congestion_threshold=${Math.max(1, Math.floor(background * 3 / 4))}`);
  return '-o' + opts.join(',');
}
