/**
 * The metadata service as the block server's shell asks it, for the shell simulator: the calls
 * `DataNodeAgent` (register, heartbeat, list nodes and volumes, placements, departed copies),
 * `MetadataPlacementSource` (volume, placement, nodes) and `LeaseGuard` (pg-primary leases,
 * primary claims, out-of-sync marks) make, answered by the rules of the simulator's `Meta`
 * (../meta.ts) — not a fork of them. Each node incarnation gets its own `NodeMetaApi`: a call
 * from a crashed incarnation, or from a node cut from the service, fails UNAVAILABLE; every call
 * first waits `hop()` (a delay on the simulator's clock). Test infrastructure only.
 */
import { GalleonError } from '../../../proto/errors.js';
import type { DataNode, DataNodeRegistration, Lease, LeaseKind, MetadataApi, PgReport, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import { Meta } from '../meta.js';

export type ShellMetaCalls = Pick<MetadataApi,
  'registerDataNode' | 'heartbeatDataNode' | 'listDataNodes' | 'listVolumes' | 'getPlacement' | 'getVolume' | 'departedCopyGone'
  | 'acquireLease' | 'renewLease' | 'releaseLease' | 'claimPgPrimary' | 'markPgReplicaOutOfSync'>;

/** What the stand-in needs from the world: time, the node's state, a delay per call. */
export interface MetaWorld {
  now(): number;
  /** Whether this incarnation of the node may reach the service now. */
  reachable(node: string, incarnation: number): boolean;
  /** A call's trip to the service (the simulator's clock and PRNG). */
  hop(): Promise<void>;
  addressOf(node: string): string;
  zoneOf(node: string): string;
  /** Counted per call (the world's trace). */
  called(node: string, what: string): void;
}

export const blockSizeBytes = 4096;

function unavailable(node: string): GalleonError {
  return new GalleonError('UNAVAILABLE', `metadata service unreachable from ${node}`, { hint: 'retry' });
}

/** The PG's placement group as the metadata service shows it. */
export function groupOfMeta(meta: Meta, volumeId: string, pg: number): PlacementGroup {
  const g = meta.pgs[pg];
  if (g === undefined) throw new GalleonError('FAILED_PRECONDITION', `no pg ${pg}`, { hint: 'a stand-in' });
  const group: PlacementGroup = { volumeId, pg, replicas: [...g.replicas], primary: g.primary, epoch: g.epoch, inSync: g.replicas.filter((r) => g.inSync.has(r)) };
  if (Object.keys(g.addedAt).length > 0) group.addedAtEpoch = { ...g.addedAt };
  return group;
}

export class NodeMetaApi implements ShellMetaCalls {
  constructor(
    private readonly meta: Meta,
    private readonly world: MetaWorld,
    private readonly volume: Volume,
    private readonly node: string,
    private readonly incarnation: number,
  ) {}

  /** Every call: the trip, then refused unless this incarnation reaches the service. */
  private async enter(what: string): Promise<void> {
    await this.world.hop();
    if (!this.world.reachable(this.node, this.incarnation)) throw unavailable(this.node);
    this.world.called(this.node, what);
  }

  private dataNode(id: string): DataNode {
    const beat = this.meta.lastBeat.get(id) ?? 0;
    return {
      id, address: this.world.addressOf(id), zone: this.world.zoneOf(id), capacityBytes: 1 << 30, usedBytes: 0,
      state: this.meta.down.has(id) ? 'down' : 'up', lastHeartbeatAtMs: beat, registeredAtMs: 0,
    };
  }

  async registerDataNode(reg: DataNodeRegistration): Promise<DataNode> {
    await this.enter('register');
    this.meta.heartbeat(reg.id, this.world.now(), new Map());
    return this.dataNode(reg.id);
  }

  async heartbeatDataNode(id: string, _usedBytes: number, pgs: PgReport[]): Promise<DataNode> {
    await this.enter('beat');
    const reports = new Map(pgs.filter((p) => p.volumeId === this.volume.id).map((p) => [p.pg, { epoch: p.epoch, applied: p.appliedSeq }]));
    this.meta.heartbeat(id, this.world.now(), reports);
    return this.dataNode(id);
  }

  async listDataNodes(): Promise<DataNode[]> {
    await this.enter('listNodes');
    return this.meta.nodes.map((n) => this.dataNode(n.id));
  }

  async listVolumes(): Promise<Volume[]> {
    await this.enter('listVolumes');
    return [this.volume];
  }

  async getVolume(volumeId: string): Promise<Volume> {
    await this.enter('getVolume');
    this.known(volumeId);
    return this.volume;
  }

  async getPlacement(volumeId: string): Promise<PlacementGroup[]> {
    await this.enter('getPlacement');
    this.known(volumeId);
    return this.meta.pgs.map((_, pg) => groupOfMeta(this.meta, volumeId, pg));
  }

  async departedCopyGone(volumeId: string, pg: number): Promise<PlacementGroup> {
    await this.enter('departedCopyGone');
    return groupOfMeta(this.meta, volumeId, pg);
  }

  private known(volumeId: string): void {
    if (volumeId !== this.volume.id) throw new GalleonError('VOLUME_NOT_FOUND', `no volume ${volumeId}`, { hint: 'a stand-in with one volume' });
  }

  /** Lease ids name holder, pg and epoch: a renewal is the same check as the grant. */
  async acquireLease(kind: LeaseKind, resource: string, holder: string, ttlMs: number, _mode?: 'rw' | 'ro', epoch?: number): Promise<Lease> {
    await this.enter('lease');
    const pg = Number(resource.split('/')[1]);
    return this.grant(kind, resource, holder, pg, epoch ?? -1, ttlMs);
  }

  async renewLease(leaseId: string, ttlMs: number): Promise<Lease> {
    await this.enter('renew');
    const [holder, resource, epoch] = leaseId.split('|');
    const pg = Number((resource ?? '').split('/')[1]);
    if (holder === undefined || resource === undefined) throw new GalleonError('LEASE_NOT_FOUND', `no lease ${leaseId}`, { hint: 'acquire it' });
    return this.grant('pg-primary', resource, holder, pg, Number(epoch), ttlMs);
  }

  private grant(kind: LeaseKind, resource: string, holder: string, pg: number, epoch: number, ttlMs: number): Lease {
    const now = this.world.now();
    if (!this.meta.lease(holder, pg, epoch, now)) {
      throw new GalleonError('FAILED_PRECONDITION', `${holder} is not the primary of pg ${pg} at epoch ${epoch}`, { hint: 'refresh the placement' });
    }
    return { id: `${holder}|${resource}|${epoch}`, kind, resource, holder, mode: null, grantedAtMs: now, expiresAtMs: now + ttlMs };
  }

  async releaseLease(): Promise<void> {
    await this.enter('release');
  }

  async claimPgPrimary(volumeId: string, pg: number, nodeId: string, epoch: number): Promise<PlacementGroup> {
    await this.enter('claim');
    const r = this.meta.claim(nodeId, this.incarnation, pg, epoch);
    if (r === 'ignored') throw new GalleonError('FAILED_PRECONDITION', `${nodeId} is not the primary of pg ${pg} at epoch ${epoch}`, { hint: 'refresh the placement' });
    return groupOfMeta(this.meta, volumeId, pg);
  }

  async markPgReplicaOutOfSync(volumeId: string, pg: number, nodeId: string, epoch: number, primaryId: string, uptoSeq: number): Promise<PlacementGroup> {
    await this.enter('outOfSync');
    if (!this.meta.outOfSync(primaryId, pg, epoch, nodeId, uptoSeq)) {
      throw new GalleonError('STALE_EPOCH', `${primaryId} is not the primary of pg ${pg} at epoch ${epoch}`, { hint: 'refresh the placement', details: { epoch: this.meta.pgs[pg]?.epoch ?? epoch } });
    }
    return groupOfMeta(this.meta, volumeId, pg);
  }
}

/**
 * `Meta` with the real service's rule for catch-up floors (metadata/state/logic/pg-sync.ts
 * `catchUpFloor`): a floor belongs to the epoch its mark was made at and means nothing at a newer
 * one (the new primary peered and caught its replicas up since). `Meta` keeps floors across
 * epochs, which the core simulator's world was tuned with; here a floor above every seq of the
 * new epoch (the seq the deposed primary's failed forward carried, lost with its crash) kept a
 * caught-up replica out of sync until the next client write (shell seed 34).
 */
export class ShellMeta extends Meta {
  private readonly floorEpochs = new Map<number, number>();

  override outOfSync(from: string, pg: number, epoch: number, replica: string, floor: number): boolean {
    const g = this.pgs[pg];
    if (g !== undefined && g.epoch === epoch && this.floorEpochs.get(pg) !== epoch) {
      g.floors.clear();
      this.floorEpochs.set(pg, epoch);
    }
    return super.outOfSync(from, pg, epoch, replica, floor);
  }

  override heartbeat(node: string, now: number, reports: Map<number, { epoch: number; applied: number }>): void {
    this.pgs.forEach((g, pg) => {
      if (this.floorEpochs.get(pg) === g.epoch) return;
      g.floors.clear();
      this.floorEpochs.set(pg, g.epoch);
    });
    super.heartbeat(node, now, reports);
  }
}
