/**
 * The command handlers: each validates its arguments, reads and writes through the Tx, and
 * returns the command's value or throws a GalleonError (which the caller turns into a failed
 * result after dropping the Tx, so a failed command changes nothing).
 */
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import { minBlockSizeBytes } from '../../../proto/metadata-types.js';
import type {
  AccessMode, DataNode, Lease, LeaseKind, PgReport, PlacementGroup, Volume, VolumeType,
} from '../../../proto/metadata-types.js';
import { deleteLease, leasesOn, putLease } from './lease-store.js';
import { catchUpFloor, clearCatchUpFloor, deletePgSync, pgSyncHandlers, reportOf, requirePrimaryAt } from './pg-sync.js';
import { checkLeaseConflict, isLive, maxLeaseTtlMs, minLeaseTtlMs, requireLeaseHolder } from './leases.js';
import { findVolume, hints, listOf, placementOf, requireDataNode, requireGroup, requireScopedVolume, requireStorageClass, requireVolume } from './lookup.js';
import { pgsPerVolume, placeVolume, placementCapacity, planNodeDown, planNodeRemoval, planReReplication, type FailoverVolume } from './placement.js';
import { currentLoad, writePlacement } from './placement-store.js';
import { parseBlockSize, parseSize, formatSize, roundUpToBlocks } from './size.js';
import { maxHeartbeatIntervalMs, maxReplicaCount, minHeartbeatIntervalMs, minReplicaCount } from '../../../proto/limits.js';
import { isFresh, leaseRefusal, planPrimaryMoves, promotableNodes, resyncVerdict, withoutInSync } from './pg-safety.js';
import { buildStorageClass, defaultStorageClass, minReplicasFor } from './storage-classes.js';
import { Table, Tx } from './tx.js';
import { versionWrites } from './ns-versions.js';
import { markNamespaceDeleted, nsHandlers } from './ns-commands.js';
import { dropFlushRecord } from './ns-flush.js';
import { departedCopyGone, forgetDepartedNode, withDeparted } from './departed.js';
import { checkNoSnapshots, refuseWhileTreeWork, snapshotHandlers } from './snapshots.js';
import { ensureNs } from './ns-store.js';
import { checkDataKey, deleteVolumeKey, putVolumeKey, volumeKeyHandlers } from './volume-keys.js';
import { backupHandlers } from './backups.js';
import { authHandlers } from './auth-commands.js';
import {
  checkAddress, checkInt, checkKeys, checkLabelCount, checkLabelKey, checkLabelValue, checkLabels, checkName, checkNodeId,
  checkOneOf, checkString, invalidArgument, isRecord,
} from './validate.js';

/** What a handler may know about the command beyond its arguments. */
export interface CommandContext {
  stampMs: number;
  clientId: string;
  seq: number;
  /** A UUID derived from (log index, clientId, seq, tag) only: the same on every replica. */
  newId(tag: string): string;
}

/**
 * New volumes' block size when the spec names none. A daemon fills in its own `--block-size`
 * (default `defaultBlockSizeBytes`, 128 KiB: proto/metadata-types.ts says why) for every volume
 * created through it; a direct API caller that names none (tools, tests, the chaos runs) gets the
 * smallest block, the layout the block API had before block sizes were chosen per volume.
 */
export const blockSizeBytes = minBlockSizeBytes;
/** The product's default when `volume create` gets no --size. */
export const defaultVolumeSizeBytes = 2 ** 30;
export const volumeTypes: readonly VolumeType[] = ['ephemeral', 'persistent', 'shared'];
export const accessModes: readonly AccessMode[] = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany'];
const volumeSpecKeys = ['name', 'type', 'size', 'storageClass', 'replicas', 'accessMode', 'labels', 'blockSize', 'dataKey', 'tenant'] as const;
const registrationKeys = ['id', 'address', 'zone', 'capacityBytes', 'heartbeatIntervalMs', 'emptyStore'] as const;
const leaseKinds: readonly LeaseKind[] = ['pg-primary', 'mount'];

