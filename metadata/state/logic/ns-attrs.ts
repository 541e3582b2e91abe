/**
 * setattr (chmod, chown, utimens, truncate) and extended attributes, with the ownership rules of
 * Linux: chmod and explicit times by the owner or root; chown by root, chgrp by the owner to a
 * group it is in; chown of a non-directory clears set-uid, and set-gid when group-executable;
 * anyone may clear set-uid/set-gid alone (what the kernel asks after a non-owner's write).
 */
import { posixError } from '../../../proto/errors.js';
import type { FsCaller, Volume } from '../../../proto/metadata-types.js';
import { FsXattrFlags } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import {
  attrOf, byteLength, checkCaller, checkId, checkIno, checkMode, inGroup, maxXattrNameBytes, maxXattrTotalBytes, maxXattrValueBytes,
  nowNs, queueFree, requireInode, saveInode, volumeOf, checkTimeNs, maxFileBytes, type Inode,
} from './ns-store.js';
import { epochAfterTruncate } from './ns-truncate.js';
import { checkNotDelegated } from './ns-delegation.js';
import type { Tx } from './tx.js';
import { checkInt, checkKeys, invalidArgument, isRecord } from './validate.js';

type Handler = (tx: Tx, ctx: CommandContext, args: unknown[]) => unknown;
type Caller = Required<FsCaller>;

const setattrKeys = ['mode', 'uid', 'gid', 'size', 'atime', 'mtime'] as const;
const xattrNamespaces = ['user.', 'trusted.', 'security.'] as const;

function notOwner(caller: Caller, inode: Inode, what: string): Error {
  return posixError('EPERM', `uid ${caller.uid} may not ${what} inode ${inode.ino} (owner uid ${inode.uid})`, 'only the owner or root may do that');
}

/**
 * Set-uid and/or set-gid dropped, nothing else changed. The kernel sends exactly this, as the
 * writer, when someone who is not the owner writes to or truncates a set-id file (it clears them
 * itself on ext4, with no ownership check), so anyone may: losing privilege is always allowed.
 */
function onlyDropsSetId(inode: Inode, mode: number): boolean {
  const setId = 0o6000;
  const dropped = inode.mode & setId & ~mode;
  return dropped !== 0 && (mode | dropped) === inode.mode;
}

function applyMode(caller: Caller, inode: Inode, raw: unknown): Inode {
  const mode = checkMode(raw);
  if (caller.uid !== 0 && caller.uid !== inode.uid && !onlyDropsSetId(inode, mode)) throw notOwner(caller, inode, 'chmod');
  // Linux: a non-root caller outside the file's group loses set-gid silently.
  const kept = caller.uid !== 0 && !inGroup(caller, inode.gid) ? mode & ~0o2000 : mode;
  return { ...inode, mode: kept };
}

function applyOwner(caller: Caller, inode: Inode, uidRaw: unknown, gidRaw: unknown): Inode {
  const uid = uidRaw === undefined ? inode.uid : checkId('uid', uidRaw);
  const gid = gidRaw === undefined ? inode.gid : checkId('gid', gidRaw);
  const root = caller.uid === 0;
  const owner = caller.uid === inode.uid;
  if (uidRaw !== undefined && !root && !(owner && uid === inode.uid)) throw notOwner(caller, inode, `chown to uid ${uid}`);
  if (gidRaw !== undefined && !root && !(owner && (gid === inode.gid || inGroup(caller, gid)))) throw notOwner(caller, inode, `chgrp to gid ${gid}`);
  let mode = inode.mode;
  if (inode.type !== 'dir') {
    mode &= ~0o4000;
    if ((mode & 0o010) !== 0) mode &= ~0o2000;
  }
  return { ...inode, uid, gid, mode };
}

function applyTime(caller: Caller, inode: Inode, ctx: CommandContext, what: 'atime' | 'mtime', raw: unknown): string {
  if (raw === 'now') return nowNs(ctx);
  const t = checkTimeNs(what, raw);
  // Setting explicit times needs ownership; "now" only needs write access, which the kernel checked.
  if (caller.uid !== 0 && caller.uid !== inode.uid) throw notOwner(caller, inode, `set ${what} of`);
  return t;
}

function applySize(tx: Tx, vol: Volume, inode: Inode, raw: unknown, t: string): Inode {
  if (inode.type === 'dir') throw posixError('EISDIR', `inode ${inode.ino} is a directory`, 'only regular files can be truncated');
  if (inode.type !== 'file') throw posixError('EINVAL', `inode ${inode.ino} is a ${inode.type}`, 'only regular files can be truncated');
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw > maxFileBytes) throw posixError('EFBIG', `size ${raw} bytes`, `files hold at most ${maxFileBytes} bytes`);
  const size = checkInt('size', raw, 0, maxFileBytes);
  if (size < inode.size) queueFree(tx, vol, inode.ino, Math.ceil(size / vol.blockSizeBytes));
  // Every truncate, even to the same size, orders the writes other nodes buffered before it.
  return { ...inode, size, mtimeNs: t, truncEpoch: epochAfterTruncate(inode.truncEpoch ?? 0) };
}

/** The inode an attribute change goes to; a directory delegated to a mount session is frozen (ns-delegation.ts). */
function targetOf(tx: Tx, vol: Volume, inoRaw: unknown): Inode {
  const inode = requireInode(tx, vol, checkIno('ino', inoRaw));
  if (inode.type === 'dir') checkNotDelegated(tx, vol, inode.ino, null);
  return inode;
}

