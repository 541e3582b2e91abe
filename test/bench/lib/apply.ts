/** Feeds a state machine its records `size` at a time, as the Raft driver batches them; a failed command stops the bench. */
import type { AppliedRecord, StateMachine } from '../../../metadata/state/contract.js';

export async function applyInBatches(sm: StateMachine, records: readonly AppliedRecord[], size: number): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < records.length; i += size) {
    for (const r of await sm.apply(records.slice(i, i + size))) {
      if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
      out.push(r.value);
    }
  }
  return out;
}
