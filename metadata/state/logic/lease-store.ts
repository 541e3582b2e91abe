/**
 * Leases with an index by resource (`lr/<kind>:<resource>` -> lease ids, sorted), kept in the
 * same transaction as the leases, so granting a lease reads the few leases on its resource
 * instead of every lease in the cluster.
 */
import { invariant } from '../../../proto/errors.js';
import type { Lease, LeaseKind } from '../../../proto/metadata-types.js';
import { Table, compareIds, type StateReader, type Tx } from './tx.js';
import { dropSessionHandles } from './ns-commands.js';
import { dropSessionDelegations } from './ns-delegation.js';

function indexId(kind: LeaseKind, resource: string): string {
  return `${kind}:${resource}`;
}

export function leasesOn(r: StateReader, kind: LeaseKind, resource: string): Lease[] {
  const ids = r.get<string[]>(Table.LeaseIndex, indexId(kind, resource)) ?? [];
  return ids.map((id) => {
    const l = r.get<Lease>(Table.Lease, id);
    invariant(l !== undefined, `lease index ${kind}:${resource} names missing lease ${id}`);
    return l;
  });
}

export function putLease(tx: Tx, lease: Lease): void {
  const old = tx.get<Lease>(Table.Lease, lease.id);
  invariant(old === undefined || (old.kind === lease.kind && old.resource === lease.resource), `lease ${lease.id} may not move to another resource`);
  tx.put(Table.Lease, lease.id, lease);
  if (old !== undefined) return;
  const key = indexId(lease.kind, lease.resource);
  const ids = tx.get<string[]>(Table.LeaseIndex, key) ?? [];
  tx.put(Table.LeaseIndex, key, [...ids, lease.id].sort(compareIds));
}

export function deleteLease(tx: Tx, id: string): void {
  const lease = tx.get<Lease>(Table.Lease, id);
  if (lease === undefined) return;
  tx.del(Table.Lease, id);
  dropSessionHandles(tx, lease);
  dropSessionDelegations(tx, lease);
  const key = indexId(lease.kind, lease.resource);
  const ids = (tx.get<string[]>(Table.LeaseIndex, key) ?? []).filter((x) => x !== id);
  if (ids.length === 0) tx.del(Table.LeaseIndex, key);
  else tx.put(Table.LeaseIndex, key, ids);
}
