/**
 * Wing & Gong's search as refined by Lowe and by Horn & Kroening ("P-compositionality"), the
 * approach Porcupine takes, for ONE key:
 *
 * Call and return events sit in one list ordered by time. Walking from the front, a call whose
 * operation the model accepts from the current state is tentatively linearized: both its events
 * are lifted out of the list and the walk restarts from the front. Reaching a return event means
 * the operation it closes had to be linearized before that point and was not: backtrack to the
 * last choice and try the next call. The list empty means a linearization exists.
 *
 * Memoisation: the same (set of linearized operations, model state) reached by two different
 * orders has the same future, so it is explored once. The set is keyed exactly (see
 * PrefixSet), so no hash collision can ever prune a live branch.
 *
 * Unknown outcomes: an operation without a return has its return event at +∞, so it may be
 * linearized at any point after its call — including after everything else, which is "never"
 * as far as any observer in the history can tell.
 *
 * Reads are forced moves: a read-only operation that is callable now and matches the current
 * state can go next in some linearization whenever any linearization exists from here (moving
 * it earlier changes no state, and every operation that had to precede it is already placed),
 * so when the search backtracks over one it does not try the alternatives at that level.
 *
 * Work is bounded by `maxSteps`; running out answers `unknown`, never a guess.
 */
import { PrefixSet } from './prefix-set.js';
import type { Operation } from './history.js';
import type { Model } from './model.js';

export type Verdict = 'linearizable' | 'violation' | 'unknown';

interface Event {
  /** Index into the key's operation array. */
  op: number;
  isCall: boolean;
  time: number;
  /** The call's return event (null on a return event). */
  match: Event | null;
  prev: Event | null;
  next: Event | null;
}

/** Where the search got furthest before every branch failed. */
export interface StuckPoint {
  /** How many operations were linearized at the deepest point. */
  depth: number;
  /** The operation whose return was reached without it being linearized. */
  blockedOp: number;
  /** The last few operations of the deepest partial linearization, in order. */
  tail: number[];
  /** Operations that were candidates (called, not linearized) at that point. */
  candidates: number[];
}

export interface SearchResult {
  verdict: Verdict;
  steps: number;
  /** Present on `violation`. */
  stuck?: StuckPoint;
  /**
   * On `violation`: the latest time at which any branch of the search failed. Every branch
   * fails by then, and the search never looks at events after the one it fails on, so the
   * operations called by this time are on their own not linearizable either.
   */
  failedBy?: number;
}

const tailLength = 6;
const maxCandidatesReported = 12;

export function searchKey<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], maxSteps: number): SearchResult {
  const head = buildEventList(ops);
  const n = ops.length;
  const rank = returnOrderRanks(ops);
  const linearized = new PrefixSet(n);
  const memo = new Set<string>();
  const stack: { call: Event; state: S; forced: boolean }[] = [];
  let state = model.init();
  let steps = 0;
  let stuck: StuckPoint | undefined;
  let failedBy = Number.NEGATIVE_INFINITY;

  let entry = head.next;
  while (head.next !== null) {
    if (++steps > maxSteps) return { verdict: 'unknown', steps };
    if (entry === null) throw new Error('linearizability search walked off the event list');
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const res = model.step(state, op.input, op.outcome === 'ok' ? op.output : undefined);
      if (res.ok) {
        linearized.add(rank[entry.op]!);
        const key = `${linearized.key()}|${model.stateKey(res.next)}`;
        if (!memo.has(key)) {
          memo.add(key);
          stack.push({ call: entry, state, forced: model.isReadOnly(op.input) });
          state = res.next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized.delete(rank[entry.op]!);
      }
      entry = entry.next;
      continue;
    }
    // A return event: its operation should have been linearized by now.
    if (stuck === undefined || stack.length > stuck.depth) stuck = describeStuck(head, entry, stack);
    failedBy = Math.max(failedBy, entry.time);
    let top = stack.pop();
    // Undo forced choices without trying their alternatives (see below), then resume after
    // the last free choice.
    while (top?.forced === true) {
      linearized.delete(rank[top.call.op]!);
      unlift(top.call);
      top = stack.pop();
    }
    if (top === undefined) return { verdict: 'violation', steps, stuck, failedBy };
    linearized.delete(rank[top.call.op]!);
    state = top.state;
    unlift(top.call);
    entry = top.call.next;
  }
  return { verdict: 'linearizable', steps };
}

/**
 * Each operation's position when sorted by return time, then call time. An unreturned operation
 * still in the search was observed by someone (check.ts drops the others), so it is usually
 * linearized soon after its call: ranking it by its call keeps it from sitting above the
 * PrefixSet's floor for the rest of the search.
 */
function returnOrderRanks<I, O>(ops: readonly Operation<I, O>[]): Int32Array {
  const order = ops.map((_, i) => i);
  const ret = (i: number): number => ops[i]!.returnAt ?? ops[i]!.callAt;
  order.sort((a, b) => ret(a) - ret(b) || ops[a]!.callAt - ops[b]!.callAt || a - b);
  const rank = new Int32Array(ops.length);
  order.forEach((opIndex, r) => (rank[opIndex] = r));
  return rank;
}

function buildEventList<I, O>(ops: readonly Operation<I, O>[]): Event {
  const events: Event[] = [];
  ops.forEach((op, i) => {
    const ret: Event = { op: i, isCall: false, time: op.returnAt ?? Number.POSITIVE_INFINITY, match: null, prev: null, next: null };
    const call: Event = { op: i, isCall: true, time: op.callAt, match: ret, prev: null, next: null };
    if (!(ret.time >= call.time)) throw new Error(`operation ${i} returns before its call`);
    events.push(call, ret);
  });
  // On equal times a call sorts before a return: the two operations count as concurrent, the
  // lenient reading, so a coarse clock never manufactures a violation.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Event = { op: -1, isCall: false, time: Number.NEGATIVE_INFINITY, match: null, prev: null, next: null };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(call: Event): void {
  call.prev!.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Exactly undoes lift(): relinks the return first, then the call, into their old neighbours. */
function unlift(call: Event): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next !== null) call.next.prev = call;
}

function describeStuck<S>(head: Event, blocked: Event, stack: readonly { call: Event; state: S }[]): StuckPoint {
  const candidates: number[] = [];
  for (let e = head.next; e !== null && e !== blocked && candidates.length < maxCandidatesReported; e = e.next) {
    if (e.isCall) candidates.push(e.op);
  }
  return {
    depth: stack.length,
    blockedOp: blocked.op,
    tail: stack.slice(-tailLength).map((s) => s.call.op),
    candidates,
  };
}
