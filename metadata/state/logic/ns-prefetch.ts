/**
 * The cold keys a namespace command or query will surely read, known from its arguments alone: the
 * shell fetches them for a whole batch in one LevelDB call before the logic runs, so most records
 * need no fetch-and-rerun round (MissingKeys) at all. A hint only: a wrong or missing key costs a
 * round, never a different result, because the logic reads through the same view either way.
 */
import { findVolume } from './lookup.js';
import { maxBatchFiles } from './ns-delegation.js';
import { entryId, inodeId, maxClosesPerCommand } from './ns-store.js';
import { keyOf, Table, type StateReader } from './tx.js';

type KeysOf = (volumeId: string, args: unknown[]) => (string | null)[];

const ino = (volumeId: string, raw: unknown): string | null =>
  (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0 ? keyOf(Table.NsInode, inodeId(volumeId, raw)) : null);
const entry = (volumeId: string, parent: unknown, name: unknown): string | null =>
  (typeof parent === 'number' && Number.isSafeInteger(parent) && parent >= 0 && typeof name === 'string' ? keyOf(Table.NsEntry, entryId(volumeId, parent, name)) : null);

const newNode: KeysOf = (v, [, , parent, name, child]) => [ino(v, parent), entry(v, parent, name), ino(v, child)];
const byIno: KeysOf = (v, [, , i]) => [ino(v, i)];
const byInoNoCaller: KeysOf = (v, [, i]) => [ino(v, i)];
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
/** A last close may reap the inode (read it): the inodes of an FsCloses list. */
const closed = (v: string, raw: unknown): (string | null)[] => {
  const inos = typeof raw === 'object' && raw !== null ? (raw as { inos?: unknown }).inos : undefined;
  return Array.isArray(inos) ? inos.slice(0, maxClosesPerCommand).map((i) => ino(v, i)) : [];
};

/** fsCommitBatch: the directory, and each new file's entry and inode number (both must be free). */
const batch: KeysOf = (v, [, , dir, files]) => [ino(v, dir), ...(Array.isArray(files) ? files.slice(0, maxBatchFiles) : []).flatMap((f: unknown) =>
  (isObject(f) ? [entry(v, dir, f.name), ino(v, f.ino)] : []))];

const keysOf: Record<string, KeysOf> = {
  fsCreate: (v, args) => [...newNode(v, args), ...closed(v, isObject(args[6]) ? args[6].closes : undefined)],
  fsMknod: newNode,
  fsMkdir: newNode,
  fsSymlink: newNode,
  fsLink: (v, [, , i, parent, name]) => [ino(v, i), ino(v, parent), entry(v, parent, name)],
  fsUnlink: (v, [, , parent, name]) => [ino(v, parent), entry(v, parent, name)],
  fsRmdir: (v, [, , parent, name]) => [ino(v, parent), entry(v, parent, name)],
  fsRename: (v, [, , p, n, np, nn]) => [ino(v, p), ino(v, np), entry(v, p, n), entry(v, np, nn)],
  fsSetattr: byIno,
  fsSetxattr: byIno,
  fsRemovexattr: byIno,
  fsCommitWrite: (v, [, i, , , closes]) => [ino(v, i), ...closed(v, closes)],
  fsCloseMany: (v, [, closes]) => closed(v, closes),
  fsCommitBatch: batch,
  fsDelegate: byInoNoCaller,
  fsOpen: byInoNoCaller,
  fsClose: byInoNoCaller,
  fsLookup: (v, [, parent, name]) => [ino(v, parent), entry(v, parent, name)],
  fsGetattr: byInoNoCaller,
  fsReadlink: byInoNoCaller,
  fsGetxattr: byInoNoCaller,
  fsListxattr: byInoNoCaller,
  fsReaddir: byInoNoCaller,
};

export function prefetchKeysOf(r: StateReader, method: string, args: unknown[]): string[] {
  const fn = Object.hasOwn(keysOf, method) ? keysOf[method] : undefined;
  if (fn === undefined) return [];
  const vol = findVolume(r, args[0]);
  if (vol === undefined) return [];
  return fn(vol.id, args).filter((k): k is string => k !== null);
}
