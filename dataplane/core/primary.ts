/**
 * The primary's side of a PG: claim the epoch, peer (install the epoch on every replica and pull
 * whatever any of them holds beyond this node's journal), then order writes, forward them and
 * answer each at its concern; fence on a newer epoch; trim the journal behind the slowest replica.
 */
import { invariant } from '../../proto/errors.js';
import { evaluateWriteConcern, primaryMustSync, replicasMustSync, type ReplicaAck } from '../logic/write-concern.js';
import {
  failPending, highest, others, raiseEpoch, reply, setPhase, storeAction, fence, type PendingWrite, type PgRecord,
} from './record.js';
import { staleEpoch } from './admission.js';
import { behindAfterPeering } from './peering-rules.js';
import { nextPeeringMove, peeringProbed, startPeering, type PeeringPlan } from './peering-plan.js';
import { everyReplicaAnswered, handBackConcern, takeHandedBack } from './rules.js';
import type { BlockVersion, Entry, JournalFill, PeerMsg, PgAction, PgPlacement, Version, WriteConcern } from './types.js';
import { dataVersion } from './types.js';

export function startClaim(c: PgRecord, out: PgAction[]): void {
  invariant(c.placement !== null && c.placement.primary === c.self, 'only the placement\'s primary claims');
  setPhase(c, 'claiming');
  c.lease = false;
  c.peerAnswers.clear();
  c.replicaApplied.clear();
  c.outOfSync.clear();
  out.push({ t: 'claim', epoch: c.placement.epoch });
}

/** The claim of this epoch was granted: install it on every replica and ask what each holds. */
export function onClaimed(c: PgRecord, epoch: number, out: PgAction[]): void {
  if (c.role !== 'primary' || c.phase !== 'claiming' || c.placement?.epoch !== epoch) return;
  raiseEpoch(c, epoch, out);
  setPhase(c, 'peering');
  askPeers(c, out);
  if (others(c).length === 0) finishPeering(c, out);
}

export function askPeers(c: PgRecord, out: PgAction[]): void {
  const epoch = c.placement?.epoch ?? 0;
  for (const id of others(c)) if (!c.peerAnswers.has(id)) out.push({ t: 'send', to: id, msg: { t: 'peer', epoch, fromSeq: c.applied + 1 } });
}

export function onPeerAnswer(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'peerAnswer' }>, out: PgAction[]): void {
  if (c.role !== 'primary' || c.phase !== 'peering' || m.epoch !== c.placement?.epoch || !others(c).includes(from)) return;
  c.peerAnswers.set(from, { applied: m.applied, highest: m.highest, fill: m.fill });
  if (others(c).every((id) => c.peerAnswers.has(id))) finishPeering(c, out);
}

/**
 * Every replica answered: play the peering plan (`peering-plan.ts`, the moves the block server
 * carries out with journal reads) over the fills the answers carried — pull what members hold
 * beyond this node's journal (a full copy when one's journal was trimmed past it), record a noop
 * at any seq below the group's highest that nobody holds (its writer died before it landed) —
 * and start assigning above the highest seq any member holds, so no seq is given to two writes.
 */
function finishPeering(c: PgRecord, out: PgAction[]): void {
  const epoch = c.placement?.epoch ?? 0;
  const answers = [...c.peerAnswers].map(([id, a]) => ({ id, state: { applied: a.applied, highest: a.highest } }));
  const start = startPeering(highest(c), answers, true, Number.POSITIVE_INFINITY, c.faults);
  invariant(start.ok, 'the core peers once every replica answered');
  const j: VirtualJournal = { applied: c.applied, held: new Set(c.held), entries: new Map(), full: null };
  playPlan(c, start.plan, j, epoch);
  c.nextSeq = Math.max(start.plan.groupHighest, c.lastAssigned) + 1;
  const entries = [...j.entries.values()].sort((a, b) => a.seq - b.seq);
  storeAction(c, out, entries, j.full, true, { kind: 'peered', epoch });
}

