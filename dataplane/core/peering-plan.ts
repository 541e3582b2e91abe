/**
 * The sequencing of peering as a new primary, once the members answered (issue #13 task 2): which
 * member to pull from next, when to ask whether some member holds the next missing seq, when to
 * wait for a pull still running, when to fill a seq nobody holds with a noop, when to give up and
 * whom to tell to catch up. A pure state machine over the rules of `peering-rules.ts`: the block
 * server (`../server/peering.ts` `peerAsPrimary`) carries out each move (journal reads, a probe,
 * a timer, a noop write) and asks for the next one with the watermark its store reached; the
 * core's own peering (`primary.ts` `finishPeering`, run by the simulator) plays the same moves
 * over the journal fills the answers carried.
 */
import { invariant } from '../../proto/errors.js';
import { behindAfterPeering, groupHighestSeq, nextHole, peeringMustFail, pullOrder, type PeerState } from './peering-rules.js';
import type { CoreFaults } from './types.js';

/** A member's answer to peering (`state` null: it did not answer). */
export interface PeeringAnswer {
  id: string;
  state: PeerState | null;
}

/** What peering does next; the shell carries it out and calls `nextPeeringMove` again. */
export type PeeringMove =
  /** Pull what `from` holds above this journal's watermark (a full copy when its journal is trimmed past it). */
  | { t: 'pull'; from: string }
  /** Ask the members whether one holds `seq` (or trimmed past it); answer with `peeringProbed`. */
  | { t: 'probe'; seq: number }
  /** A member holds the next seq (or a catch-up is running): look again after a grace. */
  | { t: 'wait' }
  /** No member holds `seq` (its writer died before it landed): record a noop there, synced. */
  | { t: 'noop'; seq: number }
  /** Peered: serve above `groupHighest`; tell `catchUp` (members behind this journal) to catch up. */
  | { t: 'done'; groupHighest: number; catchUp: string[] }
  /** Still missing `from`..`to` after the rounds allowed: peering fails (it is retried). */
  | { t: 'fail'; from: number; to: number };

/** One peering's progress (the shell keeps it between moves; only these functions change it). */
export interface PeeringPlan {
  readonly groupHighest: number;
  readonly everyMustAnswer: boolean;
  /** Members that answered, with what they hold. */
  readonly reached: readonly { id: string; state: PeerState }[];
  /** Rounds of pulls and one hole step each, at most `maxRounds`. */
  readonly maxRounds: number;
  /** The test-only `skipPeeringCatchUp` break: no pull, probe or noop; the first move is `done`. */
  readonly skipCatchUp: boolean;
  round: number;
  /** Members still to pull from in this round (most complete first), null before the round's order is taken. */
  queue: string[] | null;
  /** The probe of this round's hole: the seq asked and whether some member holds it (null: not asked yet). */
  probe: { seq: number; holds: boolean | null } | null;
  finished: boolean;
}

export type PeeringStart = { ok: true; plan: PeeringPlan } | { ok: false; missing: string[] };

/**
 * The answers are in: fail when one is missing and every member must answer (with a metadata
 * service, `peeringMustFail`), else a plan over the members that answered. `mineHighest`: the
 * highest seq this node's journal holds. `faults`: the test-only breaks (the core and the block
 * server pass theirs, so `skipPeeringCatchUp` acts on both); none in production.
 */
export function startPeering(mineHighest: number, answers: readonly PeeringAnswer[], everyMustAnswer: boolean, maxRounds: number, faults: CoreFaults = {}): PeeringStart {
  const missing = answers.filter((a) => a.state === null).map((a) => a.id);
  if (peeringMustFail(missing.length, everyMustAnswer)) return { ok: false, missing };
  const reached = answers.flatMap((a) => (a.state === null ? [] : [{ id: a.id, state: a.state }]));
  invariant(maxRounds >= 1, 'peering gets at least one round');
  const groupHighest = groupHighestSeq(mineHighest, reached.map((a) => a.state));
  const skipCatchUp = faults.skipPeeringCatchUp === true;
  return { ok: true, plan: { groupHighest, everyMustAnswer, reached, maxRounds, skipCatchUp, round: 0, queue: null, probe: null, finished: false } };
}

/**
 * The next move, given this journal's contiguous watermark now (`applied`) and whether a catch-up
 * of this PG is running (`catchingUp`: its pulls may bring the next seq). A round pulls from every
 * member holding more than the watermark (most complete first, `pullOrder`; one an earlier pull of
 * the round overtook is skipped), then takes one step on the next missing seq (`nextHole`:
 * done, leave, wait for a holder, or a noop).
 */
export function nextPeeringMove(plan: PeeringPlan, applied: number, catchingUp: boolean): PeeringMove {
  invariant(!plan.finished, 'a finished peering makes no more moves');
  if (plan.skipCatchUp) return skipped(plan, applied);
  if (plan.round >= plan.maxRounds) return finish(plan, applied);
  plan.queue ??= pullOrder(plan.reached, applied).map((a) => a.id);
  for (let id = plan.queue.shift(); id !== undefined; id = plan.queue.shift()) {
    const src = plan.reached.find((a) => a.id === id);
    if (src !== undefined && src.state.highest > applied) return { t: 'pull', from: id };
  }
  const seq = applied + 1;
  let step = nextHole(applied, plan.groupHighest, plan.everyMustAnswer, true);
  if (step === 'done' || step === 'leave') return finish(plan, applied);
  if (!catchingUp) {
    if (plan.probe === null || plan.probe.seq !== seq) plan.probe = { seq, holds: null };
    if (plan.probe.holds === null) return { t: 'probe', seq };
    step = nextHole(applied, plan.groupHighest, plan.everyMustAnswer, plan.probe.holds);
  }
  nextRound(plan);
  return step === 'pull' ? { t: 'wait' } : { t: 'noop', seq };
}

/** The answer to a `probe` move: whether some member holds `seq` (or trimmed past it). */
export function peeringProbed(plan: PeeringPlan, seq: number, holds: boolean): void {
  invariant(plan.probe !== null && plan.probe.seq === seq && plan.probe.holds === null, 'a probe is answered once, for the seq it asked');
  plan.probe.holds = holds;
}

function nextRound(plan: PeeringPlan): void {
  plan.round++;
  plan.queue = null;
  plan.probe = null;
}

/** The `skipPeeringCatchUp` break: done at once, whatever this journal lacks (serving above the group's highest seq all the same). */
function skipped(plan: PeeringPlan, applied: number): PeeringMove {
  plan.finished = true;
  return { t: 'done', groupHighest: plan.groupHighest, catchUp: behindAfterPeering(plan.reached.map((a) => [a.id, a.state.applied] as const), applied) };
}

/** Done when nothing is missing (or may be left behind), else failed; members behind are told to catch up. */
function finish(plan: PeeringPlan, applied: number): PeeringMove {
  plan.finished = true;
  const left = nextHole(applied, plan.groupHighest, plan.everyMustAnswer, true);
  if (left !== 'done' && left !== 'leave') return { t: 'fail', from: applied + 1, to: plan.groupHighest };
  return { t: 'done', groupHighest: plan.groupHighest, catchUp: behindAfterPeering(plan.reached.map((a) => [a.id, a.state.applied] as const), applied) };
}
