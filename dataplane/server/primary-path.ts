/**
 * The primary path of a data node (part of the `Replicator`, replication.ts): admit a client
 * write (fencing, lease, volume bounds), give it the PG's next seq, write it locally and forward
 * it to the other replicas in parallel, answer once its write concern is decided
 * (`evaluateWriteConcern`; for `replicated` also every replica answered or was marked out of
 * sync, issue #13 rule 1), take replicas that failed a write out of sync, and decide hand-backs
 * (compare and seq in one step, decline only after a synced rewrite: rules 2 and 3).
 */
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { TimerHandle } from '../clock.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { pgOf } from '../logic/routing.js';
import { evaluateWriteConcern, primaryMustSync, replicasMustSync } from '../logic/write-concern.js';
import type { ReplicaAck, ReplicaInfo } from '../logic/write-concern.js';
import { blockOutsideVolume } from '../logic/membership.js';
import { groupOf, nodeOf } from '../placement.js';
import type { VolumePlacement } from '../placement.js';
import type { BlockAddress, BlockOp } from '../store/types.js';
import { staleEpochError } from './admission.js';
import type { Peering } from './peering.js';
import type { PrimaryPg } from './pg-runtime.js';
import { PgWorker, trimEveryEntries, type ReplicatorDeps } from './pg-worker.js';
import { everyReplicaAnswered, takeHandedBack } from '../core/rules.js';

/** A primary retries an out-of-sync mark the metadata service did not take after this long. */
export const outOfSyncRetryMs = 500;
/** A primary asks a replica it took out of sync to catch up this often, until it answers. */
export const outOfSyncNudgeMs = 1_000;
/**
 * A `replicated` write whose other replica failed waits at most this long for that replica's
 * out-of-sync mark to commit; then it fails UNAVAILABLE (the client retries).
 */
export const replicatedMarkWaitMs = 5_000;
/** A hand-back compare re-reads the block this often at most while client writes keep taking seqs. */
export const handBackCompareAttempts = 8;
/**
 * Test-only fault hook (tests of seq reuse): with GALLEON_TEST_DIE_AFTER_FORWARD=1 the first
 * write this process serves as primary is forwarded but never stored here, and the process
 * kills itself as soon as one replica stored it. Off unless the variable is set.
 */
const dieAfterForward = process.env.GALLEON_TEST_DIE_AFTER_FORWARD === '1';

export interface WriteResult {
  volumeId: string;
  pg: number;
  seq: number;
  epoch: number;
  concern: WriteConcern;
  acks: Record<string, ReplicaAck>;
}

/** One write the primary ordered, until it is answered (`awaitConcern`). */
interface WriteInFlight {
  address: BlockAddress;
  pg: number;
  seq: number;
  epoch: number;
  concern: WriteConcern;
  op: BlockOp;
  replicas: ReplicaInfo[];
  acks: Map<string, ReplicaAck>;
  ppg: PrimaryPg;
  placement: VolumePlacement;
  localError: Error | undefined;
  /** Newest epoch a replica's refusal named (0: none). */
  fencedAt: number;
  /** `replicatedMarkWaitMs` passed while waiting for an out-of-sync mark. */
  waitedOut: boolean;
}

export class PrimaryPath extends PgWorker {
  private dieArmed = dieAfterForward;

  constructor(d: ReplicatorDeps, private readonly peering: Peering) {
    super(d);
  }

  /**
   * Before a primary serves a read: the epoch is admitted, peering at it is done, and (with
   * leases) the lease is held. A node that is not the primary serves reads as before.
   */
  async admitPrimaryRead(address: BlockAddress, pg: number, epoch: number): Promise<void> {
    const initial = await this.placement.getPlacement(address.volumeId);
    const g = groupOf(initial, pg);
    const known = Math.max(await this.gate.recordedEpoch(address.volumeId, pg, g), g.epoch);
    if (epoch < known) throw staleEpochError(address.volumeId, pg, epoch, known);
    if (g.primary !== this.nodeId || g.epoch !== epoch) return;
    await this.peering.primaryPg(address.volumeId, pg, epoch, g, initial);
    await this.leases?.ensure(address.volumeId, pg, epoch);
  }

  async admitRead(volumeId: string, pg: number, epoch: number): Promise<void> {
    const g = groupOf(await this.placement.getPlacement(volumeId), pg);
    const known = Math.max(await this.gate.recordedEpoch(volumeId, pg, g), g.epoch);
    if (epoch < known) throw staleEpochError(volumeId, pg, epoch, known);
  }