type Handler = (tx: Tx, ctx: CommandContext, args: unknown[]) => unknown;

const handlers: Record<string, Handler> = {
  createStorageClass(tx, ctx, [spec]) {
    const sc = buildStorageClass(spec, ctx.stampMs);
    if (tx.get(Table.StorageClass, sc.name) !== undefined) {
      throw new GalleonError(ErrorCode.STORAGE_CLASS_EXISTS, `storage class ${sc.name} already exists`,
        { hint: 'choose another name, or delete the existing class first' });
    }
    tx.put(Table.StorageClass, sc.name, sc);
    return sc;
  },

  deleteStorageClass(tx, _ctx, [name]) {
    const sc = requireStorageClass(tx, name);
    if (sc.builtIn) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `storage class ${sc.name} is built in and cannot be deleted`,
        { hint: 'create your own class instead of changing a built-in one' });
    }
    const users = listOf<Volume>(tx, Table.Volume).filter((v) => v.storageClass === sc.name).map((v) => v.name);
    if (users.length > 0) {
      throw new GalleonError(ErrorCode.STORAGE_CLASS_IN_USE, `storage class ${sc.name} is used by ${users.length} volume(s): ${users.slice(0, 5).join(', ')}`,
        { hint: 'delete those volumes first', details: { volumes: users } });
    }
    tx.del(Table.StorageClass, sc.name);
    return null;
  },

  createVolume(tx, ctx, [spec = {}]) {
    if (!isRecord(spec)) throw invalidArgument('volume spec must be an object', 'pass {"name": ..., "size": "1G"}');
    checkKeys('volume spec', spec, volumeSpecKeys);
    const type = spec.type === undefined ? 'persistent' : checkOneOf('volume type', spec.type, volumeTypes);
    const volumeBlockSize = spec.blockSize === undefined ? blockSizeBytes : parseBlockSize(spec.blockSize);
    const sizeBytes = roundUpToBlocks(spec.size === undefined ? defaultVolumeSizeBytes : parseSize(spec.size), volumeBlockSize);
    const sc = requireStorageClass(tx, spec.storageClass ?? defaultStorageClass);
    const replicas = spec.replicas === undefined ? sc.replicas : checkInt('replicas', spec.replicas, minReplicaCount, maxReplicaCount);
    if (replicas < minReplicasFor(sc.writeConcern)) {
      throw invalidArgument(`storage class ${sc.name} writes with concern ${sc.writeConcern}, which needs at least ${minReplicasFor(sc.writeConcern)} replicas`,
        `use --replicas ${minReplicasFor(sc.writeConcern)} or more, or a class such as fast-local-ssd`);
    }
    const accessMode = spec.accessMode === undefined
      ? (type === 'shared' ? 'ReadWriteMany' : 'ReadWriteOnce')
      : checkOneOf('access mode', spec.accessMode, accessModes);
    const labels = checkLabels(spec.labels);
    const dataKey = checkDataKey(sc, spec.dataKey);
    const id = ctx.newId('volume');
    invariant(tx.get(Table.Volume, id) === undefined, `derived volume id ${id} already exists`);
    const name = spec.name === undefined ? `vol-${id.slice(0, 8)}` : checkName('volume', spec.name);
    if (findVolume(tx, name) !== undefined) {
      throw new GalleonError(ErrorCode.VOLUME_EXISTS, `volume ${name} already exists`, { hint: `choose another name, or see it with: galleon volume get ${name}` });
    }
    const nodes = listOf<DataNode>(tx, Table.DataNode);
    const capacity = placementCapacity(nodes);
    if (capacity.upNodes < replicas) {
      throw new GalleonError(ErrorCode.INSUFFICIENT_NODES,
        `volume ${name} needs ${replicas} replicas but ${capacity.upNodes} data node(s) are up (${nodes.length} registered)`,
        { hint: `lower --replicas to ${Math.max(1, capacity.upNodes)} or ${hints.addDataNode}` });
    }
    if (sc.zoneSpread === 'require' && capacity.zones < replicas) {
      throw new GalleonError(ErrorCode.INSUFFICIENT_NODES,
        `storage class ${sc.name} requires ${replicas} replicas in distinct zones but up data nodes span ${capacity.zones} zone(s)`,
        { hint: `add data nodes in other zones, or lower --replicas to ${Math.max(1, capacity.zones)}` });
    }
    const load = currentLoad(tx);
    const pgs = placeVolume(id, replicas, sc.zoneSpread, nodes, load);
    invariant(pgs !== null, `placement failed for ${name} although ${capacity.upNodes} nodes are up`);
    const volume: Volume = {
      id, name, type, sizeBytes, accessMode, storageClass: sc.name, replicas, writeConcern: sc.writeConcern,
      blockSizeBytes: volumeBlockSize, pgCount: pgsPerVolume, state: 'available', labels,
      createdAtMs: ctx.stampMs, updatedAtMs: ctx.stampMs, version: 1, ...(dataKey === null ? {} : { encrypted: true }),
      ...(spec.tenant === undefined ? {} : { tenant: checkName('tenant', spec.tenant) }),
    };
    tx.put(Table.Volume, id, volume);
    if (dataKey !== null) putVolumeKey(tx, ctx, id, dataKey);
    tx.put(Table.VolumeName, name, id);
    writePlacement(tx, id, pgs);
    ensureNs(tx, volume);
    return volume;
  },

  updateVolumeLabels(tx, ctx, [ref, changes, scope]) {
    const vol = requireScopedVolume(tx, ref, scope);
    if (!isRecord(changes)) throw invalidArgument('labels must be an object', 'pass {"key": "value"}, or {"key": null} to remove a label');
    const labels: Record<string, string> = { ...vol.labels };
    for (const k of Object.keys(changes)) {
      checkLabelKey(k);
      const v = changes[k];
      if (v === null) delete labels[k];
      else labels[k] = checkLabelValue(k, v);
    }
    checkLabelCount(labels);
    const sorted = Object.fromEntries(Object.keys(labels).sort().map((k) => [k, labels[k] as string]));
    return saveVolume(tx, ctx, { ...vol, labels: sorted });
  },

  expandVolume(tx, ctx, [ref, size, scope]) {
    const vol = requireScopedVolume(tx, ref, scope);
    const sizeBytes = roundUpToBlocks(parseSize(size), vol.blockSizeBytes);
    if (sizeBytes <= vol.sizeBytes) {
      throw new GalleonError(ErrorCode.INVALID_SIZE, `volume ${vol.name} is ${formatSize(vol.sizeBytes)}; a volume can only grow, not to ${formatSize(sizeBytes)}`,
        { hint: `give a size larger than ${vol.sizeBytes} bytes` });
    }
    return saveVolume(tx, ctx, { ...vol, sizeBytes });
  },

  deleteVolume(tx, ctx, [ref, scope]) {
    const vol = requireScopedVolume(tx, ref, scope);
    checkNoSnapshots(tx, vol);
    // Mounted volumes are deleted too (their mount leases go below): every node's mount manager
    // sees the volume leave the table and unmounts it (vfs/manager), as `--mount-point` promises.
    const resources: [LeaseKind, string][] = [['mount', vol.id]];
    for (let pg = 0; pg < vol.pgCount; pg += 1) resources.push(['pg-primary', `${vol.id}/${pg}`]);
    for (const [kind, resource] of resources) for (const l of leasesOn(tx, kind, resource)) deleteLease(tx, l.id);
    tx.del(Table.Volume, vol.id);
    tx.del(Table.VolumeName, vol.name);
    writePlacement(tx, vol.id, null);
    deleteVolumeKey(tx, vol);
    deletePgSync(tx, vol);
    markNamespaceDeleted(tx, vol);
    dropFlushRecord(tx, vol);
    return { ...vol, state: 'deleting', updatedAtMs: ctx.stampMs, version: vol.version + 1 } satisfies Volume;
  },

  registerDataNode(tx, ctx, [reg]) {
    if (!isRecord(reg)) throw invalidArgument('data node registration must be an object', 'pass {"id", "address", "zone", "capacityBytes"}');
    checkKeys('data node registration', reg, registrationKeys);
    const id = checkNodeId(reg.id);
    const address = checkAddress('data node address', reg.address);
    const zone = checkString('zone', reg.zone, 'give the zone the node runs in, e.g. zone-a (use "default" when there is only one)');
    const capacityBytes = checkInt('capacityBytes', reg.capacityBytes, 1, Number.MAX_SAFE_INTEGER);
    const interval = reg.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: checkInt('heartbeatIntervalMs', reg.heartbeatIntervalMs, minHeartbeatIntervalMs, maxHeartbeatIntervalMs) };
    if (reg.emptyStore !== undefined && typeof reg.emptyStore !== 'boolean') {
      throw invalidArgument('emptyStore must be true or false', 'send true when the node\'s store never joined the cluster (new or wiped data dir), else false or nothing');
    }
    const old = tx.get<DataNode>(Table.DataNode, id);
    const node: DataNode = old === undefined
      ? { id, address, zone, capacityBytes, ...interval, usedBytes: 0, state: 'up', lastHeartbeatAtMs: ctx.stampMs, registeredAtMs: ctx.stampMs }
      : { ...old, address, zone, capacityBytes, ...interval, state: 'up', lastHeartbeatAtMs: ctx.stampMs };
    tx.put(Table.DataNode, id, node);
    // A wiped store holds nothing it was counted in sync for (simulator seed 82), nor what it reported.
    const wiped = reg.emptyStore === true && old !== undefined;
    if (wiped) forgetCopies(tx, ctx, id);
    settle(tx, ctx, id, wiped ? undefined : old);
    reReplicate(tx, ctx);
    return node;
  },

  heartbeatDataNode(tx, ctx, [id, usedBytes, pgs = []]) {
    const old = requireDataNode(tx, id);
    const used = checkInt('usedBytes', usedBytes, 0, Number.MAX_SAFE_INTEGER);
    const reports = checkPgReports(pgs);
    const node: DataNode = { ...old, usedBytes: used, lastHeartbeatAtMs: ctx.stampMs, state: old.state === 'down' ? 'up' : old.state };
    tx.put(Table.DataNode, node.id, node);
    tx.put(Table.PgReports, node.id, reports);
    settle(tx, ctx, node.id, old);
    if (old.state === 'down') reReplicate(tx, ctx);
    return node;
  },

  markDataNodeDown(tx, ctx, [id]) {
    const old = requireDataNode(tx, id);
    if (old.state === 'down') return { node: old, changed: [] };
    const node: DataNode = { ...old, state: 'down' };
    tx.put(Table.DataNode, node.id, node);
    return { node, changed: failOver(tx, ctx, node) };
  },

  /** `galleon node remove`: a departed data node leaves every PG (planNodeRemoval) and the node table. */
  removeDataNode(tx, ctx, [id]) {
    const node = requireDataNode(tx, id);
    if (node.state !== 'down') {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `data node ${node.id} is ${node.state}; only a node marked down can be removed`,
        { hint: 'stop its daemon first (galleon daemon stop on that node) and wait until `galleon node list` shows it down' });
    }
    const nodes = listOf<DataNode>(tx, Table.DataNode);
    const plan = planNodeRemoval(node.id, failoverVolumes(tx), nodes, promotableNodes(nodes, ctx.stampMs));
    if (plan.kind === 'blocked') {
      const names = new Map(listOf<Volume>(tx, Table.Volume).map((v) => [v.id, v.name]));
      const shown = plan.soleCopies.slice(0, 3).map((c) => `${names.get(c.volumeId) ?? c.volumeId} pg ${c.pg}`).join(', ');
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION,
        `data node ${node.id} holds the only in-sync copy of ${plan.soleCopies.length} placement group(s) (${shown}${plan.soleCopies.length > 3 ? ', ...' : ''})`,
        { hint: 'start that node again so its data is copied to the others, or delete those volumes first', details: { soleCopies: plan.soleCopies } });
    }
    applyPlacementChanges(tx, ctx, plan.changed);
    forgetDepartedNode(tx, listOf<Volume>(tx, Table.Volume).map((v) => v.id), node.id);
    for (const l of listOf<Lease>(tx, Table.Lease)) if (l.kind === 'pg-primary' && l.holder === node.id) deleteLease(tx, l.id);
    tx.del(Table.DataNode, node.id);
    tx.del(Table.PgReports, node.id);
    return { node, changed: plan.changed };
  },

  markPgReplicaInSync(tx, ctx, [ref, pgRaw, nodeRaw, epochRaw]) {
    const { vol, pgs, group: pg } = requireGroup(tx, ref, pgRaw);
    const pgNo = pg.pg;
    const nodeId = checkNodeId(nodeRaw);
    const epoch = checkInt('epoch', epochRaw, 1, Number.MAX_SAFE_INTEGER);
    if (pg.epoch !== epoch) {
      throw new GalleonError(ErrorCode.STALE_EPOCH, `PG ${vol.id}/${pgNo} is at epoch ${pg.epoch}, not ${epoch}`,
        { hint: 'read the placement again and resync against the current epoch', details: { epoch: pg.epoch } });
    }
    if (!pg.replicas.includes(nodeId)) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `${nodeId} is not a replica of PG ${vol.id}/${pgNo}`,
        { hint: 'read the placement again: the replica set has changed' });
    }
    if (pg.inSync.includes(nodeId)) return pg;
    // Caught up with an in-sync primary at this epoch, and (taken out of sync by its primary) past its floor.
    const floor = catchUpFloor(tx, pg, nodeId);
    const verdict = resyncVerdict(pg, nodeId, reportOf(tx, nodeId, vol.id, pgNo), reportOf(tx, pg.primary, vol.id, pgNo), floor);
    if (!verdict.ok) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `${nodeId} has not caught up on PG ${vol.id}/${pgNo}: ${verdict.why}`,
        { hint: 'wait for the next heartbeats of the replica and its primary after it caught up', details: { floor } });
    }
    clearCatchUpFloor(tx, pg, nodeId);
    // In-sync replicas keep the replica-set order, so "first in-sync survivor" stays well defined.
    const next: PlacementGroup = { ...pg, inSync: pg.replicas.filter((id) => id === nodeId || pg.inSync.includes(id)) };
    const updated = pgs.map((p) => (p.pg === pgNo ? next : p));
    writePlacement(tx, vol.id, updated);
    if (vol.state === 'degraded' && updated.every((p) => p.inSync.length >= vol.replicas)) saveVolume(tx, ctx, { ...vol, state: 'available' });
    return next;
  },

  acquireLease(tx, ctx, [kindRaw, resourceRaw, holderRaw, ttlRaw, modeRaw, epochRaw]) {
    const kind = checkOneOf('lease kind', kindRaw, leaseKinds);
    const holder = checkString('lease holder', holderRaw, 'pass the id of the node or mount that holds the lease');
    const ttlMs = checkInt('ttlMs', ttlRaw, minLeaseTtlMs, maxLeaseTtlMs);
    let resource: string;
    let mode: 'rw' | 'ro' | null;
    let accessMode: AccessMode | null = null;
    if (kind === 'pg-primary') {
      resource = checkPgResource(tx, resourceRaw);
      if (modeRaw !== undefined && modeRaw !== null) throw invalidArgument('a pg-primary lease takes no mode', 'omit the mode');
      mode = null;
      // With an epoch (data nodes always pass one), only the PG's primary at that very epoch gets
      // the lease: a deposed primary that wakes up cannot take it back before its successor does.
      if (epochRaw !== undefined && epochRaw !== null) checkPrimaryAtEpoch(tx, resource, holder, checkInt('epoch', epochRaw, 0, Number.MAX_SAFE_INTEGER));
      checkMayLeadPg(tx, ctx, resource, holder);
    } else {
      const vol = requireVolume(tx, resourceRaw);
      refuseWhileTreeWork(vol, 'mount');
      resource = vol.id;
      accessMode = vol.accessMode;
      mode = modeRaw === undefined || modeRaw === null ? 'rw' : checkOneOf('mount mode', modeRaw, ['rw', 'ro'] as const);
    }
    const same = leasesOn(tx, kind, resource);
    for (const l of same) if (!isLive(l, ctx.stampMs)) deleteLease(tx, l.id);
    const live = same.filter((l) => isLive(l, ctx.stampMs));
    checkLeaseConflict(kind, resource, holder, mode, live, accessMode);
    const mine = live.find((l) => l.holder === holder);
    const lease: Lease = mine === undefined
      ? { id: ctx.newId('lease'), kind, resource, holder, mode, grantedAtMs: ctx.stampMs, expiresAtMs: ctx.stampMs + ttlMs }
      : { ...mine, mode, expiresAtMs: ctx.stampMs + ttlMs };
    putLease(tx, lease);
    return lease;
  },

  renewLease(tx, ctx, [idRaw, ttlRaw, scope]) {
    const id = checkString('lease id', idRaw, 'pass the id acquireLease returned');
    const ttlMs = checkInt('ttlMs', ttlRaw, minLeaseTtlMs, maxLeaseTtlMs);
    const lease = tx.get<Lease>(Table.Lease, id);
    if (lease === undefined || !isLive(lease, ctx.stampMs)) {
      throw new GalleonError(ErrorCode.LEASE_NOT_FOUND, `lease ${id} does not exist or has expired`, { hint: 'acquire a new lease' });
    }
    requireLeaseHolder(lease, scope, 'renew');
    if (lease.kind === 'pg-primary') checkMayLeadPg(tx, ctx, lease.resource, lease.holder);
    const renewed: Lease = { ...lease, expiresAtMs: ctx.stampMs + ttlMs };
    putLease(tx, renewed);
    return renewed;
  },

  /** Idempotent: releasing a lease that is already gone (expired, or released before) succeeds. */
  releaseLease(tx, _ctx, [idRaw, scope]) {
    const id = checkString('lease id', idRaw, 'pass the id acquireLease returned');
    const lease = tx.get<Lease>(Table.Lease, id);
    if (lease !== undefined) requireLeaseHolder(lease, scope, 'release');
    deleteLease(tx, id);
    return null;
  },

  expireLeases(tx, ctx) {
    let expired = 0;
    for (const l of listOf<Lease>(tx, Table.Lease)) {
      if (!isLive(l, ctx.stampMs)) {
        deleteLease(tx, l.id);
        expired += 1;
      }
    }
    return { expired };
  },
};

