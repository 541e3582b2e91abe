/**
 * Decisions the block server (`../server`) takes with the same rule as the core: pure functions
 * of plain arguments, so the shell cannot drift from what the simulator proved (issue #13).
 */
import type { ReplicaAck } from '../logic/write-concern.js';
import type { CoreFaults, Version, WriteConcern } from './types.js';
import { dataVersion, versionAfter } from './types.js';

/**
 * `replicated` waits until every other replica either holds the write durably or was taken out
 * of the in-sync set by a committed mark whose floor is at or above the write's seq (`floors`:
 * committed floors by replica). Without it the primary and the replica that acknowledged could
 * both die before the mark of a third commits, and that third — counted in sync, lacking the
 * write — would be promoted (simulator seed 10).
 */
export function everyReplicaAnswered(self: string, seq: number, acks: ReadonlyMap<string, ReplicaAck>, floors: ReadonlyMap<string, number>): boolean {
  for (const [id, a] of acks) {
    if (id === self || a === 'durable') continue;
    const floor = floors.get(id);
    if (a !== 'failed' || floor === undefined || floor < seq) return false;
  }
  return true;
}

/**
 * A handed-back block is taken only when its data is newer than the primary's own copy of that
 * block, both compared by the version of the data (`dataVersion`: a handed-back copy keeps the
 * origin of the write that made it), never by the seq it is stored under (simulator seed 277).
 * The core (`primary.ts` `onHandBackOffers`) and the block server (`../server/primary-path.ts`)
 * both ask this, so the test-only breaks act on both: `handBackWithoutCompare` takes every block
 * (an older copy overwrites a newer write), `handBackByStoredVersion` compares the current copy
 * by the version it is stored under (seed 277's bug).
 */
export function takeHandedBack(offered: { epoch: number; seq: number; origin?: Version }, current: { epoch: number; seq: number; origin?: Version } | null, faults: CoreFaults = {}): boolean {
  if (faults.handBackWithoutCompare === true) return true;
  if (faults.handBackByStoredVersion === true) return versionAfter(dataVersion(offered), current);
  return versionAfter(dataVersion(offered), current === null ? null : dataVersion(current));
}

/**
 * The concern a handed-back block is written at: `replicated` when another replica can hold it
 * too, else `durable` on the primary alone (a PG of one, or no other replica to count on).
 */
export function handBackConcern(otherReplicas: number): WriteConcern {
  return otherReplicas > 0 ? 'replicated' : 'durable';
}
