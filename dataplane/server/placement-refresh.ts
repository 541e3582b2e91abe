/**
 * Request-triggered placement reads, bounded: a request naming an epoch newer than the node's
 * cached placement makes the node read the placement again (a linearizable read of the metadata
 * service), but at most once per volume every `minIntervalMs` and within a node-wide budget, so
 * forged requests cannot turn into a flood of metadata reads. Callers ask for a read that
 * STARTED after their request arrived: an older one may predate the epoch they must verify.
 */
import { GalleonError } from '../../proto/errors.js';
import { systemClock, type Clock } from '../clock.js';
import { decideRefresh } from '../logic/membership.js';
import { metrics } from '../metrics.js';
import type { RefreshBudgetState, RefreshLimits } from '../logic/membership.js';
import type { PlacementSource, VolumePlacement } from '../placement.js';

export const placementRefreshLimits: RefreshLimits = { minIntervalMs: 200, perSecond: 20, burst: 40 };
/** Volumes whose last read time is remembered; older entries are forgotten beyond this. */
export const maxTrackedRefreshVolumes = 4096;

export class PlacementRefresher {
  private readonly lastStart = new Map<string, number>();
  private readonly running = new Map<string, { startedAt: number; read: Promise<VolumePlacement> }>();
  private budget: RefreshBudgetState;

  constructor(
    private readonly source: PlacementSource,
    /** Time for the interval, the budget and the waits (a `ManualClock` in tests). */
    private readonly clock: Clock = systemClock,
    private readonly limits: RefreshLimits = placementRefreshLimits,
  ) {
    this.budget = { tokens: limits.burst, refilledAtMs: clock.now() };
  }

  now(): number {
    return this.clock.now();
  }

  /** A placement read that started at or after `sinceMs` (joins one in flight, or waits its turn). */
  async fresh(volumeId: string, sinceMs: number): Promise<VolumePlacement> {
    for (;;) {
      const r = this.running.get(volumeId);
      if (r !== undefined && r.startedAt >= sinceMs) return r.read;
      if (r !== undefined) { await r.read.catch(() => undefined); continue; }
      const now = this.now();
      const d = decideRefresh(this.lastStart.get(volumeId), this.budget, now, this.limits);
      if (d.kind === 'refuse') {
        throw new GalleonError('UNAVAILABLE', `too many placement reads requested; not reading the placement of ${volumeId} now`, { hint: 'retry shortly' });
      }
      if (d.kind === 'wait') { await new Promise<void>((resolve) => { this.clock.setTimeout(resolve, d.ms); }); continue; }
      this.budget = d.state;
      this.remember(volumeId, now);
      metrics.requestedPlacementReads.inc();
      const read = this.source.refresh(volumeId);
      const entry = { startedAt: now, read };
      this.running.set(volumeId, entry);
      const done = (): void => { if (this.running.get(volumeId) === entry) this.running.delete(volumeId); };
      read.then(done, done);
      return read;
    }
  }

  private remember(volumeId: string, now: number): void {
    this.lastStart.delete(volumeId);
    this.lastStart.set(volumeId, now);
    if (this.lastStart.size <= maxTrackedRefreshVolumes) return;
    // Map order is insertion order: the first entries are the oldest reads.
    for (const [v, t] of this.lastStart) {
      if (this.lastStart.size <= maxTrackedRefreshVolumes || now - t < this.limits.minIntervalMs) break;
      this.lastStart.delete(v);
    }
  }
}
