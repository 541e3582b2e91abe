/**
 * Catch-up of a data node (part of the `Replicator`, replication.ts; driven by `Peering`): journal
 * pulls from a PG's primary as its replica (`catchUp`), or from a member as the new primary
 * peering (`pullForPeering`, and the noop its plan asks for, `noopForPeering`), and the full copy
 * of a PG when the source's journal is trimmed past this node's watermark (`resync`). What lands
 * is the PG's core record's: each fetched batch and a full copy's end are events on it
 * (`msg journal` as a replica, `peeringPulled` / `peeringNoop` as a new primary) through
 * `ReplicaDrive`, and the shell writes what its `store` actions name; the fetch loop and the
 * copy's block batches are the I/O here.
 */
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import { admitReplicaOp, catchUpAfterFetch, catchUpTrimmed } from '../core/index.js';
import type { BlockAddress, BlockOp } from '../store/types.js';
import type { JournalFrameMeta } from '../wire.js';
import { refusalError, staleEpochError } from './admission.js';
import type { ReplicaCtx, ReplicaDrive } from './replica-drive.js';
import { storeResyncFrame } from './repair-source.js';
import { PgWorker, catchUpMaxBytes, type ReplicatorDeps } from './pg-worker.js';

/** Blocks written concurrently during a full resync (they share group commits). */
export const resyncBatchBlocks = 64;

/** A full copy's end: the source's watermark from before the copy, and the drop of what it no longer has plus the watermark move (I/O). */
interface FullCopy { applied: number; run: (upto: number) => Promise<void> }

/** How a catch-up's fetched batches and full copy land on the PG's core record: as its replica, or as its new primary peering. */
interface Landing {
  /** A fetched journal batch (`ops`), or a full copy's end (`full`): an event on the record, its store action carried out. */
  fetched(ops: BlockOp[], full: FullCopy | null): Promise<void>;
  /** The epoch check of a full copy's batch of blocks (written by the shell): throws when the record refuses the copy's epoch. */
  admitBlocks(): Promise<void>;
}

/** What catch-up asks of the rejoin (peering.ts): whether the PG's copy is a stale one being replaced, and the refusal then. */
export interface StaleCopyGuard {
  stale: (volumeId: string, pg: number, epoch: number) => Promise<boolean>;
  rejoining: (volumeId: string, pg: number) => GalleonError;
}

export class CatchUp extends PgWorker {
  constructor(d: ReplicatorDeps, private readonly replicas: ReplicaDrive, private readonly guard: StaleCopyGuard) {
    super(d);
  }

  /**
   * A replica pulls journal entries after its watermark from the PG's primary (at `primary`,
   * serving `epoch`) until none are left, or copies the PG in full when the journal is trimmed
   * past it. What lands is the core's (`onJournal`, the code the simulator runs): each fetched
   * batch is a `msg journal` on the PG's record, and so is a full copy's watermark.
   */
  async catchUp(volumeId: string, pg: number, primary: string, epoch: number): Promise<number> {
    return this.pull(volumeId, pg, primary, epoch, {
      fetched: (ops, full) => this.fetchedAsReplica(volumeId, pg, epoch, ops, full),
      admitBlocks: async () => {
        const refusal = admitReplicaOp((await this.openAsReplica(volumeId, pg, epoch)).core.r, epoch);
        if (refusal !== null) throw refusalError(volumeId, pg, epoch, refusal);
      },
    });
  }

  /**
   * Peering's pull from member `from` (at `source`) that holds entries this new primary of
   * `group` lacks: each fetched batch, a full copy's watermark, and its blocks' epoch check are
   * the PG's core record's (`peeringPulled`), as for a replica's catch-up.
   */
  pullForPeering(volumeId: string, pg: number, group: PlacementGroup, from: string, source: string): Promise<number> {
    const epoch = group.epoch;
    return this.pull(volumeId, pg, source, epoch, {
      fetched: (ops, full) => this.fetchedAsPrimary(volumeId, pg, group, from, ops, full),
      admitBlocks: async () => {
        const refusal = admitReplicaOp((await this.replicas.record(volumeId, pg, group)).r, epoch);
        if (refusal !== null) throw refusalError(volumeId, pg, epoch, refusal);
      },
    });
  }

