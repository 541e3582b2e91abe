/**
 * Who may serve a PG, beyond the replica set: the two commands a PG's primary sends itself.
 *
 *  - `claimPgPrimary`: a primary process takes its epoch before it assigns its first seq. The
 *    first claim of an epoch keeps it; a second claim of the same epoch (the primary restarted and
 *    lost what it had assigned but not stored) moves the PG to epoch + 1, so every incarnation of
 *    a primary orders its writes under an epoch of its own.
 *  - `markPgReplicaOutOfSync`: a replica failed a write the primary assigned: it leaves the PG's
 *    in-sync set (never named primary while out) and may rejoin (`markPgReplicaInSync`) only once
 *    its reported applied seq at the current epoch reaches the floor recorded here — the highest
 *    seq the primary had assigned when it asked.
 *
 * Floors and claims live in `ps/<volumeId>/<pg>`; floors of an older epoch mean nothing (a new
 * primary peered and caught its replicas up since) and are dropped on the next change.
 */
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import type { PgReport, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import { placementOf, requireGroup } from './lookup.js';
import { writePlacement } from './placement-store.js';
import { Table, type StateReader, type Tx } from './tx.js';
import { checkInt, checkNodeId } from './validate.js';

export interface PgSyncRecord {
  /** The epoch a primary process last claimed (0: none yet). */
  claimedEpoch: number;
  /** The epoch `floors` belong to. */
  floorEpoch: number;
  /** Replica id -> the applied seq it must report (at `floorEpoch`) before it is in sync again. */
  floors: Record<string, number>;
}

const emptyRecord: PgSyncRecord = { claimedEpoch: 0, floorEpoch: 0, floors: {} };

function syncKey(volumeId: string, pg: number): string {
  return `${volumeId}/${pg}`;
}

export function pgSyncOf(r: StateReader, volumeId: string, pg: number): PgSyncRecord {
  return r.get<PgSyncRecord>(Table.PgSync, syncKey(volumeId, pg)) ?? emptyRecord;
}

/** The catch-up floor of `nodeId` at the PG's current epoch (0 when none). */
export function catchUpFloor(r: StateReader, group: PlacementGroup, nodeId: string): number {
  const rec = pgSyncOf(r, group.volumeId, group.pg);
  return rec.floorEpoch === group.epoch ? rec.floors[nodeId] ?? 0 : 0;
}

/** Every recorded floor at its PG's current epoch, for the controller. */
export function listCatchUpFloors(r: StateReader): { volumeId: string; pg: number; epoch: number; nodeId: string; seq: number }[] {
  const out: { volumeId: string; pg: number; epoch: number; nodeId: string; seq: number }[] = [];
  for (const id of r.ids(Table.PgSync)) {
    const rec = r.get<PgSyncRecord>(Table.PgSync, id);
    const slash = id.lastIndexOf('/');
    const volumeId = id.slice(0, slash);
    const group = placementOf(r, volumeId).find((g) => String(g.pg) === id.slice(slash + 1));
    if (rec === undefined || group === undefined || rec.floorEpoch !== group.epoch) continue;
    for (const [nodeId, seq] of Object.entries(rec.floors)) out.push({ volumeId, pg: group.pg, epoch: group.epoch, nodeId, seq });
  }
  return out;
}

function putRecord(tx: Tx, volumeId: string, pg: number, rec: PgSyncRecord): void {
  if (rec.claimedEpoch === 0 && Object.keys(rec.floors).length === 0) tx.del(Table.PgSync, syncKey(volumeId, pg));
  else tx.put(Table.PgSync, syncKey(volumeId, pg), rec);
}

/** Drops a replica's floor once it is in sync again (the record of an older epoch goes too). */
export function clearCatchUpFloor(tx: Tx, group: PlacementGroup, nodeId: string): void {
  const rec = pgSyncOf(tx, group.volumeId, group.pg);
  const floors = rec.floorEpoch === group.epoch ? { ...rec.floors } : {};
  delete floors[nodeId];
  putRecord(tx, group.volumeId, group.pg, { ...rec, floorEpoch: group.epoch, floors });
}

/** Deleting a volume: its records go with it. */
export function deletePgSync(tx: Tx, vol: Volume): void {
  for (let pg = 0; pg < vol.pgCount; pg += 1) tx.del(Table.PgSync, syncKey(vol.id, pg));
}

/** The report of `nodeId` on the PG, or undefined. */
export function reportOf(r: StateReader, nodeId: string, volumeId: string, pg: number): PgReport | undefined {
  return (r.get<PgReport[]>(Table.PgReports, nodeId) ?? []).find((x) => x.volumeId === volumeId && x.pg === pg);
}


/** Fencing: `nodeId` must be the PG's primary at exactly `epoch`. `hint` says what only a primary may do. */
export function requirePrimaryAt(group: PlacementGroup, nodeId: string, epoch: number, hint = 'only the PG\'s primary may do this; refresh the placement'): void {
  const resource = `${group.volumeId}/${group.pg}`;
  if (group.epoch !== epoch) {
    throw new GalleonError(ErrorCode.STALE_EPOCH, `placement group ${resource} is at epoch ${group.epoch}, not ${epoch}`, {
      hint: 'refresh the placement from the metadata service', details: { epoch: group.epoch },
    });
  }
  if (group.primary !== nodeId) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `${nodeId} is not the primary of ${resource} (${group.primary} is)`, {
      hint, details: { primary: group.primary, epoch: group.epoch },
    });
  }
}

