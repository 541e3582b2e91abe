/**
 * Peering of a data node (part of the `Replicator`, replication.ts): a new primary installs its
 * epoch on the replicas, pulls what some member holds and it lacks, fills seqs nobody holds with
 * noops and starts above the group's highest seq (`primaryPg`; the pulls and the copy in full are
 * `CatchUp`'s, catch-up.ts); a replica answers peering (`acceptPeering`), adopts placements from
 * heartbeats, catches up from a journal (`catchUp`, through `CatchUp`); a copy that predates this
 * node's re-addition to a PG is handed back, dropped and resynced from empty (`staleCopy`, `rejoin`).
 */
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import {
  admitPeering, isStaleCopy, nextPeeringMove,
  peeringProbed, placementStep, rejoinSteps, startPeering, type HandBackStep, type PlacementStep, type PlacementView,
} from '../core/index.js';
import { groupOf, nodeOf } from '../placement.js';
import type { VolumePlacement } from '../placement.js';
import { refusalError, staleEpochError } from './admission.js';
import { CatchUp } from './catch-up.js';
import { handBack, handBackLeft, type HandBackDeps } from './handback.js';
import { corePlacement } from './primary-drive.js';
import type { PrimaryPg } from './pg-runtime.js';
import type { PrimaryDrive } from './primary-drive.js';
import type { ReplicaDrive } from './replica-drive.js';
import { PgWorker, catchUpMaxBytes, gapGraceMs, type ReplicatorDeps } from './pg-worker.js';

/** Peering waits this long for each replica; one that does not answer fails the peering (with metadata) or is left behind (without). */
export const peeringTimeoutMs = 2_000;
/** A replica added back to a PG retries its hand-back and drop of the stale copy this often. */
export const rejoinRetryMs = 500;
/** Peering pulls and fills holes for at most this many rounds before it gives up (and is retried). */
const peeringPullRounds = 8;

export class Peering extends PgWorker {
  /** What the hand-back of a replaced copy needs (handback.ts). */
  private readonly handBacks: HandBackDeps;
  /** Journal pulls and full copies, as a replica and as a new primary peering (catch-up.ts). */
  private readonly catchUps: CatchUp;

  constructor(d: ReplicatorDeps, private readonly drive: PrimaryDrive, private readonly replicas: ReplicaDrive) {
    super(d);
    this.handBacks = { store: d.store, peers: d.peers, log: d.log, rt: d.rt, journalMaxBytes: catchUpMaxBytes };
    this.catchUps = new CatchUp(d, replicas, {
      stale: (volumeId, pg, epoch) => this.staleCopy(volumeId, pg, epoch),
      rejoining: (volumeId, pg) => this.rejoiningError(volumeId, pg),
    });
  }

  /** The store dropped the PG: forget what this node kept about it in memory (not the fences). */
  forgetPg(volumeId: string, pg: number): void {
    const r = this.rt(`${volumeId}/${pg}`);
    r.primary = undefined;
    this.leases?.drop(volumeId, pg);
    r.coreBehind = true;
    r.failedReplicas.clear();
  }

  // ---- a replica added back (its local copy predates its re-addition) ----------------------