Object.assign(handlers, pgSyncHandlers, nsHandlers, volumeKeyHandlers, backupHandlers, authHandlers, {
  departedCopyGone,
  createSnapshot: (tx: Tx, ctx: CommandContext, args: unknown[]) => snapshotHandlers.createSnapshot(tx, ctx, args),
  deleteSnapshot: (tx: Tx, ctx: CommandContext, args: unknown[]) => snapshotHandlers.deleteSnapshot(tx, ctx, args),
  restoreVolume: (tx: Tx, ctx: CommandContext, args: unknown[]) => snapshotHandlers.restoreVolume(tx, ctx, args),
  finishVolumePrune: (tx: Tx, ctx: CommandContext, args: unknown[]) => snapshotHandlers.finishVolumePrune(tx, ctx, args),
  cloneVolume: (tx: Tx, ctx: CommandContext, args: unknown[]) =>
    snapshotHandlers.cloneVolume(tx, ctx, args, (spec) => handlers.createVolume?.(tx, ctx, [spec]) as Volume),
} satisfies Record<string, Handler>);

export function isKnownCommand(method: string): boolean {
  return Object.hasOwn(handlers, method);
}

export function executeCommand(tx: Tx, ctx: CommandContext, method: string, args: unknown[]): unknown {
  const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
  if (handler === undefined) throw invalidArgument(`unknown command ${JSON.stringify(method)}`, 'upgrade this node: the leader proposed a command it does not know');
  // Run in a child so the old values of the inodes and entries it changes can be kept for snapshots.
  const child = new Tx(tx);
  const value = handler(child, ctx, args);
  versionWrites(child, tx);
  child.commitTo(tx);
  return value;
}

