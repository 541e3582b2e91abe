/**
 * Background space reclamation of one block store: every `passIntervalMs`, a census of the
 * index (index-census.ts), then segment GC (segment-gc.ts), then tombstone purge
 * (tombstone-purge.ts). Passes over one store never overlap, however many Reclaimers exist.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { takeCensus } from './index-census.js';
import type { StoreMaintenance, TombstonePurge } from './maintenance.js';
import { noStoreMetrics } from './store-metrics.js';
import type { StoreMetrics } from './store-metrics.js';
import { compactSegments } from './segment-gc.js';
import type { SegmentGcOptions, SegmentGcResult } from './segment-gc.js';
import { defaultMaxPurgeCandidates, purgeTombstones } from './tombstone-purge.js';
import type { TombstonePurgeOptions } from './tombstone-purge.js';

export const defaultReclaimPassIntervalMs = 2 * 60 * 1000;
/** Pause before the next pass when the last one left work behind (its per-pass limits). */
export const reclaimBacklogPauseMs = 1000;

export interface ReclaimerOptions {
  store: { maintenance(): StoreMaintenance };
  log: Logger;
  /** The data plane's counters (passed in by whoever builds the store); none by default. */
  metrics?: StoreMetrics;
  passIntervalMs?: number;
  gc?: Omit<SegmentGcOptions, 'signal' | 'metrics'>;
  purge?: Omit<TombstonePurgeOptions, 'signal' | 'metrics'> & { maxCandidates?: number };
  /**
   * PGs (`volumeId/pg`) whose tombstones must all stay: a node that left the PG may still hand
   * an older copy back (tombstone-purge.ts). Asked after each census; when it throws, nothing is
   * purged in that pass. Absent: no departed copies are known (a store without a metadata service).
   */
  keepTombstonesOf?: () => Promise<ReadonlySet<string>>;
}

export interface ReclaimPass {
  /** Block index entries walked by the census. */
  entries: number;
  /** Sealed segment files and their bytes on disk before GC. */
  segments: number;
  segmentBytes: number;
  /** Dead bytes in sealed segments before GC. */
  reclaimableBytes: number;
  danglingPointers: number;
  tombstones: number;
  purged: number;
  gc: SegmentGcResult;
  /** Work was left for the next pass (per-pass limits): it follows soon. */
  backlog: boolean;
  censusMs: number;
  durationMs: number;
}

/** The pass running on a store (keyed by its segment files), so two never overlap. */
const running = new WeakMap<object, Promise<unknown>>();

export class Reclaimer {
  private readonly m: StoreMaintenance;
  private readonly stopController = new AbortController();
  private loop: Promise<void> | null = null;
  private last: ReclaimPass | null = null;
  /** The previous pass's fence: partly live segments above it are left to die a while longer. */
  private previousFence: number | null = null;

  constructor(private readonly opts: ReclaimerOptions) {
    this.m = opts.store.maintenance();
  }

  /** The last pass's figures (null before the first one). */
  lastPass(): ReclaimPass | null {
    return this.last;
  }

  async runOnce(): Promise<ReclaimPass> {
    for (let other = running.get(this.m.segments); other !== undefined; other = running.get(this.m.segments)) await other.catch(() => undefined);
    const pass = this.pass();
    running.set(this.m.segments, pass);
    try {
      this.last = await pass;
      return this.last;
    } finally {
      running.delete(this.m.segments);
    }
  }

  private async pass(): Promise<ReclaimPass> {
    const started = performance.now();
    const { signal } = this.stopController;
    const m = this.m;
    const metrics = this.opts.metrics ?? noStoreMetrics;
    const sealedBelow = await m.fence(false);
    const sizes = new Map<number, number>();
    for (const id of await m.segments.ids()) if (id < sealedBelow) sizes.set(id, await m.segments.sizeOf(id));
    const maxPurgeCandidates = this.opts.purge?.maxCandidates ?? defaultMaxPurgeCandidates;
    const census = await takeCensus(m, { maxPurgeCandidates, onDisk: new Set(sizes.keys()), sealedBelow, signal });
    const censusMs = performance.now() - started;
    if (census.danglingPointers > 0) this.opts.log.error({ danglingPointers: census.danglingPointers }, 'block index points into deleted segments');
    let segmentBytes = 0;
    let live = 0;
    for (const [id, size] of sizes) { segmentBytes += size; live += census.liveBytes.get(id) ?? 0; }
    const reclaimableBytes = Math.max(0, segmentBytes - live);
    metrics.reclaimableBytes.set(reclaimableBytes);
    const gc = await compactSegments(m, census, sizes, { coldBelow: this.previousFence ?? sealedBelow, ...this.opts.gc, signal, metrics });
    this.previousFence = sealedBelow;
    metrics.reclaimableBytes.set(Math.max(0, reclaimableBytes - gc.bytesReclaimed));
    const purged = await purgeTombstones(m, await this.purgeable(census.purgeable), { ...this.opts.purge, signal, metrics });
    return {
      entries: census.entries, segments: sizes.size, segmentBytes, reclaimableBytes, danglingPointers: census.danglingPointers,
      tombstones: census.tombstones, purged, gc, censusMs, durationMs: performance.now() - started,
      backlog: gc.backlog || census.purgeable.length >= maxPurgeCandidates,
    };
  }

  /** The census's candidates less those of PGs with a departed copy (read after the census: tombstone-purge.ts says why). */
  private async purgeable(candidates: readonly TombstonePurge[]): Promise<readonly TombstonePurge[]> {
    if (this.opts.keepTombstonesOf === undefined || candidates.length === 0) return candidates;
    const keep = await this.opts.keepTombstonesOf().catch((err: unknown) => {
      this.opts.log.warn({ err }, 'departed copies unknown (metadata unreachable); no tombstone purged in this pass');
      return null;
    });
    const left = keep === null ? [] : candidates.filter((c) => !keep.has(`${c.volumeId}/${c.pg}`));
    (this.opts.metrics ?? noStoreMetrics).tombstonesHeld.inc(candidates.length - left.length);
    return left;
  }

  /** Reclaimable bytes as of the last pass (0 before the first one). */
  reclaimableBytes(): number {
    const p = this.last;
    return p === null ? 0 : Math.max(0, p.reclaimableBytes - p.gc.bytesReclaimed);
  }

  start(): void {
    if (this.loop !== null) return;
    const { signal } = this.stopController;
    this.loop = (async () => {
      while (!signal.aborted) {
        const intervalMs = this.opts.passIntervalMs ?? defaultReclaimPassIntervalMs;
        const pauseMs = this.last?.backlog === true ? Math.min(intervalMs, reclaimBacklogPauseMs) : intervalMs;
        await sleep(pauseMs, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) break;
        try {
          const p = await this.runOnce();
          const level = p.gc.deleted > 0 || p.purged > 0 ? 'info' : 'debug';
          this.opts.log[level]({ ...p, gc: { ...p.gc, candidates: p.gc.candidates.length } }, 'space reclamation pass finished');
        } catch (err) {
          this.opts.log.error({ err }, 'space reclamation pass failed');
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    await this.loop;
  }
}
