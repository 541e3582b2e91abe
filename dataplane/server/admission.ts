/**
 * Admission and fencing for the replicator: which epochs a request may carry (only ones the
 * metadata service assigned, never one older than this node has seen), who may send peering,
 * forwards and catch-up requests (the PG's primary), the in-memory fence a replica's refusal sets,
 * and the repair of a forged epoch recorded before epochs were verified (server/README.md).
 */
import { GalleonError } from '../../proto/errors.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import { admitClientWrite, admitReplicaOp, isStaleCopy, type AdmissionView, type CoreFaults, type Refusal } from '../core/index.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { senderMayBe } from '../logic/membership.js';
import { metrics } from '../metrics.js';
import { groupOf, nodeOf } from '../placement.js';
import type { PlacementSource, VolumePlacement } from '../placement.js';
import type { ReplicationStore } from '../store/types.js';
import type { PgRuntime } from './pg-runtime.js';
import { PlacementRefresher } from './placement-refresh.js';

export function staleEpochError(volumeId: string, pg: number, epoch: number, known: number): GalleonError {
  metrics.staleEpochRefusals.inc();
  return new GalleonError('STALE_EPOCH', `epoch ${epoch} of ${volumeId}/${pg} is stale, this node has seen epoch ${known}`, {
    hint: 'refresh the placement from the metadata service and retry', details: { epoch: known, volumeId, pg },
  });
}

/** The client-facing error of a refusal the core's admission decided. */
export function refusalError(volumeId: string, pg: number, epoch: number, r: Refusal): GalleonError {
  if (r.code === 'STALE_EPOCH') return staleEpochError(volumeId, pg, epoch, r.epoch);
  return new GalleonError('NOT_PRIMARY', `node ${r.message} of ${volumeId}/${pg} (${r.primary ?? 'no node'} is)`, {
    hint: 'refresh the placement and send the write to the primary', details: { primary: r.primary, epoch: r.epoch },
  });
}

export interface EpochGateDeps {
  nodeId: string;
  /** Deliberate breaks of the core (tests only): admission is the core's, so they apply here too. */
  faults: CoreFaults;
  store: ReplicationStore;
  placement: PlacementSource;
  log: Logger;
  /** The replicator's record of a PG (`volume/pg`). */
  rt: (key: string) => PgRuntime;
  /** Time for the bounded placement reads (placement-refresh.ts). */
  clock: Clock;
}

export class EpochGate {
  private readonly nodeId: string;
  private readonly store: ReplicationStore;
  private readonly placement: PlacementSource;
  private readonly log: Logger;
  private readonly rt: (key: string) => PgRuntime;
  private readonly faults: CoreFaults;
  /** Request-triggered placement reads, bounded (placement-refresh.ts). */
  private readonly refresher: PlacementRefresher;

  constructor(d: EpochGateDeps) {
    this.nodeId = d.nodeId;
    this.store = d.store;
    this.placement = d.placement;
    this.log = d.log;
    this.rt = d.rt;
    this.faults = d.faults;
    this.refresher = new PlacementRefresher(d.placement, d.clock);
  }

  /** A placement read that began after this call (shared and bounded: placement-refresh.ts). */
  sharedRefresh(volumeId: string): Promise<VolumePlacement> {
    return this.refresher.fresh(volumeId, this.refresher.now());
  }

