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

/** Records numbered one after another from index 1, as a leader would hand them out; `clientOf` picks a session and seq for each. */
export function recordMaker(clientOf: (n: number) => { clientId: string; seq: number }): (method: string, args: unknown[]) => AppliedRecord {
  const stampMs = 1_700_000_000_000;
  let index = 0;
  return (method, args) => {
    index += 1;
    return { index, kind: 'command', command: { ...clientOf(index), stampMs, method: method as never, args } };
  };
}
