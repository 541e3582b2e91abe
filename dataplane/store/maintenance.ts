/**
 * The seam between the block store and its background space reclamation (segment-gc.ts,
 * tombstone-purge.ts): a snapshot scan of the block index, the segment files, and three ordered
 * commits that go through the store's one commit queue, so each re-checks the index entry it
 * changes in the same batch that changes it. Nothing here writes on its own.
 */
import type { SegmentFiles } from './segments.js';

/** A live segment body to copy forward; applied only if the index still holds `expect`. */
export interface Relocation {
  key: Buffer;
  /** The exact index value (header + pointer) the census saw. */
  expect: Buffer;
  body: Buffer;
}

/** A tombstone to drop; applied only if the index still holds `expect` and its PG allows it. */
export interface TombstonePurge {
  key: Buffer;
  expect: Buffer;
  volumeId: string;
  pg: number;
}

export interface StoreMaintenance {
  readonly segments: SegmentFiles;
  readonly pins: SegmentPins;
  /** Every block index entry as [key, value], in batches, from one LevelDB snapshot. */
  scanBlockIndex(): AsyncIterable<readonly (readonly [Buffer, Buffer])[]>;
  /**
   * Resolves once every commit enqueued before it has landed (synced when `sync`), with the id of
   * the segment appends went to at that point: every lower segment is sealed and no later
   * commit can point into it.
   */
  fence(sync: boolean): Promise<number>;
  /** Appends the bodies through the normal write path (synced); returns how many moved. */
  relocate(items: readonly Relocation[]): Promise<number>;
  /** Deletes tombstones that are still the same and at or below their PG's trimmed journal. */
  purgeTombstones(items: readonly TombstonePurge[]): Promise<number>;
  /** The PG's trimmed journal seq (the purge rule: see tombstone-purge.ts). */
  trimmedSeq(volumeId: string, pg: number): Promise<number>;
}

/**
 * Reference counts of segment reads in flight. A read pins the segment its pointer names; a
 * segment being deleted is retired first: new pins are refused (the reader re-reads the index,
 * which by then points elsewhere) and the deletion waits for the pins already taken.
 */
export class SegmentPins {
  private readonly counts = new Map<number, number>();
  private readonly retired = new Set<number>();
  private readonly waiters = new Map<number, () => void>();

  pin(id: number): boolean {
    if (this.retired.has(id)) return false;
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    return true;
  }

  unpin(id: number): void {
    const n = (this.counts.get(id) ?? 0) - 1;
    if (n > 0) { this.counts.set(id, n); return; }
    this.counts.delete(id);
    const wake = this.waiters.get(id);
    this.waiters.delete(id);
    wake?.();
  }

  /** Refuses new pins of `id`; resolves when the last pin already taken is released. */
  retire(id: number): Promise<void> {
    this.retired.add(id);
    if (!this.counts.has(id)) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.set(id, resolve));
  }

  isRetired(id: number): boolean {
    return this.retired.has(id);
  }
}
