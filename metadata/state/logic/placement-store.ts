/**
 * Every write of a volume's placement goes through here, so the per-node load table (`nl/<nodeId>`:
 * PGs and primaries a node holds) stays exactly the sum over all placements. Placing a volume
 * then reads one entry per node instead of every PG of every volume.
 */
import { invariant } from '../../../proto/errors.js';
import type { PlacementGroup } from '../../../proto/metadata-types.js';
import { placementOf } from './lookup.js';
import { emptyLoad, type Load } from './placement.js';
import { Table, type StateReader, type Tx } from './tx.js';

interface NodeLoad {
  pgs: number;
  primaries: number;
}

/** Replaces the placement of `volumeId` (null deletes it) and moves the node loads with it. */
export function writePlacement(tx: Tx, volumeId: string, pgs: PlacementGroup[] | null): void {
  const delta = new Map<string, NodeLoad>();
  const bump = (id: string, pgsBy: number, primariesBy: number): void => {
    const d = delta.get(id) ?? { pgs: 0, primaries: 0 };
    delta.set(id, { pgs: d.pgs + pgsBy, primaries: d.primaries + primariesBy });
  };
  for (const pg of placementOf(tx, volumeId)) {
    for (const id of pg.replicas) bump(id, -1, 0);
    bump(pg.primary, 0, -1);
  }
  for (const pg of pgs ?? []) {
    for (const id of pg.replicas) bump(id, 1, 0);
    bump(pg.primary, 0, 1);
  }
  for (const id of [...delta.keys()].sort()) {
    const d = delta.get(id) as NodeLoad;
    if (d.pgs === 0 && d.primaries === 0) continue;
    const cur = tx.get<NodeLoad>(Table.NodeLoad, id) ?? { pgs: 0, primaries: 0 };
    const next = { pgs: cur.pgs + d.pgs, primaries: cur.primaries + d.primaries };
    invariant(next.pgs >= 0 && next.primaries >= 0, `load of node ${id} would go negative`);
    if (next.pgs === 0 && next.primaries === 0) tx.del(Table.NodeLoad, id);
    else tx.put(Table.NodeLoad, id, next);
  }
  if (pgs === null) tx.del(Table.Placement, volumeId);
  else tx.put(Table.Placement, volumeId, pgs);
}

/** The load table as placement's Load. */
export function currentLoad(r: StateReader): Load {
  const load = emptyLoad();
  for (const id of r.ids(Table.NodeLoad)) {
    const l = r.get<NodeLoad>(Table.NodeLoad, id);
    if (l === undefined) continue;
    if (l.pgs > 0) load.pgs.set(id, l.pgs);
    if (l.primaries > 0) load.primaries.set(id, l.primaries);
  }
  return load;
}