  /**
   * A batch the new primary of `group` fetched from member `from` (`ops`), or a full copy's end
   * (`full`), as a `peeringPulled` event on the PG's core record: the core refuses it once a newer
   * primary peered this node (the store's epoch is newer) and chooses what is stored; the shell
   * writes exactly that. Tracked, like a replica's catch-up batch.
   */
  private fetchedAsPrimary(volumeId: string, pg: number, group: PlacementGroup, from: string, ops: BlockOp[], full: FullCopy | null): Promise<void> {
    const epoch = group.epoch;
    return this.tracked(`${volumeId}/${pg}`, async () => {
      const ctx = await this.replicas.openForPeering(volumeId, pg, group, from);
      if (full !== null) ctx.full = full.run;
      const recorded = (await this.store.pgState(volumeId, pg)).epoch;
      const entries = ops.map((op) => ({ seq: op.seq, epoch: op.epoch, block: op.address.blockNo, value: op.kind === 'noop' ? null : op.kind }));
      await this.replicas.stepPeering(ctx, { t: 'peeringPulled', epoch, recorded, fill: { entries, full: full === null ? null : { blocks: [], applied: full.applied } } }, ops);
      if (ctx.stores === 0) throw staleEpochError(volumeId, pg, epoch, Math.max(recorded, ctx.core.r.epoch));
    });
  }

  /** The noop the peering plan asks for at `seq` (no member holds it), as a `peeringNoop` on the PG's record. */
  noopForPeering(volumeId: string, pg: number, group: PlacementGroup, seq: number): Promise<void> {
    const epoch = group.epoch;
    return this.tracked(`${volumeId}/${pg}`, async () => {
      const ctx = await this.replicas.openForPeering(volumeId, pg, group, this.nodeId);
      const recorded = (await this.store.pgState(volumeId, pg)).epoch;
      const op: BlockOp = { kind: 'noop', address: { volumeId, inode: 0, blockNo: 0 }, pg, seq, epoch };
      await this.replicas.stepPeering(ctx, { t: 'peeringNoop', epoch, recorded, seq }, [op]);
      if (ctx.stores === 0) throw staleEpochError(volumeId, pg, epoch, Math.max(recorded, ctx.core.r.epoch));
    });
  }

  /**
   * The fetch loop of a catch-up (`landing`: how a fetched batch and a full copy land on the PG's
   * core record — as its replica or as its new primary peering); a trimmed journal is copied in
   * full once.
   */
  private async pull(volumeId: string, pg: number, source: string, epoch: number, landing: Landing): Promise<number> {
    const key = `${volumeId}/${pg}`;
    if (await this.guard.stale(volumeId, pg, epoch)) throw this.guard.rejoining(volumeId, pg);
    if (this.rt(key).catchingUp) return (await this.store.pgState(volumeId, pg)).appliedSeq;
    this.rt(key).catchingUp = true;
    let resynced = false;
    try {
      for (;;) {
        const st = await this.store.pgState(volumeId, pg);
        let frames;
        try {
          frames = await this.peers.fetchJournal(source, volumeId, pg, st.appliedSeq + 1, epoch, catchUpMaxBytes);
        } catch (err) {
          if (!isGalleonError(err, 'OUT_OF_RANGE') || catchUpTrimmed(resynced) === 'fail') throw err;
          resynced = true;
          await this.resync(volumeId, pg, source, epoch, landing);
          continue;
        }
        const ops: BlockOp[] = frames.map(({ meta, data }) => {
          const address = { volumeId, inode: meta.inode, blockNo: meta.blockNo };
          const base = { address, pg, seq: meta.seq, epoch: meta.epoch };
          return meta.kind === 'put' ? { ...base, kind: 'put', data } : { ...base, kind: meta.kind };
        });
        if (catchUpAfterFetch(ops.length, st.appliedSeq, null) === 'done') return st.appliedSeq;
        await landing.fetched(ops, null);
        const after = await this.store.pgState(volumeId, pg);
        this.log.info({ volumeId, pg, from: st.appliedSeq, to: after.appliedSeq, entries: ops.length }, 'caught up from the primary journal');
        invariant(after.appliedSeq >= st.appliedSeq, 'the watermark never goes back');
        if (catchUpAfterFetch(ops.length, st.appliedSeq, after.appliedSeq) === 'done') return after.appliedSeq;
      }
    } finally {
      this.rt(key).catchingUp = false;
    }
  }

