/**
 * File-system namespace commands: one per operation, each validated and applied in one child
 * transaction (a POSIX error drops it: nothing changes). Semantics follow Linux on ext4; the
 * differences are listed in vfs/README.md ("Namespace"). Ownership rules need the caller's
 * uid/gid (every command carries them); rwx bits are the kernel's job (`default_permissions`).
 */
import { posixError } from '../../../proto/errors.js';
import type { FsCaller, FsCloses, FsEntryReply, FsFileType, FsInodeRange, FsUnlinkReply, Lease, Volume } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import { isLive } from './leases.js';
import { findVolume, requireVolume } from './lookup.js';
import { renameHandler } from './ns-rename.js';
import { setattrHandler, setxattrHandler, removexattrHandler } from './ns-attrs.js';
import {
  attrOf, byteLength, checkCaller, checkFsName, checkId, checkIno, checkMode, checkSticky, ensureNs, entryId, findEntry, findInode,
  firstIno, freeId, inGroup, inodeId, maxBlocksToFreeLimit, maxClosesPerCommand, maxInodeRangeCount, maxIno, maxLinks, maxSymlinkBytes, openHandlesOf,
  purgeKeysPerStep, reapIfUnused, volumeOf, checkTimeNs, maxFileBytes, requireDir, requireInode, saveInode, touchDir, nowNs, type DirEntry, type Inode, type NsVolume,
} from './ns-store.js';
import { commitVerdict } from './ns-truncate.js';
import { checkNotDelegated, commitBatch, delegate, optSession, recall, recordRange, release, reserve } from './ns-delegation.js';
import { flushAck, flushRequest } from './ns-flush.js';
import { runTreeWork } from './ns-tree-work.js';
import { Table, type Tx } from './tx.js';
import { checkInt, checkKeys, checkOneOf, checkString, invalidArgument, isRecord } from './validate.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';

type Handler = (tx: Tx, ctx: CommandContext, args: unknown[]) => unknown;

const nodeTypes: readonly FsFileType[] = ['file', 'fifo', 'socket', 'char', 'block'];


interface NewNode {
  vol: Volume;
  caller: Required<FsCaller>;
  parent: number;
  name: string;
  ino: number;
}

/** `session`: the caller's mount session, which may change a directory it holds the delegation of (ns-delegation.ts). */
function newNodeArgs(tx: Tx, [ref, callerRaw, parentRaw, nameRaw, inoRaw]: unknown[], session: string | null = null): NewNode {
  const vol = volumeOf(tx, ref);
  const n = { vol, caller: checkCaller(callerRaw), parent: checkIno('parent', parentRaw), name: checkFsName(nameRaw), ino: checkIno('ino', inoRaw) };
  checkNotDelegated(tx, vol, n.parent, session);
  return n;
}

/** The inode number must come from a range this volume handed out, and be unused. */
export function checkAllocated(tx: Tx, vol: Volume, ino: number): void {
  const ns = ensureNs(tx, vol);
  if (ino < firstIno || ino >= ns.nextIno) {
    throw invalidArgument(`inode ${ino} was not allocated in volume ${vol.name}`, 'take inode numbers from fsAllocateInodes');
  }
  if (findInode(tx, vol, ino) !== undefined) throw invalidArgument(`inode ${ino} is in use in volume ${vol.name}`, 'use each allocated inode number once');
}

/**
 * Links a new inode under `n.parent`. `build` gets the common attributes (owner, group from a
 * set-gid parent, times) and returns the inode to store.
 */