/**
 * The failover of a down node: planNodeDown's changes written, volumes degraded, its pg-primary
 * leases voided. Also run again for nodes still down when another node comes back up: a PG left
 * alone because no in-sync replica was up can move on once its primary returns.
 */
function failOver(tx: Tx, ctx: CommandContext, node: DataNode): PlacementGroup[] {
  const nodes = listOf<DataNode>(tx, Table.DataNode);
  const changed = planNodeDown(node.id, failoverVolumes(tx), nodes, promotableNodes(nodes, ctx.stampMs));
  applyPlacementChanges(tx, ctx, changed);
  // Its primary leases are void: the new primaries must be able to take them at once.
  for (const l of listOf<Lease>(tx, Table.Lease)) {
    if (l.kind === 'pg-primary' && l.holder === node.id) deleteLease(tx, l.id);
  }
  return changed;
}

/**
 * Capacity appeared (a node registered or came back up): PGs short of replicas get new ones
 * (planReReplication), not in sync until they caught up; the controller's markPgReplicaInSync
 * brings the volume back to `available`.
 */
function reReplicate(tx: Tx, ctx: CommandContext): PlacementGroup[] {
  const changed = planReReplication(failoverVolumes(tx), listOf<DataNode>(tx, Table.DataNode));
  applyPlacementChanges(tx, ctx, changed);
  return changed;
}

