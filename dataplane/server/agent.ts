/**
 * The data node's side of the metadata service: registers the node (address, zone, capacity)
 * and then heartbeats every `heartbeatIntervalMs` with its used bytes and, per placement group
 * it holds or is a replica of, the newest epoch and contiguous applied seq (what the service
 * needs to decide which replicas are in sync and may become primary; an empty PG reports seq 0,
 * so a replacement replica of a never-written volume is marked in sync too).
 *
 * After each beat it follows the placements: every volume it holds data for or is a replica of
 * is re-read and handed to the replicator, and what the node holds but no longer serves is
 * dropped from the store — a PG it was removed from once its hand-back to the new primary has
 * finished, every PG of a deleted volume. A PG the node was added back to while it still holds
 * an older copy is replaced by the replicator (hand-back, drop, resync from empty: see
 * `Peering.staleCopy` in peering.ts); meanwhile it is reported empty.
 */
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import { defaultHeartbeatIntervalMs } from '../../proto/limits.js';
import type { DataNode, DataNodeRegistration, MetadataApi, PgReport, PlacementGroup } from '../../proto/metadata-types.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';
import type { BlockStore } from '../store/types.js';
import type { PlacementSource, VolumePlacement } from '../placement.js';
import type { Replicator } from './replication.js';
import { copyGone } from './departed.js';

/** Heartbeats are small; a node with very many PGs reports them over several beats. */
export const maxPgReportsPerHeartbeat = 4096;
/** Departed-copy reports remembered (so each is sent once); past it the memory starts over. */
export const maxReportedGone = 10_000;

export interface DataNodeAgentOptions {
  api: Pick<MetadataApi, 'registerDataNode' | 'heartbeatDataNode' | 'listDataNodes' | 'listVolumes' | 'getPlacement' | 'departedCopyGone'>;
  registration: DataNodeRegistration;
  store: BlockStore;
  log: Logger;
  heartbeatIntervalMs?: number;
  /**
   * With both, every beat also re-reads the placement of each volume the node holds and hands it
   * to the replicator: that is how a node learns new epochs and that it became (or stopped being)
   * a primary, and a new primary peers and resyncs its replicas without waiting for traffic.
   */
  placement?: PlacementSource;
  replicator?: Replicator;
  /**
   * The block server's gate (`BlockServer.openGate`/`closeGate`): opened once the node is
   * registered, and told why while a wiped node waits, so it serves nothing before.
   */
  gate?: { openGate(): void; closeGate(why: string): void };
  /** Time for the beats and the waits before registering (dataplane/clock.ts; a `ManualClock` in tests). */
  clock?: Clock;
}

/** Why a wiped node serves nothing yet (completes "data node X is …"). */
export const wipedGateReason = 'not registered with the metadata service yet (its store is empty while the service counts it in sync)';

export class DataNodeAgent {
  private timer: TimerHandle | null = null;
  private beating: Promise<void> | null = null;
  private reportCursor = 0;
  private stopped = false;
  /** PGs the last placement pass found this node a replica of (reported even when empty). */
  private memberPgs: { volumeId: string; pg: number }[] = [];
  private readonly reportedGone = new Set<string>();
  /** null until checked: whether this node's store was wiped while the service counts it in sync. */
  private wiped: boolean | null = null;

  private readonly clock: Clock;