function makeNode(tx: Tx, ctx: CommandContext, n: NewNode, type: FsFileType, build: (base: Inode, parent: Inode) => Inode): FsEntryReply {
  const parent = requireDir(tx, n.vol, n.parent);
  if (findEntry(tx, n.vol, n.parent, n.name) !== undefined) throw posixError('EEXIST', `${JSON.stringify(n.name)} exists in directory ${n.parent}`, 'choose another name or remove the existing one');
  checkAllocated(tx, n.vol, n.ino);
  if (type === 'dir' && parent.nlink >= maxLinks) throw posixError('EMLINK', `directory ${n.parent} has ${parent.nlink} links`, `a directory holds at most ${maxLinks - 2} subdirectories`);
  const t = nowNs(ctx);
  const gid = (parent.mode & 0o2000) !== 0 ? parent.gid : n.caller.gid;
  const base: Inode = {
    ino: n.ino, type, mode: 0, uid: n.caller.uid, gid, size: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t, rdev: 0, generation: 0,
  };
  const saved = saveInode(tx, n.vol, undefined, build(base, parent));
  tx.put(Table.NsEntry, entryId(n.vol.id, n.parent, n.name), { ino: n.ino, type } satisfies DirEntry);
  const parentAfter = touchDir(tx, n.vol, parent, ctx, 1, type === 'dir' ? 1 : 0);
  return { attr: attrOf(saved), parent: attrOf(parentAfter), created: true };
}

/** Mode of a new non-directory: umask applied; set-gid dropped unless the creator is in the group (Linux). */
function fileMode(mode: number, umask: number, caller: Required<FsCaller>, gid: number): number {
  const m = mode & ~umask & 0o7777;
  return (m & 0o2000) !== 0 && caller.uid !== 0 && !inGroup(caller, gid) ? m & ~0o2000 : m;
}

function optUmask(raw: unknown): number {
  return raw === undefined || raw === null ? 0 : checkInt('umask', raw, 0, 0o7777);
}

const create: Handler = (tx, ctx, args) => {
  const opts = args[6] ?? {};
  if (!isRecord(opts)) throw invalidArgument('create options must be an object', 'pass {umask?, exclusive?}');
  const n = newNodeArgs(tx, args, optSession(opts.open));
  const mode = checkMode(args[5]);
  checkKeys('create option', opts, ['umask', 'exclusive', 'open', 'closes']);
  if (opts.exclusive !== undefined && typeof opts.exclusive !== 'boolean') throw invalidArgument('exclusive must be true or false', 'pass exclusive: false for open(O_CREAT) without O_EXCL');
  const umask = optUmask(opts.umask);
  const session = opts.open === undefined || opts.open === null ? null : mountLease(tx, ctx, n.vol, opts.open);
  const reply = createOrOpenExisting(tx, ctx, n, opts.exclusive === false, (base) => ({ ...base, mode: fileMode(mode, umask, n.caller, base.gid) }));
  if (session !== null) addHandle(tx, n.vol, reply.attr.ino, session);
  if (opts.closes !== undefined && opts.closes !== null) {
    const closes = checkCloses(opts.closes);
    for (const ino of closes.inos) dropHandle(tx, n.vol, ino, closes.session);
  }
  return reply;
};

function createOrOpenExisting(tx: Tx, ctx: CommandContext, n: NewNode, openExisting: boolean, build: (base: Inode) => Inode): FsEntryReply {
  const existing = findEntry(tx, n.vol, n.parent, n.name);
  if (existing !== undefined && openExisting) {
    // open(O_CREAT) without O_EXCL that lost a race with another node: open what is there.
    if (existing.type === 'dir') throw posixError('EISDIR', `${JSON.stringify(n.name)} is a directory`, 'open it as a directory');
    const parent = requireDir(tx, n.vol, n.parent);
    return { attr: attrOf(requireInode(tx, n.vol, existing.ino)), parent: attrOf(parent), created: false };
  }
  return makeNode(tx, ctx, n, 'file', build);
}

const mknod: Handler = (tx, ctx, args) => {
  const n = newNodeArgs(tx, args);
  const type = checkOneOf('node type', args[5], nodeTypes);
  const mode = checkMode(args[6]);
  const rdev = type === 'char' || type === 'block' ? checkId('rdev', args[7] ?? 0) : 0;
  const umask = optUmask(args[8]);
  return makeNode(tx, ctx, n, type, (base) => ({ ...base, mode: fileMode(mode, umask, n.caller, base.gid), rdev }));
};