/** What peering will have stored once its store action lands: the watermark it reaches, the seqs held, what it adds. */
interface VirtualJournal {
  applied: number;
  held: Set<number>;
  entries: Map<number, Entry>;
  full: { blocks: BlockVersion[]; applied: number } | null;
}

/** The plan's moves over the answers' fills: a pull takes a member's fill, a probe asks the fills, a noop fills a dead seq. */
function playPlan(c: PgRecord, plan: PeeringPlan, j: VirtualJournal, epoch: number): void {
  for (;;) {
    const move = nextPeeringMove(plan, j.applied, false);
    switch (move.t) {
      case 'pull': takeFill(j, c.peerAnswers.get(move.from)?.fill ?? null); break;
      case 'probe': peeringProbed(plan, move.seq, [...c.peerAnswers.values()].some((a) => a.fill.entries.some((e) => e.seq === move.seq))); break;
      case 'noop': addEntry(j, { seq: move.seq, epoch, block: 0, value: null }); break;
      case 'done': return;
      case 'wait': case 'fail': invariant(false, `the core's peering holds every fill: no ${move.t}`);
    }
  }
}

/** A member's fill onto the virtual journal: its full copy when it moves the watermark, then every entry above it not held. */
function takeFill(j: VirtualJournal, fill: JournalFill | null): void {
  if (fill === null) return;
  if (fill.full !== null && fill.full.applied > j.applied) {
    j.full = fill.full;
    j.applied = fill.full.applied;
    for (const s of [...j.held]) if (s <= j.applied) j.held.delete(s);
    for (const s of [...j.entries.keys()]) if (s <= j.applied) j.entries.delete(s);
  }
  for (const e of fill.entries) if (e.seq > j.applied && !j.held.has(e.seq)) addEntry(j, e);
}

function addEntry(j: VirtualJournal, e: Entry): void {
  j.entries.set(e.seq, e);
  j.held.add(e.seq);
  while (j.held.delete(j.applied + 1)) j.applied++;
}

/** The pulled entries are durable: serve, and tell replicas that are behind to catch up. */
export function onPeered(c: PgRecord, epoch: number, out: PgAction[]): void {
  if (c.role !== 'primary' || c.phase !== 'peering' || c.placement?.epoch !== epoch) return;
  setPhase(c, 'active');
  // A peering answer's watermark may not be durable yet: trimming waits for durable acks.
  const behind = behindAfterPeering([...c.peerAnswers].map(([id, a]) => [id, a.applied] as const), c.applied);
  for (const id of behind) out.push({ t: 'send', to: id, msg: { t: 'catchUp', epoch } });
}

export function onWrite(c: PgRecord, ev: { req: number; block: number; value: string; concern: WriteConcern; epoch: number }, out: PgAction[]): void {
  const refusal = admit(c, ev.epoch);
  if (refusal !== null) { reply(out, ev.req, refusal.code, refusal.message); return; }
  const replicas = c.placement?.replicas ?? [];
  const upfront = evaluateWriteConcern(ev.concern, replicas, c.self, new Map());
  if (upfront.state === 'impossible') { reply(out, ev.req, 'WRITE_CONCERN_UNMET', `write concern ${ev.concern} cannot be met: ${upfront.reason}`); return; }
  if (c.pending.size >= c.limits.maxPendingWrites) { reply(out, ev.req, 'UNAVAILABLE', 'too many writes waiting for their concern'); return; }
  order(c, ev.req, { block: ev.block, value: ev.value }, ev.concern, null, out);
}

type Refusal = { code: 'NOT_PRIMARY' | 'STALE_EPOCH' | 'UNAVAILABLE'; message: string };

/** Whether this node may serve a request the client addressed at `epoch` as primary (admission.ts, then the role and phase). */
export function admit(c: PgRecord, epoch: number): Refusal | null {
  const stale = staleEpoch(c, epoch);
  if (stale !== null) return stale;
  if (c.role !== 'primary' || c.placement === null) return { code: 'NOT_PRIMARY', message: `${c.self} is not the primary` };
  if (epoch > c.placement.epoch) return { code: 'UNAVAILABLE', message: `epoch ${epoch} is not known here yet` };
  if (c.phase !== 'active') return { code: 'UNAVAILABLE', message: `primary is ${c.phase}` };
  if (!c.lease) return { code: 'UNAVAILABLE', message: 'primary holds no lease' };
  return null;
}

