/**
 * "Nothing acknowledged is lost", checked directly against the final state after healing,
 * independently of the linearizability search:
 *
 * - a label key: an acknowledged write W is lost when the final value was written by a write
 *   that completed before W was even called (so W must be later in any order), or when the
 *   final value is absent or was never written at all;
 * - an extra volume: an acknowledged create is lost when the volume is gone at the end and no
 *   delete that could have come after it (one still running when the create was called, or
 *   called later) was issued.
 */
import type { ChaosOperation } from './history-recorder.js';

export interface LostWrite {
  key: string;
  value: string;
  finalValue: string | null;
}

export function findLostWrites(history: readonly ChaosOperation[], finalValues: ReadonlyMap<string, string | null>): LostWrite[] {
  const lost: LostWrite[] = [];
  const byKey = new Map<string, ChaosOperation[]>();
  for (const op of history) {
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  for (const [key, finalValue] of finalValues) {
    const ops = byKey.get(key) ?? [];
    if (key.startsWith('label:')) {
      const writerOfFinal = ops.find((op) => op.input.op === 'write' && op.input.value === finalValue);
      for (const w of ops) {
        if (w.input.op !== 'write' || w.outcome !== 'ok') continue;
        const superseded = writerOfFinal !== undefined && (writerOfFinal.returnAt === undefined || writerOfFinal.returnAt >= w.callAt);
        if (!superseded) lost.push({ key, value: w.input.value, finalValue });
      }
    } else if (finalValue === null) {
      for (const c of ops) {
        if (c.input.op !== 'create' || c.outcome !== 'ok' || c.output?.ok !== true) continue;
        const laterDelete = ops.some((d) => d.input.op === 'delete' && d.outcome !== 'failed' && d.output?.ok !== false && (d.returnAt === undefined || d.returnAt >= c.callAt));
        if (!laterDelete) lost.push({ key, value: c.input.value, finalValue });
      }
    }
  }
  return lost;
}