  async pgOfAddress(address: BlockAddress): Promise<number> {
    const p = await this.placement.getPlacement(address.volumeId);
    return pgOf(address.inode, address.blockNo, p.pgCount);
  }

  async primaryWrite(address: BlockAddress, data: Uint8Array | null, epoch: number, concern: WriteConcern): Promise<WriteResult> {
    const r = await this.orderWrite(address, data, epoch, concern, null);
    invariant(r !== null, 'only a hand-back is declined');
    return r;
  }

  /**
   * A block a replaced copy hands back (`offered`: the version of its data): taken as a new write
   * only when newer than this primary's own copy, compared and given its seq in one step; null
   * when declined, once this node's newer version is durable (issue #13, rules 2 and 3).
   */
  handBackWrite(address: BlockAddress, data: Uint8Array, epoch: number, concern: WriteConcern, offered: { epoch: number; seq: number }): Promise<WriteResult | null> {
    return this.orderWrite(address, data, epoch, concern, offered);
  }

  private async orderWrite(address: BlockAddress, data: Uint8Array | null, epoch: number, concern: WriteConcern, offered: { epoch: number; seq: number } | null): Promise<WriteResult | null> {
    const initial = await this.volumeHolding(address);
    const pg = pgOf(address.inode, address.blockNo, initial.pgCount);
    const { group, placement } = await this.gate.admitPrimaryRequest(address.volumeId, pg, epoch, initial);
    const replicas: ReplicaInfo[] = group.replicas.map((id) => ({ id, zone: nodeOf(placement, id).zone }));
    const acks = new Map<string, ReplicaAck>(replicas.map((r) => [r.id, 'pending']));
    const upfront = evaluateWriteConcern(concern, replicas, this.nodeId, acks);
    if (upfront.state === 'impossible') {
      throw new GalleonError('WRITE_CONCERN_UNMET', `write concern ${concern} cannot be met for ${address.volumeId}/${pg}: ${upfront.reason}`, {
        hint: 'use a weaker write concern or add replicas in another zone', details: { concern, pg },
      });
    }
    // Flow control: an overloaded replica holds new writes here instead of queueing without end.
    for (const r of replicas) if (r.id !== this.nodeId) await this.peers.waitForRoom(nodeOf(placement, r.id).address);
    const ppg = await this.peering.primaryPg(address.volumeId, pg, epoch, group, placement);
    await this.leases?.ensure(address.volumeId, pg, epoch);
    const bk = `${address.inode}/${address.blockNo}`;
    if (offered !== null) {
      const cur = await this.versionForHandBack(ppg, address, offered, epoch);
      // No await from the compare to the seq: no client write can come between (rule 2).
      if (!takeHandedBack(offered, ppg.handedBack.get(bk) ?? cur)) { await this.declineHandBack(address); return null; }
      ppg.handedBack.set(bk, offered);
    } else if (ppg.handedBack.size > 0) {
      ppg.handedBack.delete(bk);
    }
    // No await between taking the seq and enqueueing the write: the journal order is seq order.
    const seq = ppg.nextSeq++;
    this.rt(`${address.volumeId}/${pg}`).assignedSeq = seq;
    const op: BlockOp = data === null
      ? { kind: 'delete', address, pg, seq, epoch }
      : { kind: 'put', address, pg, seq, epoch, data };
    const primarySync = primaryMustSync(concern);
    const dieNow = this.dieArmed;
    this.dieArmed = false;
    const local = dieNow ? new Promise<void>(() => undefined) : this.store.write(op, { sync: primarySync });
    const w: WriteInFlight = { address, pg, seq, epoch, concern, op, replicas, acks, ppg, placement, localError: undefined, fencedAt: 0, waitedOut: false };
    return this.awaitConcern(w, local, dieNow);
  }