const mkdir: Handler = (tx, ctx, args) => {
  const n = newNodeArgs(tx, args);
  const mode = checkMode(args[5]) & ~optUmask(args[6]);
  return makeNode(tx, ctx, n, 'dir', (base, parent) => ({
    ...base, mode: (mode & 0o7777) | (parent.mode & 0o2000), nlink: 2, parent: parent.ino, entries: 0,
  }));
};

const symlink: Handler = (tx, ctx, args) => {
  const n = newNodeArgs(tx, args);
  const target = checkString('symlink target', args[5], 'pass the path the link points to');
  if (byteLength(target) > maxSymlinkBytes || target.includes('\0')) {
    throw posixError('ENAMETOOLONG', `symlink target of ${byteLength(target)} bytes`, `a target holds at most ${maxSymlinkBytes} bytes and no NUL`);
  }
  return makeNode(tx, ctx, n, 'symlink', (base) => ({ ...base, mode: 0o777, size: byteLength(target), target }));
};

const link: Handler = (tx, ctx, [ref, callerRaw, inoRaw, parentRaw, nameRaw]) => {
  const vol = volumeOf(tx, ref);
  checkCaller(callerRaw);
  const ino = checkIno('ino', inoRaw);
  const parentIno = checkIno('new parent', parentRaw);
  const name = checkFsName(nameRaw);
  const inode = requireInode(tx, vol, ino);
  if (inode.type === 'dir') throw posixError('EPERM', `inode ${ino} is a directory`, 'directories cannot be hard-linked');
  if (inode.nlink === 0) throw posixError('ENOENT', `inode ${ino} was unlinked`, 'a file without names cannot get one back');
  if (inode.nlink >= maxLinks) throw posixError('EMLINK', `inode ${ino} has ${inode.nlink} links`, `at most ${maxLinks} links per file`);
  const parent = requireDir(tx, vol, parentIno);
  checkNotDelegated(tx, vol, parentIno, null);
  if (findEntry(tx, vol, parentIno, name) !== undefined) throw posixError('EEXIST', `${JSON.stringify(name)} exists in directory ${parentIno}`, 'remove it first or choose another name');
  tx.put(Table.NsEntry, entryId(vol.id, parentIno, name), { ino, type: inode.type } satisfies DirEntry);
  const saved = saveInode(tx, vol, inode, { ...inode, nlink: inode.nlink + 1, ctimeNs: nowNs(ctx) });
  const parentAfter = touchDir(tx, vol, parent, ctx, 1, 0);
  return { attr: attrOf(saved), parent: attrOf(parentAfter), created: true } satisfies FsEntryReply;
};

/** The entry `name` of directory `parentIno` and its inode, for unlink/rmdir. */
function victimOf(tx: Tx, vol: Volume, parentIno: number, name: string): { parent: Inode; entry: DirEntry; victim: Inode } {
  const parent = requireDir(tx, vol, parentIno);
  checkNotDelegated(tx, vol, parentIno, null);
  const entry = findEntry(tx, vol, parentIno, name);
  if (entry === undefined) throw posixError('ENOENT', `no ${JSON.stringify(name)} in directory ${parentIno}`, 'look the name up again');
  return { parent, entry, victim: requireInode(tx, vol, entry.ino) };
}

const unlink: Handler = (tx, ctx, [ref, callerRaw, parentRaw, nameRaw]) => {
  const vol = volumeOf(tx, ref);
  const caller = checkCaller(callerRaw);
  const name = checkFsName(nameRaw);
  const { parent, victim } = victimOf(tx, vol, checkIno('parent', parentRaw), name);
  if (victim.type === 'dir') throw posixError('EISDIR', `${JSON.stringify(name)} is a directory`, 'remove directories with rmdir');
  checkSticky(caller, parent, victim);
  tx.del(Table.NsEntry, entryId(vol.id, parent.ino, name));
  const parentAfter = touchDir(tx, vol, parent, ctx, -1, 0);
  const left = reapIfUnused(tx, vol, saveInode(tx, vol, victim, { ...victim, nlink: victim.nlink - 1, ctimeNs: nowNs(ctx) }));
  return { parent: attrOf(parentAfter), attr: left === null ? null : attrOf(left) } satisfies FsUnlinkReply;
};

