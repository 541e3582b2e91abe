/**
 * The primary path of a data node (part of the `Replicator`, replication.ts): admit a client
 * write (fencing, lease, volume bounds), peer if needed, and hand it to the replication core
 * through `PrimaryDrive` (primary-drive.ts), which takes its seq, writes and forwards it, and
 * answers at its concern; decide hand-backs (compare, then the core's seq with no await in
 * between; decline only after a synced rewrite: rules 2 and 3 — not driven by the core yet).
 */
import { GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { pgOf } from '../logic/routing.js';
import { blockOutsideVolume } from '../logic/membership.js';
import { groupOf, nodeOf } from '../placement.js';
import type { VolumePlacement } from '../placement.js';
import type { BlockAddress } from '../store/types.js';
import { refusalError } from './admission.js';
import { admitClientWrite, admitRead, replicaServesAnyRead } from '../core/index.js';
import type { Peering } from './peering.js';
import type { PrimaryPg, WriteResult } from './pg-runtime.js';
import { PgWorker, type ReplicatorDeps } from './pg-worker.js';
import type { PrimaryDrive } from './primary-drive.js';
import { takeHandedBack } from '../core/rules.js';

/** A hand-back compare re-reads the block this often at most while client writes keep taking seqs. */
export const handBackCompareAttempts = 8;

export class PrimaryPath extends PgWorker {
  constructor(d: ReplicatorDeps, private readonly peering: Peering, private readonly drive: PrimaryDrive) {
    super(d);
  }

  /**
   * Before a client read that names an epoch is served (GET of a block, a range, a version): the
   * epoch is one the metadata service assigned (an epoch above the cached placement reads it
   * again, as a write does: `assignedGroup`), not stale, and this node is the PG's primary at it
   * (`admitClientWrite`: else NOT_PRIMARY naming the primary, and the client goes there); then
   * peering at it is done and (with leases) the lease is held. Before 2026-12-07 any member served
   * such a read from its own copy however far behind (the shell simulator with replica reads:
   * 148 of 300 seeds read older data than a `replicated` write acknowledged before), and so did
   * any node for an epoch never assigned. A read without an epoch is served by any node, as
   * before (the rollback check's proof fetches). With the test-only `readFromReplica` break a
   * replica whose copy is not being replaced serves it whatever epoch it names (the core's rule,
   * `replicaServesAnyRead`).
   */
  async admitPrimaryRead(address: BlockAddress, pg: number, epoch: number): Promise<void> {
    const cached = groupOf(await this.placement.getPlacement(address.volumeId), pg);
    const replicaCopy = (): boolean => cached.primary !== this.nodeId && cached.replicas.includes(this.nodeId) && !this.rt(`${address.volumeId}/${pg}`).rejoining;
    if (replicaServesAnyRead(this.coreFaults, replicaCopy)) return;
    const { placement, group } = await this.gate.assignedGroup(address.volumeId, pg, epoch);
    const refusal = admitClientWrite(await this.gate.view(address.volumeId, group), epoch);
    if (refusal !== null) throw refusalError(address.volumeId, pg, epoch, refusal);
    await this.peering.primaryPg(address.volumeId, pg, epoch, group, placement);
    await this.leases?.ensure(address.volumeId, pg, epoch);
  }

  async admitRead(volumeId: string, pg: number, epoch: number): Promise<void> {
    const g = groupOf(await this.placement.getPlacement(volumeId), pg);
    const refusal = admitRead(await this.gate.view(volumeId, g), epoch);
    if (refusal !== null) throw refusalError(volumeId, pg, epoch, refusal);
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
    // Flow control: an overloaded replica holds new writes here instead of queueing without end.
    for (const id of group.replicas) if (id !== this.nodeId) await this.peers.waitForRoom(nodeOf(placement, id).address);
    // The group's epoch: the request's unless the core admitted an older one (a test-only break).
    const ppg = await this.peering.primaryPg(address.volumeId, pg, group.epoch, group, placement);
    await this.leases?.ensure(address.volumeId, pg, group.epoch);
    const bk = `${address.inode}/${address.blockNo}`;
    if (offered !== null) {
      const cur = await this.versionForHandBack(ppg, address, offered, epoch);
      // No await from the compare to the seq: no client write can come between (rule 2).
      if (!takeHandedBack(offered, ppg.handedBack.get(bk) ?? cur, this.coreFaults)) { await this.declineHandBack(address); return null; }
      ppg.handedBack.set(bk, offered);
    } else if (ppg.handedBack.size > 0) {
      ppg.handedBack.delete(bk);
    }
    // The core takes the seq, orders the local write and the forwards, and answers at the concern.
    return this.drive.write(ppg, { address, data, placement }, concern, epoch);
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
      const mark = this.drive.nextSeq(ppg);
      // A tombstone counts as the block's version: a copy older than the delete must not bring
      // the block back (issue #13; the returning node's journal check misses a trimmed delete).
      const stamp = await this.store.readStamp(address);
      const cur = stamp === null ? null : { epoch: stamp.epoch, seq: stamp.seq };
      if (this.drive.nextSeq(ppg) === mark) return cur;
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
    const stamp = await this.store.readStamp(address);
    // Declined for a delete: its tombstone is made durable the same way (the copy yields to it).
    if (stamp?.deleted === true) { await this.store.dropBlock(address, stamp.pg, stamp.seq, stamp.epoch, true); return; }
    try {
      const b = await this.store.read(address);
      await this.store.rewriteBlock(address, b);
    } catch (err) {
      if (!isGalleonError(err, 'BLOCK_NOT_FOUND')) throw err;
      // Deleted since the compare by a newer client write: that delete is what the copy yields to.
    }
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
}