  /** Answers a write once its concern is decided: after the local write and the forwards' answers. */
  private awaitConcern(w: WriteInFlight, local: Promise<void>, dieNow: boolean): Promise<WriteResult> {
    return new Promise<WriteResult>((resolve, reject) => {
      let settled = false;
      let waitTimer: TimerHandle | undefined;
      const settle = (): void => {
        if (settled) return;
        const out = this.writeOutcome(w);
        if (out === 'pending') return;
        if (out === 'wait') {
          w.ppg.markWaiters.add(settle);
          waitTimer ??= this.clock.setTimeout(() => { w.waitedOut = true; settle(); }, replicatedMarkWaitMs);
          return;
        }
        settled = true;
        w.ppg.markWaiters.delete(settle);
        this.clock.clearTimeout(waitTimer);
        if (out instanceof Error) reject(out); else resolve(out);
      };
      const primarySync = primaryMustSync(w.concern);
      w.acks.set(this.nodeId, 'accepted');
      settle();
      local.then(() => {
        w.acks.set(this.nodeId, primarySync ? 'durable' : 'accepted');
        settle();
      }, (err: unknown) => {
        w.localError = err instanceof Error ? err : new GalleonError('INTERNAL', 'local write failed', { cause: err });
        w.acks.set(this.nodeId, 'failed');
        this.log.error({ err, volumeId: w.address.volumeId, pg: w.pg, seq: w.seq }, 'local write failed on the primary');
        settle();
      });
      for (const r of w.replicas) if (r.id !== this.nodeId) this.forwardTo(w, r.id, settle, dieNow);
    });
  }

  /**
   * The answer a write has earned so far: `pending` (acks missing), `wait` (`replicated` is met but
   * a failed replica's out-of-sync mark has not committed: issue #13 rule 1; with static
   * placements a failure is its own answer), the result, or the error.
   */
  private writeOutcome(w: WriteInFlight): WriteResult | Error | 'pending' | 'wait' {
    const { address, pg, seq, epoch, concern, acks } = w;
    const v = evaluateWriteConcern(concern, w.replicas, this.nodeId, acks);
    if (v.state === 'pending') return 'pending';
    const all = v.state === 'satisfied' && concern === 'replicated' ? this.everyReplicaAnswered(w.ppg, seq, acks) : 'yes';
    if (all === 'wait' && w.fencedAt === 0 && !w.waitedOut) return 'wait';
    if (all !== 'yes' && w.fencedAt === 0) {
      return new GalleonError('UNAVAILABLE', `write to ${address.volumeId}/${pg} seq ${seq} not acknowledged at ${concern}: a replica failed it and its out-of-sync mark ${all === 'refused' ? 'was refused (this node is no longer the primary)' : `did not commit within ${replicatedMarkWaitMs} ms`}`, {
        hint: 'retry the write: the client re-reads the placement', details: { concern, pg, seq, acks: Object.fromEntries(acks) },
      });
    }
    if (all !== 'yes') return staleEpochError(address.volumeId, pg, epoch, w.fencedAt);
    if (v.state === 'satisfied' && this.leases !== null && !this.leases.valid(address.volumeId, pg, epoch)) {
      // Frozen past the lease (or it was not renewed): a successor may exist; never acknowledge.
      return this.leases.expired(address.volumeId, pg);
    }
    if (v.state === 'satisfied') return { volumeId: address.volumeId, pg, seq, epoch, concern, acks: Object.fromEntries(acks) };
    if (w.localError !== undefined) return w.localError;
    if (w.fencedAt > 0) return staleEpochError(address.volumeId, pg, epoch, w.fencedAt);
    return new GalleonError('WRITE_CONCERN_UNMET', `write concern ${concern} not met for ${address.volumeId}/${pg} seq ${seq}: ${v.reason}`, {
      hint: 'some replicas are unreachable; retry, or use a weaker write concern', details: { concern, pg, seq, acks: Object.fromEntries(acks) },
    });
  }

  /** Forwards the write to one replica; its answer (or failure, fence, out-of-sync mark) goes to `settle`. */
  private forwardTo(w: WriteInFlight, replica: string, settle: () => void, dieNow: boolean): void {
    const { address, pg, seq, epoch, ppg } = w;
    const key = `${address.volumeId}/${pg}`;
    const target = nodeOf(w.placement, replica).address;
    const sync = replicasMustSync(w.concern);
    this.peers.replicate(target, w.op, { sync, primary: this.selfAddress(), trimSeq: ppg.trimmedTo }).then((res) => {
      if (dieNow) process.kill(process.pid, 'SIGKILL');
      w.acks.set(replica, sync ? 'durable' : 'accepted');
      ppg.replicaApplied.set(replica, Math.max(ppg.replicaApplied.get(replica) ?? 0, res.appliedSeq));
      this.rt(key).failedReplicas.delete(replica);
      settle();
      this.maybeTrimAsPrimary(address.volumeId, pg, ppg, w.replicas);
    }, (err: unknown) => {
      w.acks.set(replica, 'failed');
      const failed = this.rt(key).failedReplicas;
      const wasFailed = failed.has(replica);
      failed.add(replica);
      if (isGalleonError(err, 'STALE_EPOCH')) {
        // Deposed: a replica has seen a newer epoch. Remember it so we refuse our clients too.
        const newer = typeof err.details.epoch === 'number' ? err.details.epoch : epoch + 1;
        w.fencedAt = Math.max(w.fencedAt, newer);
        this.gate.fenceFromReplica(address.volumeId, pg, newer);
      } else {
        this.markOutOfSync(address.volumeId, pg, ppg, replica, target, seq);
      }
      const level = failed.size === 1 && !wasFailed ? 'warn' : 'debug';
      this.log[level]({ replica, volumeId: address.volumeId, pg, seq, code: isGalleonError(err) ? err.code : undefined }, 'replica failed to apply a write');
      settle();
    });
  }

