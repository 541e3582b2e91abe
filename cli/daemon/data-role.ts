/**
 * The data role of a daemon: a block store under `<storage>/data`, the block server
 * (dataplane/server) on `dataAddress`, and the node's side of the metadata service — register
 * (address, zone, capacity), then heartbeat every `heartbeatIntervalMs` with used bytes and, per
 * placement group held or replicated, the newest epoch and contiguous applied seq. Placements (and
 * epochs) are learned from the metadata service; the node keeps no authoritative metadata, so its
 * storage can be wiped and the node re-added (it registers once the service has marked it down:
 * dataplane/server/agent.ts). Heartbeat interval and lease ttl come from the daemon config.
 *
 * The role also offers `blocks()`: a BlockClient over the cluster's placements, which the admin
 * endpoint uses for `galleon volume write-block` / `read-block`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MetadataApi } from '../../proto/metadata-types.js';
import type { RoleState } from './types.js';
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { LevelBlockStore } from '../../dataplane/store/level-block-store.js';
import { metrics } from '../../dataplane/metrics.js';
import { Scrubber } from '../../dataplane/store/scrubber.js';
import { pgsWithDepartedCopies } from '../../dataplane/server/departed.js';
import { Reclaimer } from '../../dataplane/store/reclaimer.js';
import { BlockServer } from '../../dataplane/server/block-server.js';
import { volumeLookup, type BlockAuthOptions } from '../../dataplane/server/block-auth.js';
import type { AuditSink } from '../../proto/auth.js';
import type { AuthApi } from '../../proto/auth-api.js';
import { HttpRepairSource } from '../../dataplane/server/repair-source.js';
import { DataNodeAgent } from '../../dataplane/server/agent.js';
import { defaultHeartbeatIntervalMs, defaultLeaseTtlMs } from '../../proto/limits.js';
import { parseHostPort } from '../lib/address.js';
import type { VolumeKeyring } from '../../dataplane/client/keyring.js';
import type { StaleReadSink } from '../../dataplane/client/freshness.js';
import type { FreshnessMode } from '../../dataplane/logic/freshness.js';
import type { TlsMaterial } from '../../proto/tls.js';

/** Retry pace while the metadata service has no leader yet. */
const registerRetryMs = 250;
/**
 * How long a stop waits for a heartbeat in flight. Without a metadata quorum (the other members
 * stopping too) a beat and its placement reads can each wait out a proposal timeout; nothing in
 * a beat needs to finish, and `galleon down` gives a daemon 10 s before SIGKILL.
 */
const stopWaitForBeatMs = 1_000;
export const dataDirName = 'data';

export interface DataRoleOptions {
  nodeId: string;
  dataAddress: string;
  zone: string;
  storagePath: string;
  /** The metadata API to register with (this node's member, or a client of the cluster). */
  metadata: () => MetadataApi & Pick<AuthApi, 'authLookup'>;
  logger: Logger;
  heartbeatIntervalMs?: number;
  leaseTtlMs?: number;
  /** Seals encrypted volumes' blocks for the admin block client (write-block / read-block). */
  keyring?: VolumeKeyring;
  /** Where the admin block client reports an encrypted read a replica contradicted (issue #12). */
  staleReads?: StaleReadSink;
  /** Encrypted reads no other replica can check: served and counted, or refused (BlockClientOptions.freshness). */
  freshness?: FreshnessMode;
  /** Issue #12: the block port needs tokens; this node's own block traffic sends the node credential. */
  auth?: { nodeToken: string; audit: AuditSink };
  /** Mutual TLS on the block port and for this node's requests to others (proto/tls.ts); null: plaintext. */
  tls?: TlsMaterial | null;
}

/** A MetadataApi that resolves the current one on every call (the member may restart). */
function lateBound(get: () => MetadataApi & Pick<AuthApi, 'authLookup'>): Pick<MetadataApi & AuthApi, 'authLookup' | 'getVolume' | 'listVolumes' | 'getPlacement' | 'listDataNodes' | 'registerDataNode' | 'heartbeatDataNode' | 'acquireLease' | 'renewLease' | 'releaseLease' | 'claimPgPrimary' | 'markPgReplicaOutOfSync' | 'departedCopyGone'> {
  return {
    getVolume: (...a) => get().getVolume(...a),
    authLookup: (...a) => get().authLookup(...a),
    listVolumes: (...a) => get().listVolumes(...a),
    getPlacement: (...a) => get().getPlacement(...a),
    listDataNodes: (...a) => get().listDataNodes(...a),
    registerDataNode: (...a) => get().registerDataNode(...a),
    heartbeatDataNode: (...a) => get().heartbeatDataNode(...a),
    acquireLease: (...a) => get().acquireLease(...a),
    renewLease: (...a) => get().renewLease(...a),
    releaseLease: (...a) => get().releaseLease(...a),
    claimPgPrimary: (...a) => get().claimPgPrimary(...a),
    markPgReplicaOutOfSync: (...a) => get().markPgReplicaOutOfSync(...a),
    departedCopyGone: (...a) => get().departedCopyGone(...a),
  };
}

export class DataRole {
  state: RoleState = 'stopped';
  registered = false;
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  private store: LevelBlockStore | null = null;
  /** The placements the block server routes by; the admin block client shares its cache. */
  private placement: MetadataPlacementSource | null = null;
  private server: BlockServer | null = null;
  private scrubber: Scrubber | null = null;
  private reclaimer: Reclaimer | null = null;
  private agent: DataNodeAgent | null = null;
  private client: BlockClient | null = null;
  private repair: HttpRepairSource | null = null;
  private readonly api: ReturnType<typeof lateBound>;

