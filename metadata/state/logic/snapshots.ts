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
import type { Lease, PlacementGroup, Snapshot, SnapshotTreePage, Volume, VolumePrune } from '../../../proto/metadata-types.js';
import { leasesOn } from './lease-store.js';
import { isLive } from './leases.js';
import { listOf, placementOf, requireScopedVolume, requireVolume, scopeTenant } from './lookup.js';
import { ensureNs, freshNs, type NsVolume, type TreeWork } from './ns-store.js';
import { liveCuts } from './ns-tree-work.js';
import { readAt, startCursor, treePage, type TreeCursor } from './ns-versions.js';
import { attrOf, inodeId, maxReaddirLimit, rootIno, type DirEntry, type Inode } from './ns-store.js';
import { writePlacement } from './placement-store.js';
import { Table, type StateReader, type Tx } from './tx.js';
import { checkInt, checkName, invalidArgument, isRecord } from './validate.js';

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

/**
 * `scope` (a tenant's `TenantScope`, added by the auth guard): a snapshot of another tenant's
 * volume answers exactly as a missing one, in the same apply as the change it guards.
 */
export function requireSnapshot(r: StateReader, ref: unknown, scope?: unknown): Snapshot {
  if (typeof ref !== 'string' || ref.length === 0) throw invalidArgument('a snapshot name or id is required', snapshotHints.list);
  const s = findSnapshot(r, ref);
  const tenant = scopeTenant(scope);
  const hidden = s !== undefined && tenant !== null && r.get<Volume>(Table.Volume, s.volumeId)?.tenant !== tenant;
  if (s === undefined || hidden) throw new GalleonError(ErrorCode.SNAPSHOT_NOT_FOUND, `snapshot ${JSON.stringify(ref)} not found`, { hint: snapshotHints.list });
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

/**
 * One more prune request on the volume, in the command that leaves versions no cut needs (a
 * snapshot delete, an in-place restore): no window in which the versions are unneeded and nobody
 * is asked to free them. A round finishing later covers it only if it read this count first.
 */
function requestPrune(vol: Volume, stampMs: number): VolumePrune {
  const requested = (vol.prune?.requested ?? 0) + 1;
  invariant(requested > (vol.prune?.done ?? 0), 'a new prune request is above every finished one');
  return { requested, done: vol.prune?.done ?? 0, requestedAtMs: stampMs };
}

/** The highest prune request count a round can report (far above any real count; keeps ints exact). */
const maxPruneGen = Number.MAX_SAFE_INTEGER;

function snapshotsOf(r: StateReader, volumeId: string): Snapshot[] {
  return listOf<Snapshot>(r, Table.Snapshot).filter((s) => s.volumeId === volumeId).sort((a, b) => a.cut - b.cut || (a.id < b.id ? -1 : 1));
}

export const snapshotHandlers = {
  createSnapshot(tx: Tx, ctx: Ctx, [volRef, nameRaw, scope]: unknown[]): Snapshot {
    const vol = requireScopedVolume(tx, volRef, scope);
    const id = ctx.newId('snapshot');
    invariant(tx.get(Table.Snapshot, id) === undefined, `derived snapshot id ${id} already exists`);
    const name = nameRaw === undefined || nameRaw === null ? `${vol.name.slice(0, 40)}-snap-${id.slice(0, 8)}` : checkName('snapshot', nameRaw);
    if (findSnapshot(tx, name) !== undefined) {
      throw new GalleonError(ErrorCode.SNAPSHOT_EXISTS, `snapshot ${name} already exists`, { hint: `choose another --name, or see it with: galleon snapshot get ${name}` });
    }
    refuseWhileTreeWork(vol, 'snapshot');
    const cut = fenceVolume(tx, vol);
    // The file tree joins the cut by raising the volume's generation: no inode or entry is written.
    const ns = ensureNs(tx, vol);
    tx.put(Table.NsVolume, vol.id, { ...ns, snapGen: cut } satisfies NsVolume);
    const snap: Snapshot = {
      id, name, volumeId: vol.id, volumeName: vol.name, cut, sizeBytes: vol.sizeBytes, blockSizeBytes: vol.blockSizeBytes, createdAtMs: ctx.stampMs,
      fileTree: { inodes: ns.inodes, usedBytes: ns.usedBytes, nextIno: ns.nextIno },
    };
    tx.put(Table.Snapshot, id, snap);
    tx.put(Table.SnapshotName, name, id);
    return snap;
  },

  deleteSnapshot(tx: Tx, ctx: Ctx, [ref, scope]: unknown[]): Snapshot {
    const snap = requireSnapshot(tx, ref, scope);
    const clones = clonesOf(tx, snap.id);
    if (clones.length > 0) {
      throw new GalleonError(ErrorCode.SNAPSHOT_IN_USE, `snapshot ${snap.name} has ${clones.length} clone(s) reading through it: ${clones.slice(0, 5).join(', ')}`,
        { hint: 'delete those clones first (galleon volume delete NAME)', details: { clones } });
    }
    const ns = tx.get<NsVolume>(Table.NsVolume, snap.volumeId);
    if (ns?.work?.snapshotId === snap.id) {
      throw new GalleonError(ErrorCode.SNAPSHOT_IN_USE, `snapshot ${snap.name} is being restored into volume ${snap.volumeName}`,
        { hint: `wait until galleon volume get ${snap.volumeName} no longer shows treeState, then delete it` });
    }
    tx.del(Table.Snapshot, snap.id);
    tx.del(Table.SnapshotName, snap.name);
    const vol = tx.get<Volume>(Table.Volume, snap.volumeId);
    invariant(vol !== undefined, `snapshot ${snap.id} outlives no volume (deleting a volume with snapshots is refused)`);
    tx.put(Table.Volume, vol.id, { ...vol, prune: requestPrune(vol, ctx.stampMs), updatedAtMs: ctx.stampMs, version: vol.version + 1 } satisfies Volume);
    if (ns !== undefined) {
      // Writes from now on need versions only for the newest snapshot left; the rest go in paced steps.
      const { snapGen: _old, ...rest } = ns;
      const newest = liveCuts(tx, snap.volumeId).at(-1);
      tx.put(Table.NsVolume, snap.volumeId, { ...rest, ...(newest === undefined ? {} : { snapGen: newest }), gc: { after: '' } } satisfies NsVolume);
    }
    return snap;
  },

  /** The spec of the source volume, a new name, and `parent`: the new volume's own PGs start empty. */
  cloneVolume(tx: Tx, ctx: Ctx, [snapRef, nameRaw, dataKeyRaw, scope]: unknown[], createVolume: (spec: Record<string, unknown>) => Volume): Volume {
    const snap = requireSnapshot(tx, snapRef, scope);
    const name = checkName('volume', nameRaw);
    const source = tx.get<Volume>(Table.Volume, snap.volumeId);
    invariant(source !== undefined, `snapshot ${snap.id} outlives no volume (deleting a volume with snapshots is refused)`);
    const created = createVolume({
      name, type: source.type, size: snap.sizeBytes, storageClass: source.storageClass, replicas: source.replicas,
      accessMode: source.accessMode, labels: source.labels, blockSize: snap.blockSizeBytes,
      // A clone belongs to its source's tenant (issue #12): whoever made it, it holds that tenant's data.
      ...(source.tenant === undefined ? {} : { tenant: source.tenant }),
      // Its own writes are sealed with its own data key (wrapped by the daemon, as for volume create).
      ...(dataKeyRaw === undefined || dataKeyRaw === null ? {} : { dataKey: dataKeyRaw }),
    });
    const tree = snap.fileTree;
    const paced = tree !== undefined && !rootOnly(tx, source.id, created.id, snap);
    const clone: Volume = {
      ...created, parent: { volumeId: source.id, snapshotId: snap.id, cut: snap.cut }, updatedAtMs: ctx.stampMs,
      ...(paced ? { treeState: 'copying' as const } : {}),
    };
    tx.put(Table.Volume, clone.id, clone);
    if (paced) {
      const work: TreeWork = { kind: 'copy', from: source.id, cut: snap.cut, snapshotId: snap.id, cursor: startCursor() };
      tx.put(Table.NsVolume, clone.id, { ...freshNs(), nextIno: tree.nextIno, work } satisfies NsVolume);
    }
    return clone;
  },

  restoreVolume(tx: Tx, ctx: Ctx, [volRef, snapRef, scope]: unknown[]): Volume {
    const vol = requireScopedVolume(tx, volRef, scope);
    const snap = requireSnapshot(tx, snapRef, scope);
    if (snap.volumeId !== vol.id) {
      throw invalidArgument(`snapshot ${snap.name} is of volume ${snap.volumeName}, not ${vol.name}`,
        `restore it into a new volume instead: galleon volume clone ${snap.name} --name NEW`);
    }
    // Read-only mounts too: their caches and open files would see the tree change under them.
    const mounts = leasesOn(tx, 'mount', vol.id).filter((l: Lease) => isLive(l, ctx.stampMs));
    if (mounts.length > 0) {
      const where = mounts.map((l) => `${l.holder} (${l.mode === 'rw' ? 'read-write' : 'read-only'})`).sort();
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${vol.name} is mounted by ${where.join(', ')}`,
        { hint: `unmount it on each of them first (galleon volume unmount ${vol.name} --daemon-address <that node>), then restore`, details: { mounts: where } });
    }
    refuseWhileTreeWork(vol, 'restore');
    const atEpoch = fenceVolume(tx, vol);
    // The file tree rolls back with the blocks, in paced steps (ns-tree-work.ts); not mountable until then.
    const ns = ensureNs(tx, vol);
    const paced = ns.inodes > 1 || !rootOnly(tx, vol.id, vol.id, snap);
    if (paced) {
      const work: TreeWork = { kind: 'restore', from: vol.id, cut: snap.cut, snapshotId: snap.id, cursor: startCursor() };
      tx.put(Table.NsVolume, vol.id, { ...ns, work } satisfies NsVolume);
    }
    const next: Volume = {
      ...vol, restores: [...(vol.restores ?? []), { atEpoch, cut: snap.cut, snapshotId: snap.id }], updatedAtMs: ctx.stampMs, version: vol.version + 1,
      // What the volume held above the cut is hidden from now on: versions to free.
      prune: requestPrune(vol, ctx.stampMs),
      ...(paced ? { treeState: 'restoring' as const } : {}),
    };
    tx.put(Table.Volume, vol.id, next);
    return next;
  },

  /**
   * finishVolumePrune(volumeId, gen): a round that read `prune.requested` = gen before its cut list
   * finished on every data node. `done` only moves up: a round from before a newer request (a
   * smaller gen) cannot mark that request done, and a repeated finish changes nothing.
   */
  finishVolumePrune(tx: Tx, ctx: Ctx, [ref, genRaw]: unknown[]): Volume {
    const vol = requireVolume(tx, ref);
    const gen = checkInt('prune round', genRaw, 1, maxPruneGen);
    const prune = vol.prune;
    if (prune === undefined || gen > prune.requested) {
      throw invalidArgument(`volume ${vol.name} has no prune request ${gen} (requested so far: ${prune?.requested ?? 0})`, 'pass the prune.requested the round read before its cut list');
    }
    if (gen <= prune.done) return vol;
    const next: Volume = { ...vol, prune: { ...prune, done: gen }, updatedAtMs: ctx.stampMs, version: vol.version + 1 };
    tx.put(Table.Volume, vol.id, next);
    return next;
  },
};

const cursorHint = 'start with null and pass back the cursor the previous page returned';

function parseTreeCursor(raw: unknown): TreeCursor {
  if (raw === null || raw === undefined) return startCursor();
  let c: unknown;
  try {
    c = typeof raw === 'string' ? JSON.parse(raw) : undefined;
  } catch {
    c = undefined;
  }
  if (!isRecord(c) || ![0, 1, 2].includes(c.phase as number) || typeof c.after !== 'string'
    || (c.lastKey !== undefined && typeof c.lastKey !== 'string') || (c.lastGen !== undefined && !Number.isSafeInteger(c.lastGen))) {
    throw invalidArgument('a snapshot tree cursor is null or the string the previous page returned', cursorHint);
  }
  return c as unknown as TreeCursor;
}

/**
 * A tree of nothing but its root at the cut (a raw volume's, or an unused file system's) is
 * written at once: `to` gets the root as it was, and no paced work is needed. False otherwise.
 */
function rootOnly(tx: Tx, from: string, to: string, snap: Snapshot): boolean {
  if (snap.fileTree === undefined || snap.fileTree.inodes > 1) return false;
  const root = readAt(tx, Table.NsInode, inodeId(from, rootIno), snap.cut);
  if (root !== undefined) tx.put(Table.NsInode, inodeId(to, rootIno), root);
  return true;
}

/** A tree being copied or rolled back is incomplete: no snapshot, restore or mount of it until done. */
export function refuseWhileTreeWork(vol: Volume, what: string): void {
  if (vol.treeState === undefined) return;
  throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${vol.name}'s file tree is still ${vol.treeState === 'copying' ? 'being copied from its parent snapshot' : 'being restored'}; no ${what} until it is done`,
    { hint: `wait until galleon volume get ${vol.name} no longer shows treeState ${vol.treeState}` });
}

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
  getSnapshotTree: (r: StateReader, [ref, cursorRaw, limitRaw]: unknown[]): SnapshotTreePage => {
    const s = requireSnapshot(r, ref);
    const limit = checkInt('limit', limitRaw, 1, maxReaddirLimit);
    const { rows, next } = treePage(r, s.volumeId, s.cut, parseTreeCursor(cursorRaw), limit);
    const page: SnapshotTreePage = { inodes: [], entries: [], cursor: next === null ? null : JSON.stringify(next) };
    for (const row of rows) {
      if (row.value === undefined) continue;
      if (row.table === Table.NsInode) {
        const inode = row.value as unknown as Inode;
        page.inodes.push({ attr: attrOf(inode), ...(inode.target === undefined ? {} : { target: inode.target }), ...(inode.xattrs === undefined ? {} : { xattrs: inode.xattrs }) });
      } else {
        const e = row.value as unknown as DirEntry;
        const rest = row.id.slice(row.id.indexOf('/') + 1);
        page.entries.push({ parent: parseInt(rest.slice(0, 16), 16), name: rest.slice(17), ino: e.ino, type: e.type });
      }
    }
    return page;
  },
};

