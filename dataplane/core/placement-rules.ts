/**
 * What a placement the metadata service assigned means for this node's copy of one PG, as the
 * block server sees it (issue #13, placements as core steps): `placementStep(view, p)` returns the
 * steps the shell carries out — record the epoch, become the primary and peer, step down, start
 * the rejoin of a stale copy, hand a left group's copy back. Pure: the shell gathers the view
 * (store state, what it serves) and does the I/O. The simulator's nodes take placements through
 * `PgCore` (`pg.ts` `onPlacement`), which applies the same stale-copy rule (`isStaleCopy`).
 */
import { isStaleCopy } from './peering-rules.js';
import type { PgPlacement } from './types.js';

/** What the shell knows of its copy of the PG when a placement arrives. */
export interface PlacementView {
  self: string;
  /** The epoch the store recorded for the PG. */
  recordedEpoch: number;
  /** The store's contiguous watermark and the highest seq it journaled. */
  applied: number;
  highest: number;
  /** The epoch this node is (becoming) primary at, or null when it serves none. */
  servingEpoch: number | null;
  /** The stale copy is being replaced already. */
  rejoining: boolean;
  /** A hand-back at `p.epoch` finished or is running. */
  handBackDone: boolean;
  /**
   * From this node's own heartbeat (the placement of its own groups): roles are taken and left
   * copies handed back. Otherwise (an operator's static placement) only epochs are recorded.
   */
  roles: boolean;
}

export type PlacementStep =
  /** Not a member any more and the copy may hold writes the group lacks: offer them to `p.primary`. */
  | { t: 'handBack'; epoch: number }
  /** Not a member and nothing to offer at this epoch: remember it, so the store is not asked again. */
  | { t: 'nothingToHandBack'; epoch: number }
  /** A member re-added after it missed epochs: hand back, drop the copy, resync from empty. */
  | { t: 'rejoin'; addedAt: number }
  /** Record the epoch, so requests at older ones are refused from now on. */
  | { t: 'epoch'; epoch: number }
  /** Another node leads the PG at this epoch: forget the primary state and the lease. */
  | { t: 'stepDown' }
  /** This node leads the PG at `epoch` and does not serve it yet: claim and peer. */
  | { t: 'peer'; epoch: number };

/** The steps a placement means for this node's copy of the PG, in the order the shell carries them out. */
export function placementStep(v: PlacementView, p: PgPlacement): PlacementStep[] {
  const member = p.replicas.some((r) => r.id === v.self);
  if (v.roles && !member) return leftGroup(v, p);
  if (v.rejoining) return [];
  const addedAt = p.addedAt[v.self];
  if (addedAt !== undefined && isStaleCopy(member, addedAt, v.recordedEpoch, v.highest > 0 || v.applied > 0)) return [{ t: 'rejoin', addedAt }];
  const steps: PlacementStep[] = [{ t: 'epoch', epoch: p.epoch }];
  if (!v.roles) return steps;
  if (p.primary !== v.self) steps.push({ t: 'stepDown' });
  else if (v.servingEpoch !== p.epoch) steps.push({ t: 'peer', epoch: p.epoch });
  return steps;
}

/**
 * A copy of a group this node left may hold `durable` writes only it got (acknowledged by it as
 * primary, not forwarded yet): it is offered once per epoch, unless it is empty or already saw
 * this epoch (then it was part of the group's history there).
 */
function leftGroup(v: PlacementView, p: PgPlacement): PlacementStep[] {
  if (v.handBackDone) return [];
  if (v.highest === 0 || v.recordedEpoch >= p.epoch) return [{ t: 'nothingToHandBack', epoch: p.epoch }];
  return [{ t: 'handBack', epoch: p.epoch }];
}
