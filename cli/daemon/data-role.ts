/**
 * The data role's seam. Today it does the part of a data node that needs no block server:
 * it registers the node (id, data-plane address, zone, capacity of the storage path) with the
 * metadata service and heartbeats. The data plane (dataplane/server) plugs in here: it will
 * serve blocks on `dataAddress` and report used bytes and PG progress in the heartbeat.
 */
import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { MetadataApi } from '../../proto/metadata-types.js';
import type { RoleState } from './types.js';
import { ErrorCode, isGalleonError } from '../../proto/errors.js';

export const dataHeartbeatIntervalMs = 2_000;
/** Retry pace while the metadata service has no leader yet. */
const registerRetryMs = 250;

export interface DataRoleOptions {
  nodeId: string;
  dataAddress: string;
  zone: string;
  storagePath: string;
  /** The metadata API to register with (this node's member, or a client of the cluster). */
  metadata: () => MetadataApi;
  logger: Logger;
}

export class DataRole {
  state: RoleState = 'stopped';
  registered = false;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly opts: DataRoleOptions) {}

  start(): void {
    this.state = 'running';
    this.registered = false;
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.state !== 'running') return;
    this.timer = setTimeout(() => void this.beat(), delayMs);
    this.timer.unref();
  }

  private async capacityBytes(): Promise<number> {
    const s = await statfs(this.opts.storagePath);
    return s.bavail * s.bsize;
  }

  private async beat(): Promise<void> {
    if (this.busy || this.state !== 'running') return;
    this.busy = true;
    try {
      const api = this.opts.metadata();
      if (!this.registered) {
        await api.registerDataNode({ id: this.opts.nodeId, address: this.opts.dataAddress, zone: this.opts.zone, capacityBytes: await this.capacityBytes() });
        this.registered = true;
        this.opts.logger.info({ address: this.opts.dataAddress, zone: this.opts.zone }, 'registered as a data node');
      } else {
        await api.heartbeatDataNode(this.opts.nodeId, 0, []);
      }
      this.schedule(dataHeartbeatIntervalMs);
    } catch (err) {
      // The cluster does not know us (it was rebuilt, or this node joined another): register again.
      if (isGalleonError(err, ErrorCode.NODE_NOT_FOUND)) this.registered = false;
      this.opts.logger.debug({ err }, 'data node registration/heartbeat failed; retrying');
      this.schedule(this.registered ? dataHeartbeatIntervalMs : registerRetryMs);
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.state = 'stopped';
  }
}
