/**
 * The data node's side of the metadata service: registers the node (address, zone, capacity)
 * and then heartbeats every `heartbeatIntervalMs` with its used bytes and, per placement group
 * it holds, the newest epoch and contiguous applied seq (what the service needs to decide which
 * replicas are in sync and may become primary).
 */
import { isGalleonError } from '../../proto/errors.js';
import type { DataNode, DataNodeRegistration, MetadataApi, PgReport } from '../../proto/metadata-types.js';
import type { Logger } from '../log.js';
import type { BlockStore } from '../store/types.js';
import type { PlacementSource } from '../placement.js';
import type { Replicator } from './replication.js';

export const defaultHeartbeatIntervalMs = 1000;
/** Heartbeats are small; a node with very many PGs reports them over several beats. */
export const maxPgReportsPerHeartbeat = 4096;

export interface DataNodeAgentOptions {
  api: Pick<MetadataApi, 'registerDataNode' | 'heartbeatDataNode'>;
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
}

export class DataNodeAgent {
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private reportCursor = 0;
  private stopped = false;

  constructor(private readonly opts: DataNodeAgentOptions) {}

  async start(): Promise<DataNode> {
    const node = await this.opts.api.registerDataNode(this.opts.registration);
    this.opts.log.info({ id: node.id, address: node.address, zone: node.zone }, 'registered with the metadata service');
    const every = this.opts.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs;
    this.timer = setInterval(() => {
      if (this.beating !== null || this.stopped) return; // never pile up beats behind a slow leader
      this.beating = this.heartbeat().then(() => undefined, (err: unknown) => {
        this.opts.log.warn({ code: isGalleonError(err) ? err.code : undefined, err }, 'heartbeat failed');
      }).finally(() => { this.beating = null; });
    }, every);
    this.timer.unref();
    return node;
  }

  async reports(): Promise<PgReport[]> {
    const pgs = await this.opts.store.listPgs();
    const start = pgs.length <= maxPgReportsPerHeartbeat ? 0 : this.reportCursor % pgs.length;
    const slice = pgs.length <= maxPgReportsPerHeartbeat ? pgs : [...pgs, ...pgs].slice(start, start + maxPgReportsPerHeartbeat);
    this.reportCursor = start + slice.length;
    return Promise.all(slice.map(async ({ volumeId, pg }) => {
      const s = await this.opts.store.pgState(volumeId, pg);
      return { volumeId, pg, epoch: s.epoch, appliedSeq: s.appliedSeq };
    }));
  }

  async heartbeat(): Promise<DataNode> {
    const node = await this.opts.api.heartbeatDataNode(this.opts.registration.id, this.opts.store.usedBytes(), await this.reports());
    await this.followPlacements();
    return node;
  }

  private async followPlacements(): Promise<void> {
    const { placement, replicator } = this.opts;
    if (placement === undefined || replicator === undefined) return;
    const volumes = new Set((await this.opts.store.listPgs()).map((p) => p.volumeId));
    for (const volumeId of volumes) {
      try {
        await replicator.adoptPlacement(await placement.refresh(volumeId), true);
      } catch (err) {
        this.opts.log.debug({ volumeId, code: isGalleonError(err) ? err.code : undefined }, 'placement refresh failed');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.beating;
  }
}
