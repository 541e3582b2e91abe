/**
 * Who may serve a PG's data, decided from what the service heard and when (issue #13: three rules
 * the data-plane simulator found unsafe, and lease refusal for stale nodes). Pure: "now" is the
 * command's leader stamp, so every replica decides the same.
 *
 *  - Promotion: only a replica heard from lately (`isFresh`) may become primary. A node that is
 *    merely not marked down yet may have been wiped (simulator seed 107: a wiped node, still `up`
 *    and in sync, was promoted when the only other holder was marked down first).
 *  - A wiped node (its registration says `emptyStore`) leaves every in-sync set (`withoutInSync`),
 *    and a PG whose primary is not in sync moves to an in-sync replica once one is fresh
 *    (`planPrimaryMoves`; simulator seed 82: a wiped primary came back and served empty).
 *  - In sync again only against a primary report at the PG's current epoch, from a primary that
 *    is in sync itself (`resyncVerdict`; simulator seed 103: a replacement was counted in sync
 *    against the primary's report from before it was added).
 *  - A pg-primary lease only for a registered, up, fresh-enough node that is the PG's in-sync
 *    primary (`leaseRefusal`).
 */
import { defaultHeartbeatIntervalMs } from '../../../proto/limits.js';
import type { DataNode, PgReport, PlacementGroup } from '../../../proto/metadata-types.js';
import { compareIds } from './tx.js';

export type HeardNode = Pick<DataNode, 'id' | 'state' | 'lastHeartbeatAtMs'>;

/** A node heard from within this many of its heartbeat intervals counts as serving now. */
export const freshHeartbeatIntervals = 2;
/** Leases tolerate a slower heartbeat than promotion (a late beat under load must not cost a primary its lease). */
export const leaseHeartbeatIntervals = 4;
/** ...and never less than this, whatever the interval. */
export const minLeaseHeartbeatAgeMs = 2_000;

/** The node's heartbeat interval as it registered it (older registrations: the default). */
export function heartbeatIntervalOf(node: Pick<DataNode, 'heartbeatIntervalMs'>): number {
  return node.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs;
}

/** Up and heard from within `freshHeartbeatIntervals` heartbeat intervals of `nowMs`. */
export function isFresh(node: HeardNode & Pick<DataNode, 'heartbeatIntervalMs'>, nowMs: number): boolean {
  return node.state === 'up' && nowMs - node.lastHeartbeatAtMs <= freshHeartbeatIntervals * heartbeatIntervalOf(node);
}

/** How old a heartbeat may be for the node to get or renew a pg-primary lease. */
export function leaseHeartbeatAgeMs(node: Pick<DataNode, 'heartbeatIntervalMs'>): number {
  return Math.max(minLeaseHeartbeatAgeMs, leaseHeartbeatIntervals * heartbeatIntervalOf(node));
}

/** Nodes that may be promoted at `nowMs`. */
export function promotableNodes(nodes: readonly (HeardNode & Pick<DataNode, 'heartbeatIntervalMs'>)[], nowMs: number): Set<string> {
  return new Set(nodes.filter((n) => isFresh(n, nowMs)).map((n) => n.id));
}

/** The PG without `nodeId` in its in-sync set (same object when it was not there). */
export function withoutInSync(pg: PlacementGroup, nodeId: string): PlacementGroup {
  return pg.inSync.includes(nodeId) ? { ...pg, inSync: pg.inSync.filter((id) => id !== nodeId) } : pg;
}

/**
 * PGs whose primary is up but not in sync (it registered with a wiped store) move to their first
 * in-sync replica that is promotable, epoch + 1; the old primary stays a replica (empty, it
 * resyncs). PGs whose primary is down are planNodeDown's. In id order, PGs by number.
 */
export function planPrimaryMoves(pgs: readonly PlacementGroup[], nodes: readonly (HeardNode & Pick<DataNode, 'heartbeatIntervalMs'>)[], nowMs: number): PlacementGroup[] {
  const up = new Set(nodes.filter((n) => n.state === 'up').map((n) => n.id));
  const promotable = promotableNodes(nodes, nowMs);
  const ordered = [...pgs].sort((a, b) => compareIds(a.volumeId, b.volumeId) || a.pg - b.pg);
  const changed: PlacementGroup[] = [];
  for (const pg of ordered) {
    if (!up.has(pg.primary) || pg.inSync.includes(pg.primary)) continue;
    const next = pg.replicas.find((id) => id !== pg.primary && pg.inSync.includes(id) && promotable.has(id));
    if (next === undefined) continue;
    changed.push({ ...pg, primary: next, epoch: pg.epoch + 1 });
  }
  return changed;
}

export type ResyncVerdict = { ok: true } | { ok: false; why: string };

/**
 * Whether `nodeId` (a replica outside the in-sync set) has caught up: its report is at the PG's
 * epoch and reaches both its catch-up floor and the applied seq the primary reports at that
 * epoch; the primary must be in sync itself (an empty primary proves nothing).
 */
export function resyncVerdict(pg: PlacementGroup, nodeId: string, mine: PgReport | undefined, primary: PgReport | undefined, floor: number): ResyncVerdict {
  if (!pg.inSync.includes(pg.primary)) return { ok: false, why: `its primary ${pg.primary} is not in sync itself` };
  if (primary?.epoch !== pg.epoch) return { ok: false, why: `its primary ${pg.primary} has not reported at epoch ${pg.epoch} yet (last at ${primary?.epoch ?? 0})` };
  if (mine?.epoch !== pg.epoch) return { ok: false, why: `${nodeId} reports epoch ${mine?.epoch ?? 0}, not ${pg.epoch}` };
  const needed = Math.max(floor, primary.appliedSeq);
  if (mine.appliedSeq < needed) return { ok: false, why: `${nodeId} reports seq ${mine.appliedSeq}, needs ${needed}` };
  return { ok: true };
}

/** Why `holder` may not get or renew the pg-primary lease of `pg` at `nowMs`, or null when it may. */
export function leaseRefusal(pg: PlacementGroup, holder: string, node: (HeardNode & Pick<DataNode, 'heartbeatIntervalMs'>) | undefined, nowMs: number): string | null {
  if (node === undefined) return `${holder} is not a registered data node`;
  if (node.state !== 'up') return `data node ${holder} is marked ${node.state}`;
  const age = nowMs - node.lastHeartbeatAtMs;
  if (age > leaseHeartbeatAgeMs(node)) return `data node ${holder} was last heard from ${age} ms ago (a lease needs a heartbeat within ${leaseHeartbeatAgeMs(node)} ms)`;
  if (pg.primary === holder && !pg.inSync.includes(holder)) return `${holder} is the primary of ${pg.volumeId}/${pg.pg} but not in sync (its store was wiped)`;
  return null;
}
