/**
 * The record one data node keeps per placement group, and the helpers every path shares: epoch
 * raises (never down), the mirror of what the local store holds (watermark, held seqs), and the
 * store-action tokens whose completion drives acknowledgements.
 */
import { invariant } from '../../proto/errors.js';
import type { ReplicaAck } from '../logic/write-concern.js';
import type { BlockVersion, CoreFaults, CoreLimits, Entry, ErrorCodeOut, JournalFill, PgAction, PgPlacement, PgRestore, WriteConcern } from './types.js';

/** A write this node ordered as primary, until every replica answered or failed it. */
export interface PendingWrite {
  req: number | null;
  entry: Entry;
  concern: WriteConcern;
  acks: Map<string, ReplicaAck>;
  sentAt: Map<string, number>;
  attempts: Map<string, number>;
  answered: boolean;
  /** Set for a handed-back block: whom to tell once it is acknowledged. */
  handBackFrom: string | null;
}

export type StoreWait =
  | { kind: 'primary'; seq: number }
  | { kind: 'replicaAck'; to: string; epoch: number; seqs: number[]; sync: boolean; applied: number }
  | { kind: 'peered'; epoch: number }
  | { kind: 'declined'; to: string; epoch: number; blocks: number[] }
  | { kind: 'none' };

export interface PeerAnswer { applied: number; highest: number; fill: JournalFill }

export interface HandBackState {
  epoch: number;
  to: string;
  /** Blocks offered and not yet taken or declined; null until the inventory arrived. */
  offers: BlockVersion[] | null;
  rejoin: boolean;
  sinceTick: number;
}

export type Phase = 'idle' | 'claiming' | 'peering' | 'active' | 'fenced';

export interface PgRecord {
  readonly self: string;
  readonly faults: CoreFaults;
  readonly limits: CoreLimits;
  /** Highest epoch seen and recorded (the store's epoch record follows it). */
  epoch: number;
  placement: PgPlacement | null;
  role: 'none' | 'primary' | 'replica';
  phase: Phase;
  lease: boolean;
  /** Contiguous watermark of the local journal; `held` are the seqs above it. */
  applied: number;
  held: Set<number>;
  trimmedTo: number;
  nextSeq: number;
  lastAssigned: number;
  pending: Map<number, PendingWrite>;
  replicaApplied: Map<string, number>;
  peerAnswers: Map<string, PeerAnswer>;
  /**
   * Replicas reported out of sync: the highest floor asked for (`floor`) and the highest the
   * metadata service committed (`committed`, 0: none yet). A write at or below `committed` no
   * longer waits for the replica, even while a higher floor is still in flight.
   */
  outOfSync: Map<string, { floor: number; committed: number }>;
  storeWaits: Map<number, StoreWait>;
  nextToken: number;
  now: number;
  phaseSince: number;
  gapSince: number | null;
  handBack: HandBackState | null;
  /** A member added back while its copy is older than its return: it hands back and starts empty. */
  rejoining: boolean;
}

export function newRecord(self: string, restore: PgRestore, faults: CoreFaults, limits: CoreLimits): PgRecord {
  invariant(restore.applied >= restore.trimmedTo, 'a restored watermark covers the trimmed journal');
  return {
    self, faults, limits, epoch: restore.epoch, placement: null, role: 'none', phase: 'idle', lease: false,
    applied: restore.applied, held: new Set(restore.held.filter((s) => s > restore.applied)), trimmedTo: restore.trimmedTo,
    nextSeq: (restore.lastAssigned ?? 0) + 1, lastAssigned: restore.lastAssigned ?? 0, pending: new Map(), replicaApplied: new Map(), peerAnswers: new Map(), outOfSync: new Map(),
    storeWaits: new Map(), nextToken: 1, now: 0, phaseSince: 0, gapSince: null, handBack: null, rejoining: false,
  };
}

export function highest(c: PgRecord): number {
  let h = c.applied;
  for (const s of c.held) if (s > h) h = s;
  return h;
}

export function hasCopy(c: PgRecord): boolean {
  return c.applied > 0 || c.held.size > 0;
}

export function others(c: PgRecord): string[] {
  return (c.placement?.replicas ?? []).map((r) => r.id).filter((id) => id !== c.self);
}

/** Raise the recorded epoch (never lower it); a primary that learns of a newer one is fenced. */
export function raiseEpoch(c: PgRecord, epoch: number, out: PgAction[]): void {
  if (epoch <= c.epoch) return;
  const before = c.epoch;
  c.epoch = epoch;
  invariant(c.epoch > before, 'an epoch never goes down');
  out.push({ t: 'epoch', epoch });
  if (c.role === 'primary' && c.placement !== null && epoch > c.placement.epoch) fence(c, out);
}

/** Deposed: fail every write still waiting and acknowledge nothing more at this epoch. */
export function fence(c: PgRecord, out: PgAction[]): void {
  c.phase = 'fenced';
  c.lease = false;
  failPending(c, out, 'STALE_EPOCH', `deposed: epoch ${c.epoch} is newer than ${c.placement?.epoch ?? 0}`);
}

export function failPending(c: PgRecord, out: PgAction[], code: ErrorCodeOut, message: string): void {
  for (const p of c.pending.values()) {
    if (!p.answered && p.req !== null) out.push({ t: 'answer', req: p.req, ok: false, code, message });
    p.answered = true;
  }
  c.pending.clear();
}

/** Mirror a store action in the record: entries above the watermark, and a full copy's watermark. */
export function applyLocal(c: PgRecord, entries: readonly Entry[], full: JournalFill['full']): void {
  if (full !== null && full.applied > c.applied) {
    c.applied = full.applied;
    c.trimmedTo = Math.max(c.trimmedTo, full.applied);
  }
  for (const e of entries) if (e.seq > c.applied) c.held.add(e.seq);
  while (c.held.has(c.applied + 1)) {
    c.held.delete(c.applied + 1);
    c.applied++;
  }
  for (const s of c.held) if (s <= c.applied) c.held.delete(s);
}

export function storeAction(c: PgRecord, out: PgAction[], entries: Entry[], full: JournalFill['full'], sync: boolean, wait: StoreWait): void {
  const token = c.nextToken++;
  c.storeWaits.set(token, wait);
  applyLocal(c, entries, full);
  out.push({ t: 'store', token, entries, full, sync });
}

export function setPhase(c: PgRecord, phase: Phase): void {
  c.phase = phase;
  c.phaseSince = c.now;
}

export function reply(out: PgAction[], req: number, code: ErrorCodeOut, message: string): void {
  out.push({ t: 'answer', req, ok: false, code, message });
}