  constructor(private readonly opts: DataRoleOptions) {
    this.api = lateBound(opts.metadata);
  }

  async start(): Promise<void> {
    this.state = 'starting';
    this.registered = false;
    const store = await LevelBlockStore.open({ dir: join(this.opts.storagePath, dataDirName), metrics });
    this.store = store;
    const placement = new MetadataPlacementSource(this.api);
    this.placement = placement;
    const listen = parseHostPort(this.opts.dataAddress, 'data address');
    this.server = new BlockServer({
      nodeId: this.opts.nodeId, zone: this.opts.zone, store, placement, log: this.opts.logger, host: listen.host, port: listen.port,
      leases: { api: this.api, ttlMs: this.opts.leaseTtlMs ?? defaultLeaseTtlMs },
      // Nothing that depends on the store is served before the agent registered the node (agent.ts).
      gated: true,
      ...(this.opts.auth === undefined ? {} : { auth: this.blockAuth(this.opts.auth) }),
      tls: this.opts.tls ?? null,
    });
    try {
      await this.server.listen();
    } catch (err) {
      await this.server.close().catch(() => undefined);
      await store.close();
      this.server = null;
      this.store = null;
      this.state = 'failed';
      const code = (err as NodeJS.ErrnoException).code;
      throw new GalleonError(ErrorCode.UNAVAILABLE, `cannot listen on ${this.opts.dataAddress} for the data plane (${code ?? 'error'})`, {
        hint: code === 'EADDRINUSE' ? 'another process uses that port: pick another --data-address' : 'check --data-address', cause: err,
      });
    }
    this.repair = new HttpRepairSource(this.opts.nodeId, placement, this.opts.tls ?? null, this.opts.auth?.nodeToken);
    this.scrubber = new Scrubber({ store, repair: this.repair, log: this.opts.logger, metrics });
    this.scrubber.start();
    // Tombstones of a PG stay while a node that left it may still hand an older copy back.
    this.reclaimer = new Reclaimer({ store, log: this.opts.logger, metrics, keepTombstonesOf: () => pgsWithDepartedCopies(this.api) });
    this.reclaimer.start();
    this.agent = new DataNodeAgent({
      api: this.api, store, log: this.opts.logger, placement, replicator: this.server.replicator, gate: this.server,
      registration: { id: this.opts.nodeId, address: this.opts.dataAddress, zone: this.opts.zone, capacityBytes: 0 },
      heartbeatIntervalMs: this.opts.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs,
    });
    this.state = 'running';
    this.schedule(0);
  }

  /** A client of the cluster's block servers (for the admin endpoint). */
  blocks(): BlockClient {
    this.client ??= new BlockClient({
      placement: this.placement ?? new MetadataPlacementSource(this.api), coalesceWrites: false, maxAttempts: 20, retryBaseDelayMs: 50, tls: this.opts.tls ?? null,
      ...(this.opts.keyring === undefined ? {} : { keyring: this.opts.keyring }),
      ...(this.opts.staleReads === undefined ? {} : { staleReads: this.opts.staleReads }),
      ...(this.opts.freshness === undefined ? {} : { freshness: this.opts.freshness }),
      ...(this.opts.auth === undefined ? {} : { token: this.opts.auth.nodeToken }),
    });
    return this.client;
  }

  /** The block port's door: tokens and volumes by stale reads of the metadata service (no Raft round; cached). */
  private blockAuth(auth: { nodeToken: string; audit: AuditSink }): BlockAuthOptions {
    return {
      nodeToken: auth.nodeToken, audit: auth.audit,
      lookup: (hash) => this.api.authLookup(hash, { stale: true }),
      volume: volumeLookup((id) => this.api.getVolume(id, { stale: true })),
    };
  }

  private schedule(delayMs: number): void {
    if (this.state !== 'running') return;
    this.timer = setTimeout(() => { this.busy = this.beat().finally(() => { this.busy = null; }); }, delayMs);
    this.timer.unref();
  }

  private async capacityBytes(): Promise<number> {
    const s = await statfs(this.opts.storagePath);
    return s.blocks * s.bsize;
  }

  private async beat(): Promise<void> {
    const agent = this.agent;
    if (this.state !== 'running' || agent === null) return;
    const every = this.opts.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs;
    try {
      if (!this.registered) {
        // A wiped node waits until the service has marked it down (agent.ts).
        if (!(await agent.mayRegister())) {
          this.schedule(every);
          return;
        }
        await agent.register(await this.capacityBytes());
        this.registered = true;
      } else {
        await agent.heartbeat();
      }
      this.schedule(every);
    } catch (err) {
      // The cluster does not know us (it was rebuilt, or this node joined another): register again.
      if (isGalleonError(err, ErrorCode.NODE_NOT_FOUND)) {
        this.registered = false;
        this.server?.closeGate('not registered with the metadata service (it no longer knows this node; registering again)');
      }
      this.opts.logger.debug({ err }, 'data node registration/heartbeat failed; retrying');
      this.schedule(this.registered ? every : registerRetryMs);
    }
  }

  async stop(): Promise<void> {
    this.state = 'stopping';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.busy !== null) await Promise.race([this.busy, delay(stopWaitForBeatMs, undefined, { ref: false })]);
    await this.client?.close();
    this.client = null;
    await this.scrubber?.stop();
    await this.repair?.close();
    this.repair = null;
    await this.reclaimer?.stop();
    await this.server?.close();
    await this.store?.close();
    this.scrubber = null;
    this.reclaimer = null;
    this.server = null;
    this.store = null;
    this.placement = null;
    this.agent = null;
    this.state = 'stopped';
  }
}