  /**
   * The version of this primary's copy of a block for a hand-back compare, read when no seq was
   * assigned meanwhile (so the caller's synchronous compare sees every write of this epoch:
   * earlier epochs' writes all landed at peering, this one's are in the store or its overlay).
   */
  private async versionForHandBack(ppg: PrimaryPg, address: BlockAddress, offered: { epoch: number; seq: number }, epoch: number): Promise<{ epoch: number; seq: number } | null> {
    if (offered.epoch >= epoch) {
      throw new GalleonError('INVALID_ARGUMENT', `handed-back data of ${address.volumeId}/${address.inode}/${address.blockNo} claims epoch ${offered.epoch}, not older than the PG's ${epoch}`, {
        hint: 'only a copy from an earlier epoch is handed back', details: { epoch },
      });
    }
    for (let attempt = 1; ; attempt++) {
      const mark = ppg.nextSeq;
      let cur: { epoch: number; seq: number } | null;
      try {
        const b = await this.store.read(address);
        cur = { epoch: b.epoch, seq: b.seq };
      } catch (err) {
        if (!isGalleonError(err, 'BLOCK_NOT_FOUND')) throw err;
        cur = null;
      }
      if (ppg.nextSeq === mark) return cur;
      if (attempt >= handBackCompareAttempts) {
        throw new GalleonError('UNAVAILABLE', `hand-back to ${address.volumeId}: client writes kept taking seqs during ${attempt} compares`, { hint: 'retry the hand-back later' });
      }
    }
  }

  /**
   * Rule 3: the replaced copy drops its block on a decline, so the newer version that made this
   * primary decline must be durable here first: rewrite it synced (a repair batch waits until
   * every earlier write landed, and its sync covers them).
   */
  private async declineHandBack(address: BlockAddress): Promise<void> {
    try {
      const b = await this.store.read(address);
      await this.store.rewriteBlock(address, b);
    } catch (err) {
      if (!isGalleonError(err, 'BLOCK_NOT_FOUND')) throw err;
      // Deleted since the compare by a newer client write: that delete is what the copy yields to.
    }
  }

  /**
   * Whether every other replica answered write `seq` or was taken out of sync at or above it
   * (the core's rule, `everyReplicaAnswered`); `refused` when a mark it waits for was refused.
   */
  private everyReplicaAnswered(ppg: PrimaryPg, seq: number, acks: ReadonlyMap<string, ReplicaAck>): 'yes' | 'wait' | 'refused' {
    const floors = new Map<string, number>();
    for (const [id, m] of ppg.outOfSync) if (m.covered > 0) floors.set(id, m.covered);
    // Static placements: no in-sync set, no promotion, no mark to wait for.
    if (this.leases === null) for (const [id, a] of acks) if (a === 'failed') floors.set(id, seq);
    if (everyReplicaAnswered(this.nodeId, seq, acks, floors)) return 'yes';
    for (const [id, a] of acks) if (a === 'failed' && ppg.outOfSync.get(id)?.refused === true) return 'refused';
    return 'wait';
  }

