/**
 * The shell of the replication core (`../core`) on a replica's side: the PG's one core record
 * (`PgRuntime.core`, shared with the primary path) kept true to the store, a forward's or a
 * fetched catch-up batch's events stepped on it, and its actions carried out (epoch record, store
 * with a token, `stored`, the ack or nack, trims). `ReplicaPath` (forwards, catch-up requests) and
 * `Peering` (catch-up and full resync as a replica) both drive the record through it, so what a
 * replica stores — from a forward, a journal fetched from its primary or a full copy — is the
 * core's decision (`onForward`, `onJournal`), the same code the simulator runs.
 */
import { invariant } from '../../proto/errors.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import { PgCore, type PeerMsg, type PgAction, type PgEvent } from '../core/index.js';
import type { VolumePlacement } from '../placement.js';
import type { BlockOp } from '../store/types.js';
import { corePlacement, type PrimaryDrive } from './primary-drive.js';
import { PgWorker, type ReplicatorDeps } from './pg-worker.js';

/** One forward batch, catch-up request or fetched batch: the PG, its core record, the primary, what the core answered. */
export interface ReplicaCtx {
  volumeId: string;
  pg: number;
  core: PgCore;
  from: string;
  /** The core's ack or nack of each forward (or journal batch: seqs ''), by its seqs. */
  results: Map<string, Extract<PeerMsg, { t: 'ack' } | { t: 'nack' }>>;
  /** The core asked to pull from the primary (a catch-up request it admitted). */
  pull: boolean;
  /**
   * A full resync's store action (the core decided the copy moves the watermark): the shell drops
   * the blocks the primary no longer has and moves the watermark to `upto`. Absent: not a resync.
   */
  full?: (upto: number) => Promise<void>;
  /** Store actions carried out for this context (a fetched batch the core refused has none). */
  stores: number;
  /** The core's answer to a `msg peer` (its mirror's watermark and highest seq); absent: refused. */
  peerAnswer?: { applied: number; highest: number };
}

export class ReplicaDrive extends PgWorker {
  constructor(d: ReplicatorDeps, private readonly drive: PrimaryDrive) {
    super(d);
  }

  /**
   * The PG's record told that this node is a replica of `group` (the shell checked the sender, the
   * placement and the copy: its I/O), with the newest epoch the shell holds; the context the
   * next events of this batch are stepped in.
   */
  async open(volumeId: string, pg: number, group: PlacementGroup, placement: VolumePlacement): Promise<ReplicaCtx> {
    const view = await this.gate.view(volumeId, group);
    const core = await this.replicaCore(volumeId, pg, view.epoch);
    const ctx: ReplicaCtx = { volumeId, pg, core, from: group.primary, results: new Map(), pull: false, stores: 0 };
    await this.carryOut(ctx, core.step({ t: 'replicaByShell', p: corePlacement(group, placement), recorded: view.epoch }), []);
    return ctx;
  }

  /**
   * The PG's record for the shell's own peering as the new primary of `group` (`Peering.peerAsPrimary`):
   * true to the store as for `open`, its role untouched (`peeredByShell` ends the peering); the
   * context a batch pulled from member `from`, or a noop, is stepped in (`stepPeering`).
   */
  async openForPeering(volumeId: string, pg: number, group: PlacementGroup, from: string): Promise<ReplicaCtx> {
    const core = await this.record(volumeId, pg, group);
    return { volumeId, pg, core, from, results: new Map(), pull: false, stores: 0 };
  }

  /** The PG's one record, true to the store (`replicaCore`), at the newest epoch the shell holds for `group`. */
  async record(volumeId: string, pg: number, group: PlacementGroup): Promise<PgCore> {
    return this.replicaCore(volumeId, pg, (await this.gate.view(volumeId, group)).epoch);
  }

  /**
   * A batch the new primary's peering pulled, or the noop its plan asked for, stepped on the
   * context's record: the core chooses what is stored (none when a newer epoch came meanwhile),
   * and its `store` action is carried out as a replica's is (`ops`: what the shell fetched or built).
   */
  async stepPeering(ctx: ReplicaCtx, ev: Extract<PgEvent, { t: 'peeringPulled' } | { t: 'peeringNoop' }>, ops: readonly BlockOp[]): Promise<void> {
    await this.carryOut(ctx, ctx.core.step(ev), ops);
  }

  /** Steps a message from the primary on the context's record and carries out what comes back. */
  async stepMsg(ctx: ReplicaCtx, msg: PeerMsg, ops: readonly BlockOp[]): Promise<void> {
    await this.carryOut(ctx, ctx.core.step({ t: 'msg', from: ctx.from, msg }), ops);
  }

