/**
 * What the parts of the `Replicator` share (replication.ts wires them): the node's I/O (store,
 * placement source, peer transport, leases, logger, clock — each an interface, so in-memory
 * stand-ins can run it: store/memory-store.ts, memory-transport.ts, ../clock.ts), admission
 * (`EpochGate`) and the one `PgRuntime` record per PG. `PgWorker` is the base of `Peering` (peering.ts), `PrimaryPath`
 * (primary-path.ts) and `ReplicaPath` (replica-path.ts); it holds no state of its own.
 */
import { GalleonError } from '../../proto/errors.js';
import { breakNames, defaultCoreLimits, regressionBreakNames, type CoreFaults, type CoreLimits } from '../core/index.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { PlacementSource } from '../placement.js';
import type { ReplicationStore } from '../store/types.js';
import type { EpochGate } from './admission.js';
import type { LeaseGuard } from './lease-guard.js';
import type { PeerTransport } from './peers.js';
import type { PgRuntime } from './pg-runtime.js';

/** A replica trims its journal in steps of at least this many entries. */
export const trimEveryEntries = 1024;
/** Out-of-order arrivals fill gaps within this time; a gap older than it means missed writes. */
export const gapGraceMs = 300;
/** Bytes per journal read from another node (catch-up, hand-back). */
export const catchUpMaxBytes = 16 * 1024 * 1024;
/**
 * The core's limits in the server. A forward is retried and timed out by the transport (`Peers`,
 * I/O), whose failure is a `nack`: the core's own forward retries on ticks (the simulator's
 * network loses messages silently) are off here.
 */
export const serverCoreLimits: CoreLimits = { ...defaultCoreLimits, forwardRetryTicks: Number.POSITIVE_INFINITY };

/**
 * Test-only: `GALLEON_TEST_CORE_FAULTS=name[,name]` switches on deliberate breaks of the
 * replication core (`CoreFaults`, ../core/types.ts) in this process, so a real-process test can
 * show that the server's decisions come from the core. Unset in production.
 */
export function coreFaultsFrom(raw: string | undefined): CoreFaults {
  const faults: CoreFaults = {};
  const known = [...breakNames, ...regressionBreakNames];
  for (const name of (raw ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '')) {
    const k = known.find((b) => b === name);
    if (k === undefined) {
      throw new GalleonError('INVALID_ARGUMENT', `GALLEON_TEST_CORE_FAULTS names an unknown core fault ${JSON.stringify(name)}`, { hint: `use some of: ${known.join(', ')}` });
    }
    faults[k] = true;
  }
  return faults;
}

export interface ReplicatorDeps {
  nodeId: string;
  selfAddress: () => string;
  store: ReplicationStore;
  placement: PlacementSource;
  peers: PeerTransport;
  log: Logger;
  /** With leases, writes are acknowledged only under a live pg-primary lease (lease-guard.ts). */
  leases: LeaseGuard | null;
  /** Admission and fencing: which epochs and senders a request may carry (admission.ts). */
  gate: EpochGate;
  /** The replicator's record of a PG (`volume/pg`), created on first use. */
  rt: (key: string) => PgRuntime;
  /** Deliberate breaks of the replication core: tests only (`coreFaultsFrom`); none in production. */
  coreFaults: CoreFaults;
  /** The core's limits: `serverCoreLimits` but in a simulator. */
  coreLimits: CoreLimits;
  /** Time for timers and deadlines (dataplane/clock.ts). */
  clock: Clock;
}

export abstract class PgWorker {
  protected readonly nodeId: string;
  protected readonly selfAddress: () => string;
  protected readonly store: ReplicationStore;
  protected readonly placement: PlacementSource;
  protected readonly peers: PeerTransport;
  protected readonly log: Logger;
  protected readonly leases: LeaseGuard | null;
  protected readonly gate: EpochGate;
  protected readonly rt: (key: string) => PgRuntime;
  protected readonly coreFaults: CoreFaults;
  protected readonly coreLimits: CoreLimits;
  protected readonly clock: Clock;

  constructor(d: ReplicatorDeps) {
    this.nodeId = d.nodeId;
    this.selfAddress = d.selfAddress;
    this.store = d.store;
    this.placement = d.placement;
    this.peers = d.peers;
    this.log = d.log;
    this.leases = d.leases;
    this.gate = d.gate;
    this.rt = d.rt;
    this.coreFaults = d.coreFaults;
    this.coreLimits = d.coreLimits;
    this.clock = d.clock;
  }

  /** Replica-side work that peering must wait for (PgRuntime.applying). */
  protected tracked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const set = this.rt(key).applying;
    const p = work();
    const entry = p.catch(() => undefined);
    set.add(entry);
    void entry.then(() => { set.delete(entry); });
    return p;
  }
}
