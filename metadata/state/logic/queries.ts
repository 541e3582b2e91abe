/** Read-only answers from the state. Trailing ReadOptions arguments are the driver's business and ignored here. */
import type { DataNode, Lease, PgReport, StorageClass, Volume } from '../../../proto/metadata-types.js';
import type { ClusterSummary } from '../contract.js';
import { listOf, placementOf, requireStorageClass, requireVolume } from './lookup.js';
import { Table, type StateReader } from './tx.js';
import { invalidArgument } from './validate.js';
import { listCatchUpFloors } from './pg-sync.js';
import { nsQueries } from './ns-queries.js';
import { flushState, openFlushRequests } from './ns-flush.js';
import { volumeKeyQueries } from './volume-keys.js';
import { snapshotQueries } from './snapshots.js';
import { backupQueries } from './backups.js';
import { authQueries } from './auth-commands.js';

type Query = (r: StateReader, args: unknown[]) => unknown;

const queries: Record<string, Query> = {
  getStorageClass: (r, [name]) => requireStorageClass(r, name),
  listStorageClasses: (r) => listOf<StorageClass>(r, Table.StorageClass),
  getVolume: (r, [ref]) => requireVolume(r, ref),
  listVolumes: (r) => listOf<Volume>(r, Table.Volume).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  listDataNodes: (r) => listOf<DataNode>(r, Table.DataNode),
  /** By volume id or name. */
  getPlacement: (r, [ref]) => placementOf(r, requireVolume(r, ref).id),
  clusterSummary: (r) => clusterSummary(r),
  /** Live or not: callers compare expiresAtMs with their own notion of now. */
  listLeases: (r) => listOf<Lease>(r, Table.Lease),
  /** Each data node's last heartbeat reports, by node id: the controller compares replicas with their primary. */
  /** Replicas taken out of sync by their primary, with the seq each must reach (controller). */
  listCatchUpFloors: (r) => listCatchUpFloors(r),
  /** Flush requests before snapshots (ns-flush.ts): hot state, outside the namespace's cold reads. */
  fsFlushState: (r, [ref]) => flushState(r, ref),
  fsFlushRequests: (r) => openFlushRequests(r),
  listPgReports: (r) => r.ids(Table.PgReports).map((nodeId) => ({ nodeId, reports: r.get<PgReport[]>(Table.PgReports, nodeId) ?? [] })),
};

Object.assign(queries, nsQueries, volumeKeyQueries, snapshotQueries, backupQueries, authQueries);

/** Namespace queries (and a snapshot's tree) read cold tables: the shell runs them with prefetching (MissingKeys). */
export function readsColdState(method: string): boolean {
  return Object.hasOwn(nsQueries, method) || method === 'getSnapshotTree';
}

export function runQuery(r: StateReader, method: string, args: unknown[]): unknown {
  const q = Object.hasOwn(queries, method) ? queries[method] : undefined;
  if (q === undefined) throw invalidArgument(`unknown query ${JSON.stringify(method)}`, 'this node does not answer that read; check versions');
  return q(r, args);
}

/**
 * A PG is under-replicated when fewer of its replicas are on up nodes than the volume asks for;
 * degraded when fewer in-sync replicas are up than that, or its primary is not up and in sync.
 */
export function clusterSummary(r: StateReader): ClusterSummary {
  const dataNodes = listOf<DataNode>(r, Table.DataNode);
  const up = new Set(dataNodes.filter((n) => n.state === 'up').map((n) => n.id));
  let pgs = 0;
  let degradedPgs = 0;
  let underReplicatedPgs = 0;
  const volumes = listOf<Volume>(r, Table.Volume);
  for (const v of volumes) {
    for (const pg of placementOf(r, v.id)) {
      pgs += 1;
      const liveReplicas = pg.replicas.filter((id) => up.has(id)).length;
      const liveInSync = pg.inSync.filter((id) => up.has(id)).length;
      if (liveReplicas < v.replicas) underReplicatedPgs += 1;
      if (liveInSync < v.replicas || !up.has(pg.primary) || !pg.inSync.includes(pg.primary)) degradedPgs += 1;
    }
  }
  return { dataNodes, volumes: volumes.length, pgs, degradedPgs, underReplicatedPgs };
}
