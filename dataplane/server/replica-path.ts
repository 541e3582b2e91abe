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
import type { BlockOp } from '../store/types.js';
import type { ReplicateResult } from '../wire.js';
import { staleEpochError } from './admission.js';
import { gapCheck, type Entry, type PeerMsg } from '../core/index.js';
import type { Peering } from './peering.js';
import type { ReplicaCtx, ReplicaDrive } from './replica-drive.js';
import { PgWorker, gapGraceMs, type ReplicatorDeps } from './pg-worker.js';

export interface ReplicaWrite {
  op: BlockOp;
  sync: boolean;
  primary: string;
  trimSeq: number;
}

export class ReplicaPath extends PgWorker {
  private readonly gapTimers = new Set<TimerHandle>();

  constructor(d: ReplicatorDeps, private readonly peering: Peering, private readonly replicas: ReplicaDrive) {
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
   * ones are refused as stale one by one. The shell checks the sender, the placement and the copy
   * (its I/O); what happens to the ops is the PG's core record's (`PgRuntime.core`): each epoch's
   * ops are one `msg forward` event, and the shell carries out its actions (epoch record, store
   * with a token, `stored`, then the ack or nack that becomes each op's result; trims).
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
    const ctx = await this.replicas.open(volumeId, pg, group, placement);
    const byEpoch = new Map<number, number[]>();
    writes.forEach((w, i) => { const l = byEpoch.get(w.op.epoch); if (l === undefined) byEpoch.set(w.op.epoch, [i]); else l.push(i); });
    const results = new Array<ReplicateResult>(writes.length);
    await Promise.all([...byEpoch].map(async ([epoch, idx]) => {
      const ops = idx.map((i) => (writes[i] as ReplicaWrite));
      const r = await this.forward(ctx, epoch, ops);
      for (const i of idx) results[i] = r;
    }));
    this.noteGap(volumeId, pg, ctx.core.r.held.size > 0, { address: nodeOf(placement, group.primary).address, epoch: top });
    return results;
  }

  /** One epoch's ops as one core `msg forward`; the result every op of it gets. */
  private async forward(ctx: ReplicaCtx, epoch: number, ops: readonly ReplicaWrite[]): Promise<ReplicateResult> {
    const entries: Entry[] = ops.map(({ op }) => ({ seq: op.seq, epoch: op.epoch, block: op.address.blockNo, value: op.kind === 'noop' ? null : op.kind }));
    const msg: PeerMsg = { t: 'forward', epoch, entries, sync: ops.some((w) => w.sync), trimSeq: Math.max(...ops.map((w) => w.trimSeq)) };
    const seqs = entries.map((e) => e.seq);
    await this.replicas.stepMsg(ctx, msg, ops.map((w) => w.op));
    const answer = ctx.results.get(seqs.join(','));
    if (answer === undefined) {
      return { error: new GalleonError('UNAVAILABLE', `${ctx.volumeId}/${ctx.pg} did not take the forward at epoch ${epoch}`, { hint: 'the primary retries it' }).toJSON() };
    }
    if (answer.t === 'ack') return { appliedSeq: answer.applied };
    if (answer.newer > answer.epoch) return { error: staleEpochError(ctx.volumeId, ctx.pg, epoch, answer.newer).toJSON() };
    return { error: new GalleonError('UNAVAILABLE', `${ctx.volumeId}/${ctx.pg} refuses forwards while it replaces its copy`, { hint: 'the primary marks it out of sync and asks it to catch up' }).toJSON() };
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
    // A stale copy is refused before the core may record the epoch (rule 4, server/README.md).
    await this.peering.refuseStaleCopy(volumeId, pg, epoch);
    // Whether to pull is the core's (`onCatchUp`: the epoch check, then a `pull`); the pull is I/O here.
    const ctx = await this.replicas.open(volumeId, pg, group, placement);
    await this.replicas.stepMsg(ctx, { t: 'catchUp', epoch }, []);
    if (!ctx.pull && epoch < ctx.core.r.epoch) throw staleEpochError(volumeId, pg, epoch, ctx.core.r.epoch);
    if (!ctx.pull) throw new GalleonError('UNAVAILABLE', `${volumeId}/${pg} does not catch up at epoch ${epoch} now`, { hint: 'the primary asks again' });
    return this.peering.catchUp(volumeId, pg, address, epoch);
  }

  private closed = false;

  close(): void {
    this.closed = true;
    for (const t of this.gapTimers) this.clock.clearTimeout(t);
    this.gapTimers.clear();
  }
}