  private closed = false;

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
    if (g === undefined || added === undefined) return false; // never re-added: no need to read the store
    const st = await this.store.pgState(volumeId, pg);
    if (!isStaleCopy(g.replicas.includes(this.nodeId), added, st.epoch, st.highestSeq > 0 || st.appliedSeq > 0) || this.closed) return false;
    this.startRejoin(volumeId, pg, g.epoch, added);
    return true;
  }

  /** Starts replacing a stale copy (once: a rejoin already running is left alone). */
  private startRejoin(volumeId: string, pg: number, epoch: number, addedAt: number): void {
    const r = this.rt(`${volumeId}/${pg}`);
    if (r.rejoining || this.closed) return;
    r.rejoining = true;
    // Fenced in memory only: the store must not see the new epoch before the old copy is gone.
    r.fencedEpoch = Math.max(r.fencedEpoch, epoch);
    this.log.warn({ volumeId, pg, addedAt }, 'added back to a PG this node holds an older copy of: handing back, dropping it, resyncing from empty');
    this.runRejoin(volumeId, pg);
  }


  private runRejoin(volumeId: string, pg: number): void {
    const attempt = (): void => {
      if (this.closed) return;
      this.rejoin(volumeId, pg).catch((err: unknown) => {
        this.log.warn({ volumeId, pg, code: isGalleonError(err) ? err.code : undefined, err: isGalleonError(err) ? undefined : err }, 'replacing the stale copy failed; retrying');
        this.clock.setTimeout(attempt, rejoinRetryMs);
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
    const mine = await this.store.pgState(volumeId, pg);
    // The primary forwards the hand-back to this node too, which refuses it, and so may another
    // replica added back with it: count only on in-sync ones, else on the primary alone.
    const otherInSync = g.inSync.filter((id) => id !== this.nodeId && id !== g.primary).length;
    const steps = rejoinSteps({ member: g.replicas.includes(this.nodeId), holdsAnything: mine.highestSeq > 0, otherInSync, epoch: g.epoch });
    for (const step of steps) await this.rejoinStep(step, p, pg, g, mine);
  }

  /** One step of a rejoin, as the core's `rejoinSteps` orders them (I/O only). */
  private async rejoinStep(step: HandBackStep, p: VolumePlacement, pg: number, g: PlacementGroup, mine: { epoch: number; appliedSeq: number }): Promise<void> {
    const volumeId = p.volumeId;
    const r = this.rt(`${volumeId}/${pg}`);
    switch (step.t) {
      // Removed again before we were done: an ordinary stale copy (hand-back, then lifecycle drop).
      case 'leave': r.rejoining = false; return;
      case 'offer': await handBack(this.handBacks, p, g, mine.epoch, step.concern); return;
      case 'settle': await Promise.all([...r.applying]); return;
      case 'drop': await this.store.dropPg(volumeId, pg); this.forgetPg(volumeId, pg); return;
      case 'epoch':
        await this.store.observeEpoch(volumeId, pg, Math.max(step.epoch, r.fencedEpoch));
        r.rejoining = false;
        this.log.warn({ volumeId, pg, epoch: g.epoch, had: mine.appliedSeq }, 'dropped the copy from before this node was added back; catching up from empty');
        return;
      case 'catchUp':
        this.catchUp(volumeId, pg, nodeOf(p, g.primary).address, g.epoch).catch((err: unknown) => {
          this.log.warn({ volumeId, pg, code: isGalleonError(err) ? err.code : undefined }, 'catch-up after the drop failed; the primary asks again');
        });
        return;
    }
  }

  /**
   * For replica writes (forwards, replicate batches), before any epoch check that records an
   * epoch in the store: a write to a copy that predates this node's re-addition is refused —
   * STALE_EPOCH when older than the fence, else UNAVAILABLE (its primary marks it out of sync).
   */
  async refuseStaleCopy(volumeId: string, pg: number, epoch: number): Promise<void> {
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
   * A new placement arrived: what it means for each group is the core's `placementStep` (record
   * the epoch, peer as the new primary, step down, start the rejoin of a stale copy, hand a left
   * group's copy back); this gathers what it needs to know (the store's state, what this node
   * serves) and carries the steps out. With `onlyMine` (this node's heartbeat) roles are taken
   * and left copies handed back; otherwise (an operator's static placement) only epochs recorded.
   */
  async adoptPlacement(p: VolumePlacement, onlyMine = false): Promise<void> {
    for (const g of p.groups) {
      const key = `${p.volumeId}/${g.pg}`;
      const r = this.rt(key);
      const st = await this.store.pgState(p.volumeId, g.pg);
      const view: PlacementView = {
        self: this.nodeId, recordedEpoch: st.epoch, applied: st.appliedSeq, highest: st.highestSeq,
        servingEpoch: r.primary === undefined ? null : r.serving?.epoch ?? null, rejoining: r.rejoining,
        handBackDone: r.handedBack.has(g.epoch) || r.handingBack.has(g.epoch), roles: onlyMine,
      };
      for (const step of placementStep(view, corePlacement(g, p))) await this.carryOut(p, g, step);
    }
  }

  private async carryOut(p: VolumePlacement, g: PlacementGroup, step: PlacementStep): Promise<void> {
    const key = `${p.volumeId}/${g.pg}`;
    switch (step.t) {
      case 'handBack': await handBackLeft(this.handBacks, p, g); return;
      case 'nothingToHandBack': this.rt(key).handedBack.add(step.epoch); return;
      case 'rejoin': this.startRejoin(p.volumeId, g.pg, g.epoch, step.addedAt); return;
      case 'epoch': await this.store.observeEpoch(p.volumeId, g.pg, step.epoch); return;
      case 'stepDown':
        this.rt(key).primary = undefined;
        this.leases?.drop(p.volumeId, g.pg);
        return;
      case 'peer':
        this.primaryPg(p.volumeId, g.pg, step.epoch, g, p).catch((err: unknown) => {
          if (isGalleonError(err)) this.log.warn({ key, code: err.code, reason: err.message }, 'peering failed; the next write retries it');
          else this.log.warn({ err, key }, 'peering failed; the next write retries it');
        });
        return;
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
    const refusal = admitPeering({ self: this.nodeId, epoch: await this.gate.recordedEpoch(volumeId, pg, group), faults: this.coreFaults, placement: null }, epoch);
    if (refusal !== null) throw refusalError(volumeId, pg, epoch, refusal);
    const key = `${volumeId}/${pg}`;
    if (await this.staleCopy(volumeId, pg, epoch)) {
      // The old copy does not count: the group's seqs went on without it. Fenced in memory.
      this.rt(key).fencedEpoch = Math.max(this.rt(key).fencedEpoch, epoch);
      return { appliedSeq: 0, highestSeq: 0, epoch };
    }
    // The peering is a `msg peer` on the PG's record (as a replica of the group): its epoch check,
    // the epoch recorded, a primary of an older placement leaving its role, and the answer.
    const ctx = await this.replicas.open(volumeId, pg, group, placement);
    await this.replicas.stepMsg(ctx, { t: 'peer', epoch, fromSeq: ctx.core.r.applied + 1 }, []);
    const answer = ctx.peerAnswer;
    if (answer === undefined) {
      if (epoch < ctx.core.r.epoch) throw staleEpochError(volumeId, pg, epoch, ctx.core.r.epoch);
      throw new GalleonError('UNAVAILABLE', `${volumeId}/${pg} does not take a peering at epoch ${epoch} now`, { hint: 'retry: the placement is changing' });
    }
    // Replica writes admitted before the epoch was installed land first (the record counted them).
    await Promise.all([...this.rt(key).applying]);
    const cached = this.rt(key).primary;
    if (cached !== undefined && (await cached.catch(() => undefined))?.epoch !== epoch) {
      this.rt(key).primary = undefined;
      this.leases?.drop(volumeId, pg);
    }
    // The store's highest seq may lie above every seq it journaled (a full copy's block written
    // past the copy's watermark): the answer never names less than the store holds.
    const st = await this.store.pgState(volumeId, pg);
    return { appliedSeq: answer.applied, highestSeq: Math.max(answer.highest, st.highestSeq), epoch: st.epoch };
  }

  // ---- a new primary --------------------------------------------------------------------

  primaryPg(volumeId: string, pg: number, epoch: number, group: PlacementGroup, placement: VolumePlacement): Promise<PrimaryPg> {
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
        // The record followed the pulls (its own store actions): it takes the store's state only
        // where the two differ (the shell wrote behind it — a drop, a failed store action — or
        // writes of an older epoch are still landing).
        const core = await this.replicas.record(volumeId, pg, group);
        const st = await this.store.pgState(volumeId, pg);
        const held = (await this.store.heldSeqs(volumeId, pg)).filter((s) => s > st.appliedSeq + 1);
        const c = core.r;
        const same = c.applied === st.appliedSeq && c.trimmedTo === Math.min(st.trimmedSeq, st.appliedSeq) && c.held.size === held.length && held.every((s) => c.held.has(s));
        // The core decides the first seq (above the group, this journal and every seq this process gave).
        const ppg = this.drive.newPrimaryPg(volumeId, group, placement, core, { st, held: same ? null : held }, groupHighest);
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
        const st = await this.peers.peer(address, volumeId, pg, epoch, this.nodeId, peeringTimeoutMs);
        return { id, state: { applied: st.appliedSeq, highest: st.highestSeq } };
      } catch (err) {
        if (isGalleonError(err, 'STALE_EPOCH')) throw err; // deposed already
        this.log.warn({ volumeId, pg, epoch, replica: id, code: isGalleonError(err) ? err.code : undefined }, 'replica unreachable during peering');
        return { id, state: null };
      }
    }));
    const mine = await this.store.pgState(volumeId, pg);
    const start = startPeering(mine.highestSeq, answers, this.leases !== null, peeringPullRounds, this.coreFaults);
    if (!start.ok) {
      throw new GalleonError('UNAVAILABLE', `peering ${volumeId}/${pg} at epoch ${epoch} needs every replica; ${start.missing.join(', ')} did not answer`, {
        hint: 'retry: the replica is coming back, or the metadata service replaces it once it is marked down', details: { missing: start.missing },
      });
    }
    const plan = start.plan;
    const addressOf = (id: string): string => nodeOf(placement, id).address;
    let now = mine;
    // The core's plan decides every move (peering-plan.ts); this loop only carries them out.
    for (;;) {
      const move = nextPeeringMove(plan, now.appliedSeq, this.rt(`${volumeId}/${pg}`).catchingUp);
      switch (move.t) {
        case 'pull': await this.catchUps.pullForPeering(volumeId, pg, group, move.from, addressOf(move.from)); break;
        case 'probe': peeringProbed(plan, move.seq, await this.anyHolds(plan.reached.map((a) => ({ address: addressOf(a.id) })), volumeId, pg, move.seq, epoch)); break;
        case 'wait': await new Promise<void>((resolve) => { this.clock.setTimeout(resolve, gapGraceMs); }); break;
        case 'noop':
          await this.catchUps.noopForPeering(volumeId, pg, group, move.seq);
          this.log.warn({ volumeId, pg, epoch, seq: move.seq }, 'peering: no member holds this seq; recorded a noop');
          break;
        case 'fail':
          throw new GalleonError('UNAVAILABLE', `peering ${volumeId}/${pg}: still missing seqs ${move.from}..${move.to}`, { hint: 'retry shortly' });
        case 'done':
          if (now.appliedSeq > mine.appliedSeq) this.log.info({ volumeId, pg, epoch, had: mine.appliedSeq, now: now.appliedSeq }, 'peering: pulled missing entries from replicas');
          for (const id of move.catchUp) {
            this.peers.requestCatchUp(addressOf(id), volumeId, pg, this.nodeId, epoch)
              .catch((err: unknown) => this.log.warn({ volumeId, pg, replica: id, code: isGalleonError(err) ? err.code : undefined }, 'replica catch-up after peering failed'));
          }
          this.log.info({ volumeId, pg, epoch, reached: plan.reached.length, of: others.length, appliedSeq: now.appliedSeq }, 'peered as primary');
          return move.groupHighest;
      }
      if (move.t !== 'probe') now = await this.store.pgState(volumeId, pg);
    }
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

  // ---- catch-up (catch-up.ts) -------------------------------------------------------------

  /** A replica's catch-up from its primary (`CatchUp.catchUp`: each batch a `msg journal` on the PG's record). */
  catchUp(volumeId: string, pg: number, primary: string, epoch: number): Promise<number> {
    return this.catchUps.catchUp(volumeId, pg, primary, epoch);
  }

  close(): void {
    this.closed = true;
  }
}
