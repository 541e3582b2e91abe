/**
 * The file-system namespace's records and the small rules every namespace command shares: keys,
 * the lazily created root, counters, inode deletion with its block-free record, argument checks.
 *
 * Inodes and entries live in cold tables (tx.ts: read from LevelDB through the shell's cache, by
 * key or key range; never all in memory). The per-volume record `nv/<volumeId>` and open handles
 * `no/<volumeId>/<ino>` are hot (bounded by volumes and open files).
 */
import { invariant, posixError } from '../../../proto/errors.js';
import { maxFileNameBytes, maxFileSizeBytes } from '../../../proto/limits.js';
import type { FsAttr, FsCaller, FsFileType, TimeNs, Volume } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import { requireVolume } from './lookup.js';
import { Table, type StateReader, type Tx } from './tx.js';
import type { GcCursor, TreeCursor } from './ns-versions.js';
import { checkInt, invalidArgument, isRecord } from './validate.js';

/** Inode 0 is the volume's raw block device; 1 is the root directory; creates use 2 and up. */
export const rawIno = 0;
export const rootIno = 1;
export const firstIno = 2;
/** The longest name in a directory (proto/limits.ts: the FUSE statfs answer says the same). */
export const maxNameBytes = maxFileNameBytes;
/** PATH_MAX less the NUL, as Linux. */
export const maxSymlinkBytes = 4095;
/** ext4's link limit for files and directories. */
export const maxLinks = 65_000;
export const maxInodeRangeCount = 65_536;
/** Inode numbers stay exact in JSON. */
export const maxIno = Number.MAX_SAFE_INTEGER;
export const maxXattrNameBytes = 255;
export const maxXattrValueBytes = 65_536;
/** All names and values of one inode together (ext4 fits one block; we allow more, bounded). */
export const maxXattrTotalBytes = 65_536;
export const maxReaddirLimit = 1_024;
export const maxBlocksToFreeLimit = 1_024;
/** Handles one fsCloseMany (or an fsCommitWrite's `closes`) closes at most. */
export const maxClosesPerCommand = 1_024;
/** Keys of a deleted volume's namespace removed per purge step. */
export const purgeKeysPerStep = 512;
const maxId = 0xffff_ffff;
/** Largest file (ext4 with 4 KiB blocks): sizes beyond are EFBIG. */
export const maxFileBytes = maxFileSizeBytes;

/** Stored inode: the attributes plus what only the namespace needs. */
export interface Inode extends Omit<FsAttr, 'truncEpoch'> {
  /** Absent until the first truncate (records written before the epoch existed read as 0). */
  truncEpoch?: number;
  /** Symlinks. */
  target?: string;
  /** Extended attributes, name -> base64 value, names sorted. */
  xattrs?: Record<string, string>;
  /** Directories: the one parent (rename's subtree check walks these up to the root). */
  parent?: number;
  /** Directories: number of entries (rmdir/rename need emptiness without listing). */
  entries?: number;
}

export interface DirEntry {
  ino: number;
  type: FsFileType;
}

/** Per volume: allocation cursors and counters (statfs). `deleted` while a deleted volume is purged. */
export interface NsVolume {
  nextIno: number;
  nextFreeSeq: number;
  inodes: number;
  usedBytes: number;
  deleted?: boolean;
  /** The cut of the volume's newest live snapshot (ns-versions.ts); absent = none. */
  snapGen?: number;
  /** Versions to collect after a snapshot delete (ns-tree-work.ts), from this cursor. */
  gc?: GcCursor;
  /** The tree being written in paced steps: a clone's copy of its parent at the cut, or a restore. */
  work?: TreeWork;
}

export interface TreeWork {
  kind: 'copy' | 'restore';
  /** The volume whose tree at `cut` is written (the parent for a copy, the volume itself for a restore). */
  from: string;
  cut: number;
  snapshotId: string;
  cursor: TreeCursor;
}

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export const inodeId = (volumeId: string, ino: number): string => `${volumeId}/${hex16(ino)}`;
export const entryPrefix = (volumeId: string, parent: number): string => `${volumeId}/${hex16(parent)}/`;
export const entryId = (volumeId: string, parent: number, name: string): string => `${entryPrefix(volumeId, parent)}${name}`;
export const freeId = (volumeId: string, seq: number): string => `${volumeId}/${hex16(seq)}`;

export function nowNs(ctx: CommandContext): TimeNs {
  return msToNs(ctx.stampMs);
}

export function msToNs(ms: number): TimeNs {
  return (BigInt(ms) * 1_000_000n).toString();
}

