/**
 * Replication of a data node: the primary path (order a write with the PG's next seq, write it
 * locally, forward it to the other replicas in parallel, answer by the write concern) and the
 * replica path (apply a forwarded write, detect gaps, catch up from the primary's journal).
 *
 * Fencing: every request carries the placement epoch; a node refuses one older than the newest
 * it has seen for that PG (persisted by the store), and a primary that hears STALE_EPOCH from a
 * replica records the newer epoch, so from then on it refuses its own clients too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import type { Logger } from '../log.js';
import { metrics } from '../metrics.js';
import { pgOf } from '../logic/routing.js';
import { evaluateWriteConcern, primaryMustSync, replicasMustSync } from '../logic/write-concern.js';
import type { ReplicaAck, ReplicaInfo } from '../logic/write-concern.js';
import { blockOutsideVolume } from '../logic/membership.js';
import { groupOf, nodeOf } from '../placement.js';
import type { PlacementSource, VolumePlacement } from '../placement.js';
import type { BlockAddress, BlockOp, BlockStore } from '../store/types.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import type { PeerTransport } from './peers.js';
import type { LeaseGuard } from './lease-guard.js';
import { EpochGate, staleEpochError } from './admission.js';
import { handBack, maybeHandBack, type HandBackDeps } from './handback.js';
import { newPgRuntime, type PgRuntime, type PrimaryPg } from './pg-runtime.js';
import { everyReplicaAnswered, takeHandedBack } from '../core/rules.js';
import type { ReplicateResult } from '../wire.js';

/** A replica trims its journal in steps of at least this many entries. */
export const trimEveryEntries = 1024;
/** Out-of-order arrivals fill gaps within this time; a gap older than it means missed writes. */
export const gapGraceMs = 300;
export const catchUpMaxBytes = 16 * 1024 * 1024;
/** Blocks written concurrently during a full resync (they share group commits). */
export const resyncBatchBlocks = 64;
/** Peering waits this long for each replica; one that does not answer fails the peering (with metadata) or is left behind (without). */
export const peeringTimeoutMs = 2_000;
/** A primary retries an out-of-sync mark the metadata service did not take after this long. */
export const outOfSyncRetryMs = 500;
/** A primary asks a replica it took out of sync to catch up this often, until it answers. */
export const outOfSyncNudgeMs = 1_000;
/** A replica added back to a PG retries its hand-back and drop of the stale copy this often. */
export const rejoinRetryMs = 500;
/**
 * A `replicated` write whose other replica failed waits at most this long for that replica's
 * out-of-sync mark to commit; then it fails UNAVAILABLE (the client retries).
 */
export const replicatedMarkWaitMs = 5_000;
/** A hand-back compare re-reads the block this often at most while client writes keep taking seqs. */
export const handBackCompareAttempts = 8;
/** Peering pulls and fills holes for at most this many rounds before it gives up (and is retried). */
const peeringPullRounds = 8;
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

/** One write the primary ordered, until it is answered (`Replicator.awaitConcern`). */
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

export interface ReplicaWrite {
  op: BlockOp;
  sync: boolean;
  primary: string;
  trimSeq: number;
}

export class Replicator {
  /** What this process keeps about each PG (`volume/pg`), one record per PG (pg-runtime.ts). */
  private readonly pgs = new Map<string, PgRuntime>();
  private readonly gapTimers = new Set<NodeJS.Timeout>();
  private dieArmed = dieAfterForward;

  private rt(key: string): PgRuntime {
    let r = this.pgs.get(key);
    if (r === undefined) { r = newPgRuntime(); this.pgs.set(key, r); }
    return r;
  }