const rmdir: Handler = (tx, ctx, [ref, callerRaw, parentRaw, nameRaw]) => {
  const vol = volumeOf(tx, ref);
  const caller = checkCaller(callerRaw);
  const name = checkFsName(nameRaw);
  const { parent, victim } = victimOf(tx, vol, checkIno('parent', parentRaw), name);
  if (victim.type !== 'dir') throw posixError('ENOTDIR', `${JSON.stringify(name)} is not a directory`, 'remove files with unlink');
  // Its holder may have closed files in it that are not committed yet: it only looks empty.
  checkNotDelegated(tx, vol, victim.ino, null);
  if ((victim.entries ?? 0) > 0) throw posixError('ENOTEMPTY', `directory ${JSON.stringify(name)} holds ${victim.entries} entries`, 'remove its entries first');
  checkSticky(caller, parent, victim);
  tx.del(Table.NsEntry, entryId(vol.id, parent.ino, name));
  const parentAfter = touchDir(tx, vol, parent, ctx, -1, -1);
  reapIfUnused(tx, vol, saveInode(tx, vol, victim, { ...victim, nlink: 0, ctimeNs: nowNs(ctx) }));
  return { parent: attrOf(parentAfter), attr: null } satisfies FsUnlinkReply;
};

const allocateInodes: Handler = (tx, ctx, [ref, countRaw, sessionRaw]) => {
  const vol = volumeOf(tx, ref);
  const count = checkInt('count', countRaw, 1, maxInodeRangeCount);
  const ns = ensureNs(tx, vol);
  if (ns.nextIno + count > maxIno) throw posixError('ENOSPC', `volume ${vol.name} has no inode numbers left`, 'create a new volume');
  const range: FsInodeRange = { start: ns.nextIno, end: ns.nextIno + count };
  if (sessionRaw !== undefined) recordRange(tx, ctx, vol, sessionRaw, range);
  tx.put(Table.NsVolume, vol.id, { ...ns, nextIno: ns.nextIno + count } satisfies NsVolume);
  return range;
};

/**
 * Size and mtime of data already acknowledged on the data plane. With `closes` it also closes the
 * handles a mount released since its last command, as fsCloseMany would (no Raft write of their own).
 * With the writer's `truncEpoch`, a commit from before a truncate elsewhere keeps the size (ns-truncate.ts).
 */
const commitWrite: Handler = (tx, ctx, [ref, inoRaw, sizeRaw, mtimeRaw, closesRaw, epochRaw]) => {
  const vol = volumeOf(tx, ref);
  const inode = requireInode(tx, vol, checkIno('ino', inoRaw));
  if (inode.type !== 'file') throw posixError(inode.type === 'dir' ? 'EISDIR' : 'EINVAL', `inode ${inode.ino} is a ${inode.type}`, 'only regular files hold data');
  const size = checkInt('size', sizeRaw, 0, maxFileBytes);
  const t = nowNs(ctx);
  const mtimeNs = mtimeRaw === undefined || mtimeRaw === null ? t : checkTimeNs('mtimeNs', mtimeRaw);
  const closes = closesRaw === undefined || closesRaw === null ? null : checkCloses(closesRaw);
  const writerEpoch = epochRaw === undefined || epochRaw === null ? undefined : checkInt('truncEpoch', epochRaw, 0, Number.MAX_SAFE_INTEGER);
  // Same epoch: the size only grows (writers on two nodes commit in any order). Older epoch: a
  // truncate elsewhere came after this writer's bytes, and the size stays (ns-truncate.ts).
  const verdict = commitVerdict({ size: inode.size, truncEpoch: inode.truncEpoch ?? 0 }, size, writerEpoch);
  const saved = saveInode(tx, vol, inode, { ...inode, size: verdict.sizeBytes, mtimeNs, ctimeNs: t });
  if (closes !== null) for (const ino of closes.inos) dropHandle(tx, vol, ino, closes.session);
  return attrOf(findInode(tx, vol, inode.ino) ?? saved);
};