/** The root a volume gets, the same whether made with the volume or lazily on first use. */
export function rootOf(vol: Volume): Inode {
  const t = msToNs(vol.createdAtMs);
  return {
    ino: rootIno, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2,
    atimeNs: t, mtimeNs: t, ctimeNs: t, rdev: 0, generation: 1, parent: rootIno, entries: 0,
  };
}

export function freshNs(): NsVolume {
  return { nextIno: firstIno, nextFreeSeq: 1, inodes: 1, usedBytes: 0 };
}

export function nsRecordOf(r: StateReader, vol: Volume): NsVolume {
  return r.get<NsVolume>(Table.NsVolume, vol.id) ?? freshNs();
}

/** Writes the root and the volume record if this volume never had them (deterministic: from the volume). */
export function ensureNs(tx: Tx, vol: Volume): NsVolume {
  const ns = tx.get<NsVolume>(Table.NsVolume, vol.id);
  if (ns !== undefined) return ns;
  const fresh = freshNs();
  tx.put(Table.NsVolume, vol.id, fresh);
  tx.put(Table.NsInode, inodeId(vol.id, rootIno), rootOf(vol));
  return fresh;
}

/** The volume, with its namespace created on first use. */
export function volumeOf(tx: Tx, ref: unknown): Volume {
  const vol = requireVolume(tx, ref);
  ensureNs(tx, vol);
  return vol;
}

export function checkTimeNs(what: string, raw: unknown): string {
  if (typeof raw !== 'string' || !/^(0|[1-9][0-9]{0,18})$/.test(raw)) {
    throw invalidArgument(`${what} must be nanoseconds since the epoch as a decimal string`, 'pass e.g. "1700000000000000000", or "now"');
  }
  return raw;
}

export function findInode(r: StateReader, vol: Volume, ino: number): Inode | undefined {
  const stored = r.get<Inode>(Table.NsInode, inodeId(vol.id, ino));
  if (stored !== undefined) return stored;
  if (ino === rootIno && r.get(Table.NsVolume, vol.id) === undefined) return rootOf(vol);
  return undefined;
}

export function requireInode(r: StateReader, vol: Volume, ino: number): Inode {
  const inode = findInode(r, vol, ino);
  if (inode === undefined) throw posixError('ENOENT', `no inode ${ino} in volume ${vol.name}`, 'it was deleted; look the name up again');
  return inode;
}

export function requireDir(r: StateReader, vol: Volume, ino: number): Inode {
  const dir = requireInode(r, vol, ino);
  if (dir.type !== 'dir') throw posixError('ENOTDIR', `inode ${ino} is not a directory`, 'pass the inode of a directory');
  // A removed directory that is still someone's cwd: nothing may be created in it.
  if (dir.nlink === 0) throw posixError('ENOENT', `directory ${ino} was removed`, 'create it again');
  return dir;
}

export function findEntry(r: StateReader, vol: Volume, parent: number, name: string): DirEntry | undefined {
  return r.get<DirEntry>(Table.NsEntry, entryId(vol.id, parent, name));
}

export function attrOf(inode: Inode): FsAttr {
  const { ino, type, mode, uid, gid, size, nlink, atimeNs, mtimeNs, ctimeNs, rdev, generation } = inode;
  const attr: FsAttr = { ino, type, mode, uid, gid, size, nlink, atimeNs, mtimeNs, ctimeNs, rdev, generation, truncEpoch: inode.truncEpoch ?? 0 };
  const xattrs = inode.xattrs === undefined ? 0 : Object.keys(inode.xattrs).length;
  if (xattrs > 0) attr.xattrCount = xattrs;
  return attr;
}

/** Writes a changed inode (generation + 1) and keeps the volume's byte count. */
export function saveInode(tx: Tx, vol: Volume, old: Inode | undefined, next: Inode): Inode {
  const saved: Inode = { ...next, generation: (old?.generation ?? 0) + 1 };
  tx.put(Table.NsInode, inodeId(vol.id, saved.ino), saved);
  const delta = (saved.type === 'file' ? saved.size : 0) - (old?.type === 'file' ? old.size : 0);
  const added = old === undefined ? 1 : 0;
  if (delta !== 0 || added !== 0) {
    const ns = ensureNs(tx, vol);
    tx.put(Table.NsVolume, vol.id, { ...ns, usedBytes: ns.usedBytes + delta, inodes: ns.inodes + added } satisfies NsVolume);
  }
  return saved;
}