  constructor(private readonly opts: DataNodeAgentOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  private get id(): string {
    return this.opts.registration.id;
  }

  async start(): Promise<DataNode> {
    const every = this.opts.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs;
    while (!(await this.mayRegister().catch(() => false))) {
      if (this.stopped) throw new GalleonError('UNAVAILABLE', `data node ${this.id} stopped before it could register`, { hint: 'start it again' });
      await new Promise<void>((resolve) => { this.clock.setTimeout(resolve, every); });
    }
    const node = await this.register();
    this.beatEvery(every);
    return node;
  }

  /** One beat every `every` ms on the clock (a fixed rate, like setInterval); a beat still running is not piled up behind. */
  private beatEvery(every: number): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.timer = this.clock.setTimeout(tick, every);
      if (this.beating !== null) return; // never pile up beats behind a slow leader
      this.beating = this.heartbeat().then(() => undefined, (err: unknown) => {
        this.opts.log.warn({ code: isGalleonError(err) ? err.code : undefined, err }, 'heartbeat failed');
      }).finally(() => { this.beating = null; });
    };
    this.timer = this.clock.setTimeout(tick, every);
  }

  /**
   * Registers the node and records in its store that it joined the cluster (what `mayRegister`
   * reads after a restart). Call once `mayRegister` said yes. `capacityBytes` overrides the
   * registration's, for a caller that measures the disk at each registration.
   */
  async register(capacityBytes?: number): Promise<DataNode> {
    // emptyStore: a store that never joined holds nothing, whatever the service counts it in sync
    // for (it leaves every in-sync set: metadata/state/logic/pg-safety.ts); the interval is what
    // the service judges this node's freshness by.
    const base = { ...this.opts.registration, emptyStore: !this.opts.store.joined, heartbeatIntervalMs: this.opts.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs };
    const registration = capacityBytes === undefined ? base : { ...base, capacityBytes };
    const node = await this.opts.api.registerDataNode(registration);
    await this.opts.store.markJoined();
    this.opts.gate?.openGate();
    this.opts.log.info({ id: node.id, address: node.address, zone: node.zone }, 'registered as a data node with the metadata service');
    return node;
  }

  /**
   * A node whose store never joined the cluster (no join record: a new or wiped data dir) while
   * the service still counts it in sync for some PG was wiped (or lost its disk) — a store that
   * is merely empty (nothing written yet) is not: registering and beating would let it pass for a replica that has
   * the data. Until the service marks it down — which moves its PGs to the other replicas and
   * adds replacements — it neither registers nor beats; from then on it is an empty node like a
   * new one. Call before registering; false means "not yet".
   */
  async mayRegister(): Promise<boolean> {
    if (this.wiped === false) return true;
    const me = (await this.opts.api.listDataNodes()).find((n) => n.id === this.id);
    if (me === undefined || me.state === 'down') {
      this.wiped = false;
      return true;
    }
    if (this.wiped === null) {
      if (this.opts.store.joined) {
        this.wiped = false;
        return true;
      }
      this.wiped = await this.countedInSync();
      if (this.wiped) {
        this.opts.gate?.closeGate(wipedGateReason);
        this.opts.log.warn({ id: this.id }, 'this node\'s store is empty but the metadata service counts it in sync: waiting until the node is marked down');
      }
      return !this.wiped;
    }
    if (await this.countedInSync()) return false;
    this.wiped = false;
    return true;
  }

  private async countedInSync(): Promise<boolean> {
    for (const v of await this.opts.api.listVolumes()) {
      if ((await this.opts.api.getPlacement(v.id)).some((g) => g.inSync.includes(this.id))) return true;
    }
    return false;
  }

  async reports(): Promise<PgReport[]> {
    const byKey = new Map<string, { volumeId: string; pg: number }>();
    for (const p of [...await this.opts.store.listPgs(), ...this.memberPgs]) byKey.set(`${p.volumeId}/${p.pg}`, p);
    const pgs = [...byKey.values()];
    const start = pgs.length <= maxPgReportsPerHeartbeat ? 0 : this.reportCursor % pgs.length;
    const slice = pgs.length <= maxPgReportsPerHeartbeat ? pgs : [...pgs, ...pgs].slice(start, start + maxPgReportsPerHeartbeat);
    this.reportCursor = start + slice.length;
    return Promise.all(slice.map(async ({ volumeId, pg }) => {
      const s = await this.opts.store.pgState(volumeId, pg);
      // A copy from before the node was added back counts for nothing until it is replaced.
      if (this.opts.replicator?.isRejoining(volumeId, pg) === true) return { volumeId, pg, epoch: s.epoch, appliedSeq: 0 };
      return { volumeId, pg, epoch: s.epoch, appliedSeq: s.appliedSeq };
    }));
  }

  async heartbeat(): Promise<DataNode> {
    const node = await this.opts.api.heartbeatDataNode(this.id, this.opts.store.usedBytes(), await this.reports());
    await this.followPlacements();
    return node;
  }

  /** Volumes this node is a replica of without holding anything yet (a stale read is enough to find them). */
  private async volumesServed(held: ReadonlySet<string>): Promise<string[]> {
    const out: string[] = [];
    try {
      for (const v of await this.opts.api.listVolumes({ stale: true })) {
        if (held.has(v.id)) continue;
        const groups = await this.opts.api.getPlacement(v.id, { stale: true });
        if (groups.some((g) => g.replicas.includes(this.id))) out.push(v.id);
        await this.reportGone(v.id, groups, []);
      }
    } catch (err) {
      this.opts.log.debug({ code: isGalleonError(err) ? err.code : undefined }, 'listing volumes failed; the next beat retries');
    }
    return out;
  }

  private async followPlacements(): Promise<void> {
    const { placement, replicator } = this.opts;
    if (placement === undefined || replicator === undefined) return;
    const held = await this.opts.store.listPgs();
    const heldVolumes = new Set(held.map((p) => p.volumeId));
    const member: { volumeId: string; pg: number }[] = [];
    for (const volumeId of [...heldVolumes, ...await this.volumesServed(heldVolumes)]) {
      const mine = held.filter((p) => p.volumeId === volumeId);
      let p: VolumePlacement;
      try {
        p = await placement.refresh(volumeId);
        await replicator.adoptPlacement(p, true);
      } catch (err) {
        if (isGalleonError(err, 'VOLUME_NOT_FOUND')) {
          for (const h of mine) await this.drop(h.volumeId, h.pg, null, 'its volume was deleted');
        } else {
          this.opts.log.debug({ volumeId, code: isGalleonError(err) ? err.code : undefined }, 'placement refresh failed');
        }
        continue;
      }
      for (const g of p.groups) if (g.replicas.includes(this.id)) member.push({ volumeId, pg: g.pg });
      for (const h of mine) {
        const g = p.groups[h.pg];
        if (g?.pg !== h.pg || g.replicas.includes(this.id)) continue;
        // Removed from the PG while away: what only this copy had goes to the new primary first.
        if (replicator.handBackFinished(volumeId, h.pg, g.epoch)) await this.drop(volumeId, h.pg, g.epoch, 'this node is no longer one of its replicas');
      }
      await this.reportGone(volumeId, p.groups, mine.map((h) => h.pg));
    }
    this.memberPgs = member;
  }

  /**
   * Departed copies of ours that are gone (handed back and dropped, never held, or replaced after
   * we were added back): told to the metadata service, so the PG's tombstones may be purged again
   * (departed.ts). Once per (PG, epoch) unless the call fails.
   */
  private async reportGone(volumeId: string, groups: readonly PlacementGroup[], held: readonly number[]): Promise<void> {
    for (const g of groups) {
      if (g.departed?.[this.id] === undefined) continue;
      const key = `${volumeId}/${g.pg}/${g.epoch}`;
      if (this.reportedGone.has(key)) continue;
      const s = held.includes(g.pg) ? await this.opts.store.pgState(volumeId, g.pg) : null;
      const local = s === null ? null : { epoch: s.epoch, highestSeq: s.highestSeq, rejoining: this.opts.replicator?.isRejoining(volumeId, g.pg) === true };
      if (!copyGone(this.id, g, local)) continue;
      if (this.reportedGone.size >= maxReportedGone) this.reportedGone.clear();
      this.reportedGone.add(key);
      await this.opts.api.departedCopyGone(volumeId, g.pg, this.id, g.epoch).catch((err: unknown) => {
        this.reportedGone.delete(key);
        this.opts.log.debug({ volumeId, pg: g.pg, code: isGalleonError(err) ? err.code : undefined }, 'reporting a departed copy gone failed; the next beat retries');
      });
    }
  }

  /** `epoch`: the placement epoch that removed us; a PG that saw a newer one (we were added back) is kept. */
  private async drop(volumeId: string, pg: number, epoch: number | null, why: string): Promise<void> {
    const dropped = await this.opts.store.dropPg(volumeId, pg, epoch === null ? {} : { ifEpochAtMost: epoch });
    if (!dropped) return;
    this.opts.replicator?.forgetPg(volumeId, pg);
    this.opts.log.info({ volumeId, pg, epoch }, `dropped a placement group from the store: ${why}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer ?? undefined);
    this.timer = null;
    await this.beating;
  }
}
