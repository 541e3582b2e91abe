/**
 * Where placement groups live. Pure and deterministic: the same nodes, loads and request give
 * the same answer on every replica (ties broken by node id, never by chance or iteration order).
 *
 * A PG's replicas are picked one at a time, greedily:
 * - only `up` nodes not already in the set are candidates;
 * - with zone spread, nodes in a zone the set does not use yet come first (`prefer` falls back
 *   to any node when no new zone is left; `require` stops, leaving the set short);
 * - among those, the least loaded: fewest PGs, then most free bytes, then smallest id. The first
 *   replica (the primary) is chosen by fewest primaries first, so primaries spread too.
 */
import type { DataNode, PlacementGroup, ZoneSpread } from '../../../proto/metadata-types.js';
import { compareIds } from './tx.js';

/** Every volume is split into this many placement groups, whatever its size: a fixed count keeps
 * `pg = hash(...) mod pgCount` stable when a volume grows, and 16 spreads a volume over 16 primaries. */
export const pgsPerVolume = 16;

export type PlacementNode = Pick<DataNode, 'id' | 'zone' | 'capacityBytes' | 'usedBytes' | 'state'>;

/** PGs and primaries per node: what "balanced" is measured in. */
export interface Load {
  pgs: Map<string, number>;
  primaries: Map<string, number>;
}

export function emptyLoad(): Load {
  return { pgs: new Map(), primaries: new Map() };
}

export function loadOf(pgs: Iterable<PlacementGroup>): Load {
  const load = emptyLoad();
  for (const pg of pgs) addToLoad(load, pg.replicas, pg.primary);
  return load;
}

export function addToLoad(load: Load, replicas: readonly string[], primary: string | null): void {
  for (const id of replicas) load.pgs.set(id, (load.pgs.get(id) ?? 0) + 1);
  if (primary !== null) load.primaries.set(primary, (load.primaries.get(primary) ?? 0) + 1);
}

export interface ChooseRequest {
  nodes: readonly PlacementNode[];
  load: Load;
  count: number;
  zoneSpread: ZoneSpread;
  /** Replicas the set already has (kept; their zones count as used). */
  existing?: readonly string[];
  /** Nodes that must not be picked (e.g. the node that just went down). */
  exclude?: ReadonlySet<string>;
  /** Pick the first new replica as a primary (by fewest primaries first). */
  firstIsPrimary?: boolean;
}

/** Up to `count` new replica ids, in pick order. Fewer when the nodes (or zones) run out. */
export function chooseReplicas(req: ChooseRequest): string[] {
  const byId = new Map(req.nodes.map((n) => [n.id, n]));
  const taken = new Set<string>([...(req.existing ?? []), ...(req.exclude ?? [])]);
  const usedZones = new Set<string>();
  for (const id of req.existing ?? []) {
    const zone = byId.get(id)?.zone;
    if (zone !== undefined) usedZones.add(zone);
  }
  const picked: string[] = [];
  while (picked.length < req.count) {
    const candidates = req.nodes.filter((n) => n.state === 'up' && !taken.has(n.id));
    let pool = candidates;
    if (req.zoneSpread !== 'none') {
      const fresh = candidates.filter((n) => !usedZones.has(n.zone));
      if (fresh.length > 0 || req.zoneSpread === 'require') pool = fresh;
    }
    const asPrimary = req.firstIsPrimary === true && picked.length === 0;
    const best = pool.reduce<PlacementNode | undefined>((a, b) => (a === undefined || lessLoaded(b, a, req.load, asPrimary) ? b : a), undefined);
    if (best === undefined) break;
    picked.push(best.id);
    taken.add(best.id);
    usedZones.add(best.zone);
  }
  return picked;
}

function lessLoaded(a: PlacementNode, b: PlacementNode, load: Load, asPrimary: boolean): boolean {
  if (asPrimary) {
    const pa = load.primaries.get(a.id) ?? 0;
    const pb = load.primaries.get(b.id) ?? 0;
    if (pa !== pb) return pa < pb;
  }
  const la = load.pgs.get(a.id) ?? 0;
  const lb = load.pgs.get(b.id) ?? 0;
  if (la !== lb) return la < lb;
  const fa = a.capacityBytes - a.usedBytes;
  const fb = b.capacityBytes - b.usedBytes;
  if (fa !== fb) return fa > fb;
  return compareIds(a.id, b.id) < 0;
}