/** Take the next seq, store it locally and forward it to every other replica. */
function order(c: PgRecord, req: number | null, w: { block: number; value: string; origin?: Version }, concern: WriteConcern, handBackFrom: string | null, out: PgAction[]): void {
  const epoch = c.placement?.epoch ?? 0;
  const seq = c.nextSeq++;
  invariant(seq > c.lastAssigned && seq > highest(c), `seq ${seq} is given to one write only`);
  c.lastAssigned = seq;
  const entry: Entry = w.origin === undefined ? { seq, epoch, block: w.block, value: w.value } : { seq, epoch, block: w.block, value: w.value, origin: w.origin };
  const acks = new Map<string, ReplicaAck>([[c.self, 'accepted']]);
  const p: PendingWrite = { req, entry, concern, acks, sentAt: new Map(), attempts: new Map(), answered: false, handBackFrom };
  const peers = others(c);
  for (const id of peers) acks.set(id, 'pending');
  c.pending.set(seq, p);
  storeAction(c, out, [entry], null, primaryMustSync(concern), { kind: 'primary', seq });
  for (const id of peers) sendForward(c, p, id, out);
  settle(c, seq, out);
}

function sendForward(c: PgRecord, p: PendingWrite, to: string, out: PgAction[]): void {
  p.sentAt.set(to, c.now);
  p.attempts.set(to, (p.attempts.get(to) ?? 0) + 1);
  out.push({ t: 'send', to, msg: { t: 'forward', epoch: p.entry.epoch, entries: [p.entry], sync: replicasMustSync(p.concern), trimSeq: c.trimmedTo } });
}

/** Answer the write once its concern is decided; forget it once no replica answer is outstanding. */
export function settle(c: PgRecord, seq: number, out: PgAction[]): void {
  const p = c.pending.get(seq);
  if (p === undefined) return;
  if (!p.answered) {
    const counted: WriteConcern = c.faults.ackReplicatedAfterLocalWrite === true && p.concern === 'replicated' ? 'acknowledged' : p.concern;
    const v = evaluateWriteConcern(counted, c.placement?.replicas ?? [], c.self, p.acks);
    const waitForAll = counted === 'replicated' && c.faults.ackBeforeOutOfSyncMark !== true;
    if (v.state === 'satisfied' && (!waitForAll || everyReplicaSettled(c, p))) answerSatisfied(c, p, out);
    else if (v.state === 'impossible') answerFailed(p, out, 'WRITE_CONCERN_UNMET', v.reason);
  }
  if (p.answered && !anyPending(p.acks)) c.pending.delete(seq);
}

function anyPending(acks: ReadonlyMap<string, ReplicaAck>): boolean {
  for (const a of acks.values()) if (a === 'pending') return true;
  return false;
}

/**
 * `replicated` also waits until every other replica either holds the write durably or has been
 * taken out of the in-sync set (the metadata service confirmed a floor at or above the write's
 * seq). Without this, the primary and the replica that acknowledged could both die before the
 * out-of-sync mark of a third replica commits, and that replica — still counted in sync, lacking
 * the write — would be promoted (the window `server/README.md` described; simulator seed 10 found
 * it in its first 20 seeds).
 */
function everyReplicaSettled(c: PgRecord, p: PendingWrite): boolean {
  if (c.outOfSync.size === 0) return everyReplicaAnswered(c.self, p.entry.seq, p.acks, noFloors);
  const floors = new Map<string, number>();
  for (const [id, m] of c.outOfSync) if (m.committed > 0) floors.set(id, m.committed);
  return everyReplicaAnswered(c.self, p.entry.seq, p.acks, floors);
}
const noFloors: ReadonlyMap<string, number> = new Map();

