/**
 * Cluster-wide flush of a volume's mounts before its snapshot (issue #11; the guarantee is in
 * vfs/README.md, "Snapshots of a mounted volume"). A mount buffers what its programs wrote: new
 * files closed under a directory delegation (write-back) and dirty blocks of open files. Neither
 * is in the namespace or on the data plane yet, so a cut taken now would miss them.
 *
 * `fsFlushRequest(volume)` records a request, numbered, with the mount sessions that must answer:
 * the live read-write mount leases of the volume at that moment (a read-only mount buffers
 * nothing). Every mount manager watches (`waitForChange` wakes on these commands), flushes its
 * mount (what `vfs sync` does) and answers `fsFlushAck(volume, session, seq, error)`. The snapshot's
 * daemon waits on `fsFlushState(volume)` until nobody is left to wait for, then takes the cut.
 * A session whose lease ends (released, or expired: the node is dead) drops out of the wait; what
 * it had buffered was lost with it, so it cannot be in the snapshot.
 *
 * One record per volume, `fr/<volumeId>` (hot: one per volume that was ever snapshotted while
 * mounted; deleted with the volume); its lists are bounded by the volume's mount leases.
 */
import { invariant } from '../../../proto/errors.js';
import type { FsFlushState, Lease, Volume } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import { leasesOn } from './lease-store.js';
import { isLive } from './leases.js';
import { requireVolume } from './lookup.js';
import { Table, type StateReader, type Tx } from './tx.js';
import { checkInt, checkString, invalidArgument } from './validate.js';

/** An error a mount reports with its ack is kept up to this many characters. */
export const maxFlushErrorChars = 500;
/** Flush request numbers stay below this (far beyond any volume's life). */
export const maxFlushSeq = Number.MAX_SAFE_INTEGER;

/** `fr/<volumeId>`: the newest request and who has not answered it. */
export interface FlushRecord {
  seq: number;
  requestedAtMs: number;
  /** Sessions that have not acked `seq` yet. */
  waiting: string[];
  /** Sessions that acked `seq` with the error their flush failed with. */
  failed: { session: string; error: string }[];
}

/**
 * fsFlushRequest(volume): a new request to every live read-write mount session of the volume.
 * A request made while an older one is still open replaces it (its waiters are asked again).
 */
export function flushRequest(tx: Tx, ctx: CommandContext, ref: unknown): FsFlushState {
  const vol = requireVolume(tx, ref);
  const old = tx.get<FlushRecord>(Table.FlushRequest, vol.id);
  const sessions = leasesOn(tx, 'mount', vol.id).filter((l) => l.mode !== 'ro' && isLive(l, ctx.stampMs)).map((l) => l.id);
  const rec: FlushRecord = { seq: (old?.seq ?? 0) + 1, requestedAtMs: ctx.stampMs, waiting: sessions, failed: [] };
  invariant(rec.seq <= maxFlushSeq, `flush request number of ${vol.id} overflows`);
  tx.put(Table.FlushRequest, vol.id, rec);
  return stateOf(tx, vol, rec);
}

/** fsFlushAck(volume, session, seq, error|null): the session flushed (or failed to) for request `seq`; an older seq changes nothing. */
export function flushAck(tx: Tx, ref: unknown, sessionRaw: unknown, seqRaw: unknown, errorRaw: unknown): FsFlushState {
  const vol = requireVolume(tx, ref);
  const session = checkString('session', sessionRaw, 'pass the id of the mount lease this mount holds');
  const seq = checkInt('seq', seqRaw, 1, maxFlushSeq);
  if (errorRaw !== null && errorRaw !== undefined && typeof errorRaw !== 'string') throw invalidArgument('error must be a string or null', 'pass null when the flush succeeded');
  const rec = tx.get<FlushRecord>(Table.FlushRequest, vol.id);
  if (rec === undefined || rec.seq !== seq || !rec.waiting.includes(session)) return rec === undefined ? idle(vol) : stateOf(tx, vol, rec);
  const failed = typeof errorRaw === 'string' ? [...rec.failed, { session, error: errorRaw.slice(0, maxFlushErrorChars) }] : rec.failed;
  const next: FlushRecord = { ...rec, waiting: rec.waiting.filter((s) => s !== session), failed };
  tx.put(Table.FlushRequest, vol.id, next);
  return stateOf(tx, vol, next);
}

function idle(vol: Volume): FsFlushState {
  return { volumeId: vol.id, seq: 0, requestedAtMs: null, waiting: [], failed: [], lapsed: [] };
}

/** The request as a waiter sees it: sessions whose lease is gone (released, expired) are `lapsed`, not waited for. */
function stateOf(r: StateReader, vol: Volume, rec: FlushRecord): FsFlushState {
  const present = (s: string): boolean => r.get<Lease>(Table.Lease, s) !== undefined;
  return {
    volumeId: vol.id, seq: rec.seq, requestedAtMs: rec.requestedAtMs,
    waiting: rec.waiting.filter(present), failed: rec.failed, lapsed: rec.waiting.filter((s) => !present(s)),
  };
}

/** fsFlushState(volume): the newest request of the volume (seq 0: none ever). */
export function flushState(r: StateReader, ref: unknown): FsFlushState {
  const vol = requireVolume(r, ref);
  const rec = r.get<FlushRecord>(Table.FlushRequest, vol.id);
  return rec === undefined ? idle(vol) : stateOf(r, vol, rec);
}

/** fsFlushRequests(): every open request (someone still to answer), for the mount managers' watch. */
export function openFlushRequests(r: StateReader): FsFlushState[] {
  return r.ids(Table.FlushRequest).flatMap((id) => {
    const vol = r.get<Volume>(Table.Volume, id);
    const rec = r.get<FlushRecord>(Table.FlushRequest, id);
    if (vol === undefined || rec === undefined) return [];
    const s = stateOf(r, vol, rec);
    return s.waiting.length > 0 ? [s] : [];
  });
}

/** deleteVolume's part. */
export function dropFlushRecord(tx: Tx, vol: Volume): void {
  tx.del(Table.FlushRequest, vol.id);
}
