/**
 * Replication of a data node: the `Replicator` facade the block server and the agent call. It
 * holds one `PgRuntime` record per PG and wires the parts that work on them: admission and
 * fencing (`EpochGate`, admission.ts), peering, catch-up and the rejoin of a stale copy
 * (`Peering`, peering.ts), the primary path (`PrimaryPath`, primary-path.ts), the replica path
 * (`ReplicaPath`, replica-path.ts) and the hand-back of a replaced copy (handback.ts).
 *
 * Fencing: every request carries the placement epoch; a node refuses one older than the newest
 * it has seen for that PG (persisted by the store), and a primary that hears STALE_EPOCH from a
 * replica records the newer epoch, so from then on it refuses its own clients too.
 */
import type { Logger } from '../log.js';
import type { PlacementSource } from '../placement.js';
import type { ReplicationStore } from '../store/types.js';
import { systemClock, type Clock } from '../clock.js';
import type { PeerTransport } from './peers.js';
import type { LeaseGuard } from './lease-guard.js';
import { EpochGate } from './admission.js';
import { newPgRuntime, type PgRuntime } from './pg-runtime.js';
import { Peering } from './peering.js';
import { PrimaryPath } from './primary-path.js';
import { ReplicaPath } from './replica-path.js';
import { ReplicaDrive } from './replica-drive.js';
import { coreFaultsFrom, serverCoreLimits, type ReplicatorDeps } from './pg-worker.js';
import { PrimaryDrive } from './primary-drive.js';
import type { CoreFaults, CoreLimits, PgRecord } from '../core/index.js';

export { catchUpMaxBytes, gapGraceMs, trimEveryEntries } from './pg-worker.js';
export { peeringTimeoutMs, rejoinRetryMs } from './peering.js';
export { resyncBatchBlocks } from './catch-up.js';
export { handBackCompareAttempts } from './primary-path.js';
export { outOfSyncRetryMs, primaryTickMs } from './primary-drive.js';
export type { WriteResult } from './pg-runtime.js';
export type { ReplicaWrite } from './replica-path.js';

export class Replicator {
  /** What this process keeps about each PG (`volume/pg`), one record per PG (pg-runtime.ts). */
  private readonly pgs = new Map<string, PgRuntime>();
  private readonly peering: Peering;
  private readonly primaryPath: PrimaryPath;
  private readonly replicaPath: ReplicaPath;
  private readonly drive: PrimaryDrive;

  constructor(
    nodeId: string,
    selfAddress: () => string,
    store: ReplicationStore,
    placement: PlacementSource,
    peers: PeerTransport,
    log: Logger,
    /** With leases, writes are acknowledged only under a live pg-primary lease (lease-guard.ts). */
    leases: LeaseGuard | null = null,
    /** Time for the replicator's timers (dataplane/clock.ts): a `ManualClock` in tests. */
    clock: Clock = systemClock,
    /**
     * Tests and simulators only: the core's breaks (default: GALLEON_TEST_CORE_FAULTS, unset in
     * production) and limits (default `serverCoreLimits`; the shell simulator trims journals
     * after a few entries so full resyncs happen).
     */
    tuning: { coreFaults?: CoreFaults; coreLimits?: CoreLimits } = {},
  ) {
    const rt = (key: string): PgRuntime => {
      let r = this.pgs.get(key);
      if (r === undefined) { r = newPgRuntime(); this.pgs.set(key, r); }
      return r;
    };
    const coreFaults = tuning.coreFaults ?? coreFaultsFrom(process.env.GALLEON_TEST_CORE_FAULTS);
    const coreLimits = tuning.coreLimits ?? serverCoreLimits;
    const gate = new EpochGate({ nodeId, faults: coreFaults, store, placement, log, rt, clock });
    const d: ReplicatorDeps = { nodeId, selfAddress, store, placement, peers, log, leases, gate, rt, coreFaults, coreLimits, clock };
    const drive = new PrimaryDrive(d);
    this.drive = drive;
    const replicas = new ReplicaDrive(d, drive);
    this.peering = new Peering(d, drive, replicas);
    this.primaryPath = new PrimaryPath(d, this.peering, drive);
    this.replicaPath = new ReplicaPath(d, this.peering, replicas);
  }

  /** Whether this node is done handing its copy of the PG back to the primary at `epoch` (or had nothing to hand). */
  handBackFinished(volumeId: string, pg: number, epoch: number): boolean {
    return this.pgs.get(`${volumeId}/${pg}`)?.handedBack.has(epoch) === true;
  }

  /** Whether this node's copy of the PG is being replaced (report it as empty meanwhile). */
  isRejoining(volumeId: string, pg: number): boolean {
    return this.pgs.get(`${volumeId}/${pg}`)?.rejoining === true;
  }

  /** The PG's replication-core record (read-only; tests and diagnostics), if this node has one yet. */
  coreRecord(volumeId: string, pg: number): Readonly<PgRecord> | undefined {
    return this.pgs.get(`${volumeId}/${pg}`)?.core?.r;
  }

  // ---- peering and catch-up (peering.ts) -------------------------------------------------

  forgetPg(...a: Parameters<Peering['forgetPg']>): void { this.peering.forgetPg(...a); }
  adoptPlacement(...a: Parameters<Peering['adoptPlacement']>): ReturnType<Peering['adoptPlacement']> { return this.peering.adoptPlacement(...a); }
  acceptPeering(...a: Parameters<Peering['acceptPeering']>): ReturnType<Peering['acceptPeering']> { return this.peering.acceptPeering(...a); }
  catchUp(...a: Parameters<Peering['catchUp']>): ReturnType<Peering['catchUp']> { return this.peering.catchUp(...a); }

  // ---- primary path (primary-path.ts) ----------------------------------------------------

  admitPrimaryRead(...a: Parameters<PrimaryPath['admitPrimaryRead']>): ReturnType<PrimaryPath['admitPrimaryRead']> { return this.primaryPath.admitPrimaryRead(...a); }
  admitRead(...a: Parameters<PrimaryPath['admitRead']>): ReturnType<PrimaryPath['admitRead']> { return this.primaryPath.admitRead(...a); }
  pgOfAddress(...a: Parameters<PrimaryPath['pgOfAddress']>): ReturnType<PrimaryPath['pgOfAddress']> { return this.primaryPath.pgOfAddress(...a); }
  primaryWrite(...a: Parameters<PrimaryPath['primaryWrite']>): ReturnType<PrimaryPath['primaryWrite']> { return this.primaryPath.primaryWrite(...a); }
  handBackWrite(...a: Parameters<PrimaryPath['handBackWrite']>): ReturnType<PrimaryPath['handBackWrite']> { return this.primaryPath.handBackWrite(...a); }

  // ---- replica path (replica-path.ts) ----------------------------------------------------

  replicaApply(...a: Parameters<ReplicaPath['replicaApply']>): ReturnType<ReplicaPath['replicaApply']> { return this.replicaPath.replicaApply(...a); }
  replicaApplyBatch(...a: Parameters<ReplicaPath['replicaApplyBatch']>): ReturnType<ReplicaPath['replicaApplyBatch']> { return this.replicaPath.replicaApplyBatch(...a); }
  catchUpRequested(...a: Parameters<ReplicaPath['catchUpRequested']>): ReturnType<ReplicaPath['catchUpRequested']> { return this.replicaPath.catchUpRequested(...a); }

  close(): void {
    this.peering.close();
    this.replicaPath.close();
    this.drive.close();
  }
}