  /**
   * Carries out the core's actions in their order: an epoch is recorded before the store write
   * that depends on it, and a store action's `stored` event (which sends the ack) is stepped only
   * once it and every earlier replica store action of the PG finished (the core mirrors the
   * journal when it emits the action, so a duplicate is acked after the first copy).
   */
  async carryOut(ctx: ReplicaCtx, actions: readonly PgAction[], ops: readonly BlockOp[]): Promise<void> {
    for (const a of actions) {
      switch (a.t) {
        case 'epoch': await this.store.observeEpoch(ctx.volumeId, ctx.pg, a.epoch); break;
        case 'store': await this.storeEntries(ctx, a, ops); break;
        case 'send':
          if (a.msg.t === 'pull') { ctx.pull = true; break; } // a catch-up request: the caller pulls (Peering.catchUp)
          invariant(a.msg.t === 'ack' || a.msg.t === 'nack', `the replica path answers a forward or pulls, not ${a.msg.t}`);
          ctx.results.set(a.msg.seqs.join(','), a.msg);
          break;
        case 'sendFill':
          // The peering answer: the shell adds no journal (the new primary pulls what it lacks).
          invariant(a.msg.t === 'peerAnswer', `a replica fills only a peering answer, not ${a.msg.t}`);
          ctx.peerAnswer = { applied: a.msg.applied, highest: a.msg.highest };
          break;
        case 'trim':
          this.store.trimJournal(ctx.volumeId, ctx.pg, a.upto).catch((err: unknown) => this.log.warn({ err, volumeId: ctx.volumeId, pg: ctx.pg }, 'journal trim failed'));
          break;
        case 'answer': this.drive.answerFromReplicaPath(this.rt(`${ctx.volumeId}/${ctx.pg}`), a); break;
        case 'refreshPlacement': break; // the shell read the placement already; the forward gets no answer (UNAVAILABLE)
        default: invariant(false, `the replica path got a core action it does not carry out: ${a.t}`);
      }
    }
  }

  /**
   * The entries the core chose (a subset of `ops`, by seq) written with `onlyIfNewer` (arrivals
   * may be out of order: an older seq of a block must not replace a newer one; its journal entry
   * is kept); a full copy's drop and watermark through `ctx.full`. Then `stored`, or `storeFailed`
   * and the record reads the store again before the next event.
   */
  private async storeEntries(ctx: ReplicaCtx, a: Extract<PgAction, { t: 'store' }>, ops: readonly BlockOp[]): Promise<void> {
    invariant(a.full === null || ctx.full !== undefined, 'a full copy is stored only by a resync');
    ctx.stores++;
    const bySeq = new Map(ops.map((op) => [op.seq, op]));
    const batch = a.entries.map((e) => bySeq.get(e.seq)).filter((op): op is BlockOp => op !== undefined);
    invariant(batch.length === a.entries.length, 'the core stores only entries the shell handed it');
    const r = this.rt(`${ctx.volumeId}/${ctx.pg}`);
    const before = r.replicaStored;
    const full = a.full;
    const write = async (): Promise<void> => {
      if (full !== null && ctx.full !== undefined) await ctx.full(full.applied);
      if (batch.length > 0) await this.store.writeBatch(batch, { sync: a.sync, onlyIfNewer: true });
    };
    const settled = write().then(() => before);
    r.replicaStored = settled.catch(() => undefined);
    try {
      await settled;
    } catch (err) {
      // The mirror counted these seqs as held: read the store again before the next event.
      r.coreBehind = true;
      ctx.core.step({ t: 'storeFailed', token: a.token });
      throw err;
    }
    await this.carryOut(ctx, ctx.core.step({ t: 'stored', token: a.token }), ops);
  }

  /**
   * The PG's one core record (`PgRuntime.core`, shared with the primary path), true to the store:
   * rebuilt from it when missing or when it holds an epoch the shell lowered (a forged one), told
   * what the store holds (`restored`) when the shell wrote the store behind it (a drop, a failed
   * store action: `coreBehind`; or the store is ahead of the mirror). Peering's pulls as primary
   * are the record's own store actions (`stepPeering`): after them it is not restored. A store
   * behind the mirror is only store actions still running.
   */
  private async replicaCore(volumeId: string, pg: number, recorded: number): Promise<PgCore> {
    const r = this.rt(`${volumeId}/${pg}`);
    const st = await this.store.pgState(volumeId, pg);
    if (r.core === undefined || r.core.r.epoch > recorded) {
      const held = await this.heldAbove(volumeId, pg, st.appliedSeq);
      r.core = new PgCore(this.nodeId, { epoch: st.epoch, applied: st.appliedSeq, trimmedTo: Math.min(st.trimmedSeq, st.appliedSeq), held, lastAssigned: r.core?.r.lastAssigned ?? 0 }, this.coreFaults, this.coreLimits);
      r.coreBehind = false;
      return r.core;
    }
    const c = r.core.r;
    // The store's highest seq above the mirror's is only a hint (a full copy's repair raises it
    // without a journal entry): the held seqs are read, on the write path, only then.
    const maybeAhead = st.highestSeq > Math.max(c.applied, ...c.held);
    const held = r.coreBehind || st.appliedSeq > c.applied || maybeAhead || st.trimmedSeq > c.trimmedTo ? await this.heldAbove(volumeId, pg, st.appliedSeq) : [];
    if (r.coreBehind || st.appliedSeq > c.applied || held.some((s) => !c.held.has(s) && s > c.applied) || st.trimmedSeq > c.trimmedTo) {
      r.coreBehind = false;
      // A primary of an older placement on the record learns it is deposed: what waits is answered.
      for (const a of r.core.step({ t: 'restored', epoch: st.epoch, applied: st.appliedSeq, held, trimmedTo: st.trimmedSeq })) {
        invariant(a.t === 'answer', `a record restores with answers only, not ${a.t}`);
        this.drive.answerFromReplicaPath(r, a);
      }
    }
    return r.core;
  }

  /** Exactly the seqs the store journaled above `applied` (a second read after `pgState`: a write may have landed between). */
  private async heldAbove(volumeId: string, pg: number, applied: number): Promise<number[]> {
    return (await this.store.heldSeqs(volumeId, pg)).filter((s) => s > applied + 1);
  }
}
