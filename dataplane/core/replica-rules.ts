/**
 * The replica's decisions the block server takes with the core's code (issue #13, step 2): which
 * forwarded ops an epoch check admits, how far the journal may be trimmed, and when a gap in the
 * journal has been open long enough to pull it from the primary. Pure: the core's replica path
 * (`replica.ts`) calls them, and the server's asks `admitReplicaOp` for a full copy's batches
 * (its gap timing is the record's own `tick`, `../server/replica-path.ts`).
 */
import { staleEpoch, type AdmissionView, type Refusal } from './admission.js';

/**
 * A forward, replicate batch op, catch-up request or peering at `epoch`: refused STALE_EPOCH when
 * older than the newest epoch this copy has seen (a deposed primary's late message must not land
 * behind the new primary's back). The test-only `acceptOldEpoch` break admits it.
 */
export function admitReplicaOp(v: AdmissionView, epoch: number): Refusal | null {
  return staleEpoch(v, epoch);
}

const noFaults = {};

/**
 * Peering at `epoch`: refused STALE_EPOCH when older than the newest epoch this copy has seen —
 * whatever the test-only breaks say (`acceptOldEpoch` is about forwards and client requests): a
 * deposed primary that installed its old epoch again could assign seqs the group gave away.
 */
export function admitPeering(v: AdmissionView, epoch: number): Refusal | null {
  return staleEpoch({ self: v.self, epoch: v.epoch, faults: noFaults, placement: v.placement }, epoch);
}

/**
 * The primary allows trimming up to `trimSeq` (every replica holds it durably); this copy follows,
 * never past its own contiguous watermark (`applied`), in steps of at least `everyEntries` past the
 * last trim (`trimmedTo`). Null: do not trim now.
 */
export function replicaTrimTo(trimSeq: number, applied: number, trimmedTo: number, everyEntries: number): number | null {
  const upto = Math.min(trimSeq, applied);
  return upto - trimmedTo < everyEntries ? null : upto;
}

export interface GapCheck {
  /** When the gap now open was first seen (null: no gap). */
  since: number | null;
  /** Pull the missing entries from the primary now (then `since` restarts at `now`). */
  pull: boolean;
}

/**
 * Forwards may arrive out of order, so a gap in the journal (seqs held above the contiguous
 * watermark) is given `grace` (ticks in the core, milliseconds in the server) to close; one still
 * open after it means missed forwards, pulled from the primary — again every `grace` while open.
 */
export function gapCheck(since: number | null, open: boolean, now: number, grace: number): GapCheck {
  if (!open) return { since: null, pull: false };
  if (since === null) return { since: now, pull: false };
  if (now - since < grace) return { since, pull: false };
  return { since: now, pull: true };
}