  /** Replica-side work that peering must wait for (PgRuntime.applying). */
  private tracked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const set = this.rt(key).applying;
    const p = work();
    const entry = p.catch(() => undefined);
    set.add(entry);
    void entry.then(() => { set.delete(entry); });
    return p;
  }

  constructor(
    private readonly nodeId: string,
    private readonly selfAddress: () => string,
    private readonly store: BlockStore,
    private readonly placement: PlacementSource,
    private readonly peers: PeerTransport,
    private readonly log: Logger,
    /** With leases, writes are acknowledged only under a live pg-primary lease (lease-guard.ts). */
    private readonly leases: LeaseGuard | null = null,
  ) {
    this.gate = new EpochGate({ nodeId, store, placement, log, rt: (key) => this.rt(key) });
    this.handBacks = { store, peers, log, rt: (key) => this.rt(key), journalMaxBytes: catchUpMaxBytes };
  }

  /** What the hand-back of a replaced copy needs (handback.ts). */
  private readonly handBacks: HandBackDeps;

  /** Admission and fencing: which epochs and senders a request may carry (admission.ts). */
  private readonly gate: EpochGate;

  // ---- hand-back (handback.ts) ----------------------------------------------------------

  /** Whether this node is done handing its copy of the PG back to the primary at `epoch` (or had nothing to hand). */
  handBackFinished(volumeId: string, pg: number, epoch: number): boolean {
    return this.pgs.get(`${volumeId}/${pg}`)?.handedBack.has(epoch) === true;
  }

  /** The store dropped the PG: forget what this node kept about it in memory (not the fences). */
  forgetPg(volumeId: string, pg: number): void {
    const r = this.rt(`${volumeId}/${pg}`);
    r.primary = undefined;
    this.leases?.drop(volumeId, pg);
    r.replicaTrimmedTo = undefined;
    r.failedReplicas.clear();
  }

  // ---- a replica added back (its local copy predates its re-addition) ----------------------

  private closed = false;

  /** Whether this node's copy of the PG is being replaced (report it as empty meanwhile). */
  isRejoining(volumeId: string, pg: number): boolean {
    return this.pgs.get(`${volumeId}/${pg}`)?.rejoining === true;
  }

  /**
   * Whether this node's copy of the PG must not be used at `epoch`: the placement names the node
   * a replica added at an epoch newer than any its store has seen, so the copy comes from an
   * earlier membership. The group assigned seqs without it since (seqs only it held may have
   * gone to other writes), so catching up from its old watermark would diverge. Finding one
   * starts the rejoin (hand back, drop, resync from empty). Every replica path asks this first,
   * before it records an epoch in the store: once the store has seen the epoch the copy was
   * re-added at, nothing tells the old copy apart any more.
   */
  private async staleCopy(volumeId: string, pg: number, epoch: number): Promise<boolean> {
    const key = `${volumeId}/${pg}`;
    if (this.rt(key).rejoining) return true;
    let g: PlacementGroup | undefined;
    try {
      g = (await this.placement.getPlacement(volumeId)).groups[pg];
      if (g !== undefined && g.epoch < epoch) g = (await this.gate.sharedRefresh(volumeId)).groups[pg];
    } catch (err) {
      if (isGalleonError(err, 'VOLUME_NOT_FOUND')) return false;
      throw err;
    }
    const added = g?.addedAtEpoch?.[this.nodeId];
    if (g === undefined || added === undefined || !g.replicas.includes(this.nodeId)) return false;
    const st = await this.store.pgState(volumeId, pg);
    // An empty copy (a new replacement, or dropped already) has nothing to get wrong.
    if (added <= st.epoch || (st.highestSeq === 0 && st.appliedSeq === 0) || this.closed) return false;
    if (this.rt(key).rejoining) return true;
    this.rt(key).rejoining = true;
    // Fenced in memory only: the store must not see the new epoch before the old copy is gone.
    this.rt(key).fencedEpoch = Math.max(this.rt(key).fencedEpoch, g.epoch);
    this.log.warn({ volumeId, pg, addedAt: added }, 'added back to a PG this node holds an older copy of: handing back, dropping it, resyncing from empty');
    this.runRejoin(volumeId, pg);
    return true;
  }


  private runRejoin(volumeId: string, pg: number): void {
    const attempt = (): void => {
      if (this.closed) return;
      this.rejoin(volumeId, pg).catch((err: unknown) => {
        this.log.warn({ volumeId, pg, code: isGalleonError(err) ? err.code : undefined, err: isGalleonError(err) ? undefined : err }, 'replacing the stale copy failed; retrying');
        setTimeout(attempt, rejoinRetryMs).unref();
      });
    };
    attempt();
  }

  /**
   * The rejoin of a PG whose copy predates this node's re-addition: first what only this copy
   * may hold goes to the primary (the hand-back: `durable` writes acknowledged by this node as a
   * former primary), then the copy is dropped once in-flight replica writes have landed (none can
   * start meanwhile: every replica path refuses a rejoining PG), the current epoch is recorded,
   * and the node catches up from seq 1 like a new replica (a full resync when the primary's
   * journal is trimmed). Until then peering hears an empty copy, forwards and catch-up requests
   * are refused, and heartbeats report it empty, so it is never counted in sync with old data.
   */
  private async rejoin(volumeId: string, pg: number): Promise<void> {
    const key = `${volumeId}/${pg}`;
    if (!this.rt(key).rejoining) return;
    const p = await this.gate.sharedRefresh(volumeId);
    const g = groupOf(p, pg);
    if (!g.replicas.includes(this.nodeId)) {
      // Removed again before we were done: an ordinary stale copy (hand-back, then lifecycle drop).
      this.rt(key).rejoining = false;
      return;
    }
    const mine = await this.store.pgState(volumeId, pg);
    if (mine.highestSeq > 0) {
      // The primary forwards the hand-back to this node too, which refuses it, and so may another
      // replica added back with it: count only on in-sync ones, else on the primary alone.
      const others = g.inSync.filter((id) => id !== this.nodeId && id !== g.primary);
      await handBack(this.handBacks, p, g, mine.epoch, others.length > 0 ? 'replicated' : 'durable');
    }
    await Promise.all([...this.rt(key).applying]);
    await this.store.dropPg(volumeId, pg);
    this.forgetPg(volumeId, pg);
    await this.store.observeEpoch(volumeId, pg, Math.max(g.epoch, this.rt(key).fencedEpoch));
    this.rt(key).rejoining = false;
    this.log.warn({ volumeId, pg, epoch: g.epoch, had: mine.appliedSeq }, 'dropped the copy from before this node was added back; catching up from empty');
    const primary = nodeOf(p, g.primary).address;
    this.catchUp(volumeId, pg, primary, g.epoch).catch((err: unknown) => {
      this.log.warn({ volumeId, pg, code: isGalleonError(err) ? err.code : undefined }, 'catch-up after the drop failed; the primary asks again');
    });
  }

  /**
   * For replica writes (forwards, replicate batches), before any epoch check that records an
   * epoch in the store: a write to a copy that predates this node's re-addition is refused —
   * STALE_EPOCH when older than the fence, else UNAVAILABLE (its primary marks it out of sync).
   */
  private async refuseStaleCopy(volumeId: string, pg: number, epoch: number): Promise<void> {
    if (!await this.staleCopy(volumeId, pg, epoch)) return;
    const fence = this.rt(`${volumeId}/${pg}`).fencedEpoch;
    throw epoch < fence ? staleEpochError(volumeId, pg, epoch, fence) : this.rejoiningError(volumeId, pg);
  }

  /** Refused while the PG's stale copy is being replaced: the primary retries (and marks it out of sync). */
  private rejoiningError(volumeId: string, pg: number): GalleonError {
    return new GalleonError('UNAVAILABLE', `node ${this.nodeId} is replacing its stale copy of ${volumeId}/${pg}`, {
      hint: 'retry shortly: the node was added back and resyncs from empty first', details: { volumeId, pg },
    });
  }


  /**
   * A new placement arrived: record its epochs so older requests are refused from now on. With
   * `onlyMine`, only groups this node belongs to are touched; groups it now leads are peered at
   * once (so a replacement replica is resynced without waiting for client traffic), groups it
   * no longer leads forget their primary state and lease.
   */
  async adoptPlacement(p: VolumePlacement, onlyMine = false): Promise<void> {
    for (const g of p.groups) {
      if (onlyMine && !g.replicas.includes(this.nodeId)) {
        await maybeHandBack(this.handBacks, p, g);
        continue;
      }
      if (await this.staleCopy(p.volumeId, g.pg, g.epoch)) continue;
      await this.store.observeEpoch(p.volumeId, g.pg, g.epoch);
      if (!onlyMine) continue;
      const key = `${p.volumeId}/${g.pg}`;
      if (g.primary !== this.nodeId) {
        this.rt(key).primary = undefined;
        this.leases?.drop(p.volumeId, g.pg);
      } else {
        const cached = this.rt(key).primary;
        const current = cached === undefined ? undefined : await cached.catch(() => undefined);
        if (current?.epoch !== g.epoch) {
          this.primaryPg(p.volumeId, g.pg, g.epoch, g, p).catch((err: unknown) => {
            if (isGalleonError(err)) this.log.warn({ key, code: err.code, reason: err.message }, 'peering failed; the next write retries it');
            else this.log.warn({ err, key }, 'peering failed; the next write retries it');
          });
        }
      }
    }
  }

  /**
   * A replica's side of peering: adopt the new primary's epoch and tell how far it got. Only from
   * the primary the metadata service assigned at that epoch (`from` its id, `remote` the
   * connection's address).
   */
  async acceptPeering(volumeId: string, pg: number, epoch: number, from: string | null, remote: string | undefined): Promise<{ appliedSeq: number; highestSeq: number; epoch: number }> {
    const { placement, group } = await this.gate.assignedGroup(volumeId, pg, epoch);
    this.gate.requireFromPrimary('peering', placement, group, epoch, from, remote);
    const known = await this.gate.recordedEpoch(volumeId, pg, group);
    if (epoch < known) throw staleEpochError(volumeId, pg, epoch, known);
    const key = `${volumeId}/${pg}`;
    if (await this.staleCopy(volumeId, pg, epoch)) {
      // The old copy does not count: the group's seqs went on without it. Fenced in memory.
      this.rt(key).fencedEpoch = Math.max(this.rt(key).fencedEpoch, epoch);
      return { appliedSeq: 0, highestSeq: 0, epoch };
    }
    await this.store.observeEpoch(volumeId, pg, epoch);
    await Promise.all([...this.rt(key).applying]);
    const cached = this.rt(key).primary;
    if (cached !== undefined && (await cached.catch(() => undefined))?.epoch !== epoch) {
      this.rt(key).primary = undefined;
      this.leases?.drop(volumeId, pg);
    }
    const st = await this.store.pgState(volumeId, pg);
    return { appliedSeq: st.appliedSeq, highestSeq: st.highestSeq, epoch: st.epoch };
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
    await this.primaryPg(address.volumeId, pg, epoch, g, initial);
    await this.leases?.ensure(address.volumeId, pg, epoch);
  }

  async admitRead(volumeId: string, pg: number, epoch: number): Promise<void> {
    const g = groupOf(await this.placement.getPlacement(volumeId), pg);
    const known = Math.max(await this.gate.recordedEpoch(volumeId, pg, g), g.epoch);
    if (epoch < known) throw staleEpochError(volumeId, pg, epoch, known);
  }


  // ---- primary path ---------------------------------------------------------------------

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
    const ppg = await this.primaryPg(address.volumeId, pg, epoch, group, placement);
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
      let waitTimer: NodeJS.Timeout | undefined;
      const settle = (): void => {
        if (settled) return;
        const out = this.writeOutcome(w);
        if (out === 'pending') return;
        if (out === 'wait') {
          w.ppg.markWaiters.add(settle);
          waitTimer ??= setTimeout(() => { w.waitedOut = true; settle(); }, replicatedMarkWaitMs).unref();
          return;
        }
        settled = true;
        w.ppg.markWaiters.delete(settle);
        clearTimeout(waitTimer);
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

  private primaryPg(volumeId: string, pg: number, epoch: number, group: PlacementGroup, placement: VolumePlacement): Promise<PrimaryPg> {
    const key = `${volumeId}/${pg}`;
    const cached = this.rt(key).primary;
    const fresh = (): Promise<PrimaryPg> => {
      // One peering per PG and epoch: two callers that both found an older PrimaryPg would
      // otherwise each start at the same next seq and give it to two writes.
      const peerings = this.rt(key).peerings;
      const running = peerings.get(epoch);
      if (running !== undefined) return running;
      const started = (async (): Promise<PrimaryPg> => {
        await this.claim(volumeId, pg, epoch);
        const groupHighest = await this.peerAsPrimary(volumeId, pg, epoch, group, placement);
        const st = await this.store.pgState(volumeId, pg);
        const next = Math.max(st.highestSeq, groupHighest, this.rt(key).assignedSeq) + 1;
        const ppg: PrimaryPg = { epoch, nextSeq: next, replicaApplied: new Map(), trimmedTo: st.trimmedSeq, outOfSync: new Map(), markWaiters: new Set(), handedBack: new Map() };
        this.rt(key).serving = ppg;
        return ppg;
      })();
      peerings.set(epoch, started);
      const done = (): void => { if (peerings.get(epoch) === started) peerings.delete(epoch); };
      started.then(done, done);
      return started;
    };
    const p = (async (): Promise<PrimaryPg> => {
      const c = cached === undefined ? undefined : await cached;
      // A new epoch may follow a stint as replica: continue after everything this store holds.
      if (c !== undefined && c.epoch === epoch) return c;
      return fresh();
    })();
    if (cached === undefined) {
      this.rt(key).primary = p;
      // A failed peering is not cached: the next request tries again.
      p.catch(() => { if (this.rt(key).primary === p) this.rt(key).primary = undefined; });
      return p;
    }
    return p.then((v) => {
      if (this.rt(key).primary === cached) this.rt(key).primary = Promise.resolve(v);
      return v;
    });
  }

  /**
   * With a metadata service, a primary process claims its epoch before it assigns a seq: a second
   * claim of the same epoch (this node served it in an earlier process, and may have forwarded
   * seqs it never stored) moves the PG to a new epoch, and this request fails STALE_EPOCH so the
   * caller retries at it. Every incarnation of a primary thus writes under an epoch of its own,
   * and peering at it fences whatever an earlier incarnation still has in flight.
   */
  private async claim(volumeId: string, pg: number, epoch: number): Promise<void> {
    const key = `${volumeId}/${pg}`;
    if (this.leases === null || this.rt(key).claimedEpoch === epoch) return;
    const g = await this.leases.sync.claimPgPrimary(volumeId, pg, this.nodeId, epoch);
    this.rt(key).claimedEpoch = g.epoch;
    if (g.epoch === epoch) return;
    this.log.warn({ volumeId, pg, from: epoch, to: g.epoch }, 'primary restarted at a claimed epoch; moved the PG to a new epoch');
    await this.store.observeEpoch(volumeId, pg, g.epoch);
    await this.placement.refresh(volumeId).catch(() => undefined);
    throw staleEpochError(volumeId, pg, epoch, g.epoch);
  }

  /**
   * Peering, before the first request served at a new epoch: install the epoch on the replicas
   * (they refuse older primaries from then on), pull every journal entry some replica holds and
   * this node lacks (an acknowledged `replicated` write may live only on the old primary and one
   * replica), fill seqs nobody holds with noop entries, then let replicas that are behind pull
   * from this node. Returns the highest seq any member holds: new seqs start above it, so no seq
   * is ever given to two writes.
   *
   * With a metadata service every replica must answer: one that does not might hold seqs this
   * node would otherwise assign again. The peering fails (the next request retries it) until the
   * replica is back or the metadata service has replaced it. Without one (static placements)
   * unreachable replicas are left behind.
   */
  private async peerAsPrimary(volumeId: string, pg: number, epoch: number, group: PlacementGroup, placement: VolumePlacement): Promise<number> {
    const others = group.replicas.filter((id) => id !== this.nodeId);
    const answers = await Promise.all(others.map(async (id) => {
      const address = nodeOf(placement, id).address;
      try {
        return { id, address, state: await this.peers.peer(address, volumeId, pg, epoch, this.nodeId, peeringTimeoutMs) };
      } catch (err) {
        if (isGalleonError(err, 'STALE_EPOCH')) throw err; // deposed already
        this.log.warn({ volumeId, pg, epoch, replica: id, code: isGalleonError(err) ? err.code : undefined }, 'replica unreachable during peering');
        return { id, address, state: null };
      }
    }));
    const missing = answers.filter((a) => a.state === null).map((a) => a.id);
    if (missing.length > 0 && this.leases !== null) {
      throw new GalleonError('UNAVAILABLE', `peering ${volumeId}/${pg} at epoch ${epoch} needs every replica; ${missing.join(', ')} did not answer`, {
        hint: 'retry: the replica is coming back, or the metadata service replaces it once it is marked down', details: { missing },
      });
    }
    const reached = answers.flatMap((a) => (a.state === null ? [] : [{ id: a.id, address: a.address, state: a.state }]));
    const mine = await this.store.pgState(volumeId, pg);
    const groupHighest = reached.reduce((h, a) => Math.max(h, a.state.highestSeq), mine.highestSeq);
    const sources = [...reached].sort((a, b) => b.state.appliedSeq - a.state.appliedSeq || b.state.highestSeq - a.state.highestSeq);
    let now = mine;
    for (let round = 0; round < peeringPullRounds && now.appliedSeq < groupHighest; round++) {
      for (const src of sources) {
        if (src.state.highestSeq <= now.appliedSeq) continue;
        await this.catchUp(volumeId, pg, src.address, epoch);
        now = await this.store.pgState(volumeId, pg);
      }
      if (now.appliedSeq >= groupHighest) break;
      if (this.leases === null) break;
      const hole = now.appliedSeq + 1;
      if (this.rt(`${volumeId}/${pg}`).catchingUp || await this.anyHolds(sources, volumeId, pg, hole, epoch)) {
        await sleep(gapGraceMs); // a catch-up is running, or a replica got the seq since: pull again
        now = await this.store.pgState(volumeId, pg);
        continue;
      }
      // No member holds the next seq (its writer died before it landed anywhere): record it as a
      // noop so every watermark can pass it.
      await this.store.write({ kind: 'noop', address: { volumeId, inode: 0, blockNo: 0 }, pg, seq: now.appliedSeq + 1, epoch }, { sync: true, onlyIfNewer: true });
      this.log.warn({ volumeId, pg, epoch, seq: now.appliedSeq + 1 }, 'peering: no member holds this seq; recorded a noop');
      now = await this.store.pgState(volumeId, pg);
    }
    if (now.appliedSeq > mine.appliedSeq) this.log.info({ volumeId, pg, epoch, had: mine.appliedSeq, now: now.appliedSeq }, 'peering: pulled missing entries from replicas');
    if (this.leases !== null && now.appliedSeq < groupHighest) {
      throw new GalleonError('UNAVAILABLE', `peering ${volumeId}/${pg}: still missing seqs ${now.appliedSeq + 1}..${groupHighest}`, { hint: 'retry shortly' });
    }
    for (const a of reached) {
      if (a.state.appliedSeq >= now.appliedSeq) continue;
      this.peers.requestCatchUp(a.address, volumeId, pg, this.nodeId, epoch)
        .catch((err: unknown) => this.log.warn({ volumeId, pg, replica: a.id, code: isGalleonError(err) ? err.code : undefined }, 'replica catch-up after peering failed'));
    }
    this.log.info({ volumeId, pg, epoch, reached: reached.length, of: others.length, appliedSeq: now.appliedSeq }, 'peered as primary');
    return groupHighest;
  }

  /** Whether one of `sources` holds journal entry `seq` (or has trimmed past it). */
  private async anyHolds(sources: readonly { address: string }[], volumeId: string, pg: number, seq: number, epoch: number): Promise<boolean> {
    for (const src of sources) {
      try {
        const frames = await this.peers.fetchJournal(src.address, volumeId, pg, seq, epoch, 1);
        if (frames[0]?.meta.seq === seq) return true;
      } catch (err) {
        if (isGalleonError(err, 'OUT_OF_RANGE')) return true;
        throw err;
      }
    }
    return false;
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
      setTimeout(() => { if (current()) this.markOutOfSync(volumeId, pg, ppg, replica, address, mark.failed); }, outOfSyncRetryMs).unref();
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
        setTimeout(attempt, outOfSyncNudgeMs).unref();
      });
    };
    setTimeout(attempt, outOfSyncNudgeMs).unref();
  }

  private maybeTrimAsPrimary(volumeId: string, pg: number, ppg: PrimaryPg, replicas: ReplicaInfo[]): void {
    let low = Number.POSITIVE_INFINITY;
    for (const r of replicas) if (r.id !== this.nodeId) low = Math.min(low, ppg.replicaApplied.get(r.id) ?? 0);
    if (!Number.isFinite(low) || low - ppg.trimmedTo < trimEveryEntries) return;
    ppg.trimmedTo = low;
    this.store.trimJournal(volumeId, pg, low).catch((err: unknown) => this.log.warn({ err, volumeId, pg }, 'journal trim failed'));
  }

  // ---- replica path ---------------------------------------------------------------------

  /** `remote`: the address the forward came from (it must be the primary's host). */
  replicaApply(w: ReplicaWrite, remote: string | undefined): Promise<{ appliedSeq: number }> {
    return this.tracked(`${w.op.address.volumeId}/${w.op.pg}`, () => this.applyForward(w, remote));
  }

  /** One forward is a batch of one: the same epoch checks, write, gap watch and trim. */
  private async applyForward(w: ReplicaWrite, remote: string | undefined): Promise<{ appliedSeq: number }> {
    const [result] = await this.replicaApplyPg([w], remote);
    invariant(result !== undefined, 'a batch of one has one result');
    if ('error' in result) throw GalleonError.fromJSON(result.error);
    return result;
  }


  /**
   * A replicate batch: ops of one PG are admitted together (one epoch check, one store batch,
   * one watermark read) instead of one by one; each op still gets its own result, and an op
   * with an epoch older than this node has seen is refused exactly as `replicaApply` would.
   */
  async replicaApplyBatch(writes: readonly ReplicaWrite[], remote: string | undefined): Promise<ReplicateResult[]> {
    const byPg = new Map<string, number[]>();
    writes.forEach((w, i) => {
      const key = `${w.op.address.volumeId}/${w.op.pg}`;
      const list = byPg.get(key);
      if (list === undefined) byPg.set(key, [i]); else list.push(i);
    });
    const results = new Array<ReplicateResult>(writes.length);
    await Promise.all([...byPg.values()].map(async (idx) => {
      try {
        const group = idx.map((i) => writes[i] as ReplicaWrite);
        const first = group[0] as ReplicaWrite;
        // Tracked like a single forward: peering at a new epoch waits for writes admitted before it.
        const applied = await this.tracked(`${first.op.address.volumeId}/${first.op.pg}`, () => this.replicaApplyPg(group, remote));
        idx.forEach((i, k) => { results[i] = applied[k] as ReplicateResult; });
      } catch (err) {
        const e = isGalleonError(err) ? err : new GalleonError('INTERNAL', 'replica failed to apply a batch', { cause: err });
        for (const i of idx) results[i] = { error: e.toJSON() };
      }
    }));
    return results;
  }

  /**
   * Ops at the newest epoch must come from that epoch's primary (per the metadata service); older
   * ones are refused as stale one by one. Gaps are pulled from the primary's registered address.
   */
  private async replicaApplyPg(writes: readonly ReplicaWrite[], remote: string | undefined): Promise<ReplicateResult[]> {
    const first = writes[0];
    if (first === undefined) return [];
    const { volumeId } = first.op.address;
    const pg = first.op.pg;
    const top = Math.max(...writes.map((w) => w.op.epoch));
    const { placement, group } = await this.gate.assignedGroup(volumeId, pg, top);
    if (top >= group.epoch) this.gate.requireFromPrimary('a forward', placement, group, top, group.primary, remote); // forwards name no sender id
    await this.refuseStaleCopy(volumeId, pg, top);
    const known = Math.max(await this.gate.recordedEpoch(volumeId, pg, group), group.epoch);
    const accepted = writes.filter((w) => w.op.epoch >= known);
    // One (synced) epoch record: the newest accepted epoch, or the one the refusals were measured against.
    await this.store.observeEpoch(volumeId, pg, accepted.length > 0 ? Math.max(...accepted.map((w) => w.op.epoch)) : known);
    let appliedSeq = 0;
    if (accepted.length > 0) {
      await this.store.writeBatch(accepted.map((w) => w.op), { sync: accepted.some((w) => w.sync), onlyIfNewer: true });
      const st = await this.store.pgState(volumeId, pg);
      const last = accepted[accepted.length - 1] as ReplicaWrite;
      if (st.appliedSeq < st.highestSeq) this.watchGap(volumeId, pg, st.highestSeq, nodeOf(placement, group.primary).address, last.op.epoch);
      const key = `${volumeId}/${pg}`;
      const trimSeq = Math.max(...accepted.map((w) => w.trimSeq));
      const trimmed = this.rt(key).replicaTrimmedTo ?? st.trimmedSeq;
      if (trimSeq - trimmed >= trimEveryEntries) {
        this.rt(key).replicaTrimmedTo = trimSeq;
        this.store.trimJournal(volumeId, pg, trimSeq).catch((err: unknown) => this.log.warn({ err, volumeId, pg }, 'journal trim failed'));
      }
      appliedSeq = st.appliedSeq;
    }
    return writes.map((w) => (w.op.epoch >= known ? { appliedSeq } : { error: staleEpochError(volumeId, pg, w.op.epoch, known).toJSON() }));
  }

  /** A gap still open after the grace period means missed writes: pull them from the primary. */
  private watchGap(volumeId: string, pg: number, target: number, primary: string, epoch: number): void {
    const key = `${volumeId}/${pg}`;
    if (this.rt(key).catchingUp) return;
    const t = setTimeout(() => {
      this.gapTimers.delete(t);
      void (async () => {
        const st = await this.store.pgState(volumeId, pg);
        if (st.appliedSeq >= target || this.rt(key).catchingUp) return;
        await this.catchUp(volumeId, pg, primary, epoch);
      })().catch((err: unknown) => this.log.warn({ err, volumeId, pg, primary }, 'catch-up failed'));
    }, gapGraceMs);
    t.unref();
    this.gapTimers.add(t);
  }

  /**
   * A catch-up request: only from the PG's primary at `epoch` (per the metadata service), and the
   * node pulls from that primary's registered address. A request naming another address
   * (`named`, the old `primary=` parameter) is refused before anything connects anywhere.
   */
  async catchUpRequested(volumeId: string, pg: number, epoch: number, from: string | null, named: string | null, remote: string | undefined): Promise<number> {
    const { placement, group } = await this.gate.assignedGroup(volumeId, pg, epoch);
    this.gate.requireFromPrimary('a catch-up request', placement, group, epoch, from, remote);
    const address = nodeOf(placement, group.primary).address;
    if (named !== null && named !== address) {
      metrics.foreignRequestRefusals.inc();
      throw new GalleonError('FAILED_PRECONDITION', `catch-up of ${volumeId}/${pg} names ${named}, which is not the registered address of its primary ${group.primary} (${address})`, {
        hint: 'a node catches up only from its primary as the metadata service registered it; leave out primary=', details: { primary: group.primary },
      });
    }
    const known = await this.gate.recordedEpoch(volumeId, pg, group);
    if (epoch < known) throw staleEpochError(volumeId, pg, epoch, known);
    return this.catchUp(volumeId, pg, address, epoch);
  }

  /** Pulls journal entries after this store's watermark from `primary` until none are left. */
  async catchUp(volumeId: string, pg: number, primary: string, epoch: number): Promise<number> {
    const key = `${volumeId}/${pg}`;
    if (await this.staleCopy(volumeId, pg, epoch)) throw this.rejoiningError(volumeId, pg);
    if (this.rt(key).catchingUp) return (await this.store.pgState(volumeId, pg)).appliedSeq;
    this.rt(key).catchingUp = true;
    let resynced = false;
    try {
      for (;;) {
        const st = await this.store.pgState(volumeId, pg);
        let frames;
        try {
          frames = await this.peers.fetchJournal(primary, volumeId, pg, st.appliedSeq + 1, epoch, catchUpMaxBytes);
        } catch (err) {
          if (!isGalleonError(err, 'OUT_OF_RANGE') || resynced) throw err;
          resynced = true;
          await this.resync(volumeId, pg, primary, epoch);
          continue;
        }
        const ops: BlockOp[] = frames.map(({ meta, data }) => {
          const address = { volumeId, inode: meta.inode, blockNo: meta.blockNo };
          const base = { address, pg, seq: meta.seq, epoch: meta.epoch };
          return meta.kind === 'put' ? { ...base, kind: 'put', data } : { ...base, kind: meta.kind };
        });
        if (ops.length === 0) return st.appliedSeq;
        await this.tracked(key, async () => {
          // A newer primary peered while we fetched: these entries may be ones it did not count.
          const known = (await this.store.pgState(volumeId, pg)).epoch;
          if (known > epoch) throw staleEpochError(volumeId, pg, epoch, known);
          await this.store.writeBatch(ops, { sync: true, onlyIfNewer: true });
        });
        const after = await this.store.pgState(volumeId, pg);
        this.log.info({ volumeId, pg, from: st.appliedSeq, to: after.appliedSeq, entries: ops.length }, 'caught up from the primary journal');
        invariant(after.appliedSeq >= st.appliedSeq, 'the watermark never goes back');
        if (after.appliedSeq === st.appliedSeq) return after.appliedSeq;
      }
    } finally {
      this.rt(key).catchingUp = false;
    }
  }

  /**
   * Full resync of a PG from the primary, for a replica behind the primary's trimmed journal:
   * copy every live block the primary has, drop local blocks it no longer has, and move the
   * watermark to the primary's watermark from before the copy began.
   */
  private async resync(volumeId: string, pg: number, primary: string, epoch: number): Promise<void> {
    const { appliedSeq, frames } = await this.peers.fetchPgBlocks(primary, volumeId, pg, epoch);
    const seen = new Set<string>();
    let pending: Promise<void>[] = [];
    let copied = 0;
    for await (const { meta, data } of frames) {
      const address = { volumeId, inode: meta.inode, blockNo: meta.blockNo };
      seen.add(`${meta.inode}/${meta.blockNo}`);
      pending.push(this.store.rewriteBlock(address, { data, seq: meta.seq, epoch: meta.epoch, pg }));
      copied++;
      if (pending.length >= resyncBatchBlocks) { await Promise.all(pending); pending = []; }
    }
    await Promise.all(pending);
    let dropped = 0;
    for await (const { address, seq } of this.store.iterateAddresses({ volumeId, pg })) {
      if (seen.has(`${address.inode}/${address.blockNo}`) || seq > appliedSeq) continue;
      await this.store.dropBlock(address, pg, seq, epoch);
      dropped++;
    }
    await this.store.completeResync(volumeId, pg, appliedSeq);
    this.log.warn({ volumeId, pg, primary, copied, dropped, appliedSeq }, 'resynced a placement group in full (journal was trimmed)');
  }

  close(): void {
    this.closed = true;
    for (const t of this.gapTimers) clearTimeout(t);
    this.gapTimers.clear();
  }
}
