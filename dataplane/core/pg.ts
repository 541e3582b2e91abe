/**
 * `PgCore`: one placement group's replication decisions on one data node, as a pure state
 * machine. `step(event)` returns the actions to carry out (store, send, answer, report); it never
 * does I/O, reads a clock or draws a random number (lint-enforced), so the simulator in
 * test/sim-dataplane can replay any run from its seed. See README.md for the protocol.
 */
import { invariant } from '../../proto/errors.js';
import * as primary from './primary.js';
import { fence, hasCopy, newRecord, raiseEpoch, reply, setPhase, type PgRecord } from './record.js';
import { afterHandBack } from './handback-rules.js';
import { isStaleCopy } from './peering-rules.js';
import { replicaServesAnyRead } from './admission.js';
import * as replica from './replica.js';
import { defaultCoreLimits, type BlockVersion, type CoreFaults, type CoreLimits, type PeerMsg, type PgAction, type PgEvent, type PgPlacement, type PgRestore } from './types.js';

export class PgCore {
  readonly r: PgRecord;

  constructor(self: string, restore: PgRestore, faults: CoreFaults = {}, limits: CoreLimits = defaultCoreLimits) {
    this.r = newRecord(self, restore, faults, limits);
  }

  step(ev: PgEvent): PgAction[] {
    const out: PgAction[] = [];
    const epochBefore = this.r.epoch;
    dispatch(this.r, ev, out);
    invariant(this.r.epoch >= epochBefore, 'an epoch never goes down');
    return out;
  }
}

function dispatch(c: PgRecord, ev: PgEvent, out: PgAction[]): void {
  switch (ev.t) {
    case 'placement': onPlacement(c, ev.p, out); return;
    case 'claimed': primary.onClaimed(c, ev.epoch, out); return;
    case 'lease': onLease(c, ev.epoch, ev.valid, out); return;
    case 'write': primary.onWrite(c, ev, out); return;
    case 'read': onRead(c, ev.req, ev.block, ev.epoch, out); return;
    case 'msg': onMsg(c, ev.from, ev.msg, out); return;
    case 'handBackOffers': primary.onHandBackOffers(c, ev, out); return;
    case 'inventory': onInventory(c, ev.blocks, out); return;
    case 'stored': onStored(c, ev.token, out); return;
    case 'marked': primary.onMarked(c, ev.replica, ev.floor, out); return;
    case 'markRefused': primary.onMarkRefused(c, ev.epoch, out); return;
    case 'storeFailed': onStoreFailed(c, ev.token, out); return;
    case 'peeredByShell': primary.onPeeredByShell(c, ev, out); return;
    case 'peeringPulled': primary.onPeeringPulled(c, ev, out); return;
    case 'peeringNoop': primary.onPeeringNoop(c, ev, out); return;
    case 'restored': onRestored(c, ev, out); return;
    case 'replicaByShell': onReplicaByShell(c, ev.p, ev.recorded, out); return;
    case 'tick': onTick(c, out); return;
  }
}

function onMsg(c: PgRecord, from: string, m: PeerMsg, out: PgAction[]): void {
  switch (m.t) {
    case 'forward': replica.onForward(c, from, m, out); return;
    case 'ack': primary.onAck(c, from, m, out); return;
    case 'nack': primary.onNack(c, from, m, out); return;
    case 'peer': replica.onPeer(c, from, m, out); return;
    case 'peerAnswer': primary.onPeerAnswer(c, from, m, out); return;
    case 'pull': primary.onPull(c, from, m, out); return;
    case 'journal': replica.onJournal(c, from, m, out); return;
    case 'catchUp': replica.onCatchUp(c, from, m, out); return;
    case 'handBack': return; // the shell turns it into `handBackOffers` (it looks up the current versions)
    case 'handBackAck': onHandBackAck(c, m.epoch, m.blocks, out); return;
  }
}

/**
 * A new placement: adopt its epoch and this node's role in it. A copy that is no longer a member,
 * or that was added back after it missed epochs (`addedAt` above its recorded epoch), hands its
 * blocks back to the primary before it is dropped; only a member that never left keeps its journal.
 */
