/**
 * Lease rules. A lease whose `expiresAtMs <= stampMs` is gone: it never blocks anyone.
 * - `pg-primary`: one holder per PG.
 * - `mount`, by the volume's access mode: ReadWriteOnce admits a single holder (of any mode),
 *   ReadOnlyMany only `ro` holders, ReadWriteMany anyone.
 */
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import type { AccessMode, Lease, LeaseKind } from '../../../proto/metadata-types.js';
import { invalidArgument } from './validate.js';

/** Leases are renewed well within this; a longer ttl would keep a dead holder's claim for too long. */
export const maxLeaseTtlMs = 10 * 60 * 1000;
export const minLeaseTtlMs = 1;

export function isLive(lease: Lease, stampMs: number): boolean {
  return lease.expiresAtMs > stampMs;
}

/**
 * Throws LEASE_CONFLICT (or INVALID_ARGUMENT for a mode the volume never allows) when `holder`
 * may not hold a lease of this kind and mode next to the live `others` on the same resource.
 */
export function checkLeaseConflict(kind: LeaseKind, resource: string, holder: string, mode: 'rw' | 'ro' | null,
  others: readonly Lease[], accessMode: AccessMode | null): void {
  const rivals = others.filter((l) => l.holder !== holder);
  if (kind === 'pg-primary') {
    const rival = rivals[0];
    if (rival !== undefined) throw conflict(resource, rival, 'the PG has a primary; wait for its lease to expire or be released');
    return;
  }
  if (accessMode === 'ReadOnlyMany' && mode === 'rw') {
    throw invalidArgument(`volume ${resource} is ReadOnlyMany and cannot be mounted read-write`, 'mount it read-only (mode ro)');
  }
  if (accessMode === 'ReadWriteOnce') {
    const rival = rivals[0];
    if (rival !== undefined) throw conflict(resource, rival, 'a ReadWriteOnce volume has one user at a time: unmount it there first');
  }
}

function conflict(resource: string, rival: Lease, hint: string): GalleonError {
  return new GalleonError(ErrorCode.LEASE_CONFLICT, `${rival.kind} lease on ${resource} is held by ${rival.holder} until ${rival.expiresAtMs}`,
    { hint, details: { holder: rival.holder, leaseId: rival.id, expiresAtMs: rival.expiresAtMs } });
}

/**
 * A renew or release that carries a holder scope (`{ holder }`, added by the gRPC edge from the
 * caller's node certificate, metadata/service/node-claims.ts) acts only on that holder's lease:
 * checked in the apply, so it holds whatever happened since the caller read the lease id.
 * Without a scope (plaintext, in-process callers, entries written before scopes): as before.
 */
export function requireLeaseHolder(lease: Lease, scope: unknown, verb: 'renew' | 'release'): void {
  if (scope === undefined || scope === null) return;
  const holder = typeof scope === 'object' ? (scope as { holder?: unknown }).holder : undefined;
  if (typeof holder !== 'string' || holder === '') throw invalidArgument('a holder scope is {"holder": NODE}', 'leave the scope out, or name the holder');
  if (lease.holder === holder) return;
  throw new GalleonError(ErrorCode.PERMISSION_DENIED, `lease ${lease.id} is held by ${lease.holder}; node ${holder} may not ${verb} it`, {
    hint: 'a node renews and releases only its own leases, with its own certificate',
  });
}
