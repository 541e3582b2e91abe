/**
 * The primary write path as a shell around the replication core (`../core`, issue #13): a write
 * becomes a core `write` event, and this class carries out what the core returns — the local
 * store write, the forwards, the out-of-sync marks at the metadata service, journal trims, epoch
 * records, the answer to the client — and turns what comes back (store done or failed, a
 * replica's answer, a mark committed or refused, the lease lapsing) into core events. It decides
 * nothing: the seq, whether a concern is met (rule 1 included), fencing and trimming are the
 * core's, and so is what is due as time passes — the primary's record is ticked from one timer
 * per served epoch (`primaryTickMs`): a lapsed lease is stepped in before each tick, a mark the
 * service did not take is asked again and a replica behind is asked to catch up when the core
 * says so. What it still owns is I/O: the transport's retries and timeouts of each call, one
 * call in flight per replica and mark, and which error object carries the core's answer.
 */
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import { defaultCoreLimits, type PgCore, type ErrorCodeOut, type PeerMsg, type PgAction, type PgEvent, type PgPlacement } from '../core/index.js';
import type { TimerHandle } from '../clock.js';
import { nodeOf } from '../placement.js';
import type { VolumePlacement } from '../placement.js';
import type { PgState } from '../store/types.js';
import type { PlacementGroup, WriteConcern } from '../../proto/metadata-types.js';
import { staleEpochError } from './admission.js';
import type { CoreWrite, MarkCall, PgRuntime, PrimaryPg, WriteResult } from './pg-runtime.js';
import { PgWorker } from './pg-worker.js';

/**
 * A primary's record is ticked this often while it serves an epoch. The core re-sends a mark the
 * metadata service did not take, and asks a replica behind with no write outstanding to catch
 * up, every `resendTicks` ticks: `outOfSyncRetryMs`.
 */
export const primaryTickMs = 100;
export const outOfSyncRetryMs = primaryTickMs * defaultCoreLimits.resendTicks;
/**
 * Test-only fault hook (tests of seq reuse): with GALLEON_TEST_DIE_AFTER_FORWARD=1 the first
 * write this process serves as primary is forwarded but never stored here, and the process
 * kills itself as soon as one replica stored it. Off unless the variable is set.
 */
const dieAfterForward = process.env.GALLEON_TEST_DIE_AFTER_FORWARD === '1';

const hints: Record<ErrorCodeOut, string> = {
  NOT_PRIMARY: 'refresh the placement and send the write to the primary',
  STALE_EPOCH: 'refresh the placement from the metadata service and retry',
  UNAVAILABLE: 'retry the write: the client re-reads the placement',
  WRITE_CONCERN_UNMET: 'use a weaker write concern, or retry once the replicas are reachable (add replicas in another zone for distributed)',
};

/** The core's view of a PG's placement (../core/types.ts `PgPlacement`). */
export function corePlacement(group: PlacementGroup, placement: VolumePlacement): PgPlacement {
  return { epoch: group.epoch, primary: group.primary, replicas: group.replicas.map((id) => ({ id, zone: nodeOf(placement, id).zone })), addedAt: group.addedAtEpoch ?? {} };
}

export class PrimaryDrive extends PgWorker {
  private dieArmed = dieAfterForward;

  /**
   * The PG's core record as primary at the epoch the shell peered (`Peering.primaryPg`; the
   * members' answers are not core events yet): one record per PG (`PgRuntime.core`, `core` here),
   * which followed peering's pulls as its own store actions (no `restored` after peering unless
   * `store.held` is given: the store's journal differs from the record's mirror, and the record
   * takes it), told that it serves at `group.epoch` above `groupHighest` and every seq it gave
   * before — deposed at once when the store holds a newer epoch (`store.st.epoch`: a newer
   * primary peered this node).
   */
  newPrimaryPg(volumeId: string, group: PlacementGroup, placement: VolumePlacement, core: PgCore, store: { st: PgState; held: readonly number[] | null }, groupHighest: number): PrimaryPg {
    const { pg, epoch } = group;
    const { st, held } = store;
    const r = this.rt(`${volumeId}/${pg}`);
    invariant(r.core === core, 'the primary serves with the PG\'s one record');
    const p = corePlacement(group, placement);
    const ppg: PrimaryPg = { volumeId, pg, epoch, core, runtime: r, marks: new Map(), catchUps: new Set(), handedBack: new Map() };
    if (held !== null) {
      this.log.debug({ volumeId, pg, epoch, mirror: core.r.applied, store: st.appliedSeq }, 'after peering the store differs from the record: restoring it');
      this.run(ppg, null, { t: 'restored', epoch: st.epoch, applied: st.appliedSeq, held, trimmedTo: st.trimmedSeq });
    }
    this.run(ppg, null, { t: 'peeredByShell', p, groupHighest, recorded: st.epoch });
    // Without leases (static placements) the primary role alone lets it acknowledge.
    if (this.leases === null) this.run(ppg, null, { t: 'lease', epoch, valid: true });
    this.startTicks(ppg);
    return ppg;
  }

