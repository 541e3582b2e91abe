/**
 * The replica path of a data node (part of the `Replicator`, replication.ts): apply forwarded
 * writes and replicate batches with `onlyIfNewer` (arrivals may be out of order) under one epoch
 * check per PG, report the contiguous applied seq, trim the journal as the primary allows, and
 * pull the missing entries from the primary's journal when the core's ticks say a gap outlived
 * `gapGraceMs`, or the primary asks (`catchUpRequested`; the pull itself is `Peering.catchUp`).
 */
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { TimerHandle } from '../clock.js';
import { metrics } from '../metrics.js';
import { nodeOf } from '../placement.js';
import type { BlockOp } from '../store/types.js';
import type { ReplicateResult } from '../wire.js';
import { staleEpochError } from './admission.js';
import { defaultCoreLimits, type Entry, type PeerMsg, type PgAction } from '../core/index.js';
import type { VolumePlacement } from '../placement.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import type { PgRuntime } from './pg-runtime.js';
import type { Peering } from './peering.js';
import type { ReplicaCtx, ReplicaDrive } from './replica-drive.js';
import { PgWorker, gapGraceMs, type ReplicatorDeps } from './pg-worker.js';

/** The replica's record is ticked this often while a gap is open: `gapGraceMs` is `gapTicks` ticks. */
export const gapTickMs = gapGraceMs / defaultCoreLimits.gapTicks;

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
    this.requireMember(volumeId, group, top);
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
    this.watchGap(volumeId, pg, placement);
    return results;
  }

  /**
   * A node the group no longer names takes no forward, and records no epoch of the group: its
   * placement step reads a recorded epoch as "this copy was part of the group's history there"
   * and skips the hand-back, after which the copy is dropped (shell simulator seed 2813: a deposed
   * primary's old forward, delivered late, made a left node record the current epoch, and a
   * `durable` write only it held was dropped). An older forward is refused as stale.
   */
  private requireMember(volumeId: string, group: PlacementGroup, top: number): void {
    if (group.replicas.includes(this.nodeId)) return;
    if (top < group.epoch) throw staleEpochError(volumeId, group.pg, top, group.epoch);
    throw new GalleonError('FAILED_PRECONDITION', `node ${this.nodeId} is not a replica of ${volumeId}/${group.pg} at epoch ${group.epoch}`, {
      hint: 'forward only to the replicas the placement names', details: { epoch: group.epoch },
    });
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
   * Gap timing is the core's (`replicaTick`: a gap in the record's journal still open after
   * `gapTicks` ticks is pulled from the primary, again every `gapTicks` while open). While the
   * record holds seqs above its watermark the shell ticks it every `gapTickMs` of its clock — one
   * more tick after the gap closed, which resets the core's gap clock — and carries out the
   * `pull` it returns with `Peering.catchUp` at the primary's registered address.
   */
  private watchGap(volumeId: string, pg: number, placement: VolumePlacement): void {
    const r = this.rt(`${volumeId}/${pg}`);
    if (r.gap !== undefined) { r.gap.placement = placement; return; }
    if (r.core === undefined || r.core.r.held.size === 0) return;
    const gap: NonNullable<PgRuntime['gap']> = { timer: undefined, placement };
    r.gap = gap;
    const tick = (): void => {
      if (gap.timer !== undefined) this.gapTimers.delete(gap.timer);
      gap.timer = undefined;
      const core = r.core;
      if (r.gap !== gap || this.closed || core === undefined || core.r.role !== 'replica') { if (r.gap === gap) r.gap = undefined; return; }
      for (const a of core.step({ t: 'tick' })) this.gapAction(volumeId, pg, a, gap.placement);
      if (core.r.held.size === 0) { r.gap = undefined; return; }
      gap.timer = this.clock.setTimeout(tick, gapTickMs);
      this.gapTimers.add(gap.timer);
    };
    gap.timer = this.clock.setTimeout(tick, gapTickMs);
    this.gapTimers.add(gap.timer);
  }

  /** What a replica's tick returns: only a pull of the gap from the primary. */
  private gapAction(volumeId: string, pg: number, a: PgAction, placement: VolumePlacement): void {
    invariant(a.t === 'send' && a.msg.t === 'pull', `a replica's tick returns only a pull, not ${a.t}`);
    const address = placement.nodes[a.to]?.address;
    if (address === undefined || this.rt(`${volumeId}/${pg}`).catchingUp) return; // a newer placement than the last forward's: its primary asks
    const epoch = a.msg.epoch;
    this.peering.catchUp(volumeId, pg, address, epoch).catch((err: unknown) => this.log.warn({ volumeId, pg, primary: address, code: isGalleonError(err) ? err.code : undefined }, 'catch-up of a gap failed'));
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
