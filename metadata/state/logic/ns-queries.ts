/**
 * Namespace reads. Pure like every query: the shell runs them against a reader that serves cold
 * keys and ranges it prefetched (and runs them again when they ask for more: MissingKeys).
 */
import { invariant, posixError } from '../../../proto/errors.js';
import type { FsAttr, FsBlocksToFree, FsDirEntry, FsReaddirPage, FsStatfs } from '../../../proto/metadata-types.js';
import { requireVolume } from './lookup.js';
import {
  attrOf, checkFsName, checkIno, entryPrefix, findEntry, maxBlocksToFreeLimit, maxIno, maxNameBytes, maxReaddirLimit, nsRecordOf,
  requireInode, type DirEntry, type NsVolume,
} from './ns-store.js';
import { checkNotDelegated, delegationsOf, optSession, reservedOf } from './ns-delegation.js';
import { hasTreeWork } from './ns-tree-work.js';
import { Table, readAll, type StateReader } from './tx.js';
import { checkInt, invalidArgument } from './validate.js';

type Query = (r: StateReader, args: unknown[]) => unknown;

/** `session` (optional): the caller's mount session; another session's delegated directory answers DELEGATED. */
const lookup: Query = (r, [ref, parentRaw, nameRaw, sessionRaw]) => {
  const vol = requireVolume(r, ref);
  const parent = requireInode(r, vol, checkIno('parent', parentRaw));
  if (parent.type !== 'dir') throw posixError('ENOTDIR', `inode ${parent.ino} is not a directory`, 'look names up in directories');
  const name = checkFsName(nameRaw);
  checkNotDelegated(r, vol, parent.ino, optSession(sessionRaw));
  const entry = findEntry(r, vol, parent.ino, name);
  if (entry === undefined) throw posixError('ENOENT', `no ${JSON.stringify(name)} in directory ${parent.ino}`, 'create it first');
  return attrOf(requireInode(r, vol, entry.ino)) satisfies FsAttr;
};

const readdir: Query = (r, [ref, inoRaw, cursorRaw, limitRaw, sessionRaw]) => {
  const vol = requireVolume(r, ref);
  const dir = requireInode(r, vol, checkIno('ino', inoRaw));
  if (dir.type !== 'dir') throw posixError('ENOTDIR', `inode ${dir.ino} is not a directory`, 'list directories only');
  checkNotDelegated(r, vol, dir.ino, optSession(sessionRaw));
  const limit = checkInt('limit', limitRaw, 1, maxReaddirLimit);
  if (cursorRaw !== null && cursorRaw !== undefined && typeof cursorRaw !== 'string') {
    throw invalidArgument('a readdir cursor is null or the string the previous page returned', 'start with null');
  }
  const prefix = entryPrefix(vol.id, dir.ino);
  const after = typeof cursorRaw === 'string' ? prefix + cursorRaw : '';
  const rows = r.range({ table: Table.NsEntry, prefix, after, limit });
  const entries: FsDirEntry[] = readAll(rows.map(([id, value]) => () => {
    const e = value as DirEntry;
    return { name: id.slice(prefix.length), attr: attrOf(requireInode(r, vol, e.ino)) };
  }));
  const last = entries[entries.length - 1];
  return { entries, cursor: entries.length === limit && last !== undefined ? last.name : null } satisfies FsReaddirPage;
};

const readlink: Query = (r, [ref, inoRaw]) => {
  const vol = requireVolume(r, ref);
  const inode = requireInode(r, vol, checkIno('ino', inoRaw));
  if (inode.type !== 'symlink') throw posixError('EINVAL', `inode ${inode.ino} is not a symlink`, 'readlink reads symlinks only');
  invariant(inode.target !== undefined, `symlink ${inode.ino} has no target`);
  return inode.target;
};

const getxattr: Query = (r, [ref, inoRaw, name]) => {
  const vol = requireVolume(r, ref);
  const inode = requireInode(r, vol, checkIno('ino', inoRaw));
  if (typeof name !== 'string') throw invalidArgument('an xattr name must be a string', 'e.g. user.comment');
  const v = inode.xattrs?.[name];
  if (v === undefined) throw posixError('ENODATA', `no xattr ${name} on inode ${inode.ino}`, 'list them with listxattr');
  return v;
};

const listxattr: Query = (r, [ref, inoRaw]) => {
  const vol = requireVolume(r, ref);
  return Object.keys(requireInode(r, vol, checkIno('ino', inoRaw)).xattrs ?? {});
};

const statfs: Query = (r, [ref]) => {
  const vol = requireVolume(r, ref);
  const ns = nsRecordOf(r, vol);
  const inodesLeft = maxIno - ns.nextIno;
  // Space reserved for buffered new files (write-back) is taken: no other node may count on it.
  const used = ns.usedBytes + reservedOf(r, vol);
  return {
    totalBytes: vol.sizeBytes, usedBytes: used, freeBytes: Math.max(0, vol.sizeBytes - used),
    blockSizeBytes: vol.blockSizeBytes, inodes: ns.inodes, freeInodes: inodesLeft, maxNameBytes,
  } satisfies FsStatfs;
};

const listBlocksToFree: Query = (r, [ref, limitRaw]) => {
  const vol = requireVolume(r, ref);
  const limit = checkInt('limit', limitRaw, 1, maxBlocksToFreeLimit);
  const prefix = `${vol.id}/`;
  return r.range({ table: Table.NsFree, prefix, after: '', limit }).map(([id, v]) => {
    const { ino, fromBlock, inoEnd, toBlock } = v as { ino: number; fromBlock: number; inoEnd?: number; toBlock?: number };
    return {
      seq: parseInt(id.slice(prefix.length), 16), ino, fromBlock, ...(inoEnd === undefined ? {} : { inoEnd }), ...(toBlock === undefined ? {} : { toBlock }),
    } satisfies FsBlocksToFree;
  });
};

/** Internal (controller): deleted volumes whose namespace is still being purged, and volumes with snapshot tree work. */
const pendingPurges: Query = (r) => r.ids(Table.NsVolume).filter((id) => {
  const ns = r.get<NsVolume>(Table.NsVolume, id);
  return ns?.deleted === true || hasTreeWork(ns);
}).length;

export const nsQueries: Record<string, Query> = {
  fsLookup: lookup,
  fsGetattr: (r, [ref, inoRaw]) => attrOf(requireInode(r, requireVolume(r, ref), checkIno('ino', inoRaw))),
  fsReaddir: readdir,
  fsReadlink: readlink,
  fsGetxattr: getxattr,
  fsListxattr: listxattr,
  fsStatfs: statfs,
  fsListBlocksToFree: listBlocksToFree,
  fsPendingPurges: pendingPurges,
  fsDelegationsOf: (r, [ref, sessionRaw]) => delegationsOf(r, requireVolume(r, ref), sessionRaw),
};
