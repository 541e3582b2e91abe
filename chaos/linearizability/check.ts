/**
 * Checks a whole history: drops what constrains nothing, splits it by key (a history is
 * linearizable iff each key's sub-history is, for independent keys), searches each key, and
 * on a violation shrinks that key's operations to a small set that is still not linearizable.
 */
import type { Operation } from './history.js';
import type { Model } from './model.js';
import { searchKey, type StuckPoint, type Verdict } from './search.js';

export interface CheckOptions {
  /** Search steps allowed for one key before it is declared unknown. */
  maxStepsPerKey?: number;
  /** Search steps allowed for the whole history; keys after it runs out are unknown. */
  maxStepsTotal?: number;
  /** Search steps spent on shrinking each violation's witness. */
  maxShrinkSteps?: number;
}

export const defaultCheckOptions: Required<CheckOptions> = {
  maxStepsPerKey: 5_000_000,
  maxStepsTotal: 50_000_000,
  maxShrinkSteps: 2_000_000,
};

export interface Witness<I, O> {
  /** A subset of the key's operations that on its own has no linearization, by call time. */
  operations: Operation<I, O>[];
  /** The operation whose return the search could not get past, at its deepest point. */
  blocked: Operation<I, O>;
  /** The end of the longest partial linearization found. */
  linearizedTail: Operation<I, O>[];
  /** Human-readable lines, one per witness operation. */
  lines: string[];
  blockedText: string;
}

export interface KeyResult<I, O> {
  key: string;
  verdict: Verdict;
  operations: number;
  steps: number;
  witness?: Witness<I, O>;
}

export interface CheckResult<I, O> {
  verdict: Verdict;
  operations: number;
  steps: number;
  keys: KeyResult<I, O>[];
  violations: KeyResult<I, O>[];
  unknownKeys: string[];
}

export function checkHistory<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  const opts = { ...defaultCheckOptions, ...options };
  const byKey = partition(model, history);
  const keys: KeyResult<I, O>[] = [];
  let steps = 0;
  let operations = 0;
  for (const [key, ops] of byKey) {
    operations += ops.length;
    const budget = Math.min(opts.maxStepsPerKey, opts.maxStepsTotal - steps);
    if (budget <= 0) {
      keys.push({ key, verdict: 'unknown', operations: ops.length, steps: 0 });
      continue;
    }
    const searched = dropUnobservedUnknowns(model, ops);
    const res = searchKey(model, searched, budget);
    steps += res.steps;
    const result: KeyResult<I, O> = { key, verdict: res.verdict, operations: ops.length, steps: res.steps };
    if (res.verdict === 'violation' && res.stuck !== undefined) {
      result.witness = buildWitness(model, searched, res.stuck, res.failedBy ?? Number.POSITIVE_INFINITY, opts.maxShrinkSteps);
    }
    keys.push(result);
  }
  const violations = keys.filter((k) => k.verdict === 'violation');
  const unknownKeys = keys.filter((k) => k.verdict === 'unknown').map((k) => k.key);
  const verdict: Verdict = violations.length > 0 ? 'violation' : unknownKeys.length > 0 ? 'unknown' : 'linearizable';
  return { verdict, operations, steps, keys, violations, unknownKeys };
}

/**
 * Definitely-failed operations never happened and unreturned reads observed nothing: neither
 * constrains a linearization, so both are left out before the search.
 */
function partition<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[]): Map<string, Operation<I, O>[]> {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    if (op.outcome === 'failed') continue;
    if (op.outcome === 'unknown' && model.isReadOnly(op.input)) continue;
    if (op.outcome === 'ok' && (op.returnAt === undefined || op.output === undefined)) {
      throw new Error(`operation on key ${op.key} is ok but has no return time or output`);
    }
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  return byKey;
}

/**
 * An unknown-outcome blind write that nothing observed can always be placed after everything
 * else, where nobody sees it, and removing it changes what no remaining operation saw (the
 * same argument as in shrinking). Dropping these up front keeps the search from trying every
 * subset of lost writes at every point, which is where its time would otherwise go.
 */
function dropUnobservedUnknowns<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[]): Operation<I, O>[] {
  if (!ops.some((op) => op.outcome === 'unknown')) return ops;
  const observed = new Set<string>();
  for (const op of ops) {
    if (model.isReadOnly(op.input)) {
      const k = model.readKey?.(op.input, op.output);
      if (k === undefined) return ops;
      observed.add(k);
    } else if (model.blindWriteKey?.(op.input) === undefined) {
      return ops;
    }
  }
  return ops.filter((op) => op.outcome !== 'unknown' || observed.has(model.blindWriteKey!(op.input)!));
}

function buildWitness<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], stuck: StuckPoint, failedBy: number, shrinkSteps: number): Witness<I, O> {
  const kept = shrink(model, cutAfterFailure(model, ops, failedBy, shrinkSteps), shrinkSteps);
  const sorted = [...kept].sort((a, b) => a.callAt - b.callAt);
  const origin = sorted[0]?.callAt ?? 0;
  const lines = sorted.map((op) => {
    const end = op.returnAt === undefined ? '…' : String(op.returnAt - origin);
    return `client ${op.clientId}: [${op.callAt - origin}, ${end}] ${model.describe(op.input, op.outcome === 'ok' ? op.output : undefined)}`;
  });
  const blocked = ops[stuck.blockedOp]!;
  return {
    operations: sorted,
    blocked,
    blockedText: model.describe(blocked.input, blocked.outcome === 'ok' ? blocked.output : undefined),
    linearizedTail: stuck.tail.map((i) => ops[i]!),
    lines,
  };
}