function mountLease(tx: Tx, ctx: CommandContext, vol: Volume, raw: unknown): string {
  const session = checkString('session', raw, 'pass the id of the mount lease this mount holds on the volume');
  const lease = tx.get<Lease>(Table.Lease, session);
  if (lease === undefined || !isLive(lease, ctx.stampMs) || lease.kind !== 'mount' || lease.resource !== vol.id) {
    throw new GalleonError(ErrorCode.LEASE_NOT_FOUND, `no live mount lease ${session} on volume ${vol.name}`, { hint: 'acquire (or renew) the mount lease, then open again' });
  }
  return session;
}

const open: Handler = (tx, ctx, [ref, inoRaw, sessionRaw]) => {
  const vol = volumeOf(tx, ref);
  const inode = requireInode(tx, vol, checkIno('ino', inoRaw));
  addHandle(tx, vol, inode.ino, mountLease(tx, ctx, vol, sessionRaw));
  return attrOf(inode);
};

function addHandle(tx: Tx, vol: Volume, ino: number, session: string, count = 1): void {
  const handles = openHandlesOf(tx, vol, ino);
  tx.put(Table.NsOpen, inodeId(vol.id, ino), { ...handles, [session]: (handles[session] ?? 0) + count });
}

/** Idempotent for a session that holds no handle (a retried close after its lease expired). */
const close: Handler = (tx, _ctx, [ref, inoRaw, sessionRaw]) => {
  const vol = volumeOf(tx, ref);
  const ino = checkIno('ino', inoRaw);
  dropHandle(tx, vol, ino, checkString('session', sessionRaw, 'pass the mount lease id given to fsOpen'));
  return null;
};

const closeMany: Handler = (tx, _ctx, [ref, closesRaw]) => {
  const vol = volumeOf(tx, ref);
  const closes = checkCloses(closesRaw);
  for (const ino of closes.inos) dropHandle(tx, vol, ino, closes.session);
  return null;
};

function checkCloses(raw: unknown): FsCloses {
  if (!isRecord(raw) || !Array.isArray(raw.inos) || raw.inos.length > maxClosesPerCommand) {
    throw invalidArgument(`closes must be {session, inos: at most ${maxClosesPerCommand} inode numbers}`, 'pass the mount lease id and the inodes of released handles');
  }
  checkKeys('closes', raw, ['session', 'inos']);
  const session = checkString('session', raw.session, 'pass the mount lease id given to fsOpen');
  return { session, inos: raw.inos.map((i) => checkIno('ino', i)) };
}

function dropHandle(tx: Tx, vol: Volume, ino: number, session: string): void {
  const handles = { ...openHandlesOf(tx, vol, ino) };
  const count = handles[session];
  if (count === undefined) return;
  if (count > 1) handles[session] = count - 1;
  else delete handles[session];
  setHandles(tx, vol, ino, handles);
}

function setHandles(tx: Tx, vol: Volume, ino: number, handles: Record<string, number>): void {
  if (Object.keys(handles).length > 0) {
    tx.put(Table.NsOpen, inodeId(vol.id, ino), handles);
    return;
  }
  tx.del(Table.NsOpen, inodeId(vol.id, ino));
  const inode = findInode(tx, vol, ino);
  if (inode !== undefined) reapIfUnused(tx, vol, inode);
}

/** A mount lease ended (released, expired, or its volume deleted): its open handles go, orphans with them. */
export function dropSessionHandles(tx: Tx, lease: Lease): void {
  if (lease.kind !== 'mount') return;
  const vol = findVolume(tx, lease.resource);
  const prefix = `${lease.resource}/`;
  for (const id of tx.ids(Table.NsOpen)) {
    if (!id.startsWith(prefix)) continue;
    const handles = tx.get<Record<string, number>>(Table.NsOpen, id) ?? {};
    if (handles[lease.id] === undefined) continue;
    const rest = { ...handles };
    delete rest[lease.id];
    if (vol === undefined) tx.del(Table.NsOpen, id);
    else setHandles(tx, vol, parseInt(id.slice(prefix.length), 16), rest);
  }
}