/** The PGs of a new volume, or null when the nodes cannot hold `replicas` copies of every PG. */
export function placeVolume(volumeId: string, replicas: number, zoneSpread: ZoneSpread, nodes: readonly PlacementNode[], load: Load): PlacementGroup[] | null {
  const pgs: PlacementGroup[] = [];
  for (let pg = 0; pg < pgsPerVolume; pg += 1) {
    const set = chooseReplicas({ nodes, load, count: replicas, zoneSpread, firstIsPrimary: true });
    if (set.length < replicas) return null;
    const primary = set[0] as string;
    addToLoad(load, set, primary);
    pgs.push({ volumeId, pg, replicas: set, primary, epoch: 1, inSync: [...set] });
  }
  return pgs;
}

/** How many replicas each PG can get at most: up nodes. */
export function placementCapacity(nodes: readonly PlacementNode[]): { upNodes: number; zones: number } {
  const up = nodes.filter((n) => n.state === 'up');
  return { upNodes: up.length, zones: new Set(up.map((n) => n.zone)).size };
}

export interface FailoverVolume {
  id: string;
  replicas: number;
  zoneSpread: ZoneSpread;
  pgs: readonly PlacementGroup[];
}

/**
 * The PG changes when `downNodeId` goes down, for the failover controller and `markDataNodeDown`.
 * For each PG that has the node as a replica:
 * - when another in-sync replica exists: drop the node from the set, make the first in-sync
 *   survivor (in set order) that is `promotable` (up and heard from lately: pg-safety.ts) primary
 *   if the node was primary, add a replacement replica (chosen
 *   like any placement, not in sync: it must resync first) when a node is free, bump the epoch;
 * - when the node holds the only in-sync copy: leave the PG alone (nobody else may serve it;
 *   it is unavailable until the node returns), so no acknowledged write is ever lost.
 * Volumes are visited in id order and PGs in number order so the result is deterministic.
 */
export function planNodeDown(downNodeId: string, volumes: readonly FailoverVolume[], nodes: readonly PlacementNode[], promotable: ReadonlySet<string>): PlacementGroup[] {
  const load = loadOf(volumes.flatMap((v) => v.pgs));
  const upNodes = new Set(nodes.filter((n) => n.state === 'up' && n.id !== downNodeId).map((n) => n.id));
  const changed: PlacementGroup[] = [];
  const ordered = [...volumes].sort((a, b) => compareIds(a.id, b.id));
  for (const vol of ordered) {
    for (const pg of [...vol.pgs].sort((a, b) => a.pg - b.pg)) {
      if (!pg.replicas.includes(downNodeId)) continue;
      const survivors = pg.replicas.filter((id) => id !== downNodeId);
      const inSync = pg.inSync.filter((id) => id !== downNodeId);
      // Up is not enough to serve: a node not marked down yet may have been wiped (seed 107).
      const candidatesForPrimary = survivors.filter((id) => inSync.includes(id) && upNodes.has(id) && promotable.has(id));
      let primary = pg.primary;
      if (primary === downNodeId || !upNodes.has(primary)) {
        const next = candidatesForPrimary[0];
        if (next === undefined) continue;
        primary = next;
      } else if (!inSync.includes(primary)) {
        continue;
      }
      const missing = Math.max(0, vol.replicas - survivors.length);
      const added = chooseReplicas({ nodes, load, count: missing, zoneSpread: vol.zoneSpread, existing: survivors, exclude: new Set([downNodeId]) });
      // Load moves with the change so later PGs see the replacement's new weight.
      addToLoad(load, added, null);
      load.pgs.set(downNodeId, Math.max(0, (load.pgs.get(downNodeId) ?? 0) - 1));
      changed.push(withAddedAt({ volumeId: pg.volumeId, pg: pg.pg, replicas: [...survivors, ...added], primary, epoch: pg.epoch + 1, inSync }, pg.addedAtEpoch, added));
    }
  }
  return changed;
}

/**
 * Re-replication: the PG changes once capacity appears (a node registers or comes back up).
 * Every PG with fewer replicas than its volume asks gets new ones, chosen like any placement
 * (zone spread of the class, least loaded first, the current replicas excluded), not in sync
 * (each must catch up first), recorded in `addedAtEpoch`, with the epoch bumped. A PG without a
 * serving primary (its primary is down, or not in sync: planNodeDown left it alone because the
 * only in-sync copy is on a down node) is left alone too: nobody could resync the new replica.
 * Volumes in id order, PGs in number order, load moving with each change: deterministic.
 */