function answerSatisfied(c: PgRecord, p: PendingWrite, out: PgAction[]): void {
  p.answered = true;
  if (!c.lease) {
    if (p.req !== null) reply(out, p.req, 'UNAVAILABLE', 'lease lapsed before the write was acknowledged');
    return;
  }
  invariant(c.phase === 'active' && c.placement?.epoch === c.epoch, 'a fenced primary acknowledges nothing');
  if (p.req !== null) out.push({ t: 'answer', req: p.req, ok: true, seq: p.entry.seq, epoch: p.entry.epoch, concern: p.concern, acks: p.acks });
  if (p.handBackFrom !== null) out.push({ t: 'send', to: p.handBackFrom, msg: { t: 'handBackAck', epoch: p.entry.epoch, blocks: [p.entry.block] } });
}

function answerFailed(p: PendingWrite, out: PgAction[], code: 'WRITE_CONCERN_UNMET', message: string): void {
  p.answered = true;
  if (p.req !== null) reply(out, p.req, code, message);
}

export function onOwnStored(c: PgRecord, seq: number, out: PgAction[]): void {
  const p = c.pending.get(seq);
  if (p === undefined) return;
  p.acks.set(c.self, primaryMustSync(p.concern) ? 'durable' : 'accepted');
  settle(c, seq, out);
}

export function onAck(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'ack' }>, out: PgAction[]): void {
  if (c.role !== 'primary' || m.epoch !== c.placement?.epoch || c.phase === 'fenced') return;
  if (m.durable) c.replicaApplied.set(from, Math.max(c.replicaApplied.get(from) ?? 0, m.applied));
  for (const seq of m.seqs) {
    const p = c.pending.get(seq);
    if (p === undefined || p.acks.get(from) !== 'pending') continue;
    p.acks.set(from, m.durable ? 'durable' : 'accepted');
    settle(c, seq, out);
  }
  maybeTrim(c, out);
}

export function onNack(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'nack' }>, out: PgAction[]): void {
  if (c.role !== 'primary') return;
  if (m.newer > c.epoch) { raiseEpoch(c, m.newer, out); if (c.phase !== 'fenced') fence(c, out); return; }
  if (m.epoch !== c.placement?.epoch) return;
  for (const seq of m.seqs) replicaFailed(c, seq, from, out);
}

function replicaFailed(c: PgRecord, seq: number, replica: string, out: PgAction[]): void {
  const p = c.pending.get(seq);
  if (p === undefined || p.acks.get(replica) !== 'pending') return;
  p.acks.set(replica, 'failed');
  markOutOfSync(c, replica, out);
  settle(c, seq, out);
}

/** The replica failed a write: it leaves the in-sync set until it holds everything assigned so far. */
function markOutOfSync(c: PgRecord, replica: string, out: PgAction[]): void {
  const m = c.outOfSync.get(replica);
  if (m !== undefined && m.floor >= c.lastAssigned) return;
  c.outOfSync.set(replica, { floor: c.lastAssigned, committed: m?.committed ?? 0 });
  out.push({ t: 'outOfSync', replica, floor: c.lastAssigned, epoch: c.placement?.epoch ?? 0 });
}

export function onMarked(c: PgRecord, replica: string, floor: number, out: PgAction[]): void {
  const m = c.outOfSync.get(replica);
  // An older floor committing still covers the writes at or below it (a newer one may be in flight).
  if (m === undefined || floor <= m.committed) return;
  m.committed = Math.min(floor, m.floor);
  for (const seq of [...c.pending.keys()]) settle(c, seq, out);
}

export function onPull(c: PgRecord, from: string, m: Extract<PeerMsg, { t: 'pull' }>, out: PgAction[]): void {
  if (c.role !== 'primary' || c.phase !== 'active' || m.epoch !== c.placement?.epoch || !others(c).includes(from)) return;
  out.push({ t: 'sendFill', to: from, fromSeq: m.fromSeq, msg: { t: 'journal', epoch: m.epoch } });
}

