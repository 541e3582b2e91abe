/**
 * Departed copies of a PG (issue #13's hand-back gap after a tombstone purge; dataplane/server/
 * README.md, "Hand-back"). A node taken out of a PG's replica set keeps its copy on disk until it
 * hands it back to the new primary and drops it; the primary compares each handed-back block with
 * its own newest entry, a tombstone included. A tombstone purged before that compare lets the
 * deleted block come back. So the placement records, per PG, the nodes that left with a copy and
 * the epoch they left at (`PlacementGroup.departed`), from the placement change that removed them
 * until the node reports the copy gone (`departedCopyGone`: handed back and dropped, or never
 * held), and the data nodes' tombstone purge keeps every tombstone of a PG while it has any.
 * The obligation of Cassandra's gc_grace_seconds, without a clock.
 */
import type { PlacementGroup } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import { placementOf, requireGroup } from './lookup.js';
import { writePlacement } from './placement-store.js';
import type { Tx } from './tx.js';
import { checkInt, checkNodeId } from './validate.js';

/**
 * `next` (a planned change of `before`) with the departed copies carried over and every replica
 * of `before` missing from `next` added at `next.epoch`. A node added back keeps its entry: its
 * old copy is still on disk until its rejoin hands it back and drops it. Pure.
 */
export function withDeparted(before: PlacementGroup, next: PlacementGroup): PlacementGroup {
  const departed: Record<string, number> = { ...(before.departed ?? {}), ...(next.departed ?? {}) };
  for (const id of before.replicas) if (!next.replicas.includes(id)) departed[id] = next.epoch;
  if (Object.keys(departed).length === 0) {
    const { departed: _none, ...rest } = next;
    return rest;
  }
  return { ...next, departed };
}

/** `pg` without `nodeId`'s departed entry when it left at or before `epoch`. Pure. */
export function withoutDeparted(pg: PlacementGroup, nodeId: string, epoch: number): PlacementGroup {
  const at = pg.departed?.[nodeId];
  if (at === undefined || at > epoch) return pg;
  const departed = { ...pg.departed };
  delete departed[nodeId];
  if (Object.keys(departed).length > 0) return { ...pg, departed };
  const { departed: _none, ...rest } = pg;
  return rest;
}

/**
 * departedCopyGone(volumeId, pg, nodeId, epoch): the node holds no copy of the PG from before
 * `epoch` any more (it handed it back and dropped it, or never had one). Clears its entry if it
 * left at or before `epoch`; idempotent; the epoch is not bumped (nothing about serving changes).
 */
export function departedCopyGone(tx: Tx, _ctx: CommandContext, [ref, pgRaw, nodeRaw, epochRaw]: unknown[]): PlacementGroup {
  const { vol, pgs, group } = requireGroup(tx, ref, pgRaw);
  const next = withoutDeparted(group, checkNodeId(nodeRaw), checkInt('epoch', epochRaw, 1, Number.MAX_SAFE_INTEGER));
  if (next !== group) writePlacement(tx, vol.id, pgs.map((p) => (p.pg === group.pg ? next : p)));
  return next;
}

/** `galleon node remove`: the node is gone for good, so are its copies (it must not come back with its old disk). */
export function forgetDepartedNode(tx: Tx, volumeIds: readonly string[], nodeId: string): void {
  for (const id of volumeIds) {
    const pgs = placementOf(tx, id);
    const next = pgs.map((p) => withoutDeparted(p, nodeId, Number.MAX_SAFE_INTEGER));
    if (next.some((p, j) => p !== pgs[j])) writePlacement(tx, id, next);
  }
}
