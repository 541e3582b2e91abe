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

export const defaultHeartbeatIntervalMs = 1000;
/** Heartbeats are small; a node with very many PGs reports them over several beats. */
export const maxPgReportsPerHeartbeat = 4096;

export interface DataNodeAgentOptions {
  api: Pick<MetadataApi, 'registerDataNode' | 'heartbeatDataNode'>;
  registration: DataNodeRegistration;
  store: BlockStore;
  log: Logger;
  heartbeatIntervalMs?: number;
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
    return this.opts.api.heartbeatDataNode(this.opts.registration.id, this.opts.store.usedBytes(), await this.reports());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.beating;
  }
}