  private readonly tickTimers = new Set<TimerHandle>();
  private closed = false;

  /** Ticks the record while `ppg` is what this node serves the PG with (the lease is checked first: `step`). */
  private startTicks(ppg: PrimaryPg): void {
    let timer: TimerHandle | undefined;
    const tick = (): void => {
      if (timer !== undefined) this.tickTimers.delete(timer);
      if (this.closed || !this.current(ppg)) return;
      // The replica path ticks the record while it serves as a replica (replica-path.ts `watchGap`).
      const r = ppg.core.r;
      if (r.role !== 'primary' || r.placement?.epoch !== ppg.epoch) return;
      this.step(ppg, { t: 'tick' });
      timer = this.clock.setTimeout(tick, primaryTickMs);
      this.tickTimers.add(timer);
    };
    timer = this.clock.setTimeout(tick, primaryTickMs);
    this.tickTimers.add(timer);
  }

  close(): void {
    this.closed = true;
    for (const t of this.tickTimers) this.clock.clearTimeout(t);
    this.tickTimers.clear();
  }

  /**
   * Hands a write to the core (the caller read the placement and holds the lease); settles with
   * the core's answer. `epoch` is the client's: the core admits it again (admission.ts).
   */
  write(ppg: PrimaryPg, w: Pick<CoreWrite, 'address' | 'data' | 'placement'>, concern: WriteConcern, epoch: number): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      const r = ppg.runtime;
      const req = r.nextReq++;
      const cw: CoreWrite = { ...w, op: undefined, localError: undefined, dieAfterForward: false, resolve, reject };
      r.writes.set(req, cw);
      if (this.leases !== null && !ppg.core.r.lease && this.leases.valid(ppg.volumeId, ppg.pg, ppg.epoch)) this.run(ppg, null, { t: 'lease', epoch: ppg.epoch, valid: true });
      this.run(ppg, cw, { t: 'write', req, block: w.address.blockNo, value: '', concern, epoch });
    });
  }

  /** The next seq the core would assign (hand-back compares re-read until it did not move). */
  nextSeq(ppg: PrimaryPg): number {
    return ppg.core.r.nextSeq;
  }

  /**
   * An event from I/O that may lead to an acknowledgement: the lease is checked first (time is an
   * input of the core: a lapsed lease fails what waits, since a successor may exist).
   */
  private step(ppg: PrimaryPg, ev: PgEvent): void {
    if (this.leases !== null && ppg.core.r.lease && !this.leases.valid(ppg.volumeId, ppg.pg, ppg.epoch)) {
      this.run(ppg, null, { t: 'lease', epoch: ppg.epoch, valid: false });
    }
    this.run(ppg, null, ev);
  }

  /** `cur`: the write this event orders (its `store` and `forward` actions carry its body). */
  private run(ppg: PrimaryPg, cur: CoreWrite | null, ev: PgEvent): void {
    const actions = ppg.core.step(ev);
    for (const a of actions) this.execute(ppg, cur, a);
  }

  private execute(ppg: PrimaryPg, cur: CoreWrite | null, a: PgAction): void {
    switch (a.t) {
      case 'store': this.storeLocal(ppg, cur, a); return;
      case 'send': this.send(ppg, cur, a.to, a.msg); return;
      case 'answer': this.answer(ppg, a); return;
      case 'outOfSync': this.mark(ppg, a.replica, a.floor); return;
      case 'trim':
        this.store.trimJournal(ppg.volumeId, ppg.pg, a.upto).catch((err: unknown) => this.log.warn({ err, volumeId: ppg.volumeId, pg: ppg.pg }, 'journal trim failed'));
        return;
      case 'epoch': this.recordEpoch(ppg, a.epoch); return;
      default:
        // Peering, claims, reads, hand-back and the replica side are not driven by the core here yet.
        invariant(false, `the primary write path got a core action it does not carry out: ${a.t}`);
    }
  }

  private storeLocal(ppg: PrimaryPg, cur: CoreWrite | null, a: Extract<PgAction, { t: 'store' }>): void {
    const entry = a.entries[0];
    invariant(cur !== null && a.entries.length === 1 && entry !== undefined && a.full === null, 'the primary path stores one client write per core store action');
    const { address } = cur;
    const base = { address, pg: ppg.pg, seq: entry.seq, epoch: entry.epoch };
    cur.op = cur.data === null ? { ...base, kind: 'delete' } : { ...base, kind: 'put', data: cur.data };
    if (this.dieArmed) { this.dieArmed = false; cur.dieAfterForward = true; return; } // test hook: never stored here
    this.store.write(cur.op, { sync: a.sync }).then(() => this.step(ppg, { t: 'stored', token: a.token }), (err: unknown) => {
      cur.localError = err instanceof Error ? err : new GalleonError('INTERNAL', 'local write failed', { cause: err });
      this.log.error({ err, volumeId: address.volumeId, pg: ppg.pg, seq: entry.seq }, 'local write failed on the primary');
      ppg.runtime.coreBehind = true; // the mirror counted the seq: a later forward of it must not be skipped
      this.step(ppg, { t: 'storeFailed', token: a.token });
    });
  }

  private send(ppg: PrimaryPg, cur: CoreWrite | null, to: string, msg: PeerMsg): void {
    if (msg.t === 'catchUp') { this.askCatchUp(ppg, to, msg.epoch); return; }
    invariant(msg.t === 'forward' && cur?.op !== undefined, `the primary path sends only the forward of the write it orders and catch-up requests, not ${msg.t}`);
    const { op, dieAfterForward: dieNow } = cur;
    const seqs = [op.seq];
    const target = nodeOf(cur.placement, to).address;
    const failed = this.rt(`${ppg.volumeId}/${ppg.pg}`).failedReplicas;
    this.peers.replicate(target, op, { sync: msg.sync, primary: this.selfAddress(), trimSeq: msg.trimSeq }).then((res) => {
      if (dieNow) process.kill(process.pid, 'SIGKILL');
      failed.delete(to);
      this.step(ppg, { t: 'msg', from: to, msg: { t: 'ack', epoch: msg.epoch, seqs, durable: msg.sync, applied: res.appliedSeq } });
    }, (err: unknown) => {
      // STALE_EPOCH names the newer epoch the replica saw: the core fences on it. Anything else is a failed replica.
      const stale = isGalleonError(err, 'STALE_EPOCH');
      const newer = stale ? (typeof err.details.epoch === 'number' ? err.details.epoch : msg.epoch + 1) : msg.epoch;
      const level = failed.size === 0 && !failed.has(to) ? 'warn' : 'debug';
      failed.add(to);
      this.log[level]({ replica: to, volumeId: ppg.volumeId, pg: ppg.pg, seq: op.seq, code: isGalleonError(err) ? err.code : undefined }, 'replica failed to apply a write');
      this.step(ppg, { t: 'msg', from: to, msg: { t: 'nack', epoch: msg.epoch, seqs, newer } });
    });
  }

  /**
   * An answer the core gave while the replica path stepped the PG's record (a primary of an older
   * placement that learned it is a replica now fails what waits): carried out like one of this path's.
   */
  answerFromReplicaPath(r: PgRuntime, a: Extract<PgAction, { t: 'answer' }>): void {
    const ppg = r.serving;
    if (ppg !== undefined && ppg.runtime === r) { this.answer(ppg, a); return; }
    const w = r.writes.get(a.req);
    if (w === undefined) return;
    r.writes.delete(a.req);
    w.reject(new GalleonError(a.ok ? 'INTERNAL' : a.code, `write to ${w.address.volumeId}: ${a.ok ? 'acknowledged after the primary left its role' : a.message}`, { hint: hints.STALE_EPOCH }));
  }

  private answer(ppg: PrimaryPg, a: Extract<PgAction, { t: 'answer' }>): void {
    const writes = ppg.runtime.writes;
    const w = writes.get(a.req);
    if (w === undefined) return;
    writes.delete(a.req);
    const { volumeId } = w.address;
    if (a.ok) {
      w.resolve({ volumeId, pg: ppg.pg, seq: a.seq, epoch: a.epoch, concern: a.concern, acks: Object.fromEntries(a.acks) });
      return;
    }
    if (a.code === 'STALE_EPOCH') { w.reject(staleEpochError(volumeId, ppg.pg, ppg.epoch, ppg.core.r.epoch)); return; }
    if (a.code === 'WRITE_CONCERN_UNMET' && w.localError !== undefined) { w.reject(w.localError); return; }
    w.reject(new GalleonError(a.code, `write to ${volumeId}/${ppg.pg}: ${a.message}`, { hint: hints[a.code], details: { pg: ppg.pg, epoch: ppg.epoch } }));
  }

  /** The core raised the PG's epoch (a replica named a newer one): fence in memory, record it once the service shows it. */
  private recordEpoch(ppg: PrimaryPg, epoch: number): void {
    if (epoch > ppg.epoch) { this.gate.fenceFromReplica(ppg.volumeId, ppg.pg, epoch); return; }
    this.store.observeEpoch(ppg.volumeId, ppg.pg, epoch).catch((err: unknown) => this.log.error({ err }, 'recording the epoch failed'));
  }

  /** Whether `ppg` is still what this node serves the PG with (background work of an older one stops). */
  private current(ppg: PrimaryPg): boolean {
    const r = this.rt(`${ppg.volumeId}/${ppg.pg}`);
    return r.primary !== undefined && r.serving === ppg && r.fencedEpoch <= ppg.epoch;
  }

  /**
   * The core took a replica out of the in-sync set with a floor: tell the metadata service (one
   * call in flight per replica; a higher floor asked meanwhile goes next). Without a metadata
   * service (static placements) there is no in-sync set to leave and nobody to promote: the mark
   * holds at once.
   */
  private mark(ppg: PrimaryPg, replica: string, floor: number): void {
    if (this.leases === null) { this.run(ppg, null, { t: 'marked', replica, floor }); return; }
    let m = ppg.marks.get(replica);
    if (m === undefined) { m = { want: 0, sending: false }; ppg.marks.set(replica, m); }
    m.want = Math.max(m.want, floor);
    if (!m.sending) this.sendMark(ppg, replica, m);
  }

  private sendMark(ppg: PrimaryPg, replica: string, m: MarkCall): void {
    invariant(this.leases !== null, 'marks go to the metadata service');
    const { volumeId, pg, epoch } = ppg;
    const floor = m.want;
    m.sending = true;
    this.leases.sync.markPgReplicaOutOfSync(volumeId, pg, replica, epoch, this.nodeId, floor).then(() => {
      m.sending = false;
      this.log.warn({ volumeId, pg, epoch, replica, floor }, 'replica failed a write; marked out of sync');
      this.step(ppg, { t: 'marked', replica, floor });
      if (m.want > floor) this.sendMark(ppg, replica, m);
    }, (err: unknown) => {
      m.sending = false;
      if (isGalleonError(err, 'STALE_EPOCH') || isGalleonError(err, 'FAILED_PRECONDITION')) {
        this.step(ppg, { t: 'markRefused', replica, epoch });
        return;
      }
      // The core asks again on a later tick (its `outOfSync` for a floor not committed yet).
      this.log.warn({ volumeId, pg, replica, code: isGalleonError(err) ? err.code : undefined }, 'out-of-sync mark not taken; retrying');
    });
  }

  /**
   * The core asks `replica` (behind, nothing outstanding to it) to catch up from this primary: one
   * request in flight per replica; its answer, the replica's watermark after a synced catch-up, is
   * a durable `ack` of no write. A failure waits for the core to ask again.
   */
  private askCatchUp(ppg: PrimaryPg, replica: string, epoch: number): void {
    if (this.leases === null || ppg.catchUps.has(replica) || !this.current(ppg)) return;
    ppg.catchUps.add(replica);
    this.placement.getPlacement(ppg.volumeId)
      .then((p) => this.peers.requestCatchUp(nodeOf(p, replica).address, ppg.volumeId, ppg.pg, this.nodeId, epoch))
      .then((res) => {
        ppg.catchUps.delete(replica);
        this.step(ppg, { t: 'msg', from: replica, msg: { t: 'ack', epoch, seqs: [], durable: true, applied: res.appliedSeq } });
      }, (err: unknown) => {
        ppg.catchUps.delete(replica);
        this.log.debug({ volumeId: ppg.volumeId, pg: ppg.pg, replica, code: isGalleonError(err) ? err.code : undefined }, 'catch-up request failed; the core asks again');
      });
  }
}
