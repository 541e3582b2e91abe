/**
 * The data node's half of departed copies (metadata/state/logic/departed.ts; server/README.md,
 * "Hand-back"): the placement names, per PG, the nodes that left it and may still hold a copy.
 * Every node's tombstone purge keeps all tombstones of such a PG (`pgsWithDepartedCopies`, asked
 * by the reclaimer after its census), and a departed node reports its copy gone once it is
 * (`copyGone`, decided here, sent by the agent), which lets the purge go on.
 */
import type { MetadataApi, PlacementGroup } from '../../proto/metadata-types.js';

/** `volumeId/pg` of every PG with a departed copy (linearizable reads: nothing recorded before the census is missed). */
export async function pgsWithDepartedCopies(api: Pick<MetadataApi, 'listVolumes' | 'getPlacement'>): Promise<Set<string>> {
  const keep = new Set<string>();
  for (const v of await api.listVolumes()) {
    for (const g of await api.getPlacement(v.id)) {
      if (g.departed !== undefined && Object.keys(g.departed).length > 0) keep.add(`${v.id}/${g.pg}`);
    }
  }
  return keep;
}

/** What this node holds of a PG: nothing (`null`), or its store's epoch and whether a rejoin is replacing it. */
export interface LocalCopy { epoch: number; highestSeq: number; rejoining: boolean }

/**
 * Whether `me` may report its departed copy of `g` gone (pure): it left (`g.departed[me]`) and
 * holds nothing of the PG now — or it was added back after leaving and its store already holds
 * the new copy (epoch at or past its re-addition, no rejoin running), the old one dropped.
 */
export function copyGone(me: string, g: PlacementGroup, local: LocalCopy | null): boolean {
  const left = g.departed?.[me];
  if (left === undefined) return false;
  if (local === null || (local.highestSeq === 0 && !local.rejoining)) return true;
  const addedAt = g.addedAtEpoch?.[me];
  return g.replicas.includes(me) && addedAt !== undefined && addedAt > left && local.epoch >= addedAt && !local.rejoining;
}
