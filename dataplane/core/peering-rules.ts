/**
 * Peering, catch-up and rejoin decisions the block server takes with the core's code (issue #13,
 * step 4): whether a copy is stale, what peering learned from the answers (the group's highest
 * seq, whom to pull from first, what to do about the next missing seq, who must catch up after),
 * and when a catch-up goes on. Pure: the core's own peering (`primary.ts`, `pg.ts`) and the
 * server's (`../server/peering.ts`) both call them, so the simulator runs the rules the server
 * follows.
 */

/** What a member told peering: its contiguous watermark and the highest seq it holds. */
export interface PeerState {
  applied: number;
  highest: number;
}

/**
 * A copy is stale when the placement names this node a member (re-)added at an epoch newer than
 * any its store has recorded while it holds something: it comes from an earlier membership, the
 * group assigned seqs without it since (seqs only it held may have gone to other writes), so
 * catching up from its old watermark would diverge. An empty copy has nothing to get wrong.
 */
export function isStaleCopy(member: boolean, addedAt: number | undefined, recordedEpoch: number, holdsAnything: boolean): boolean {
  return member && addedAt !== undefined && addedAt > recordedEpoch && holdsAnything;
}

/** The highest seq any member holds: a new primary assigns above it, so no seq goes to two writes. */
export function groupHighestSeq(mine: number, answers: Iterable<PeerState>): number {
  let h = mine;
  for (const a of answers) h = Math.max(h, a.highest);
  return h;
}

/**
 * With a metadata service (`everyMustAnswer`) a replica that does not answer peering might hold
 * seqs this node would assign again: the peering fails (and is retried) until it answers or the
 * service replaces it. Without one (static placements) the unreachable are left behind.
 */
export function peeringMustFail(missing: number, everyMustAnswer: boolean): boolean {
  return missing > 0 && everyMustAnswer;
}

/** Whom peering pulls from: members holding more than `applied`, the most complete journal first. */
export function pullOrder<T extends { state: PeerState }>(answers: readonly T[], applied: number): T[] {
  return answers.filter((a) => a.state.highest > applied)
    .sort((a, b) => b.state.applied - a.state.applied || b.state.highest - a.state.highest);
}

/**
 * The next seq after this journal's watermark, once peering pulled what the answers offered:
 * `done` at the group's highest; `leave` when the group need not be complete (static placements
 * leave unreachable members behind); `pull` when a member holds it (or a pull is still running);
 * else `noop` — no member holds it (its writer died before it landed anywhere), so it is filled
 * with a noop for every watermark to pass.
 */
export type HoleStep = 'done' | 'leave' | 'pull' | 'noop';
export function nextHole(applied: number, groupHighest: number, everyMustAnswer: boolean, someoneHolds: boolean): HoleStep {
  if (applied >= groupHighest) return 'done';
  if (!everyMustAnswer) return 'leave';
  return someoneHolds ? 'pull' : 'noop';
}

/** After peering, members whose watermark is below the primary's are told to catch up. */
export function behindAfterPeering(answers: Iterable<readonly [string, number]>, applied: number): string[] {
  const behind: string[] = [];
  for (const [id, theirs] of answers) if (theirs < applied) behind.push(id);
  return behind;
}

/**
 * A catch-up round: nothing fetched ends it; a fetched batch is applied (`after` null: not yet)
 * and then ends it when it did not move the watermark (what lies above a gap is not there yet),
 * otherwise the catch-up goes on from the new watermark. A journal trimmed past the watermark is
 * copied in full, once per catch-up.
 */
export type CatchUpStep = 'done' | 'more' | 'resync' | 'fail';
export function catchUpAfterFetch(fetched: number, before: number, after: number | null): CatchUpStep {
  if (fetched === 0) return 'done';
  return after === null || after !== before ? 'more' : 'done';
}
export function catchUpTrimmed(resyncedAlready: boolean): CatchUpStep {
  return resyncedAlready ? 'fail' : 'resync';
}
