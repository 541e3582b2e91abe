/**
 * rename(2) with RENAME_NOREPLACE and RENAME_EXCHANGE, atomic in one command. Rules as Linux:
 * the same inode under both names is a no-op; a directory replaces only an empty directory
 * (ENOTEMPTY) and never a file (ENOTDIR); a file never replaces a directory (EISDIR); a directory
 * cannot move into its own subtree (EINVAL: found by walking the destination's parents up to the
 * root); sticky directories restrict both the moved and the replaced entry.
 */
import { invariant, posixError } from '../../../proto/errors.js';
import type { FsRenameReply, Volume } from '../../../proto/metadata-types.js';
import { FsRenameFlags } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import {
  attrOf, checkCaller, checkFsName, checkIno, checkSticky, entryId, findEntry, maxLinks, nowNs, reapIfUnused, requireDir, requireInode,
  rootIno, saveInode, touchDir, volumeOf, type DirEntry, type Inode,
} from './ns-store.js';
import { Table, type Tx } from './tx.js';
import { checkNotDelegated } from './ns-delegation.js';
import { checkInt } from './validate.js';

/** Deeper trees than this cannot be renamed into (bounds the subtree walk). */
export const maxRenameDepth = 4_096;

type Handler = (tx: Tx, ctx: CommandContext, args: unknown[]) => unknown;

interface Side {
  parent: Inode;
  name: string;
  inode: Inode;
}

/** EINVAL when `dirIno` is `target` or below it. */
function checkNotInside(tx: Tx, vol: Volume, dirIno: number, target: number): void {
  let cur = dirIno;
  for (let depth = 0; depth < maxRenameDepth; depth += 1) {
    if (cur === target) throw posixError('EINVAL', `directory ${target} cannot move into its own subtree (${dirIno})`, 'choose a destination outside the directory');
    if (cur === rootIno) return;
    const parent = requireInode(tx, vol, cur).parent;
    invariant(parent !== undefined, `directory ${cur} has no parent pointer`);
    cur = parent;
  }
  throw posixError('EINVAL', `directory ${dirIno} is more than ${maxRenameDepth} levels deep`, 'move it from a shallower place');
}

/** Entries and subdirectory links of each parent, applied once per distinct directory. */
function adjustParents(tx: Tx, vol: Volume, ctx: CommandContext, changes: [Inode, number, number][]): Map<number, Inode> {
  const merged = new Map<number, [Inode, number, number]>();
  for (const [dir, e, l] of changes) {
    const m = merged.get(dir.ino);
    merged.set(dir.ino, m === undefined ? [dir, e, l] : [m[0], m[1] + e, m[2] + l]);
  }
  const out = new Map<number, Inode>();
  for (const [ino, [dir, e, l]] of merged) out.set(ino, touchDir(tx, vol, dir, ctx, e, l));
  return out;
}

function moveInode(tx: Tx, vol: Volume, ctx: CommandContext, inode: Inode, newParent: number): Inode {
  const next: Inode = { ...inode, ctimeNs: nowNs(ctx) };
  if (inode.type === 'dir') next.parent = newParent;
  return saveInode(tx, vol, inode, next);
}

function reply(moved: Inode, parents: Map<number, Inode>, src: Inode, dst: Inode): FsRenameReply {
  const p = parents.get(src.ino) ?? src;
  const np = parents.get(dst.ino) ?? dst;
  return { attr: attrOf(moved), parent: attrOf(p), newParent: attrOf(np) };
}

function exchange(tx: Tx, vol: Volume, ctx: CommandContext, a: Side, b: Side): FsRenameReply {
  if (a.parent.ino !== b.parent.ino) {
    if (a.inode.type === 'dir') checkNotInside(tx, vol, b.parent.ino, a.inode.ino);
    if (b.inode.type === 'dir') checkNotInside(tx, vol, a.parent.ino, b.inode.ino);
  }
  tx.put(Table.NsEntry, entryId(vol.id, a.parent.ino, a.name), { ino: b.inode.ino, type: b.inode.type } satisfies DirEntry);
  tx.put(Table.NsEntry, entryId(vol.id, b.parent.ino, b.name), { ino: a.inode.ino, type: a.inode.type } satisfies DirEntry);
  const aDir = a.inode.type === 'dir' ? 1 : 0;
  const bDir = b.inode.type === 'dir' ? 1 : 0;
  const moved = moveInode(tx, vol, ctx, a.inode, b.parent.ino);
  moveInode(tx, vol, ctx, b.inode, a.parent.ino);
  const parents = adjustParents(tx, vol, ctx, [[a.parent, 0, bDir - aDir], [b.parent, 0, aDir - bDir]]);
  return reply(moved, parents, a.parent, b.parent);
}