export const setattrHandler: Handler = (tx, ctx, [ref, callerRaw, inoRaw, changes]) => {
  const vol = volumeOf(tx, ref);
  const caller = checkCaller(callerRaw);
  const inode = targetOf(tx, vol, inoRaw);
  if (!isRecord(changes)) throw invalidArgument('setattr changes must be an object', `pass some of: ${setattrKeys.join(', ')}`);
  checkKeys('setattr', changes, setattrKeys);
  const t = nowNs(ctx);
  let next: Inode = inode;
  if (changes.uid !== undefined || changes.gid !== undefined) next = applyOwner(caller, next, changes.uid, changes.gid);
  if (changes.mode !== undefined) next = applyMode(caller, next, changes.mode);
  if (changes.size !== undefined) next = applySize(tx, vol, next, changes.size, t);
  if (changes.atime !== undefined) next = { ...next, atimeNs: applyTime(caller, inode, ctx, 'atime', changes.atime) };
  if (changes.mtime !== undefined) next = { ...next, mtimeNs: applyTime(caller, inode, ctx, 'mtime', changes.mtime) };
  if (next === inode) return attrOf(inode);
  return attrOf(saveInode(tx, vol, inode, { ...next, ctimeNs: t }));
};

function checkXattrName(caller: Caller, raw: unknown): string {
  if (typeof raw !== 'string' || raw === '') throw invalidArgument('an xattr name must be a non-empty string', 'e.g. user.comment');
  if (byteLength(raw) > maxXattrNameBytes) throw posixError('ERANGE', `xattr name of ${byteLength(raw)} bytes`, `use at most ${maxXattrNameBytes} bytes`);
  if (!xattrNamespaces.some((ns) => raw.startsWith(ns) && raw.length > ns.length)) {
    throw posixError('EOPNOTSUPP', `xattr ${JSON.stringify(raw)} is outside the user., trusted. and security. namespaces`, 'POSIX ACLs (system.) are not supported');
  }
  if (raw.startsWith('trusted.') && caller.uid !== 0) throw posixError('EPERM', `only root may set ${raw}`, 'trusted. attributes belong to root');
  return raw;
}

function checkXattrTarget(inode: Inode, name: string): void {
  // Linux: user. attributes only on regular files and directories.
  if (name.startsWith('user.') && inode.type !== 'file' && inode.type !== 'dir') {
    throw posixError('EPERM', `user. attributes are not allowed on a ${inode.type}`, 'set them on files and directories');
  }
}

function xattrBytes(xattrs: Record<string, string>): number {
  let total = 0;
  for (const [k, v] of Object.entries(xattrs)) total += byteLength(k) + Buffer.from(v, 'base64').length;
  return total;
}

function sortedXattrs(x: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k] as string]));
}

export const setxattrHandler: Handler = (tx, ctx, [ref, callerRaw, inoRaw, nameRaw, valueRaw, flagsRaw]) => {
  const vol = volumeOf(tx, ref);
  const caller = checkCaller(callerRaw);
  const inode = targetOf(tx, vol, inoRaw);
  const name = checkXattrName(caller, nameRaw);
  checkXattrTarget(inode, name);
  if (typeof valueRaw !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(valueRaw) || valueRaw.length % 4 !== 0) {
    throw invalidArgument('an xattr value must be base64', 'encode the value bytes as base64');
  }
  const value = Buffer.from(valueRaw, 'base64');
  if (value.length > maxXattrValueBytes) throw posixError('E2BIG', `xattr value of ${value.length} bytes`, `use at most ${maxXattrValueBytes} bytes`);
  const flags = flagsRaw === undefined || flagsRaw === null ? 0 : checkInt('flags', flagsRaw, 0, 3);
  if (flags === 3) throw posixError('EINVAL', 'XATTR_CREATE and XATTR_REPLACE together', 'pass one of them');
  const xattrs = inode.xattrs ?? {};
  const exists = Object.hasOwn(xattrs, name);
  if (exists && flags === FsXattrFlags.Create) throw posixError('EEXIST', `xattr ${name} exists`, 'drop XATTR_CREATE to replace it');
  if (!exists && flags === FsXattrFlags.Replace) throw posixError('ENODATA', `no xattr ${name}`, 'drop XATTR_REPLACE to create it');
  const next = sortedXattrs({ ...xattrs, [name]: value.toString('base64') });
  if (xattrBytes(next) > maxXattrTotalBytes) throw posixError('ENOSPC', `xattrs of inode ${inode.ino} would exceed ${maxXattrTotalBytes} bytes`, 'remove other attributes first');
  return attrOf(saveInode(tx, vol, inode, { ...inode, xattrs: next, ctimeNs: nowNs(ctx) }));
};

export const removexattrHandler: Handler = (tx, ctx, [ref, callerRaw, inoRaw, nameRaw]) => {
  const vol = volumeOf(tx, ref);
  const caller = checkCaller(callerRaw);
  const inode = targetOf(tx, vol, inoRaw);
  const name = checkXattrName(caller, nameRaw);
  const xattrs = { ...(inode.xattrs ?? {}) };
  if (!Object.hasOwn(xattrs, name)) throw posixError('ENODATA', `no xattr ${name}`, 'list them with listxattr');
  delete xattrs[name];
  const next: Inode = { ...inode, ctimeNs: nowNs(ctx) };
  if (Object.keys(xattrs).length > 0) next.xattrs = xattrs;
  else delete next.xattrs;
  return attrOf(saveInode(tx, vol, inode, next));
};
