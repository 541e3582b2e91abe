/**
 * The replica path of a data node (part of the `Replicator`, replication.ts): apply forwarded
 * writes and replicate batches with `onlyIfNewer` (arrivals may be out of order) under one epoch
 * check per PG, report the contiguous applied seq, trim the journal as the primary allows, and
 * pull the missing entries from the primary's journal when a gap outlives `gapGraceMs` or the
 * primary asks (`catchUpRequested`; the pull itself is `Peering.catchUp`).
 */
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { TimerHandle } from '../clock.js';
import { metrics } from '../metrics.js';
import { nodeOf } from '../placement.js';
import type { BlockOp, PgState } from '../store/types.js';
import type { ReplicateResult } from '../wire.js';
import { refusalError } from './admission.js';
import { admitReplicaOp, gapCheck, replicaTrimTo } from '../core/index.js';
import type { Peering } from './peering.js';
import { PgWorker, gapGraceMs, trimEveryEntries, type ReplicatorDeps } from './pg-worker.js';

export interface ReplicaWrite {
  op: BlockOp;
  sync: boolean;
  primary: string;
  trimSeq: number;
}

export class ReplicaPath extends PgWorker {
  private readonly gapTimers = new Set<TimerHandle>();

  constructor(d: ReplicatorDeps, private readonly peering: Peering) {
    super(d);
  }

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
    await this.peering.refuseStaleCopy(volumeId, pg, top);
    // The epoch check of every op is the core's (admitReplicaOp); the shell gathered its inputs.
    const view = await this.gate.view(volumeId, group);
    const refusals = writes.map((w) => admitReplicaOp(view, w.op.epoch));
    const accepted = writes.filter((_, i) => refusals[i] === null);
    // One (synced) epoch record: the newest accepted epoch, or the one the refusals were measured against.
    await this.store.observeEpoch(volumeId, pg, accepted.length > 0 ? Math.max(...accepted.map((w) => w.op.epoch)) : view.epoch);
    let appliedSeq = 0;
    if (accepted.length > 0) {
      await this.store.writeBatch(accepted.map((w) => w.op), { sync: accepted.some((w) => w.sync), onlyIfNewer: true });
      const st = await this.store.pgState(volumeId, pg);
      const last = accepted[accepted.length - 1] as ReplicaWrite;
      this.noteGap(volumeId, pg, st.appliedSeq < st.highestSeq, { address: nodeOf(placement, group.primary).address, epoch: last.op.epoch });
      this.trim(volumeId, pg, Math.max(...accepted.map((w) => w.trimSeq)), st);
      appliedSeq = st.appliedSeq;
    }
    return writes.map((w, i) => {
      const r = refusals[i];
      return r === null || r === undefined ? { appliedSeq } : { error: refusalError(volumeId, pg, w.op.epoch, r).toJSON() };
    });
  }

  /** The core's trim rule: behind the primary's allowance, never past this copy's watermark. */
  private trim(volumeId: string, pg: number, trimSeq: number, st: PgState): void {
    const r = this.rt(`${volumeId}/${pg}`);
    const upto = replicaTrimTo(trimSeq, st.appliedSeq, r.replicaTrimmedTo ?? st.trimmedSeq, trimEveryEntries);
    if (upto === null) return;
    r.replicaTrimmedTo = upto;
    this.store.trimJournal(volumeId, pg, upto).catch((err: unknown) => this.log.warn({ err, volumeId, pg }, 'journal trim failed'));
  }

  /**
   * Gap detection on the clock: whether a gap is open is observed after every replica write and
   * on a timer while one is; when to pull it is the core's `gapCheck` (open for `gapGraceMs`).
   */
  private noteGap(volumeId: string, pg: number, open: boolean, primary: { address: string; epoch: number }): void {
    const r = this.rt(`${volumeId}/${pg}`);
    const now = this.clock.now();
    const g = gapCheck(r.gap?.since ?? null, open, now, gapGraceMs);
    if (g.since === null) { this.clock.clearTimeout(r.gap?.timer); r.gap = undefined; return; }
    const gap = r.gap ?? { since: g.since, timer: undefined, primary };
    gap.since = g.since;
    gap.primary = primary;
    r.gap = gap;
    if (g.pull && !r.catchingUp) {
      this.peering.catchUp(volumeId, pg, primary.address, primary.epoch).catch((err: unknown) => this.log.warn({ err, volumeId, pg, primary: primary.address }, 'catch-up failed'));
    }
    if (gap.timer !== undefined) return;
    const t = this.clock.setTimeout(() => {
      this.gapTimers.delete(t);
      gap.timer = undefined;
      if (r.gap !== gap || this.closed) return;
      this.store.pgState(volumeId, pg).then((st) => {
        if (r.gap === gap && !this.closed) this.noteGap(volumeId, pg, st.appliedSeq < st.highestSeq, gap.primary);
      }).catch((err: unknown) => this.log.warn({ err, volumeId, pg }, 'reading the watermark for gap detection failed'));
    }, Math.max(0, gap.since + gapGraceMs - now));
    gap.timer = t;
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
    const refusal = admitReplicaOp(await this.gate.view(volumeId, group), epoch);
    if (refusal !== null) throw refusalError(volumeId, pg, epoch, refusal);
    return this.peering.catchUp(volumeId, pg, address, epoch);
  }

  private closed = false;

  close(): void {
    this.closed = true;
    for (const t of this.gapTimers) this.clock.clearTimeout(t);
    this.gapTimers.clear();
  }
}
