/**
 * Which versions of a block the store keeps for snapshots, and which one a read at a snapshot
 * sees (issue #11). A snapshot is a *cut*: one placement epoch `c` that the snapshot command
 * moved every PG of its volume to. A version written at epoch `e` belongs to the snapshot iff
 * `e < c`; the snapshot sees the newest such version. The store keeps an older version
 * whenever a write at a newer epoch replaces it (server-independent: no cut list is needed on
 * the write path), and a paced pruner later drops every version no cut still needs:
 *
 *   version v is needed  iff  some cut c has  v.epoch < c <= next(v).epoch
 *
 * where next(v) is the next newer entry of the same block (a kept version or the live entry).
 * Cuts the pruner does not know yet all lie above the `horizon` it read with its cut list
 * (a snapshot moves its PGs above every epoch they had), so a version whose successor is above
 * the horizon is kept too. Pure: no I/O, no clock.
 */
import { invariant } from '../../proto/errors.js';

/** One stored entry of a block, identified by the epoch and seq it was written at. */
export interface VersionStamp {
  epoch: number;
  seq: number;
}

export const compareStamps = (a: VersionStamp, b: VersionStamp): number => a.epoch - b.epoch || a.seq - b.seq;

/**
 * Whether a write at `incoming` over the current entry `current` must first keep `current` as a
 * version: only when the write is newer and crosses an epoch boundary (a cut may lie between).
 */
export function keepOnOverwrite(current: VersionStamp, incoming: VersionStamp): boolean {
  return current.epoch < incoming.epoch && current.seq < incoming.seq;
}

/**
 * A replica receiving an older write after a newer one (out of order): the older one is stored
 * as a version when an epoch boundary lies between them, else it is superseded outright.
 */
export function keepArrivingOlder(current: VersionStamp, arriving: VersionStamp): boolean {
  return arriving.epoch < current.epoch && arriving.seq < current.seq;
}

/**
 * The versions (not the live entry) no cut needs. `versions` and `live` are one block's entries;
 * `live` is null when the block has no live entry (purged). Returns them oldest first.
 */
export function versionsToDrop(
  versions: readonly VersionStamp[], live: VersionStamp | null, cuts: readonly number[], horizon: number,
): VersionStamp[] {
  const sorted = [...versions].sort(compareStamps);
  const drop: VersionStamp[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const v = sorted[i];
    invariant(v !== undefined, 'index in range');
    const next = sorted[i + 1] ?? live;
    if (next === null) continue; // the newest entry of the block: every later cut sees it
    invariant(compareStamps(v, next) < 0, 'a version is older than the entry above it');
    const needed = next.epoch > horizon || cuts.some((c) => v.epoch < c && c <= next.epoch);
    if (!needed) drop.push(v);
  }
  return drop;
}

/** The entry a read at cut `below` sees among a block's entries (versions and live), or null. */
export function visibleAt(entries: readonly VersionStamp[], below: number): VersionStamp | null {
  let best: VersionStamp | null = null;
  for (const e of entries) if (e.epoch < below && (best === null || compareStamps(best, e) < 0)) best = e;
  return best;
}

/**
 * A volume's view: reads of the live volume (`below` = null) or of a snapshot of it (`below` =
 * its cut), through the volume's in-place restores (each makes the entries written at or above
 * `atEpoch` live again on top of the snapshot at `cut`) and, for a clone, its parent snapshot.
 */
export interface VolumeView {
  volumeId: string;
  below: number | null;
  restores: readonly { atEpoch: number; cut: number }[];
  parent: VolumeView | null;
}

/** One step of resolving a read: look up `below` in `volumeId`; what to do with the answer. */
export interface ViewStep {
  volumeId: string;
  below: number | null;
  /** An entry older than this came before the restore that hides it: continue at `thenBelow`. */
  floor: number;
  thenBelow: number | null;
}

/**
 * The lookup to make for a view: the restore that applies is the newest one at or below the
 * view's cut (a restore at epoch R hides entries below R for every read at a cut above R).
 */
export function viewStep(view: VolumeView): ViewStep {
  let applying: { atEpoch: number; cut: number } | null = null;
  for (const r of view.restores) {
    if ((view.below === null || r.atEpoch < view.below) && (applying === null || r.atEpoch > applying.atEpoch)) applying = r;
  }
  return applying === null
    ? { volumeId: view.volumeId, below: view.below, floor: 0, thenBelow: null }
    : { volumeId: view.volumeId, below: view.below, floor: applying.atEpoch, thenBelow: applying.cut };
}

/** Every cut of a volume the pruner must honour: its snapshots' and its restores' targets. */
export function retainedCuts(snapshotCuts: readonly number[], restores: readonly { cut: number }[]): number[] {
  return [...new Set([...snapshotCuts, ...restores.map((r) => r.cut)])].sort((a, b) => a - b);
}

/** The cut epoch of a new snapshot: above every epoch any PG of the volume has had. */
export function nextCut(pgEpochs: readonly number[]): number {
  invariant(pgEpochs.length > 0, 'a volume has at least one PG');
  return Math.max(...pgEpochs) + 1;
}