function failoverVolumes(tx: Tx): FailoverVolume[] {
  return listOf<Volume>(tx, Table.Volume).map((v) => ({
    id: v.id, replicas: v.replicas, zoneSpread: requireStorageClass(tx, v.storageClass).zoneSpread, pgs: placementOf(tx, v.id),
  }));
}

/** Writes changed PGs into their volumes' placements; a volume left short of in-sync replicas is `degraded`. */
function applyPlacementChanges(tx: Tx, ctx: CommandContext, changed: readonly PlacementGroup[]): void {
  const volumes = listOf<Volume>(tx, Table.Volume);
  const byVolume = new Map<string, PlacementGroup[]>();
  for (const pg of changed) byVolume.set(pg.volumeId, [...(byVolume.get(pg.volumeId) ?? []), pg]);
  for (const v of volumes) {
    const updates = byVolume.get(v.id);
    if (updates === undefined) continue;
    const pgs = placementOf(tx, v.id).map((pg) => {
      const u = updates.find((x) => x.pg === pg.pg);
      return u === undefined ? pg : withDeparted(pg, u);
    });
    writePlacement(tx, v.id, pgs);
    if (v.state === 'available' && pgs.some((pg) => pg.inSync.length < v.replicas)) saveVolume(tx, ctx, { ...v, state: 'degraded' });
  }
}

