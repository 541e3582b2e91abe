/** Reads shared by commands and queries: each throws the NOT_FOUND error a user should see. */
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import type { DataNode, PlacementGroup, StorageClass, Volume } from '../../../proto/metadata-types.js';
import { Table, type StateReader } from './tx.js';
import { checkInt } from './validate.js';

export const hints = {
  listClasses: 'list classes with: galleon storage-class list',
  listVolumes: 'list volumes with: galleon volume list',
  listNodes: 'list data nodes with: galleon cluster status',
  addDataNode: 'add one with: galleon daemon start --roles data --peer-addresses <metadata address>',
} as const;

export function findVolume(r: StateReader, ref: unknown): Volume | undefined {
  if (typeof ref !== 'string' || ref.length === 0) return undefined;
  const byId = r.get<Volume>(Table.Volume, ref);
  if (byId !== undefined) return byId;
  const id = r.get<string>(Table.VolumeName, ref);
  return id === undefined ? undefined : r.get<Volume>(Table.Volume, id);
}

export function requireVolume(r: StateReader, ref: unknown): Volume {
  if (typeof ref !== 'string' || ref.length === 0) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'a volume name or id is required', { hint: hints.listVolumes });
  }
  const v = findVolume(r, ref);
  if (v === undefined) throw new GalleonError(ErrorCode.VOLUME_NOT_FOUND, `volume ${JSON.stringify(ref)} not found`, { hint: hints.listVolumes });
  return v;
}

/**
 * `requireVolume` for a command that carries the tenant it acts for (`TenantScope`, added by the
 * auth guard): a volume of another tenant, or of none, answers exactly as a missing one, in the
 * same apply as the change it guards.
 */
export function requireScopedVolume(r: StateReader, ref: unknown, scope: unknown): Volume {
  const v = requireVolume(r, ref);
  const tenant = scopeTenant(scope);
  if (tenant === null) return v;
  if (v.tenant !== tenant) throw new GalleonError(ErrorCode.VOLUME_NOT_FOUND, `volume ${JSON.stringify(ref)} not found`, { hint: hints.listVolumes });
  return v;
}

/** The tenant a `TenantScope` names; null without one; INVALID_ARGUMENT for a malformed one. */
export function scopeTenant(scope: unknown): string | null {
  if (scope === undefined || scope === null) return null;
  const tenant = typeof scope === 'object' ? (scope as { tenant?: unknown }).tenant : undefined;
  if (typeof tenant !== 'string' || tenant === '') throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'a tenant scope is {"tenant": NAME}', { hint: 'leave the scope out, or name the tenant' });
  return tenant;
}

export function requireStorageClass(r: StateReader, name: unknown): StorageClass {
  const c = typeof name === 'string' ? r.get<StorageClass>(Table.StorageClass, name) : undefined;
  if (c === undefined) {
    throw new GalleonError(ErrorCode.STORAGE_CLASS_NOT_FOUND, `storage class ${JSON.stringify(name)} not found`, { hint: hints.listClasses });
  }
  return c;
}

export function requireDataNode(r: StateReader, id: unknown): DataNode {
  const n = typeof id === 'string' ? r.get<DataNode>(Table.DataNode, id) : undefined;
  if (n === undefined) {
    throw new GalleonError(ErrorCode.NODE_NOT_FOUND, `data node ${JSON.stringify(id)} is not registered`,
      { hint: 'a data node registers itself when it starts; check that its daemon runs with --roles data' });
  }
  return n;
}

export function placementOf(r: StateReader, volumeId: string): PlacementGroup[] {
  return r.get<PlacementGroup[]>(Table.Placement, volumeId) ?? [];
}

export function listOf<T>(r: StateReader, table: Table): T[] {
  return r.ids(table).map((id) => r.get<T>(table, id)).filter((v): v is T => v !== undefined);
}

/** A volume's PG `pgRaw` (checked), with the volume and its whole placement. */
export function requireGroup(tx: StateReader, ref: unknown, pgRaw: unknown): { vol: Volume; pgs: PlacementGroup[]; group: PlacementGroup } {
  const vol = requireVolume(tx, ref);
  const pgNo = checkInt('pg', pgRaw, 0, vol.pgCount - 1);
  const pgs = placementOf(tx, vol.id);
  const group = pgs.find((p) => p.pg === pgNo);
  invariant(group !== undefined, `volume ${vol.id} has no PG ${pgNo} although pgCount is ${vol.pgCount}`);
  return { vol, pgs, group };
}