  /**
   * The PG's group as the metadata service assigned it, at an epoch >= `epoch`: the cached
   * placement when it is new enough, else one read after this call began (bounded and shared:
   * placement-refresh.ts). An epoch the service does not show was never assigned: it is refused,
   * and never recorded. This is the only way an epoch from a request gets into this node.
   */
  async assignedGroup(volumeId: string, pg: number, epoch: number, cached?: VolumePlacement): Promise<{ placement: VolumePlacement; group: PlacementGroup }> {
    const since = this.refresher.now();
    let placement = cached ?? await this.placement.getPlacement(volumeId);
    let group = groupOf(placement, pg);
    if (group.epoch >= epoch) return { placement, group };
    placement = await this.refresher.fresh(volumeId, since);
    group = groupOf(placement, pg);
    if (group.epoch >= epoch) return { placement, group };
    metrics.unassignedEpochRefusals.inc();
    throw new GalleonError('FAILED_PRECONDITION', `epoch ${epoch} of ${volumeId}/${pg} was not assigned by the metadata service (it shows epoch ${group.epoch})`, {
      hint: 'only the metadata service assigns epochs: refresh the placement and use its epoch', details: { epoch: group.epoch, volumeId, pg },
    });
  }

  /**
   * Peering, forwards and catch-up requests at `epoch` must come from the PG's primary at that
   * epoch per the metadata service: the id it names (`from`; null when it names none) and the
   * host it connects from (`senderMayBe`: a cheap filter against other hosts; any process on the
   * primary's host passes it until mTLS, issue #12).
   */
  requireFromPrimary(what: string, placement: VolumePlacement, group: PlacementGroup, epoch: number, from: string | null, remote: string | undefined): void {
    const { volumeId, pg } = group;
    const stale = admitReplicaOp({ self: this.nodeId, epoch: group.epoch, faults: this.faults, placement: group }, epoch);
    if (stale !== null) throw refusalError(volumeId, pg, epoch, stale);
    const primary = nodeOf(placement, group.primary);
    if (from === group.primary && senderMayBe(primary.address, remote)) return;
    metrics.foreignRequestRefusals.inc();
    throw new GalleonError('FAILED_PRECONDITION', `${what} for ${volumeId}/${pg} at epoch ${epoch} must come from its primary ${group.primary} (${primary.address}); it came from ${from ?? 'an unnamed sender'} at ${remote ?? 'an unknown address'}`, {
      hint: 'only the primary the metadata service assigned may send this', details: { primary: group.primary, epoch: group.epoch },
    });
  }


  /**
   * The newest epoch this node recorded for the PG (store and in-memory fence), checked against
   * the metadata service when it is above the placement's. Every epoch a node legitimately holds
   * was committed there first and the service's epochs never go back, so one above what a
   * linearizable read shows was never assigned: a forged one, recorded before data nodes verified
   * epochs. It is lowered to the service's epoch (server/README.md, "Forged epochs").
   */
  async recordedEpoch(volumeId: string, pg: number, group: PlacementGroup): Promise<number> {
    const key = `${volumeId}/${pg}`;
    await this.rt(key).healing;
    const top = Math.max((await this.store.pgState(volumeId, pg)).epoch, this.rt(key).fencedEpoch);
    if (top <= group.epoch || this.placement.authoritative !== true) return top;
    const assigned = groupOf(await this.sharedRefresh(volumeId), pg).epoch;
    if (top <= assigned) return top;
    const running = this.rt(key).healing;
    if (running !== undefined) return running;
    const heal = this.lowerForgedEpoch(volumeId, pg, top, assigned).finally(() => { this.rt(key).healing = undefined; });
    this.rt(key).healing = heal;
    return heal;
  }

  private async lowerForgedEpoch(volumeId: string, pg: number, forged: number, assigned: number): Promise<number> {
    const key = `${volumeId}/${pg}`;
    this.log.warn({ volumeId, pg, recorded: forged, assigned }, 'recorded epoch was never assigned by the metadata service (forged): lowering it to the assigned one');
    metrics.forgedEpochsHealed.inc();
    if (this.rt(key).fencedEpoch > assigned) this.rt(key).fencedEpoch = assigned;
    const cached = this.rt(key).primary;
    if (cached !== undefined && (await cached.catch(() => undefined))?.epoch !== assigned) this.rt(key).primary = undefined;
    await this.store.lowerEpoch(volumeId, pg, assigned);
    // An epoch assigned while we lowered (a peering the forged one had absorbed) is recorded again.
    const now = groupOf(await this.sharedRefresh(volumeId), pg).epoch;
    return this.store.observeEpoch(volumeId, pg, now);
  }

