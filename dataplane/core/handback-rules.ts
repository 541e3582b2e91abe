/**
 * The sequencing of a hand-back (issue #13 task 2): what a copy that must go does, in order. A
 * copy from an earlier membership offers its blocks to the primary (the primary compares, rule
 * 2 in `rules.ts`), is dropped once that is settled, records the epoch it is a member at, and a
 * rejoining member catches up from seq 1 like a new replica. Pure: the core's own hand-back
 * (`pg.ts` `finishHandBack`, run by the simulator) and the block server's rejoin
 * (`../server/peering.ts` `rejoin`) both carry out these steps.
 */
import { handBackConcern } from './rules.js';
import type { WriteConcern } from './types.js';

export type HandBackStep =
  /** Removed from the group again before the rejoin finished: an ordinary stale copy now (the lifecycle drops it). */
  | { t: 'leave' }
  /** Offer every block to the primary at `concern` (it takes those newer than its own). */
  | { t: 'offer'; concern: WriteConcern }
  /** Let the replica writes admitted before the rejoin began land (none can start meanwhile). */
  | { t: 'settle' }
  /** Forget the copy: blocks, journal, watermark (the epoch record stays). */
  | { t: 'drop' }
  /** Record `epoch` (the member's, or a newer one this node was fenced at). */
  | { t: 'epoch'; epoch: number }
  /** Catch up from seq 1 from the primary (a full copy when its journal is trimmed). */
  | { t: 'catchUp' };

/** Everything offered was taken or declined: drop the copy, record the epoch, and a rejoining member starts over from seq 1. */
export function afterHandBack(rejoin: boolean, member: boolean, epoch: number): HandBackStep[] {
  return [{ t: 'drop' }, { t: 'epoch', epoch }, ...(rejoin && member ? [{ t: 'catchUp' } as const] : [])];
}

/**
 * A member added back while its copy predates that (a stale copy, `isStaleCopy`): offer what it
 * holds — counting on the in-sync replicas other than itself and the primary, else on the
 * primary alone (`handBackConcern`) — let in-flight writes land, then `afterHandBack`. Removed
 * again meanwhile: leave the rejoin.
 */
export function rejoinSteps(v: { member: boolean; holdsAnything: boolean; otherInSync: number; epoch: number }): HandBackStep[] {
  if (!v.member) return [{ t: 'leave' }];
  const offer: HandBackStep[] = v.holdsAnything ? [{ t: 'offer', concern: handBackConcern(v.otherInSync) }] : [];
  return [...offer, { t: 'settle' }, ...afterHandBack(true, true, v.epoch)];
}