/**
 * A node is up again, or heard from again after a silence long enough that it was not promotable:
 * PGs left alone because no in-sync replica could serve them may move now — those that kept down
 * nodes (planNodeDown again) and those whose primary is not in sync (planPrimaryMoves). A node
 * that was fresh all along was a candidate already, so its beats change nothing here.
 */
function settle(tx: Tx, ctx: CommandContext, id: string, old: DataNode | undefined): void {
  // `old` undefined: a node new to the service (or wiped), which always settles.
  if (old !== undefined && old.state === 'up' && isFresh(old, ctx.stampMs)) return;
  for (const n of listOf<DataNode>(tx, Table.DataNode)) if (n.state === 'down' && n.id !== id) failOver(tx, ctx, n);
  const moved = planPrimaryMoves(listOf<Volume>(tx, Table.Volume).flatMap((v) => placementOf(tx, v.id)), listOf<DataNode>(tx, Table.DataNode), ctx.stampMs);
  applyPlacementChanges(tx, ctx, moved);
  // The moved-from primaries hold nothing promised (wiped): their leases must not keep the new primary waiting.
  for (const pg of moved) {
    for (const l of leasesOn(tx, 'pg-primary', `${pg.volumeId}/${pg.pg}`)) if (l.holder !== pg.primary) deleteLease(tx, l.id);
  }
}

