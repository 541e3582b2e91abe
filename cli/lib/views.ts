/** Human views of the domain objects, shared by the commands that print them. */
import { isPrunePending, type ClusterStatus, type DataNode, type Member, type Snapshot, type StorageClass, type Volume } from '../../proto/metadata-types.js';
import { formatBytes } from './size.js';
import { formatLabels, formatTime, keyValues, table } from './format.js';

export function volumeTable(volumes: Volume[]): string {
  if (volumes.length === 0) return 'No volumes.';
  return table(
    ['NAME', 'ID', 'TYPE', 'SIZE', 'CLASS', 'REPLICAS', 'ACCESS', 'STATE'],
    volumes.map((v) => [v.name, v.id, v.type, formatBytes(v.sizeBytes), v.storageClass, v.replicas, v.accessMode, v.state]),
  );
}

export function volumeDetails(v: Volume): string {
  return keyValues([
    ['Name', v.name], ['ID', v.id], ['Type', v.type],
    ['Size', `${formatBytes(v.sizeBytes)} (${v.sizeBytes} bytes)`],
    ['Storage class', v.storageClass], ['Replicas', v.replicas], ['Write concern', v.writeConcern],
    ['Access mode', v.accessMode], ['Block size', v.blockSizeBytes], ['Placement groups', v.pgCount],
    ['State', v.state], ['File tree', treeStateText(v)], ['Version prune', pruneText(v)], ['Encryption', v.encrypted === true ? 'AES-256-GCM (client-side, key list shows its key)' : 'none'], ['Labels', formatLabels(v.labels)],
    ['Created', formatTime(v.createdAtMs)], ['Updated', formatTime(v.updatedAtMs)], ['Version', v.version],
  ]);
}

/** The volume's prune-pending record (metadata-types.ts `Volume.prune`). */
export function pruneText(v: Volume): string {
  if (v.prune === undefined) return 'none asked';
  if (!isPrunePending(v)) return `done (${v.prune.done} request(s))`;
  return `pending since ${formatTime(v.prune.requestedAtMs)} (request ${v.prune.requested}, done ${v.prune.done}; a data node's daemon frees it)`;
}

function treeStateText(v: Volume): string {
  if (v.treeState === 'copying') return 'being copied from its parent snapshot (not mountable yet)';
  if (v.treeState === 'restoring') return 'being restored from a snapshot (not mountable yet)';
  return 'ready';
}

export function storageClassTable(classes: StorageClass[]): string {
  return table(
    ['NAME', 'PROVISIONER', 'REPLICAS', 'ENCRYPTED', 'WRITE CONCERN', 'RECLAIM', 'BINDING', 'BUILT-IN'],
    classes.map((c) => [c.name, c.provisioner, c.replicas, c.encryption ? 'yes' : 'no', c.writeConcern, c.reclaimPolicy, c.volumeBindingMode, c.builtIn ? 'yes' : 'no']),
  );
}

export function storageClassDetails(c: StorageClass): string {
  return keyValues([
    ['Name', c.name], ['Provisioner', c.provisioner], ['Replicas', c.replicas],
    ['Encryption', c.encryption ? (c.encryptionAlgorithm ?? 'yes') : 'no'], ['Write concern', c.writeConcern],
    ['Zone spread', c.zoneSpread], ['Reclaim policy', c.reclaimPolicy], ['Binding mode', c.volumeBindingMode],
    ['Allowed topologies', c.allowedTopologies.join(',')], ['Mount options', c.mountOptions.join(',')],
    ['Parameters', formatLabels(c.parameters)], ['Built-in', c.builtIn ? 'yes' : 'no'], ['Created', formatTime(c.createdAtMs)],
  ]);
}

export function memberTable(members: Member[]): string {
  return table(
    ['ID', 'ADDRESS', 'ADMIN ADDRESS', 'ROLE', 'LEADER', 'HEALTHY', 'MATCH INDEX'],
    members.map((m) => [m.id, m.address, m.adminAddress, m.role, m.isLeader ? 'yes' : '', m.healthy === null ? '?' : m.healthy ? 'yes' : 'no', m.matchIndex]),
  );
}

export function dataNodeTable(nodes: DataNode[]): string {
  if (nodes.length === 0) return 'No data nodes registered.';
  return table(
    ['ID', 'ADDRESS', 'ZONE', 'STATE', 'CAPACITY', 'USED', 'LAST HEARTBEAT'],
    nodes.map((n) => [n.id, n.address, n.zone, n.state, formatBytes(n.capacityBytes), formatBytes(n.usedBytes), formatTime(n.lastHeartbeatAtMs)]),
  );
}

export function clusterSummary(s: ClusterStatus): string {
  const voters = s.members.filter((m) => m.role === 'voter').length;
  return keyValues([
    ['Answered by', s.nodeId], ['Leader', s.leaderId === null ? 'none' : `${s.leaderId} (${s.leaderAddress ?? '?'})`],
    ['Term', s.term], ['Commit index', s.commitIndex], ['Applied index', s.appliedIndex],
    ['Members', `${s.members.length} (${voters} voters, ${s.members.length - voters} learners)`],
    ['Data nodes', s.dataNodes.length], ['Degraded PGs', s.degradedPgs], ['Under-replicated PGs', s.underReplicatedPgs],
  ]);
}

export function snapshotTable(snaps: Snapshot[]): string {
  if (snaps.length === 0) return 'No snapshots.';
  return table(
    ['NAME', 'ID', 'VOLUME', 'SIZE', 'CUT EPOCH', 'CREATED'],
    snaps.map((s) => [s.name, s.id, s.volumeName, formatBytes(s.sizeBytes), s.cut, formatTime(s.createdAtMs)]),
  );
}

export function snapshotDetails(s: Snapshot): string {
  return keyValues([
    ['Name', s.name], ['ID', s.id], ['Volume', `${s.volumeName} (${s.volumeId})`],
    ['Size', `${formatBytes(s.sizeBytes)} (${s.sizeBytes} bytes)`], ['Block size', s.blockSizeBytes],
    ['Cut epoch', s.cut],
    ['File tree', s.fileTree === undefined ? '-' : `${s.fileTree.inodes} inode(s), ${formatBytes(s.fileTree.usedBytes)} in files`], ['Clones', (s.clones ?? []).join(', ') || '-'], ['Created', formatTime(s.createdAtMs)],
  ]);
}
