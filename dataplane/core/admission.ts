/**
 * Admission: whether a request that names an epoch may be served here, and with which refusal.
 * Pure functions over the part of the PG record they read (`AdmissionView`: `PgRecord` is one),
 * so the block server asks the same code the simulator proved (issue #13) instead of keeping
 * its own copy of these decisions.
 */
import type { CoreFaults } from './types.js';

/** What admission reads of a PG record: this node, the newest epoch it has seen, the placement. */
export interface AdmissionView {
  readonly self: string;
  /** The newest epoch this node has seen for the PG (recorded, or learned from a refusal). */
  readonly epoch: number;
  readonly faults: CoreFaults;
  readonly placement: { readonly epoch: number; readonly primary: string } | null;
}

export interface Refusal {
  code: 'NOT_PRIMARY' | 'STALE_EPOCH';
  message: string;
  /** The epoch the refusal was measured against (STALE_EPOCH: the newest seen; NOT_PRIMARY: the placement's). */
  epoch: number;
  /** NOT_PRIMARY: the primary the placement names (null when no placement is known). */
  primary: string | null;
}

/**
 * A request at an epoch older than the newest this node has seen comes from a deposed primary
 * or a client with a stale placement: refused, so nothing is served under an epoch that was
 * superseded (fencing; also what makes a snapshot's `fence` hold). The test-only
 * `acceptOldEpoch` break serves it.
 */
export function staleEpoch(v: AdmissionView, epoch: number): Refusal | null {
  if (epoch >= v.epoch || v.faults.acceptOldEpoch === true) return null;
  return { code: 'STALE_EPOCH', message: `epoch ${epoch} is older than ${v.epoch}`, epoch: v.epoch, primary: null };
}

/**
 * A client write, or a client read that names an epoch (the block server's `admitPrimaryRead`):
 * not stale, and addressed to the placement's primary — as the core admits both (`primary.ts`).
 */
export function admitClientWrite(v: AdmissionView, epoch: number): Refusal | null {
  const stale = staleEpoch(v, epoch);
  if (stale !== null) return stale;
  if (v.placement === null || v.placement.primary !== v.self) {
    return { code: 'NOT_PRIMARY', message: `${v.self} is not the primary`, epoch: v.placement?.epoch ?? v.epoch, primary: v.placement?.primary ?? null };
  }
  return null;
}

/**
 * A read between data nodes that names an epoch (a journal, a PG's blocks: catch-up, peering's
 * probes, resync): any member serves it at a current epoch; only a stale one is refused.
 */
export function admitRead(v: AdmissionView, epoch: number): Refusal | null {
  return staleEpoch(v, epoch);
}

/**
 * The test-only `readFromReplica` break: a replica of the PG (`replicaCopy`: this node is a member
 * but not the primary, its copy neither being replaced nor handed back; asked only when the break
 * is set) serves a client read at once, whatever epoch the read names and however far behind the
 * copy is. Without the break always false: a read goes through `admitClientWrite` (the block
 * server) or the primary's admission (the core). Both ask this.
 */
export function replicaServesAnyRead(faults: CoreFaults, replicaCopy: () => boolean): boolean {
  return faults.readFromReplica === true && replicaCopy();
}