/** Trim behind the slowest replica's durable watermark (never past what this node applied). */
function maybeTrim(c: PgRecord, out: PgAction[]): void {
  let low = c.applied;
  if (c.faults.trimBeforeReplicasApplied !== true) for (const id of others(c)) low = Math.min(low, c.replicaApplied.get(id) ?? 0);
  if (low - c.trimmedTo < c.limits.trimEveryEntries) return;
  c.trimmedTo = low;
  out.push({ t: 'trim', upto: low });
}

/**
 * A replaced node hands back blocks it holds: each one whose data is newer (`dataVersion`: by
 * epoch, then seq, of the write that first made it) than this primary's own becomes a new `replicated` write (`durable` when the PG has no other
 * replica); older ones are declined at once. The comparison and the new seq happen in one step,
 * so a client write to the block cannot slip in between.
 */
export function onHandBackOffers(c: PgRecord, ev: { from: string; epoch: number; offers: BlockVersion[]; current: (BlockVersion | null)[] }, out: PgAction[]): void {
  if (admit(c, ev.epoch) !== null || ev.epoch !== c.placement?.epoch) return;
  const declined: number[] = [];
  const concern = handBackConcern(others(c).length);
  ev.offers.forEach((o, i) => {
    const cur = ev.current[i] ?? null;
    const waiting = [...c.pending.values()].some((p) => p.handBackFrom === ev.from && p.entry.block === o.block);
    if (waiting) return;
    if (takeHandedBack(o, cur, c.faults)) {
      order(c, null, { block: o.block, value: o.value, origin: dataVersion(o) }, concern, ev.from, out);
    }
    else declined.push(o.block);
  });
  // Declined only once this node's newer versions are durable (an empty synced batch): the stale
  // copy drops its blocks on this answer (simulator seed 939: a decline against an unsynced write,
  // then a crash, lost a `durable` write the stale copy had held).
  if (declined.length > 0 && c.faults.declineBeforeSync === true) out.push({ t: 'send', to: ev.from, msg: { t: 'handBackAck', epoch: ev.epoch, blocks: declined } });
  else if (declined.length > 0) storeAction(c, out, [], null, true, { kind: 'declined', to: ev.from, epoch: ev.epoch, blocks: declined });
}

/** The metadata service refused an out-of-sync mark at this epoch: this node is deposed there. */
export function onMarkRefused(c: PgRecord, epoch: number, out: PgAction[]): void {
  if (c.role !== 'primary' || c.placement?.epoch !== epoch || c.phase === 'fenced') return;
  fence(c, out);
}

/** A store action failed: the primary's own copy of that write is not there (I/O error, not a decision). */
export function onOwnStoreFailed(c: PgRecord, seq: number, out: PgAction[]): void {
  const p = c.pending.get(seq);
  if (p === undefined) return;
  p.acks.set(c.self, 'failed');
  settle(c, seq, out);
}

/**
 * The shell peered by itself (the block server's peering is not driven by the core yet): take
 * the primary role at `p.epoch` and assign above every seq any member holds and every seq this
 * record assigned before (in this epoch or an earlier one), so no seq is given to two writes. A
 * second peering at the epoch this record already serves (the shell forgot its primary state and
 * peered again) keeps the writes waiting and what it knows of each replica: they belong to the
 * same epoch.
 */
export function onPeeredByShell(c: PgRecord, ev: { p: PgPlacement; groupHighest: number; recorded?: number }, out: PgAction[]): void {
  invariant(ev.p.primary === c.self, 'only the placement\'s primary serves writes');
  if (c.placement !== null && ev.p.epoch < c.placement.epoch) return;
  const again = c.role === 'primary' && c.placement?.epoch === ev.p.epoch && c.phase !== 'fenced';
  if (c.placement?.epoch !== ev.p.epoch) leaveRole(c, out);
  c.placement = ev.p;
  c.role = 'primary';
  if (!again) {
    c.lease = false;
    c.peerAnswers.clear();
    c.replicaApplied.clear();
    c.outOfSync.clear();
  }
  // The store may hold a newer epoch (a newer primary peered this node meanwhile): deposed at once.
  raiseEpoch(c, Math.max(ev.p.epoch, ev.recorded ?? 0), out);
  if (c.epoch > ev.p.epoch) { fence(c, out); return; }
  c.nextSeq = Math.max(ev.groupHighest, highest(c), c.lastAssigned) + 1;
  setPhase(c, 'active');
}