  /**
   * A batch fetched from the primary's journal at `epoch` (`ops`), or a full copy's end (`full`:
   * the primary's watermark, and the drop of what it no longer has), as an event on the PG's core
   * record: the core checks the epoch (a newer primary peered while this fetched: refused) and
   * chooses what is stored. Tracked, so a peering at a newer epoch waits for a batch admitted
   * before it and every later one sees that epoch.
   */
  private fetchedAsReplica(volumeId: string, pg: number, epoch: number, ops: BlockOp[], full: FullCopy | null): Promise<void> {
    return this.tracked(`${volumeId}/${pg}`, async () => {
      const ctx = await this.openAsReplica(volumeId, pg, epoch);
      if (full !== null) ctx.full = full.run;
      const entries = ops.map((op) => ({ seq: op.seq, epoch: op.epoch, block: op.address.blockNo, value: op.kind === 'noop' ? null : op.kind }));
      await this.replicas.stepMsg(ctx, { t: 'journal', epoch, fill: { entries, full: full === null ? null : { blocks: [], applied: full.applied } } }, ops);
      if (ctx.stores > 0) return;
      if (epoch < ctx.core.r.epoch) throw staleEpochError(volumeId, pg, epoch, ctx.core.r.epoch);
      throw new GalleonError('UNAVAILABLE', `${volumeId}/${pg} does not take a catch-up at epoch ${epoch} now`, { hint: 'the primary asks again' });
    });
  }

  /** The PG's record as a replica of the placement that assigned `epoch` (this node is not its primary). */
  private async openAsReplica(volumeId: string, pg: number, epoch: number): Promise<ReplicaCtx> {
    const { placement, group } = await this.gate.assignedGroup(volumeId, pg, epoch);
    if (group.primary === this.nodeId) {
      throw group.epoch > epoch ? staleEpochError(volumeId, pg, epoch, group.epoch)
        : new GalleonError('UNAVAILABLE', `${volumeId}/${pg}: this node is the primary at epoch ${epoch}; it does not catch up as a replica`, { hint: 'retry: the placement is changing' });
    }
    return this.replicas.open(volumeId, pg, group, placement);
  }

  /**
   * Full resync of a PG from the primary, for a replica behind the primary's trimmed journal:
   * copy every live block the primary has, and the versions it keeps for snapshots and its live
   * tombstones (issue #11: else a failover to this replica reads newer data at an older
   * snapshot), drop local blocks it no longer has, and move the watermark to the primary's
   * watermark from before the copy began. Every batch of the copy is written under the core's
   * epoch check (`admitReplicaOp` on the PG's record, tracked), and the drop and watermark are the
   * core's `journal` event with a full copy: a resync from a primary that was deposed while it
   * streamed lands nothing once this node answered the new primary's peering (before, it went on
   * behind the new primary's back: its blocks replaced the new primary's writes and its watermark
   * covered seqs the new primary gave to other writes — a divergent replica).
   */
  private async resync(volumeId: string, pg: number, primary: string, epoch: number, landing: Landing): Promise<void> {
    const { appliedSeq, frames } = await this.peers.fetchPgBlocks(primary, volumeId, pg, epoch);
    const seen = new Set<string>();
    let batch: { address: BlockAddress; meta: JournalFrameMeta; data: Buffer }[] = [];
    let copied = 0;
    let kept = 0;
    for await (const { meta, data } of frames) {
      const address = { volumeId, inode: meta.inode, blockNo: meta.blockNo };
      if (meta.kept === true) kept++;
      else { seen.add(`${meta.inode}/${meta.blockNo}`); copied++; }
      batch.push({ address, meta, data });
      if (batch.length >= resyncBatchBlocks) { await this.resyncBatch(volumeId, pg, batch, landing); batch = []; }
    }
    await this.resyncBatch(volumeId, pg, batch, landing);
    let dropped = 0;
    const dropAndMove = async (upto: number): Promise<void> => {
      for await (const { address, seq } of this.store.iterateAddresses({ volumeId, pg })) {
        if (seen.has(`${address.inode}/${address.blockNo}`) || seq > upto) continue;
        await this.store.dropBlock(address, pg, seq, epoch);
        dropped++;
      }
      await this.store.completeResync(volumeId, pg, upto);
    };
    await landing.fetched([], { applied: appliedSeq, run: dropAndMove });
    this.log.warn({ volumeId, pg, primary, copied, kept, dropped, appliedSeq }, 'resynced a placement group in full (journal was trimmed)');
  }

  /** One batch of a full copy's frames, written only while the PG's record admits the copy's epoch (`landing.admitBlocks`). */
  private resyncBatch(volumeId: string, pg: number, batch: readonly { address: BlockAddress; meta: JournalFrameMeta; data: Buffer }[], landing: Landing): Promise<void> {
    if (batch.length === 0) return Promise.resolve();
    return this.tracked(`${volumeId}/${pg}`, async () => {
      await landing.admitBlocks();
      await Promise.all(batch.map(({ address, meta, data }) => storeResyncFrame(this.store, address, pg, meta, data)));
    });
  }
}