const ackBlocksFreed: Handler = (tx, _ctx, [ref, seqsRaw]) => {
  const vol = requireVolume(tx, ref);
  if (!Array.isArray(seqsRaw) || seqsRaw.length > maxBlocksToFreeLimit) {
    throw invalidArgument('seqs must be a list of at most ' + String(maxBlocksToFreeLimit) + ' numbers', 'pass the seqs fsListBlocksToFree returned');
  }
  let freed = 0;
  for (const raw of seqsRaw) {
    const id = freeId(vol.id, checkInt('seq', raw, 1, maxIno));
    if (tx.get(Table.NsFree, id) === undefined) continue;
    tx.del(Table.NsFree, id);
    freed += 1;
  }
  return { freed };
};

/**
 * Removes up to purgeKeysPerStep keys of deleted volumes' namespaces, then runs one paced step of
 * snapshot tree work (ns-tree-work.ts) with what is left (the leader's controller calls it).
 */
const purgeDeleted: Handler = (tx) => {
  let budget = purgeKeysPerStep;
  let purged = 0;
  for (const volumeId of tx.ids(Table.NsVolume)) {
    const ns = tx.get<NsVolume>(Table.NsVolume, volumeId);
    if (ns?.deleted !== true) continue;
    for (const table of [Table.NsInode, Table.NsEntry, Table.NsFree, Table.NsVersion]) {
      if (budget === 0) break;
      const keys = tx.range({ table, prefix: `${volumeId}/`, after: '', limit: budget });
      for (const [id] of keys) tx.del(table, id);
      budget -= keys.length;
      purged += keys.length;
    }
    if (budget === 0) break;
    tx.del(Table.NsVolume, volumeId);
  }
  // What is left of the step goes to snapshot work (clone copies, restores, version collection).
  const treeRecords = budget > 0 ? runTreeWork(tx, budget) : 0;
  return { purged, treeRecords };
};

/** deleteVolume's part: the namespace is marked and purged in bounded steps by fsPurgeDeleted. */
export function markNamespaceDeleted(tx: Tx, vol: Volume): void {
  const ns = tx.get<NsVolume>(Table.NsVolume, vol.id);
  if (ns !== undefined) tx.put(Table.NsVolume, vol.id, { ...ns, deleted: true } satisfies NsVolume);
}

export const nsHandlers: Record<string, Handler> = {
  fsAllocateInodes: allocateInodes,
  fsDelegate: (tx, ctx, [ref, dirRaw, sessionRaw]) => delegate(tx, ctx, volumeOf(tx, ref), dirRaw, sessionRaw),
  fsRecall: (tx, ctx, [ref, dirRaw]) => recall(tx, ctx, volumeOf(tx, ref), dirRaw),
  fsReserve: (tx, ctx, [ref, ...rest]) => {
    const vol = volumeOf(tx, ref);
    return reserve(tx, ctx, vol, rest, ensureNs(tx, vol).usedBytes);
  },
  fsReleaseDelegation: (tx, _ctx, [ref, dirRaw, sessionRaw]) => release(tx, volumeOf(tx, ref), dirRaw, sessionRaw),
  fsCommitBatch: (tx, ctx, [ref, ...rest]) => {
    const vol = volumeOf(tx, ref);
    return commitBatch(tx, ctx, vol, rest, (ino) => checkAllocated(tx, vol, ino), (ino, session, count) => addHandle(tx, vol, ino, session, count));
  },
  fsFlushRequest: (tx, ctx, [ref]) => flushRequest(tx, ctx, ref),
  fsFlushAck: (tx, _ctx, [ref, session, seq, error]) => flushAck(tx, ref, session, seq, error),
  fsCreate: create,
  fsMknod: mknod,
  fsMkdir: mkdir,
  fsSymlink: symlink,
  fsLink: link,
  fsUnlink: unlink,
  fsRmdir: rmdir,
  fsRename: renameHandler,
  fsSetattr: setattrHandler,
  fsSetxattr: setxattrHandler,
  fsRemovexattr: removexattrHandler,
  fsCommitWrite: commitWrite,
  fsOpen: open,
  fsClose: close,
  fsCloseMany: closeMany,
  fsAckBlocksFreed: ackBlocksFreed,
  fsPurgeDeleted: purgeDeleted,
};