/**
 * A batch the shell's own peering as the new primary fetched from a member (or a full copy's
 * watermark, or a noop the plan asked for): refused once the record or the store has seen an
 * epoch newer than the peering's (a newer primary peered this node: these entries may be ones it
 * did not count); else stored synced — the entries above the mirror's watermark it does not hold,
 * the full copy when it moves the watermark — as `takeFill` does for the core's own peering. The
 * record first rises to the peering's epoch (recorded, as `onClaimed` does): a primary of an
 * older epoch on it is fenced before the pulled seqs are mirrored, so none of its writes can take
 * one of them. Role and phase are otherwise untouched: `peeredByShell` ends the shell's peering.
 */
export function onPeeringPulled(c: PgRecord, ev: { epoch: number; recorded: number; fill: JournalFill }, out: PgAction[]): void {
  raiseEpoch(c, Math.max(ev.recorded, ev.epoch), out);
  if (staleEpoch(c, ev.epoch) !== null) return;
  const full = ev.fill.full !== null && ev.fill.full.applied > c.applied ? ev.fill.full : null;
  const above = full?.applied ?? c.applied;
  const entries = ev.fill.entries.filter((e) => e.seq > above && !c.held.has(e.seq));
  storeAction(c, out, entries, full, true, { kind: 'none' });
}

/** The plan found `seq` held by no member (its writer died before it landed): a noop there, admitted as a pull is. */
export function onPeeringNoop(c: PgRecord, ev: { epoch: number; recorded: number; seq: number }, out: PgAction[]): void {
  onPeeringPulled(c, { epoch: ev.epoch, recorded: ev.recorded, fill: { entries: [{ seq: ev.seq, epoch: ev.epoch, block: 0, value: null }], full: null } }, out);
}

export function primaryTick(c: PgRecord, out: PgAction[]): void {
  const every = c.limits.resendTicks;
  if (c.phase === 'claiming' && (c.now - c.phaseSince) % every === every - 1) out.push({ t: 'claim', epoch: c.placement?.epoch ?? 0 });
  if (c.phase === 'peering' && (c.now - c.phaseSince) % every === every - 1) askPeers(c, out);
  if (c.phase !== 'active') return;
  for (const [seq, p] of [...c.pending]) {
    for (const [id, a] of p.acks) {
      if (id === c.self || a !== 'pending' || c.now - (p.sentAt.get(id) ?? 0) < c.limits.forwardRetryTicks) continue;
      if ((p.attempts.get(id) ?? 0) >= c.limits.forwardAttempts) replicaFailed(c, seq, id, out);
      else sendForward(c, p, id, out);
    }
  }
  if (c.now % every !== 0) return;
  const epoch = c.placement?.epoch ?? 0;
  for (const id of others(c)) if ((c.replicaApplied.get(id) ?? 0) < c.applied && (c.outOfSync.has(id) || !awaited(c, id))) out.push({ t: 'send', to: id, msg: { t: 'catchUp', epoch } });
  for (const [replica, m] of c.outOfSync) if (m.committed < m.floor) out.push({ t: 'outOfSync', replica, floor: m.floor, epoch });
}

/**
 * A write still waits for `replica`'s answer: an in-sync replica catches up by answering it (or
 * failing it and being marked), not by a pull. One taken out of sync is asked whatever waits.
 */
function awaited(c: PgRecord, replica: string): boolean {
  for (const p of c.pending.values()) if (p.acks.get(replica) === 'pending') return true;
  return false;
}

export function leaveRole(c: PgRecord, out: PgAction[]): void {
  if (c.role === 'primary') failPending(c, out, 'STALE_EPOCH', 'the placement moved to a new epoch');
}