/**
 * A primary that is not in sync (it registered with a wiped store and no in-sync replica was up to
 * take over: pg-safety.ts) holds nothing promised: it may neither claim its epoch nor judge replicas.
 */
function requireInSyncPrimary(group: PlacementGroup, nodeId: string): void {
  if (group.inSync.includes(nodeId)) return;
  throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `${nodeId} is the primary of ${group.volumeId}/${group.pg} but not in sync (its store was wiped)`, {
    hint: 'the PG moves to an in-sync replica once one is up; until then it is unavailable', details: { primary: group.primary, epoch: group.epoch },
  });
}

type Handler = (tx: Tx, ctx: { stampMs: number }, args: unknown[]) => unknown;

export const pgSyncHandlers: Record<string, Handler> = {
  claimPgPrimary(tx, _ctx, [ref, pgRaw, nodeRaw, epochRaw]) {
    const { vol, pgs, group } = requireGroup(tx, ref, pgRaw);
    const nodeId = checkNodeId(nodeRaw);
    requirePrimaryAt(group, nodeId, checkInt('epoch', epochRaw, 1, Number.MAX_SAFE_INTEGER));
    requireInSyncPrimary(group, nodeId);
    const rec = pgSyncOf(tx, vol.id, group.pg);
    if (rec.claimedEpoch !== group.epoch) {
      putRecord(tx, vol.id, group.pg, { ...rec, claimedEpoch: group.epoch });
      return group;
    }
    // Claimed before: an earlier process of this primary may have assigned seqs it never stored.
    const next: PlacementGroup = { ...group, epoch: group.epoch + 1 };
    writePlacement(tx, vol.id, pgs.map((p) => (p.pg === group.pg ? next : p)));
    putRecord(tx, vol.id, group.pg, { claimedEpoch: next.epoch, floorEpoch: next.epoch, floors: rec.floorEpoch === group.epoch ? rec.floors : {} });
    return next;
  },

  markPgReplicaOutOfSync(tx, ctx, [ref, pgRaw, nodeRaw, epochRaw, primaryRaw, uptoRaw]) {
    const { vol, pgs, group } = requireGroup(tx, ref, pgRaw);
    const nodeId = checkNodeId(nodeRaw);
    const primary = checkNodeId(primaryRaw);
    requirePrimaryAt(group, primary, checkInt('epoch', epochRaw, 1, Number.MAX_SAFE_INTEGER));
    requireInSyncPrimary(group, primary);
    const upto = checkInt('uptoSeq', uptoRaw, 0, Number.MAX_SAFE_INTEGER);
    if (nodeId === primary) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `the primary ${primary} of ${vol.id}/${group.pg} cannot mark itself out of sync`,
        { hint: 'a primary stays in sync: it holds every write it acknowledged' });
    }
    // Already replaced: nothing to do (the replica set changed under the caller).
    if (!group.replicas.includes(nodeId)) return group;
    const rec = pgSyncOf(tx, vol.id, group.pg);
    const floors = rec.floorEpoch === group.epoch ? { ...rec.floors } : {};
    floors[nodeId] = Math.max(floors[nodeId] ?? 0, upto);
    putRecord(tx, vol.id, group.pg, { ...rec, floorEpoch: group.epoch, floors });
    if (!group.inSync.includes(nodeId)) return group;
    const next: PlacementGroup = { ...group, inSync: group.inSync.filter((id) => id !== nodeId) };
    invariant(next.inSync.includes(primary), `primary ${primary} of ${vol.id}/${group.pg} is not in its own in-sync set`);
    writePlacement(tx, vol.id, pgs.map((p) => (p.pg === group.pg ? next : p)));
    if (vol.state === 'available') {
      tx.put(Table.Volume, vol.id, { ...vol, state: 'degraded', updatedAtMs: ctx.stampMs, version: vol.version + 1 } satisfies Volume);
    }
    return next;
  },
};