export function planReReplication(volumes: readonly FailoverVolume[], nodes: readonly PlacementNode[]): PlacementGroup[] {
  const load = loadOf(volumes.flatMap((v) => v.pgs));
  const upNodes = new Set(nodes.filter((n) => n.state === 'up').map((n) => n.id));
  const changed: PlacementGroup[] = [];
  for (const vol of [...volumes].sort((a, b) => compareIds(a.id, b.id))) {
    for (const pg of [...vol.pgs].sort((a, b) => a.pg - b.pg)) {
      const missing = vol.replicas - pg.replicas.length;
      if (missing <= 0 || !upNodes.has(pg.primary) || !pg.inSync.includes(pg.primary)) continue;
      const added = chooseReplicas({ nodes, load, count: missing, zoneSpread: vol.zoneSpread, existing: pg.replicas });
      if (added.length === 0) continue;
      addToLoad(load, added, null);
      const next: PlacementGroup = { volumeId: pg.volumeId, pg: pg.pg, replicas: [...pg.replicas, ...added], primary: pg.primary, epoch: pg.epoch + 1, inSync: [...pg.inSync] };
      changed.push(withAddedAt(next, pg.addedAtEpoch, added));
    }
  }
  return changed;
}

/** `next` with the added-at epochs of its current replicas: kept ones keep theirs, `added` get `next.epoch`. */
function withAddedAt(next: PlacementGroup, before: Readonly<Record<string, number>> | undefined, added: readonly string[]): PlacementGroup {
  const addedAtEpoch: Record<string, number> = {};
  for (const id of next.replicas) {
    const at = added.includes(id) ? next.epoch : before?.[id];
    if (at !== undefined) addedAtEpoch[id] = at;
  }
  return Object.keys(addedAtEpoch).length === 0 ? next : { ...next, addedAtEpoch };
}

/**
 * Up data nodes whose last heartbeat (leader-stamped) is at least `heartbeatTimeoutMs` before
 * `nowMs`: the ones the leader's controller should mark down. Sorted by id.
 */
export function staleDataNodes(nodes: readonly Pick<DataNode, 'id' | 'state' | 'lastHeartbeatAtMs'>[], nowMs: number, heartbeatTimeoutMs: number): string[] {
  return nodes
    .filter((n) => n.state === 'up' && n.lastHeartbeatAtMs + heartbeatTimeoutMs <= nowMs)
    .map((n) => n.id)
    .sort(compareIds);
}

/** A PG that only the node to remove holds in sync: removing the node would lose its writes. */
export interface SoleCopy { volumeId: string; pg: number }

export type RemovalPlan =
  | { kind: 'blocked'; soleCopies: SoleCopy[] }
  | { kind: 'ok'; changed: PlacementGroup[] };

/**
 * `galleon node remove`: the PG changes that take a departed (down) node out of every set.
 * Refused (`blocked`) while the node holds the only in-sync copy of any PG. Otherwise first the
 * failover of a down node (planNodeDown: survivors promoted, replacements added, epoch+1), then
 * every PG that failover left alone because no in-sync survivor is up (its other in-sync copies
 * are on down nodes) loses the node too, epoch+1, primary the first in-sync survivor if it was
 * the node. Deterministic like planNodeDown: volumes by id, PGs by number.
 */
export function planNodeRemoval(nodeId: string, volumes: readonly FailoverVolume[], nodes: readonly PlacementNode[], promotable: ReadonlySet<string>): RemovalPlan {
  const ordered = [...volumes].sort((a, b) => compareIds(a.id, b.id)).map((v) => ({ ...v, pgs: [...v.pgs].sort((a, b) => a.pg - b.pg) }));
  const soleCopies = ordered.flatMap((v) => v.pgs)
    .filter((pg) => pg.replicas.includes(nodeId) && pg.inSync.includes(nodeId) && pg.inSync.every((id) => id === nodeId))
    .map((pg) => ({ volumeId: pg.volumeId, pg: pg.pg }));
  if (soleCopies.length > 0) return { kind: 'blocked', soleCopies };
  const asDown = nodes.map((n) => (n.id === nodeId ? { ...n, state: 'down' as const } : n));
  const moved = new Map(planNodeDown(nodeId, ordered, asDown, promotable).map((pg) => [`${pg.volumeId}/${pg.pg}`, pg]));
  const changed: PlacementGroup[] = [];
  for (const pg of ordered.flatMap((v) => v.pgs)) {
    const current = moved.get(`${pg.volumeId}/${pg.pg}`) ?? pg;
    if (!current.replicas.includes(nodeId)) {
      if (current !== pg) changed.push(current);
      continue;
    }
    const replicas = current.replicas.filter((id) => id !== nodeId);
    const inSync = current.inSync.filter((id) => id !== nodeId);
    const primary = current.primary === nodeId ? inSync[0] ?? replicas[0] : current.primary;
    // A PG whose only replica is the node has no copy elsewhere: treated as a sole copy.
    if (primary === undefined) return { kind: 'blocked', soleCopies: [{ volumeId: pg.volumeId, pg: pg.pg }] };
    changed.push(withAddedAt({ volumeId: pg.volumeId, pg: pg.pg, replicas, primary, epoch: current.epoch + 1, inSync }, current.addedAtEpoch, []));
  }
  return { kind: 'ok', changed };
}