  /**
   * The placement of the block's volume, once the block is known to lie inside the volume: a
   * refused address is read again first, in case the volume was expanded. (Bodies larger than the
   * volume's block size are still taken, up to the node's `maxBlockBytes`: suites and tools write
   * them, and the admin endpoint checks the block size.)
   */
  private async volumeHolding(address: BlockAddress): Promise<VolumePlacement> {
    let p = await this.placement.getPlacement(address.volumeId);
    let why = blockOutsideVolume(address, p);
    if (why !== null && p.sizeBytes !== undefined) {
      p = await this.gate.sharedRefresh(address.volumeId);
      why = blockOutsideVolume(address, p);
    }
    if (why !== null) {
      throw new GalleonError('OUT_OF_RANGE', `${why}; volume ${address.volumeId}`, { hint: 'write inside the volume, or expand it first', details: { inode: address.inode, blockNo: address.blockNo } });
    }
    return p;
  }

  /**
   * A replica failed a write this primary assigned `seq`: take it out of the PG's in-sync set,
   * with a floor (the highest seq assigned so far) it must reach before it may rejoin. The ack of
   * the write does not wait for this (it counts only replicas that acknowledged); the rejoin does,
   * through the floor. One mark in flight per replica; a failure above the committed floor sends
   * another. After the mark, the replica is asked to catch up until it answers.
   */
  private markOutOfSync(volumeId: string, pg: number, ppg: PrimaryPg, replica: string, address: string, seq: number): void {
    if (this.leases === null) return;
    const sync = this.leases.sync;
    let m = ppg.outOfSync.get(replica);
    if (m === undefined) { m = { covered: 0, failed: 0, sending: false, nudging: false, refused: false }; ppg.outOfSync.set(replica, m); }
    const mark = m;
    mark.failed = Math.max(mark.failed, seq);
    if (mark.failed <= mark.covered || mark.sending) return;
    mark.sending = true;
    const upto = ppg.nextSeq - 1;
    const key = `${volumeId}/${pg}`;
    const current = (): boolean => (this.rt(key).primary !== undefined) && this.rt(key).serving === ppg && this.rt(key).fencedEpoch <= ppg.epoch;
    sync.markPgReplicaOutOfSync(volumeId, pg, replica, ppg.epoch, this.nodeId, upto).then(() => {
      mark.sending = false;
      mark.covered = Math.max(mark.covered, upto);
      for (const w of [...ppg.markWaiters]) w();
      this.log.warn({ volumeId, pg, epoch: ppg.epoch, replica, floor: upto }, 'replica failed a write; marked out of sync');
      if (mark.failed > mark.covered) this.markOutOfSync(volumeId, pg, ppg, replica, address, mark.failed);
      this.nudge(volumeId, pg, ppg, replica, address, current);
    }, (err: unknown) => {
      mark.sending = false;
      if (isGalleonError(err, 'STALE_EPOCH') || isGalleonError(err, 'FAILED_PRECONDITION')) {
        // No longer its primary: a `replicated` write waiting for this mark is not acknowledged.
        mark.refused = true;
        for (const w of [...ppg.markWaiters]) w();
        return;
      }
      this.log.warn({ volumeId, pg, replica, code: isGalleonError(err) ? err.code : undefined }, 'out-of-sync mark not taken; retrying');
      this.clock.setTimeout(() => { if (current()) this.markOutOfSync(volumeId, pg, ppg, replica, address, mark.failed); }, outOfSyncRetryMs);
    });
  }

  /** Asks a replica taken out of sync to catch up from this primary, until it answers. */
  private nudge(volumeId: string, pg: number, ppg: PrimaryPg, replica: string, address: string, current: () => boolean): void {
    const mark = ppg.outOfSync.get(replica);
    if (mark === undefined || mark.nudging) return;
    mark.nudging = true;
    const attempt = (): void => {
      if (!current()) { mark.nudging = false; return; }
      this.peers.requestCatchUp(address, volumeId, pg, this.nodeId, ppg.epoch).then(() => { mark.nudging = false; }, () => {
        this.clock.setTimeout(attempt, outOfSyncNudgeMs);
      });
    };
    this.clock.setTimeout(attempt, outOfSyncNudgeMs);
  }

  private maybeTrimAsPrimary(volumeId: string, pg: number, ppg: PrimaryPg, replicas: ReplicaInfo[]): void {
    let low = Number.POSITIVE_INFINITY;
    for (const r of replicas) if (r.id !== this.nodeId) low = Math.min(low, ppg.replicaApplied.get(r.id) ?? 0);
    if (!Number.isFinite(low) || low - ppg.trimmedTo < trimEveryEntries) return;
    ppg.trimmedTo = low;
    this.store.trimJournal(volumeId, pg, low).catch((err: unknown) => this.log.warn({ err, volumeId, pg }, 'journal trim failed'));
  }
}
