/**
 * The replica's side of a PG: refuse anything older than the newest epoch seen, store forwards
 * (out of order is fine, the watermark is contiguous), answer peering with what the journal holds,
 * pull gaps and catch-up requests from the primary's journal, trim behind the primary.
 */
import { highest, raiseEpoch, storeAction, type PgRecord } from './record.js';
import { admitPeering, admitReplicaOp, gapCheck, replicaTrimTo } from './replica-rules.js';
import type { PeerMsg, PgAction } from './types.js';

/** A message at an epoch older than the newest seen is refused (unless the test-only break says otherwise). */
function tooOld(c: PgRecord, epoch: number): boolean {
  return admitReplicaOp(c, epoch) !== null;
}

/**
 * A message at an epoch above the known placement is dropped until the placement is read again:
 * only the placement tells whether this copy was added back after it missed epochs (then it is
 * stale and must not record the epoch before it dropped its copy). Simulator seed 513: a restarted
 * node answered peering before its first placement, recorded the epoch, and its old copy passed
 * for a current one.
 */
function unknownEpoch(c: PgRecord, epoch: number, out: PgAction[]): boolean {
  if ((c.placement !== null && epoch <= c.placement.epoch) || c.faults.recordUnknownEpoch === true) return false;
  out.push({ t: 'refreshPlacement' });
  return true;
}

export function onForward(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'forward' }>, out: PgAction[]): void {
  const seqs = m.entries.map((e) => e.seq);
  if (unknownEpoch(c, m.epoch, out)) return;
  if (c.rejoining || c.handBack !== null) { out.push({ t: 'send', to: from, msg: { t: 'nack', epoch: m.epoch, seqs, newer: m.epoch } }); return; }
  if (tooOld(c, m.epoch)) { out.push({ t: 'send', to: from, msg: { t: 'nack', epoch: m.epoch, seqs, newer: c.epoch } }); return; }
  raiseEpoch(c, m.epoch, out);
  const fresh = m.entries.filter((e) => e.seq > c.applied && !c.held.has(e.seq));
  storeAction(c, out, fresh, null, m.sync, { kind: 'replicaAck', to: from, epoch: m.epoch, seqs, sync: m.sync, applied: 0 });
  const wait = c.storeWaits.get(c.nextToken - 1);
  if (wait?.kind === 'replicaAck') wait.applied = c.applied;
  maybeTrimReplica(c, m.trimSeq, out);
  if (c.held.size > 0 && c.gapSince === null) c.gapSince = c.now;
}

/** Peering by a (new) primary: record its epoch, then say what this journal holds from `fromSeq` on. */
export function onPeer(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'peer' }>, out: PgAction[]): void {
  if (admitPeering(c, m.epoch) !== null) { out.push({ t: 'send', to: from, msg: { t: 'nack', epoch: m.epoch, seqs: [], newer: c.epoch } }); return; }
  if (unknownEpoch(c, m.epoch, out)) return;
  if (c.rejoining || c.handBack !== null) {
    // A stale copy answers as empty: its seqs were given to other writes while it was away.
    out.push({ t: 'send', to: from, msg: { t: 'peerAnswer', epoch: m.epoch, applied: 0, highest: 0, fill: { entries: [], full: null } } });
    return;
  }
  raiseEpoch(c, m.epoch, out);
  out.push({ t: 'sendFill', to: from, fromSeq: m.fromSeq, msg: { t: 'peerAnswer', epoch: m.epoch, applied: c.applied, highest: highest(c) } });
}

export function onJournal(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'journal' }>, out: PgAction[]): void {
  if (c.rejoining || c.handBack !== null || tooOld(c, m.epoch) || unknownEpoch(c, m.epoch, out)) return;
  raiseEpoch(c, m.epoch, out);
  const entries = m.fill.entries.filter((e) => e.seq > c.applied && !c.held.has(e.seq));
  const full = m.fill.full !== null && m.fill.full.applied > c.applied ? m.fill.full : null;
  storeAction(c, out, entries, full, true, { kind: 'replicaAck', to: from, epoch: m.epoch, seqs: [], sync: true, applied: 0 });
  const wait = c.storeWaits.get(c.nextToken - 1);
  if (wait?.kind === 'replicaAck') wait.applied = c.applied;
  c.gapSince = c.held.size > 0 ? c.now : null;
}

export function onCatchUp(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'catchUp' }>, out: PgAction[]): void {
  if (c.rejoining || c.handBack !== null || tooOld(c, m.epoch) || unknownEpoch(c, m.epoch, out)) return;
  raiseEpoch(c, m.epoch, out);
  out.push({ t: 'send', to: from, msg: { t: 'pull', epoch: m.epoch, fromSeq: c.applied + 1 } });
}

export function onReplicaStored(c: PgRecord, w: { to: string; epoch: number; seqs: number[]; sync: boolean; applied: number }, out: PgAction[]): void {
  out.push({ t: 'send', to: w.to, msg: { t: 'ack', epoch: w.epoch, seqs: w.seqs, durable: w.sync, applied: w.applied } });
}

/** The primary trims behind every replica; this copy follows, never past its own watermark. */
function maybeTrimReplica(c: PgRecord, trimSeq: number, out: PgAction[]): void {
  const upto = replicaTrimTo(trimSeq, c.applied, c.trimmedTo, c.limits.trimEveryEntries);
  if (upto === null) return;
  c.trimmedTo = upto;
  out.push({ t: 'trim', upto });
}

/** A gap still open after `gapTicks` means missed forwards: pull them from the primary. */
export function replicaTick(c: PgRecord, out: PgAction[]): void {
  const g = gapCheck(c.gapSince, c.held.size > 0, c.now, c.limits.gapTicks);
  if (g.pull && c.placement === null) return;
  c.gapSince = g.since;
  if (g.pull && c.placement !== null) out.push({ t: 'send', to: c.placement.primary, msg: { t: 'pull', epoch: c.placement.epoch, fromSeq: c.applied + 1 } });
}
