/**
 * Where a volume's placement groups live. The data plane never asks the metadata service
 * directly: it gets a PlacementSource (injected). `StaticPlacementSource` is set by hand
 * (tests, the admin endpoint of a standalone node); `MetadataPlacementSource` reads the
 * metadata service through the MetadataApi and caches per volume.
 */
import { z } from 'zod';
import { GalleonError } from '../proto/errors.js';
import type { MetadataApi, PlacementGroup } from '../proto/metadata-types.js';
import { firstIssue } from './wire.js';

export interface NodeInfo {
  id: string;
  /** Data-plane HTTP address, host:port. */
  address: string;
  zone: string;
}

export interface VolumePlacement {
  volumeId: string;
  pgCount: number;
  /** groups[pg] is placement group `pg`. */
  groups: PlacementGroup[];
  nodes: Record<string, NodeInfo>;
  /** The volume's size and block size (from the metadata service): blocks past the end are refused. Absent in static placements. */
  sizeBytes?: number;
  blockSizeBytes?: number;
  /**
   * Set for a clone or a volume restored in place (issue #11): live reads resolve through it
   * (dataplane/client/snapshot-reads.ts). Absent for a plain volume: one ordinary read.
   */
  view?: { restores: { atEpoch: number; cut: number }[]; parent: { volumeId: string; cut: number } | null };
}

export interface PlacementSource {
  /** The cached placement (fetched on first use). */
  getPlacement(volumeId: string): Promise<VolumePlacement>;
  /** Fetch again: called after a node answered STALE_EPOCH or refused as not primary. */
  refresh(volumeId: string): Promise<VolumePlacement>;
  /**
   * True when `refresh` is a linearizable read of the service that assigns epochs (the metadata
   * service): an epoch above what it shows was never assigned. A static placement is only what
   * was installed on this node, so nothing can be concluded from an epoch above it.
   */
  readonly authoritative?: boolean;
}

export function groupOf(p: VolumePlacement, pg: number): PlacementGroup {
  const g = p.groups[pg];
  if (g?.pg !== pg) {
    throw new GalleonError('FAILED_PRECONDITION', `placement of volume ${p.volumeId} has no group ${pg}`, { hint: 'refresh the placement from the metadata service' });
  }
  return g;
}

export function nodeOf(p: VolumePlacement, id: string): NodeInfo {
  const n = p.nodes[id];
  if (n === undefined) throw new GalleonError('NODE_NOT_FOUND', `placement of volume ${p.volumeId} names unknown data node ${id}`, { hint: 'refresh the placement; the node may have been removed' });
  return n;
}

/** A placement names at most this many groups and nodes; ids are short strings. */
export const maxPlacementGroups = 65_536;
export const maxPlacementIdChars = 256;
const placementId = z.string().min(1).max(maxPlacementIdChars);
const count = z.number().int().nonnegative();
const replicaList = z.array(placementId).max(64);
const placementSchema = z.looseObject({
  volumeId: placementId,
  pgCount: count.max(maxPlacementGroups),
  groups: z.array(z.looseObject({
    volumeId: placementId, pg: count, replicas: replicaList, primary: placementId, epoch: count, inSync: replicaList,
    addedAtEpoch: z.record(placementId, count).optional(),
  })).max(maxPlacementGroups),
  nodes: z.record(placementId, z.looseObject({ id: placementId, address: z.string().min(1).max(maxPlacementIdChars), zone: z.string().max(maxPlacementIdChars) })),
});

/** Checks the shape of a placement sent to a standalone node (PUT /v1/admin/placement): never a TypeError later. */
export function validatePlacement(raw: unknown): VolumePlacement {
  const r = placementSchema.safeParse(raw);
  if (!r.success) {
    throw new GalleonError('INVALID_ARGUMENT', `placement must be {volumeId, pgCount, groups[], nodes{}}: ${firstIssue(r.error)}`);
  }
  const p = raw as VolumePlacement;
  if (p.groups.length !== p.pgCount) throw new GalleonError('INVALID_ARGUMENT', `placement has ${p.groups.length} groups for pgCount ${p.pgCount}`);
  return p;
}

export class StaticPlacementSource implements PlacementSource {
  private readonly byVolume = new Map<string, VolumePlacement>();

  set(p: VolumePlacement): void {
    const old = this.byVolume.get(p.volumeId);
    // Epochs only move forward per group: an older placement is ignored group by group.
    if (old !== undefined && old.pgCount === p.pgCount) {
      p = { ...p, groups: p.groups.map((g, i) => { const o = old.groups[i]; return o !== undefined && o.epoch > g.epoch ? o : g; }), nodes: { ...old.nodes, ...p.nodes } };
    }
    this.byVolume.set(p.volumeId, p);
  }

  getPlacement(volumeId: string): Promise<VolumePlacement> {
    const p = this.byVolume.get(volumeId);
    if (p === undefined) return Promise.reject(new GalleonError('VOLUME_NOT_FOUND', `no placement known for volume ${volumeId}`, { hint: 'create the volume, or install its placement on this node' }));
    return Promise.resolve(p);
  }

  refresh(volumeId: string): Promise<VolumePlacement> {
    return this.getPlacement(volumeId);
  }
}

/** Placement from the metadata service: volume (pgCount), placement groups, data nodes. */
export class MetadataPlacementSource implements PlacementSource {
  readonly authoritative = true;
  private readonly cache = new Map<string, Promise<VolumePlacement>>();

  constructor(private readonly api: Pick<MetadataApi, 'getVolume' | 'getPlacement' | 'listDataNodes'>) {}

  getPlacement(volumeId: string): Promise<VolumePlacement> {
    const hit = this.cache.get(volumeId);
    if (hit !== undefined) return hit;
    return this.refresh(volumeId);
  }

  refresh(volumeId: string): Promise<VolumePlacement> {
    const p = (async (): Promise<VolumePlacement> => {
      const [volume, groups, nodes] = await Promise.all([this.api.getVolume(volumeId), this.api.getPlacement(volumeId), this.api.listDataNodes()]);
      const sorted = [...groups].sort((a, b) => a.pg - b.pg);
      const restores = (volume.restores ?? []).map((r) => ({ atEpoch: r.atEpoch, cut: r.cut }));
      const parent = volume.parent === undefined ? null : { volumeId: volume.parent.volumeId, cut: volume.parent.cut };
      return {
        volumeId, pgCount: volume.pgCount, groups: sorted, sizeBytes: volume.sizeBytes, blockSizeBytes: volume.blockSizeBytes,
        ...(restores.length > 0 || parent !== null ? { view: { restores, parent } } : {}),
        nodes: Object.fromEntries(nodes.map((n) => [n.id, { id: n.id, address: n.address, zone: n.zone }])),
      };
    })();
    this.cache.set(volumeId, p);
    p.catch(() => this.cache.delete(volumeId));
    return p;
  }
}
