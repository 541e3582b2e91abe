/**
 * Snapshots, clones and in-place restores (issue #11): each is ONE command. A snapshot records
 * its cut — an epoch above every epoch any PG of the volume has had — and moves every PG of the
 * volume to it in the same command: a write acknowledged before the command carries an older
 * epoch (it is in the snapshot), and data nodes refuse the old epoch once they learn the new
 * one (fencing), so nothing written after it can join the snapshot. The data nodes keep a
 * block's older version when a write at a newer epoch replaces it; the cost here is O(PGs),
 * independent of the volume's size and of how many blocks it holds.
 * A clone is a new volume with `parent` = (volume, snapshot, cut); a restore bumps the PGs to
 * epoch R and appends (R, cut) to the volume's `restores`: reads resolve through them
 * (dataplane/logic/snapshot-versions.ts).
 */
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import type { Lease, PlacementGroup, Snapshot, Volume } from '../../../proto/metadata-types.js';
import { leasesOn } from './lease-store.js';
import { isLive } from './leases.js';
import { listOf, placementOf, requireVolume } from './lookup.js';
import { nsRecordOf } from './ns-store.js';
import { writePlacement } from './placement-store.js';
import { Table, type StateReader, type Tx } from './tx.js';
import { checkName, invalidArgument } from './validate.js';

/** What the handlers need of the command context (commands.ts CommandContext). */
interface Ctx { stampMs: number; newId(tag: string): string }

const snapshotHints = {
  list: 'list snapshots with: galleon snapshot list',
} as const;

export function findSnapshot(r: StateReader, ref: unknown): Snapshot | undefined {
  if (typeof ref !== 'string' || ref.length === 0) return undefined;
  const byId = r.get<Snapshot>(Table.Snapshot, ref);
  if (byId !== undefined) return byId;
  const id = r.get<string>(Table.SnapshotName, ref);
  return id === undefined ? undefined : r.get<Snapshot>(Table.Snapshot, id);
}

/** Clones (names, sorted) that read through the snapshot. */
function clonesOf(r: StateReader, snapshotId: string): string[] {
  return listOf<Volume>(r, Table.Volume).filter((v) => v.parent?.snapshotId === snapshotId).map((v) => v.name).sort();
}

export function requireSnapshot(r: StateReader, ref: unknown): Snapshot {
  if (typeof ref !== 'string' || ref.length === 0) throw invalidArgument('a snapshot name or id is required', snapshotHints.list);
  const s = findSnapshot(r, ref);
  if (s === undefined) throw new GalleonError(ErrorCode.SNAPSHOT_NOT_FOUND, `snapshot ${JSON.stringify(ref)} not found`, { hint: snapshotHints.list });
  return s;
}

/** The epoch above every epoch of the volume's PGs, with every PG moved to it (one placement write). */
function fenceVolume(tx: Tx, vol: Volume): number {
  const pgs = placementOf(tx, vol.id);
  invariant(pgs.length > 0, `volume ${vol.id} has a placement`);
  const epoch = Math.max(...pgs.map((p) => p.epoch)) + 1;
  writePlacement(tx, vol.id, pgs.map((p): PlacementGroup => ({ ...p, epoch })));
  return epoch;
}

function snapshotsOf(r: StateReader, volumeId: string): Snapshot[] {
  return listOf<Snapshot>(r, Table.Snapshot).filter((s) => s.volumeId === volumeId).sort((a, b) => a.cut - b.cut || (a.id < b.id ? -1 : 1));
}

