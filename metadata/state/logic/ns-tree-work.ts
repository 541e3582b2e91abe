/**
 * Background namespace work after snapshot commands, in paced steps run by the leader's controller
 * (`fsPurgeDeleted`, while `fsPendingPurges` > 0), each bounded by `treeRecordsPerStep`:
 * - copy: a clone's tree becomes its parent's tree at the snapshot's cut, same inode numbers (its
 *   file blocks read through the parent's cut by address); the clone is not mountable until done;
 * - restore: a volume's tree rolls back to its own snapshot's cut, in place; not mountable until done;
 * - gc: after a snapshot delete, versions no remaining snapshot reads are deleted.
 * Pure, like all of logic/.
 */
import { invariant } from '../../../proto/errors.js';
import type { Snapshot, Volume } from '../../../proto/metadata-types.js';
import { listOf } from './lookup.js';
import { queueFree, type Inode, type NsVolume, type TreeWork } from './ns-store.js';
import { gcStep, readAt, retarget, treePage, unstamped, type TreeRow } from './ns-versions.js';
import { readAll, Table, type StateReader, type Tx } from './tx.js';

/** Tree records one copy/restore step resolves (one range plus one seek each). */
export const treeRecordsPerStep = 256;
/** Version keys one gc step looks at. */
export const gcKeysPerStep = 512;

export function hasTreeWork(ns: NsVolume | undefined): boolean {
  return ns !== undefined && ns.deleted !== true && (ns.work !== undefined || ns.gc !== undefined);
}

/** Cuts of the volume's live snapshots, ascending. */
export function liveCuts(r: StateReader, volumeId: string): number[] {
  return listOf<Snapshot>(r, Table.Snapshot).filter((s) => s.volumeId === volumeId).map((s) => s.cut).sort((a, b) => a - b);
}

function sameRecord(a: unknown, b: unknown): boolean {
  return a !== undefined && b !== undefined && JSON.stringify(unstamped(a)) === JSON.stringify(b);
}

/** Writes one page of the tree at the cut into `volumeId` (copy: into the clone; restore: in place). */
function writeRows(tx: Tx, volumeId: string, work: TreeWork, rows: readonly TreeRow[]): void {
  const ids = rows.map((row) => (work.kind === 'copy' ? retarget(row.id, volumeId) : row.id));
  // Every current value in one fetch round (one MissingKeys each would rerun the step per record).
  const current = readAll(rows.map((row, i) => () => tx.get(row.table, ids[i]!)));
  rows.forEach((row, i) => {
    const id = ids[i]!;
    if (row.value === undefined) {
      // Live now, absent at the cut: only a restore has such records to drop.
      if (work.kind === 'restore' && current[i] !== undefined) {
        tx.del(row.table, id);
        if (row.table === Table.NsInode) freeDropped(tx, volumeId, work.cut, id, current[i] as Inode);
      }
    } else if (!sameRecord(current[i], row.value)) tx.put(row.table, id, row.value);
  });
}

/**
 * A restore drops a file made after the cut: its blocks go to the free queue like an unlinked
 * file's (the block reapers free them, paced), with the end the file had, so the reaper needs no
 * guess. A record written since the cut that existed AT the cut (changed, not new) comes back in
 * the version pass: its blocks are the restored file's, so only a record absent at the cut counts.
 */
function freeDropped(tx: Tx, volumeId: string, cut: number, id: string, inode: Inode): void {
  if (inode.type !== 'file' || readAt(tx, Table.NsInode, id, cut) !== undefined) return;
  const vol = tx.get<Volume>(Table.Volume, volumeId);
  invariant(vol !== undefined, `volume ${volumeId} of a restore is gone`);
  queueFree(tx, vol, inode.ino, 0, { toBlock: Math.ceil(inode.size / vol.blockSizeBytes) });
}

/** The volume's tree is the one at the cut: counters from the snapshot, mountable again. */
function finishWork(tx: Tx, volumeId: string, ns: NsVolume, work: TreeWork): void {
  const snap = tx.get<Snapshot>(Table.Snapshot, work.snapshotId);
  invariant(snap !== undefined, `snapshot ${work.snapshotId} of a ${work.kind} in progress was deleted`);
  const tree = snap.fileTree ?? { inodes: 1, usedBytes: 0, nextIno: ns.nextIno };
  const { work: _done, ...rest } = ns;
  // Inode numbers are never reused: a restore keeps the higher cursor (blocks of newer inodes exist).
  tx.put(Table.NsVolume, volumeId, { ...rest, inodes: tree.inodes, usedBytes: tree.usedBytes, nextIno: Math.max(ns.nextIno, tree.nextIno) } satisfies NsVolume);
  const vol = tx.get<Volume>(Table.Volume, volumeId);
  invariant(vol !== undefined, `volume ${volumeId} of a tree ${work.kind} is gone (its namespace would be deleted)`);
  const { treeState: _state, ...plain } = vol;
  tx.put(Table.Volume, volumeId, { ...plain, version: vol.version + 1 } satisfies Volume);
}

function workStep(tx: Tx, volumeId: string, ns: NsVolume, work: TreeWork, limit: number): number {
  const { rows, next } = treePage(tx, work.from, work.cut, work.cursor, limit);
  writeRows(tx, volumeId, work, rows);
  // Read again: a dropped file's free entry moved the volume's free-queue counter.
  const now = tx.get<NsVolume>(Table.NsVolume, volumeId) ?? ns;
  if (next === null) finishWork(tx, volumeId, now, work);
  else tx.put(Table.NsVolume, volumeId, { ...now, work: { ...work, cursor: next } } satisfies NsVolume);
  return Math.max(1, rows.length);
}

function collectStep(tx: Tx, volumeId: string, ns: NsVolume, limit: number): number {
  invariant(ns.gc !== undefined, 'collectStep without a gc cursor');
  const { seen, next } = gcStep(tx, volumeId, liveCuts(tx, volumeId), ns.gc, limit);
  const { gc: _done, ...rest } = ns;
  tx.put(Table.NsVolume, volumeId, (next === null ? rest : { ...rest, gc: next }) satisfies NsVolume);
  return Math.max(1, seen);
}

/** One step of every volume's pending tree work, within `budget` records; returns what it used. */
export function runTreeWork(tx: Tx, budget: number): number {
  let used = 0;
  for (const volumeId of tx.ids(Table.NsVolume)) {
    if (used >= budget) break;
    const ns = tx.get<NsVolume>(Table.NsVolume, volumeId);
    if (!hasTreeWork(ns) || ns === undefined) continue;
    if (ns.work !== undefined) used += workStep(tx, volumeId, ns, ns.work, Math.min(treeRecordsPerStep, budget - used));
    else used += collectStep(tx, volumeId, ns, Math.min(gcKeysPerStep, budget - used));
  }
  return used;
}