/** Parent directory after an entry came or went: entries, subdirectory links, mtime and ctime. */
/** `atNs`: the change's own time instead of the leader's stamp (a write-back batch: the holder's last create). */
export function touchDir(tx: Tx, vol: Volume, dir: Inode, ctx: CommandContext, entriesDelta: number, linksDelta: number, atNs?: TimeNs): Inode {
  const t = atNs ?? nowNs(ctx);
  const entries = (dir.entries ?? 0) + entriesDelta;
  invariant(entries >= 0 && dir.nlink + linksDelta >= 2, `directory ${dir.ino} would hold ${entries} entries, ${dir.nlink + linksDelta} links`);
  return saveInode(tx, vol, dir, { ...dir, entries, nlink: dir.nlink + linksDelta, mtimeNs: t, ctimeNs: t });
}

export function openHandlesOf(r: StateReader, vol: Volume, ino: number): Record<string, number> {
  return r.get<Record<string, number>>(Table.NsOpen, inodeId(vol.id, ino)) ?? {};
}

/**
 * An inode without links: deleted unless a mount still has it open (then the last close does it).
 * A regular file's blocks are queued to free from block 0. Returns the inode left, or null.
 */
export function reapIfUnused(tx: Tx, vol: Volume, inode: Inode): Inode | null {
  if (inode.nlink > 0 || Object.keys(openHandlesOf(tx, vol, inode.ino)).length > 0) return inode;
  tx.del(Table.NsInode, inodeId(vol.id, inode.ino));
  const ns = ensureNs(tx, vol);
  const next: NsVolume = { ...ns, inodes: ns.inodes - 1, usedBytes: ns.usedBytes - (inode.type === 'file' ? inode.size : 0) };
  tx.put(Table.NsVolume, vol.id, next);
  if (inode.type === 'file') queueFree(tx, vol, inode.ino, 0);
  return null;
}

/**
 * `end`: the end of what to free when known — `toBlock` (a restore's dropped file; else the reaper
 * finds it) or `inoEnd` (the reclaim of a session's inode range [ino, inoEnd)).
 */
export function queueFree(tx: Tx, vol: Volume, ino: number, fromBlock: number, end?: { toBlock: number } | { inoEnd: number }): void {
  const ns = ensureNs(tx, vol);
  tx.put(Table.NsFree, freeId(vol.id, ns.nextFreeSeq), { ino, fromBlock, ...end });
  tx.put(Table.NsVolume, vol.id, { ...ns, nextFreeSeq: ns.nextFreeSeq + 1 } satisfies NsVolume);
}

// ---- argument checks (POSIX errors for what the kernel could pass, INVALID_ARGUMENT for misuse) --

const encoder = new TextEncoder();

export function byteLength(s: string): number {
  return encoder.encode(s).length;
}

export function checkFsName(raw: unknown): string {
  if (typeof raw !== 'string') throw invalidArgument('a file name must be a string', 'pass the name of one directory entry');
  if (byteLength(raw) > maxNameBytes) throw posixError('ENAMETOOLONG', `name of ${byteLength(raw)} bytes`, `use at most ${maxNameBytes} bytes`);
  if (raw === '' || raw === '.' || raw === '..' || raw.includes('/') || raw.includes('\0')) {
    throw posixError('EINVAL', `invalid file name ${JSON.stringify(raw)}`, 'a name is not empty, ".", ".." and holds no "/" or NUL');
  }
  return raw;
}

export function checkIno(what: string, raw: unknown): number {
  return checkInt(what, raw, rootIno, maxIno);
}

export function checkCaller(raw: unknown): Required<FsCaller> {
  if (!isRecord(raw)) throw invalidArgument('caller must be {uid, gid}', 'pass the uid and gid of the process making the call');
  const uid = checkInt('caller uid', raw.uid, 0, maxId);
  const gid = checkInt('caller gid', raw.gid, 0, maxId);
  const groupsRaw = raw.groups ?? [];
  if (!Array.isArray(groupsRaw)) throw invalidArgument('caller groups must be a list of gids', 'pass [] when unknown');
  const groups = groupsRaw.map((g: unknown) => checkInt('caller group', g, 0, maxId));
  return { uid, gid, groups };
}

export function checkId(what: string, raw: unknown): number {
  return checkInt(what, raw, 0, maxId);
}

export function checkMode(raw: unknown): number {
  return checkInt('mode', raw, 0, 0o7777);
}

export function inGroup(caller: Required<FsCaller>, gid: number): boolean {
  return caller.gid === gid || caller.groups.includes(gid);
}

/** Sticky directories: only root, the directory's owner or the entry's owner may remove or rename the entry. */
export function checkSticky(caller: Required<FsCaller>, dir: Inode, victim: Inode): void {
  if ((dir.mode & 0o1000) === 0 || caller.uid === 0 || caller.uid === dir.uid || caller.uid === victim.uid) return;
  throw posixError('EPERM', `directory ${dir.ino} is sticky and inode ${victim.ino} belongs to uid ${victim.uid}`,
    'only the owner of the entry or of the directory, or root, may remove or rename it');
}