/** A registration with a wiped store: the node leaves every in-sync set (volumes degrade) and its old reports go. */
function forgetCopies(tx: Tx, ctx: CommandContext, id: string): void {
  const changed: PlacementGroup[] = [];
  for (const v of listOf<Volume>(tx, Table.Volume)) {
    for (const pg of placementOf(tx, v.id)) if (pg.inSync.includes(id)) changed.push(withoutInSync(pg, id));
  }
  applyPlacementChanges(tx, ctx, changed);
  tx.del(Table.PgReports, id);
}

/** Refuses a pg-primary lease to a node that may not lead the PG now (pg-safety.ts `leaseRefusal`). */
function checkMayLeadPg(tx: Tx, ctx: CommandContext, resource: string, holder: string): void {
  const slash = resource.lastIndexOf('/');
  const pgNo = Number(resource.slice(slash + 1));
  const group = placementOf(tx, resource.slice(0, slash)).find((p) => p.pg === pgNo);
  if (group === undefined) return; // checkPgResource vouched for the PG; a deleted volume's lease is moot
  const why = leaseRefusal(group, holder, tx.get<DataNode>(Table.DataNode, holder), ctx.stampMs);
  if (why !== null) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `no pg-primary lease on ${resource}: ${why}`,
      { hint: 'the node must be registered, heartbeating and in sync to lead a PG; it retries after its next heartbeat' });
  }
}