/** Why `moved` may not replace `replaced` (types, emptiness, sticky), or nothing. */
function checkReplace(caller: ReturnType<typeof checkCaller>, moved: Inode, replaced: Inode, dstParent: Inode): void {
  if (moved.type === 'dir' && replaced.type !== 'dir') throw posixError('ENOTDIR', `inode ${replaced.ino} is not a directory`, 'a directory can only replace an empty directory');
  if (moved.type !== 'dir' && replaced.type === 'dir') throw posixError('EISDIR', `inode ${replaced.ino} is a directory`, 'remove the directory first');
  if ((replaced.entries ?? 0) > 0) throw posixError('ENOTEMPTY', `directory ${replaced.ino} holds ${replaced.entries} entries`, 'empty it first');
  checkSticky(caller, dstParent, replaced);
}

function move(tx: Tx, vol: Volume, ctx: CommandContext, caller: ReturnType<typeof checkCaller>, src: Side, dst: Omit<Side, 'inode'>): FsRenameReply {
  const dstEntry = findEntry(tx, vol, dst.parent.ino, dst.name);
  const replaced = dstEntry === undefined ? undefined : requireInode(tx, vol, dstEntry.ino);
  const isDir = src.inode.type === 'dir';
  const sameParent = src.parent.ino === dst.parent.ino;
  if (isDir && !sameParent) checkNotInside(tx, vol, dst.parent.ino, src.inode.ino);
  if (replaced !== undefined) checkReplace(caller, src.inode, replaced, dst.parent);
  const replacedDir = replaced?.type === 'dir' ? 1 : 0;
  if (isDir && !sameParent && replacedDir === 0 && dst.parent.nlink >= maxLinks) {
    throw posixError('EMLINK', `directory ${dst.parent.ino} has ${dst.parent.nlink} links`, `a directory holds at most ${maxLinks - 2} subdirectories`);
  }
  tx.del(Table.NsEntry, entryId(vol.id, src.parent.ino, src.name));
  tx.put(Table.NsEntry, entryId(vol.id, dst.parent.ino, dst.name), { ino: src.inode.ino, type: src.inode.type } satisfies DirEntry);
  if (replaced !== undefined) {
    const nlink = replaced.type === 'dir' ? 0 : replaced.nlink - 1;
    reapIfUnused(tx, vol, saveInode(tx, vol, replaced, { ...replaced, nlink, ctimeNs: nowNs(ctx) }));
  }
  const moved = moveInode(tx, vol, ctx, src.inode, dst.parent.ino);
  const d = isDir ? 1 : 0;
  const parents = adjustParents(tx, vol, ctx, [
    [src.parent, -1, -d],
    [dst.parent, replaced === undefined ? 1 : 0, d - replacedDir],
  ]);
  return reply(moved, parents, src.parent, dst.parent);
}

export const renameHandler: Handler = (tx, ctx, [ref, callerRaw, parentRaw, nameRaw, newParentRaw, newNameRaw, flagsRaw]) => {
  const vol = volumeOf(tx, ref);
  const caller = checkCaller(callerRaw);
  const name = checkFsName(nameRaw);
  const newName = checkFsName(newNameRaw);
  const flags = flagsRaw === undefined || flagsRaw === null ? 0 : checkInt('rename flags', flagsRaw, 0, 3);
  if (flags === 3) throw posixError('EINVAL', 'RENAME_NOREPLACE and RENAME_EXCHANGE together', 'pass one of them');
  const parent = requireDir(tx, vol, checkIno('parent', parentRaw));
  const newParent = requireDir(tx, vol, checkIno('new parent', newParentRaw));
  checkNotDelegated(tx, vol, parent.ino, null);
  checkNotDelegated(tx, vol, newParent.ino, null);
  const entry = findEntry(tx, vol, parent.ino, name);
  if (entry === undefined) throw posixError('ENOENT', `no ${JSON.stringify(name)} in directory ${parent.ino}`, 'look the name up again');
  const src: Side = { parent, name, inode: requireInode(tx, vol, entry.ino) };
  const dstEntry = findEntry(tx, vol, newParent.ino, newName);
  // A delegated directory replaced by the rename may hold its holder's uncommitted files.
  if (dstEntry?.type === 'dir') checkNotDelegated(tx, vol, dstEntry.ino, null);
  if ((flags & FsRenameFlags.Exchange) !== 0 && dstEntry === undefined) throw posixError('ENOENT', `no ${JSON.stringify(newName)} in directory ${newParent.ino} to exchange with`, 'RENAME_EXCHANGE needs both names');
  if ((flags & FsRenameFlags.NoReplace) !== 0 && dstEntry !== undefined) throw posixError('EEXIST', `${JSON.stringify(newName)} exists in directory ${newParent.ino}`, 'drop RENAME_NOREPLACE to replace it');
  // Two names of one inode: POSIX says rename does nothing and succeeds.
  if (dstEntry?.ino === entry.ino) return reply(src.inode, new Map(), parent, newParent);
  checkSticky(caller, parent, src.inode);
  if (dstEntry !== undefined && (flags & FsRenameFlags.Exchange) !== 0) {
    const other = requireInode(tx, vol, dstEntry.ino);
    checkSticky(caller, newParent, other);
    return exchange(tx, vol, ctx, src, { parent: newParent, name: newName, inode: other });
  }
  return move(tx, vol, ctx, caller, src, { parent: newParent, name: newName });
};
