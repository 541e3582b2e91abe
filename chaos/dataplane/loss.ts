/**
 * "Nothing that had to survive is lost", against the final contents of each block after
 * healing. Writes acknowledged at `replicated` or stronger must survive; weaker acknowledged
 * writes and unanswered ones may or may not have landed.
 *
 * `mustKeep` says which acknowledged writes must survive (by default: by their concern); the
 * run also asks about the weaker ones, to report (not fail on) what a node loss took.
 *
 * A surviving write W is lost when the block's final value
 *   - is absent, corrupt, or a value no writer wrote, or
 *   - was written by X that was acknowledged before W was even sent (X.returnAt < W.callAt):
 *     every order of the writes puts W after X, so the block must not end with X.
 * A final value from a write that was unanswered, or still running when W was sent, may be
 * later than W: allowed. With writes and one final read per block this rule is exactly the
 * register model's verdict; `toRegisterHistory` hands the same facts to the checker as a
 * cross-check.
 */
import type { Operation, RegisterInput, RegisterOutput } from '../linearizability/index.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { mustSurvive, type BlockWrite } from './history.js';

export interface LostWrite {
  key: string;
  value: string;
  concern: WriteConcern;
  finalValue: string | null;
}

export function findLostWrites(
  writes: readonly BlockWrite[], finalValues: ReadonlyMap<string, string | null>, mustKeep: (w: BlockWrite) => boolean = (w) => mustSurvive(w.concern),
): LostWrite[] {
  const byKey = groupByKey(writes);
  const lost: LostWrite[] = [];
  for (const [key, finalValue] of finalValues) {
    const ops = byKey.get(key) ?? [];
    const writerOfFinal = ops.find((w) => w.value === finalValue);
    for (const w of ops) {
      if (w.outcome !== 'acked' || !mustKeep(w) || w === writerOfFinal) continue;
      const superseded = writerOfFinal !== undefined && (writerOfFinal.returnAt === undefined || writerOfFinal.returnAt >= w.callAt);
      if (!superseded) lost.push({ key, value: w.value, concern: w.concern, finalValue });
    }
  }
  return lost;
}

/**
 * The writes as a register history: surviving acknowledged writes are `ok`; everything else
 * is `unknown` (may apply at any time after its call, or never); the final reads close it.
 */
export function toRegisterHistory(writes: readonly BlockWrite[], finalValues: ReadonlyMap<string, string | null>, finalAt: number): Operation<RegisterInput, RegisterOutput>[] {
  const ops: Operation<RegisterInput, RegisterOutput>[] = writes.map((w) => (w.outcome === 'acked' && mustSurvive(w.concern)
    ? { clientId: w.writer, key: w.key, input: { op: 'write', value: w.value }, output: {}, outcome: 'ok', callAt: w.callAt, returnAt: w.returnAt ?? w.callAt }
    : { clientId: w.writer, key: w.key, input: { op: 'write', value: w.value }, outcome: 'unknown', callAt: w.callAt }));
  for (const [key, value] of finalValues) ops.push({ clientId: -1, key, input: { op: 'read' }, output: { value }, outcome: 'ok', callAt: finalAt, returnAt: finalAt });
  return ops;
}

function groupByKey(writes: readonly BlockWrite[]): Map<string, BlockWrite[]> {
  const byKey = new Map<string, BlockWrite[]>();
  for (const w of writes) {
    let list = byKey.get(w.key);
    if (list === undefined) byKey.set(w.key, (list = []));
    list.push(w);
  }
  return byKey;
}
