/**
 * Lease fencing of a primary: a node acknowledges writes for a PG only while it holds that PG's
 * `pg-primary` lease from the metadata service, judged by its OWN monotonic clock.
 *
 * The lease is counted from the moment the acquire/renew request was SENT (the service starts
 * its ttl later than that, never earlier), minus `leaseSafetyMarginMs` for clock-rate drift.
 * The metadata controller marks a node down (and moves its primaries) only after
 * `dataNodeDownAfterMs` > `leaseTtlMs` + margin without heartbeats, so by the time a new primary
 * exists the old one has stopped acknowledging — even if it was frozen (SIGSTOP) and resumes
 * with writes in flight: those are checked against the lease when they would be acknowledged.
 */
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import { leaseSafetyMarginMs } from '../../proto/limits.js';
import type { MetadataApi } from '../../proto/metadata-types.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';

// leaseSafetyMarginMs (proto/limits.ts) is subtracted from every lease on this side: it covers
// clock-rate drift between node and leader.
/** Leases are renewed when less than this fraction of the ttl is left. */
const renewBelowFraction = 0.5;

export type LeaseApi = Pick<MetadataApi, 'acquireLease' | 'renewLease' | 'releaseLease'>;
/** What a primary asks the metadata service about its PG's membership (peering.ts, primary-path.ts). */
export type PgSyncApi = Pick<MetadataApi, 'claimPgPrimary' | 'markPgReplicaOutOfSync'>;

export interface LeaseOptions {
  api: LeaseApi & PgSyncApi;
  ttlMs: number;
}

interface Held {
  epoch: number;
  leaseId: string | null;
  /** The clock's `now()` until which writes may be acknowledged. */
  validUntil: number;
  pending: Promise<void> | null;
}

export class LeaseGuard {
  private readonly held = new Map<string, Held>();
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly renewEveryMs: number;

  constructor(
    private readonly nodeId: string,
    private readonly opts: LeaseOptions,
    private readonly log: Logger,
    /** The node's own monotonic clock, by which leases are judged (../clock.ts). */
    private readonly clock: Clock = systemClock,
  ) {
    this.renewEveryMs = Math.max(20, Math.floor(opts.ttlMs / 4));
    this.scheduleRenewal();
  }

  private scheduleRenewal(): void {
    this.timer = this.clock.setTimeout(() => {
      if (this.closed) return;
      this.renewDue();
      this.scheduleRenewal();
    }, this.renewEveryMs);
  }

  /** The metadata service, for the claims and out-of-sync marks of a primary. */
  get sync(): PgSyncApi {
    return this.opts.api;
  }

  private get margin(): number {
    return leaseSafetyMarginMs(this.opts.ttlMs);
  }

  /** True while this node may acknowledge writes of the PG at `epoch`. */
  valid(volumeId: string, pg: number, epoch: number): boolean {
    const h = this.held.get(`${volumeId}/${pg}`);
    return h !== undefined && h.epoch === epoch && this.clock.now() < h.validUntil;
  }

  /** Makes sure the lease is held (acquiring or renewing it); throws when it cannot be. */
  async ensure(volumeId: string, pg: number, epoch: number): Promise<void> {
    if (this.valid(volumeId, pg, epoch)) return;
    const key = `${volumeId}/${pg}`;
    let h = this.held.get(key);
    if (h?.epoch !== epoch) {
      h = { epoch, leaseId: null, validUntil: 0, pending: null };
      this.held.set(key, h);
    }
    await this.refresh(key, h);
    if (!this.valid(volumeId, pg, epoch)) throw this.expired(volumeId, pg);
  }

  expired(volumeId: string, pg: number): GalleonError {
    return new GalleonError('UNAVAILABLE', `node ${this.nodeId} does not hold the pg-primary lease of ${volumeId}/${pg}`, {
      hint: 'the primary may be moving; refresh the placement and retry', details: { volumeId, pg },
    });
  }

  private refresh(key: string, h: Held): Promise<void> {
    h.pending ??= (async () => {
      const sentAt = this.clock.now();
      try {
        let lease;
        if (h.leaseId !== null) {
          try {
            lease = await this.opts.api.renewLease(h.leaseId, this.opts.ttlMs);
          } catch (err) {
            if (!isGalleonError(err, 'LEASE_NOT_FOUND')) throw err;
            h.leaseId = null;
          }
        }
        lease ??= await this.opts.api.acquireLease('pg-primary', key, this.nodeId, this.opts.ttlMs, undefined, h.epoch);
        if (this.held.get(key) !== h) return;
        h.leaseId = lease.id;
        h.validUntil = sentAt + this.opts.ttlMs - this.margin;
      } catch (err) {
        this.log.debug({ key, code: isGalleonError(err) ? err.code : undefined }, 'pg-primary lease not granted');
        if (isGalleonError(err, 'STALE_EPOCH') || isGalleonError(err, 'FAILED_PRECONDITION') || isGalleonError(err, 'LEASE_CONFLICT')) h.validUntil = 0;
      } finally {
        h.pending = null;
      }
    })();
    return h.pending;
  }

  private renewDue(): void {
    if (this.closed) return;
    const now = this.clock.now();
    for (const [key, h] of this.held) {
      if (h.leaseId === null) continue;
      // A lease long expired is not renewed in the background: the next write re-acquires it.
      if (h.validUntil < now - this.opts.ttlMs) { this.held.delete(key); continue; }
      if (h.validUntil - now < this.opts.ttlMs * renewBelowFraction) void this.refresh(key, h);
    }
  }

  /** This node stopped being primary of the PG at `epoch`: forget (and release) the lease. */
  drop(volumeId: string, pg: number): void {
    const key = `${volumeId}/${pg}`;
    const h = this.held.get(key);
    this.held.delete(key);
    if (h?.leaseId != null) this.opts.api.releaseLease(h.leaseId).catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
  }
}