export const snapshotHandlers = {
  createSnapshot(tx: Tx, ctx: Ctx, [volRef, nameRaw]: unknown[]): Snapshot {
    const vol = requireVolume(tx, volRef);
    const id = ctx.newId('snapshot');
    invariant(tx.get(Table.Snapshot, id) === undefined, `derived snapshot id ${id} already exists`);
    const name = nameRaw === undefined || nameRaw === null ? `${vol.name.slice(0, 40)}-snap-${id.slice(0, 8)}` : checkName('snapshot', nameRaw);
    if (findSnapshot(tx, name) !== undefined) {
      throw new GalleonError(ErrorCode.SNAPSHOT_EXISTS, `snapshot ${name} already exists`, { hint: `choose another --name, or see it with: galleon snapshot get ${name}` });
    }
    const cut = fenceVolume(tx, vol);
    const snap: Snapshot = {
      id, name, volumeId: vol.id, volumeName: vol.name, cut, sizeBytes: vol.sizeBytes, blockSizeBytes: vol.blockSizeBytes, createdAtMs: ctx.stampMs,
    };
    tx.put(Table.Snapshot, id, snap);
    tx.put(Table.SnapshotName, name, id);
    return snap;
  },

  deleteSnapshot(tx: Tx, _ctx: Ctx, [ref]: unknown[]): Snapshot {
    const snap = requireSnapshot(tx, ref);
    const clones = clonesOf(tx, snap.id);
    if (clones.length > 0) {
      throw new GalleonError(ErrorCode.SNAPSHOT_IN_USE, `snapshot ${snap.name} has ${clones.length} clone(s) reading through it: ${clones.slice(0, 5).join(', ')}`,
        { hint: 'delete those clones first (galleon volume delete NAME)', details: { clones } });
    }
    tx.del(Table.Snapshot, snap.id);
    tx.del(Table.SnapshotName, snap.name);
    return snap;
  },

  /** The spec of the source volume, a new name, and `parent`: the new volume's own PGs start empty. */
  cloneVolume(tx: Tx, ctx: Ctx, [snapRef, nameRaw, dataKeyRaw]: unknown[], createVolume: (spec: Record<string, unknown>) => Volume): Volume {
    const snap = requireSnapshot(tx, snapRef);
    const name = checkName('volume', nameRaw);
    const source = tx.get<Volume>(Table.Volume, snap.volumeId);
    invariant(source !== undefined, `snapshot ${snap.id} outlives no volume (deleting a volume with snapshots is refused)`);
    const created = createVolume({
      name, type: source.type, size: snap.sizeBytes, storageClass: source.storageClass, replicas: source.replicas,
      accessMode: source.accessMode, labels: source.labels, blockSize: snap.blockSizeBytes,
      // Its own writes are sealed with its own data key (wrapped by the daemon, as for volume create).
      ...(dataKeyRaw === undefined || dataKeyRaw === null ? {} : { dataKey: dataKeyRaw }),
    });
    const clone: Volume = { ...created, parent: { volumeId: source.id, snapshotId: snap.id, cut: snap.cut }, updatedAtMs: ctx.stampMs };
    tx.put(Table.Volume, clone.id, clone);
    return clone;
  },

  restoreVolume(tx: Tx, ctx: Ctx, [volRef, snapRef]: unknown[]): Volume {
    const vol = requireVolume(tx, volRef);
    const snap = requireSnapshot(tx, snapRef);
    if (snap.volumeId !== vol.id) {
      throw invalidArgument(`snapshot ${snap.name} is of volume ${snap.volumeName}, not ${vol.name}`,
        `restore it into a new volume instead: galleon volume clone ${snap.name} --name NEW`);
    }
    const writers = leasesOn(tx, 'mount', vol.id).filter((l: Lease) => l.mode === 'rw' && isLive(l, ctx.stampMs));
    if (writers.length > 0) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${vol.name} is mounted read-write by ${writers.map((l) => l.holder).join(', ')}`,
        { hint: `unmount it first (galleon vfs unmount ${vol.name}), then restore` });
    }
    // Snapshots cover blocks, not yet the file tree: rolling back the blocks of a volume holding
    // files under its current tree would pair old file data with new names and sizes.
    const ns = nsRecordOf(tx, vol);
    if (ns.inodes > 1) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${vol.name} holds ${ns.inodes - 1} file(s) or directories; a restore would roll back their blocks but not the file tree (namespace snapshots are not built yet)`,
        { hint: `clone the snapshot into a new volume instead: galleon volume clone ${snap.name} --name NEW` });
    }
    const atEpoch = fenceVolume(tx, vol);
    const next: Volume = {
      ...vol, restores: [...(vol.restores ?? []), { atEpoch, cut: snap.cut, snapshotId: snap.id }], updatedAtMs: ctx.stampMs, version: vol.version + 1,
    };
    tx.put(Table.Volume, vol.id, next);
    return next;
  },
};

/** Refuses deleting a volume that still has snapshots (its data nodes would drop their versions). */
export function checkNoSnapshots(r: StateReader, vol: Volume): void {
  const snaps = snapshotsOf(r, vol.id);
  if (snaps.length === 0) return;
  throw new GalleonError(ErrorCode.SNAPSHOT_IN_USE, `volume ${vol.name} has ${snaps.length} snapshot(s): ${snaps.slice(0, 5).map((s) => s.name).join(', ')}`,
    { hint: 'delete them first: galleon snapshot delete NAME', details: { snapshots: snaps.map((s) => s.name) } });
}

export const snapshotQueries = {
  listSnapshots: (r: StateReader, [volRef]: unknown[]): Snapshot[] => {
    if (volRef === undefined || volRef === null) return listOf<Snapshot>(r, Table.Snapshot).sort((a, b) => (a.volumeName < b.volumeName ? -1 : a.volumeName > b.volumeName ? 1 : a.cut - b.cut));
    return snapshotsOf(r, requireVolume(r, volRef).id);
  },
  getSnapshot: (r: StateReader, [ref]: unknown[]): Snapshot => {
    const s = requireSnapshot(r, ref);
    return { ...s, clones: clonesOf(r, s.id) };
  },
};