function onPlacement(c: PgRecord, p: PgPlacement, out: PgAction[]): void {
  if (c.placement !== null && p.epoch < c.placement.epoch) return;
  const sameEpoch = c.placement?.epoch === p.epoch;
  const member = p.replicas.some((r) => r.id === c.self);
  const addedAt = p.addedAt[c.self];
  const stale = !sameEpoch && isStaleCopy(member, addedAt, c.epoch, hasCopy(c));
  if (!sameEpoch) primary.leaveRole(c, out);
  c.placement = p;
  if (!member || stale) {
    c.role = member ? 'replica' : 'none';
    setPhase(c, 'idle');
    if (hasCopy(c) && c.handBack === null) startHandBack(c, stale, out);
    else if (c.handBack !== null) c.handBack.to = p.primary;
    if (!stale) raiseEpoch(c, p.epoch, out);
    return;
  }
  if (c.handBack !== null) { c.handBack.to = p.primary; return; }
  raiseEpoch(c, p.epoch, out);
  if (p.primary !== c.self) { c.role = 'replica'; setPhase(c, 'idle'); return; }
  if (c.role === 'primary' && sameEpoch) return;
  c.role = 'primary';
  primary.startClaim(c, out);
}

function onLease(c: PgRecord, epoch: number, valid: boolean, out: PgAction[]): void {
  if (c.role !== 'primary' || c.placement?.epoch !== epoch) return;
  c.lease = valid && c.phase !== 'fenced';
  if (!valid) {
    // Whatever waits can no longer be acknowledged: a successor may exist once the lease is gone.
    for (const [seq, p] of c.pending) {
      if (!p.answered && p.req !== null) reply(out, p.req, 'UNAVAILABLE', 'lease lapsed');
      p.answered = true;
      primary.settle(c, seq, out);
    }
  }
}

function onRead(c: PgRecord, req: number, block: number, epoch: number, out: PgAction[]): void {
  if (replicaServesAnyRead(c.faults, () => c.role === 'replica' && !c.rejoining && c.handBack === null)) {
    out.push({ t: 'serveRead', req, block });
    return;
  }
  const refusal = primary.admit(c, epoch);
  if (refusal !== null) { reply(out, req, refusal.code, refusal.message); return; }
  out.push({ t: 'serveRead', req, block });
}

function onStored(c: PgRecord, token: number, out: PgAction[]): void {
  const w = c.storeWaits.get(token);
  if (w === undefined) return;
  c.storeWaits.delete(token);
  switch (w.kind) {
    case 'primary': primary.onOwnStored(c, w.seq, out); return;
    case 'replicaAck': replica.onReplicaStored(c, w, out); return;
    case 'peered': primary.onPeered(c, w.epoch, out); return;
    case 'declined': out.push({ t: 'send', to: w.to, msg: { t: 'handBackAck', epoch: w.epoch, blocks: w.blocks } }); return;
    case 'none': return;
  }
}

/** Only the primary's own write is counted from a store action; a failed one is counted failed. */
function onStoreFailed(c: PgRecord, token: number, out: PgAction[]): void {
  const w = c.storeWaits.get(token);
  if (w === undefined) return;
  c.storeWaits.delete(token);
  if (w.kind === 'primary') primary.onOwnStoreFailed(c, w.seq, out);
}

function onTick(c: PgRecord, out: PgAction[]): void {
  c.now++;
  if (c.handBack !== null) handBackTick(c, out);
  else if (c.role === 'primary') primary.primaryTick(c, out);
  else if (c.role === 'replica') replica.replicaTick(c, out);
}

/**
 * The store holds what the shell wrote behind the core's back (server/README.md): the mirror of
 * the journal is taken from it. Seqs this record assigned stay assigned (`lastAssigned`), so a
 * watermark lower than the mirror's cannot make a seq be given twice. The epoch is durable
 * already (no `epoch` action); a primary of an older placement learns it is deposed.
 */
function onRestored(c: PgRecord, ev: { epoch: number; applied: number; held: readonly number[]; trimmedTo: number }, out: PgAction[]): void {
  invariant(ev.applied >= 0 && ev.held.every((s) => s > ev.applied + 1), 'seqs held lie above the watermark and its next seq');
  c.applied = ev.applied;
  c.held = new Set(ev.held);
  c.trimmedTo = Math.min(ev.trimmedTo, ev.applied);
  c.gapSince = null;
  if (ev.epoch <= c.epoch) return;
  c.epoch = ev.epoch;
  if (c.role === 'primary' && c.placement !== null && c.epoch > c.placement.epoch && c.phase !== 'fenced') fence(c, out);
}