  /**
   * A replica refused this primary's forward as deposed: fence in memory at once (no write may be
   * admitted meanwhile), persist the epoch only once the metadata service shows it. A replica that
   * reports an epoch the service never assigned (it recorded a forged one) lifts the fence again;
   * it lowers its own epoch when it next checks one.
   */
  fenceFromReplica(volumeId: string, pg: number, newer: number): void {
    const key = `${volumeId}/${pg}`;
    this.rt(key).fencedEpoch = Math.max(this.rt(key).fencedEpoch, newer);
    this.rt(key).primary = undefined;
    if (this.placement.authoritative !== true) {
      this.store.observeEpoch(volumeId, pg, newer).catch((e: unknown) => this.log.error({ err: e }, 'recording a newer epoch failed'));
      return;
    }
    this.sharedRefresh(volumeId).then(async (p) => {
      const g = groupOf(p, pg);
      const assigned = g.epoch;
      if (assigned >= newer && !await this.copyCurrentIn(volumeId, g)) return;
      if (assigned >= newer) { await this.store.observeEpoch(volumeId, pg, newer); return; }
      this.log.warn({ volumeId, pg, reported: newer, assigned }, 'a replica reported an epoch the metadata service never assigned; not recording it');
      if (this.rt(key).fencedEpoch === newer) this.rt(key).fencedEpoch = assigned;
    }).catch((e: unknown) => this.log.error({ err: e, volumeId, pg }, 'checking a newer epoch failed'));
  }

  /**
   * Whether this node's copy belongs to `g` — a replica of it, and not a copy from before it was
   * added back (`isStaleCopy`). Only then may an epoch learned from a replica's refusal be recorded
   * in the store; the in-memory fence holds either way. A deposed primary the new epoch left out
   * keeps its copy's own epoch, so its placement step still hands the copy back (a `durable` write
   * acknowledged before the failover may live only there: shell simulator seed 1031, the copy
   * counted as handed back and was dropped); a stale copy keeps its old epoch, so it is still
   * replaced rather than caught up from its old watermark (seed 1896: recorded, the restarted
   * node's old copy passed for a current one and held another write at seq 18).
   */
  private async copyCurrentIn(volumeId: string, g: PlacementGroup): Promise<boolean> {
    if (!g.replicas.includes(this.nodeId)) return false;
    const st = await this.store.pgState(volumeId, g.pg);
    return !isStaleCopy(true, g.addedAtEpoch?.[this.nodeId], st.epoch, st.highestSeq > 0 || st.appliedSeq > 0);
  }

  /**
   * Refuses an epoch older than the newest seen, or one the metadata service never assigned;
   * records a newer one. Returns the PG's group.
   */
  async admitPrimaryRequest(volumeId: string, pg: number, epoch: number, initial: VolumePlacement): Promise<{ group: PlacementGroup; placement: VolumePlacement }> {
    const { placement, group } = await this.assignedGroup(volumeId, pg, epoch, initial);
    const refusal = admitClientWrite(await this.view(volumeId, group), epoch);
    if (refusal !== null) throw refusalError(volumeId, pg, epoch, refusal);
    await this.store.observeEpoch(volumeId, pg, epoch);
    return { group, placement };
  }

  /**
   * What the core's admission (../core/admission.ts) reads of the PG: the newest epoch recorded
   * here (store and in-memory fence, forged ones lowered first) or the placement's, and the
   * placement's primary. The decision itself is the core's.
   */
  async view(volumeId: string, group: PlacementGroup): Promise<AdmissionView> {
    const known = Math.max(await this.recordedEpoch(volumeId, group.pg, group), group.epoch);
    return { self: this.nodeId, epoch: known, faults: this.faults, placement: { epoch: group.epoch, primary: group.primary } };
  }
}