function saveVolume(tx: Tx, ctx: CommandContext, vol: Volume): Volume {
  const next: Volume = { ...vol, updatedAtMs: ctx.stampMs, version: vol.version + 1 };
  tx.put(Table.Volume, next.id, next);
  return next;
}

function checkPgResource(tx: Tx, raw: unknown): string {
  const hint = 'a pg-primary resource is <volumeId>/<pg>, e.g. from getPlacement';
  if (typeof raw !== 'string') throw invalidArgument('pg-primary lease resource must be a string', hint);
  const slash = raw.lastIndexOf('/');
  const vol = requireVolume(tx, raw.slice(0, slash));
  const pg = Number(raw.slice(slash + 1));
  if (slash <= 0 || !Number.isInteger(pg) || pg < 0 || pg >= vol.pgCount || raw.slice(slash + 1) !== String(pg)) {
    throw invalidArgument(`no placement group ${JSON.stringify(raw)}`, `${hint}; volume ${vol.name} has PGs 0-${vol.pgCount - 1}`);
  }
  return `${vol.id}/${pg}`;
}

function checkPrimaryAtEpoch(tx: Tx, resource: string, holder: string, epoch: number): void {
  const slash = resource.lastIndexOf('/');
  const pgNo = Number(resource.slice(slash + 1));
  const group = placementOf(tx, resource.slice(0, slash)).find((p) => p.pg === pgNo);
  if (group === undefined) throw invalidArgument(`no placement group ${resource}`, 'refresh the placement');
  requirePrimaryAt(group, holder, epoch, 'only the primary holds the pg-primary lease');
}

function checkPgReports(raw: unknown): PgReport[] {
  if (!Array.isArray(raw)) throw invalidArgument('pg reports must be a list', 'pass [] when the node holds no PGs');
  return raw.map((r: unknown, i) => {
    if (!isRecord(r)) throw invalidArgument(`pg report ${i} must be an object`, 'pass {volumeId, pg, epoch, appliedSeq}');
    checkKeys('pg report', r, ['volumeId', 'pg', 'epoch', 'appliedSeq']);
    return {
      volumeId: checkString(`pg report ${i} volumeId`, r.volumeId, 'pass the volume id'),
      pg: checkInt(`pg report ${i} pg`, r.pg, 0, 1 << 20),
      epoch: checkInt(`pg report ${i} epoch`, r.epoch, 0, Number.MAX_SAFE_INTEGER),
      appliedSeq: checkInt(`pg report ${i} appliedSeq`, r.appliedSeq, 0, Number.MAX_SAFE_INTEGER),
    };
  });
}