/**
 * Operations called after the search's last failure point do not change its verdict (see
 * SearchResult.failedBy), so a witness can start from the rest — provided cutting them is a
 * sound removal too (nothing kept observed a write that is cut; see removalIsSound), which
 * keeps every later shrinking step meaningful for the whole history. Checked, not assumed.
 */
function cutAfterFailure<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], failedBy: number, maxSteps: number): Operation<I, O>[] {
  const cut = new Set(ops.filter((op) => op.callAt > failedBy));
  if (cut.size === 0) return ops;
  const prefix = ops.filter((op) => !cut.has(op));
  if (!removalIsSound(model, cut, prefix)) return ops;
  return searchKey(model, dropUnobservedUnknowns(model, prefix), maxSteps).verdict === 'violation' ? prefix : ops;
}

/**
 * Delta-debugging over the operations that can be removed without changing what the rest
 * observed. Removing a read never makes a linearizable history non-linearizable, so if the rest
 * still fails, the full history failed too. A blind write is removable only while no remaining
 * operation could have observed it: no read returned its value and nothing else (create,
 * delete, cas) remains on the key. Each accepted step is re-checked, so the result is always a
 * genuine non-linearizable sub-history.
 */
function shrink<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], maxSteps: number): Operation<I, O>[] {
  let budget = maxSteps;
  const stillFails = (candidate: Operation<I, O>[]): boolean => {
    if (budget <= 0 || candidate.length === 0) return false;
    // Removing reads leaves lost writes unobserved: drop those too, as the main check does.
    const res = searchKey(model, dropUnobservedUnknowns(model, candidate), budget);
    // Building the event list costs about as much as a step per event: charge it, so a long
    // history cannot turn thousands of cheap checks into minutes.
    budget -= res.steps + 2 * candidate.length;
    return res.verdict === 'violation';
  };
  // Reads first (always sound to drop, and dropping them is what frees the writes), then the
  // writes nobody observes any more, then single operations until nothing more goes.
  const sound = (removed: Set<Operation<I, O>>, rest: Operation<I, O>[]): boolean => {
    if (budget <= 0) return false;
    budget -= rest.length;
    return removalIsSound(model, removed, rest);
  };
  const left = (): boolean => budget > 0;
  let kept = ddmin(ops, (op) => model.isReadOnly(op.input), sound, stillFails, left);
  kept = ddmin(kept, (op) => !model.isReadOnly(op.input), sound, stillFails, left);
  kept = ddmin(kept, () => true, sound, stillFails, left);
  return kept;
}

/** Removes ever smaller chunks of the operations `eligible` selects while the rest still fails. */
function ddmin<I, O>(
  ops: Operation<I, O>[],
  eligible: (op: Operation<I, O>) => boolean,
  sound: (removed: Set<Operation<I, O>>, rest: Operation<I, O>[]) => boolean,
  stillFails: (candidate: Operation<I, O>[]) => boolean,
  budgetLeft: () => boolean,
): Operation<I, O>[] {
  let kept = ops;
  let pool = kept.filter(eligible);
  let chunk = Math.max(1, Math.ceil(pool.length / 2));
  while (pool.length > 0 && budgetLeft()) {
    let changed = false;
    for (let i = 0; i < pool.length && budgetLeft(); ) {
      const removed = new Set(pool.slice(i, i + chunk));
      const candidate = kept.filter((op) => !removed.has(op));
      if (sound(removed, candidate) && stillFails(candidate)) {
        kept = candidate;
        pool = pool.filter((op) => !removed.has(op));
        changed = true;
      } else {
        i += chunk;
      }
    }
    // A removal can make an earlier-tried one sound: at chunk 1, repeat until nothing goes.
    if (chunk === 1 && !changed) break;
    chunk = Math.max(1, Math.floor(chunk / 2));
  }
  return kept;
}

function removalIsSound<S, I, O>(model: Model<S, I, O>, removed: Set<Operation<I, O>>, rest: Operation<I, O>[]): boolean {
  const writes = [...removed].filter((op) => !model.isReadOnly(op.input));
  if (writes.length === 0) return true;
  const writtenKeys: string[] = [];
  for (const op of writes) {
    const k = model.blindWriteKey?.(op.input);
    if (k === undefined) return false;
    writtenKeys.push(k);
  }
  const observed = new Set<string>();
  for (const op of rest) {
    if (model.isReadOnly(op.input)) {
      const k = model.readKey?.(op.input, op.output);
      if (k === undefined) return false;
      observed.add(k);
    } else if (model.blindWriteKey?.(op.input) === undefined) {
      return false;
    }
  }
  return writtenKeys.every((k) => !observed.has(k));
}

const maxWitnessLinesShown = 30;

export function formatViolation<I, O>(result: KeyResult<I, O>): string {
  const w = result.witness;
  if (w === undefined) return `key ${result.key}: not linearizable`;
  const shown = w.lines.slice(0, maxWitnessLinesShown).map((l) => `  ${l}`);
  if (w.lines.length > shown.length) shown.push(`  … ${w.lines.length - shown.length} more`);
  return [`key ${result.key}: not linearizable; ${w.operations.length} operations with no valid order (times in ns from the first):`, ...shown, `  furthest the search got: stuck before client ${w.blocked.clientId}'s ${w.blockedText}`].join('\n');
}