/**
 * The shell's replica path checked the sender and the copy (server/README.md): this node is a
 * replica of `p`. A primary of an older placement leaves its role (what waits fails STALE_EPOCH:
 * a successor exists); a placement older than the record's, or one naming this node primary (a
 * deposed primary's late forward), changes nothing but the epoch.
 */
function onReplicaByShell(c: PgRecord, p: PgPlacement, recorded: number, out: PgAction[]): void {
  // This node is the placement's primary: the forward is a deposed primary's late one; only the epoch counts.
  if (p.primary !== c.self && (c.placement === null || p.epoch >= c.placement.epoch)) {
    if (c.placement?.epoch !== p.epoch) primary.leaveRole(c, out);
    c.placement = p;
    c.role = 'replica';
    c.lease = false;
    if (c.phase !== 'idle') setPhase(c, 'idle');
  }
  raiseEpoch(c, Math.max(p.epoch, recorded), out);
  // Not (yet) serving it: the placement still answers whether a forward's epoch is known.
  if (c.role !== 'primary' && (c.placement === null || p.epoch > c.placement.epoch)) c.placement = p;
}

// ---- hand-back ------------------------------------------------------------------------------

function startHandBack(c: PgRecord, rejoin: boolean, out: PgAction[]): void {
  invariant(c.placement !== null, 'a hand-back follows a placement');
  if (c.role === 'primary') fence(c, out);
  c.rejoining = rejoin;
  c.handBack = { epoch: c.placement.epoch, to: c.placement.primary, offers: null, rejoin, sinceTick: c.now };
  out.push({ t: 'inventory' });
}

function onInventory(c: PgRecord, blocks: BlockVersion[], out: PgAction[]): void {
  const h = c.handBack;
  if (h === null || h.offers !== null) return;
  h.offers = blocks;
  if (blocks.length === 0) { finishHandBack(c, out); return; }
  sendOffers(c, out);
}

function sendOffers(c: PgRecord, out: PgAction[]): void {
  const h = c.handBack;
  if (h === null || h.offers === null || c.placement === null) return;
  h.sinceTick = c.now;
  if (h.to === c.self) return; // this node is primary of the PG again: nothing to hand to
  out.push({ t: 'send', to: h.to, msg: { t: 'handBack', epoch: c.placement.epoch, offers: h.offers } });
}

function onHandBackAck(c: PgRecord, epoch: number, blocks: number[], out: PgAction[]): void {
  const h = c.handBack;
  if (h === null || h.offers === null || epoch !== c.placement?.epoch) return;
  h.offers = h.offers.filter((o) => !blocks.includes(o.block));
  if (h.offers.length === 0) finishHandBack(c, out);
}

/** Everything the primary lacked is in its group now: drop this copy; a rejoining member starts empty. */
function finishHandBack(c: PgRecord, out: PgAction[]): void {
  const h = c.handBack;
  invariant(h !== null && c.placement !== null, 'finishing a hand-back that started');
  c.handBack = null;
  c.rejoining = false;
  const p = c.placement;
  for (const step of afterHandBack(h.rejoin, p.replicas.some((r) => r.id === c.self), p.epoch)) {
    switch (step.t) {
      case 'drop': out.push({ t: 'drop' }); c.applied = 0; c.held.clear(); c.trimmedTo = 0; break;
      case 'epoch': raiseEpoch(c, step.epoch, out); break;
      case 'catchUp': c.role = 'replica'; out.push({ t: 'send', to: p.primary, msg: { t: 'pull', epoch: p.epoch, fromSeq: 1 } }); break;
      default: invariant(false, `no ${step.t} after a hand-back`);
    }
  }
}

function handBackTick(c: PgRecord, out: PgAction[]): void {
  const h = c.handBack;
  if (h === null || h.offers === null) return;
  if (c.now - h.sinceTick >= c.limits.resendTicks) sendOffers(c, out);
}
