/** History builders for the checker's tests: hand-written operations and seeded random histories. */
import type { Operation, RegisterInput, RegisterOutput } from '../../../chaos/linearizability/index.js';
import { Random } from '../../../chaos/lib/random.js';

export type Op = Operation<RegisterInput, RegisterOutput>;

export function write(clientId: number, value: string, callAt: number, returnAt?: number, key = 'x'): Op {
  return returnAt === undefined
    ? { clientId, key, input: { op: 'write', value }, outcome: 'unknown', callAt }
    : { clientId, key, input: { op: 'write', value }, output: {}, outcome: 'ok', callAt, returnAt };
}

export function read(clientId: number, value: string | null, callAt: number, returnAt: number, key = 'x'): Op {
  return { clientId, key, input: { op: 'read' }, output: { value }, outcome: 'ok', callAt, returnAt };
}

/** The chaos runs' seeded PRNG, as a function: every randomized case replays from its seed. */
export function prng(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

export interface Generated {
  history: Op[];
  /** For each key, the acknowledged writes in linearization order. */
  writes: Map<string, Op[]>;
}

/**
 * Runs a sequential register execution (one linearization point per operation, spaced apart)
 * and surrounds each point with a random real-time interval, so operations overlap freely but
 * the history is linearizable by construction. Some writes lose their reply (unknown outcome):
 * half of those really happened, half never did.
 */
export function generate(seed: number, count: number, keyCount: number, spread: number): Generated {
  const rnd = prng(seed);
  const state = new Map<string, string | null>();
  const history: Op[] = [];
  const writes = new Map<string, Op[]>();
  for (let i = 0; i < count; i++) {
    const key = `k${Math.floor(rnd() * keyCount)}`;
    const point = i * 10;
    const callAt = point - Math.floor(rnd() * spread);
    const returnAt = point + Math.floor(rnd() * spread);
    const clientId = Math.floor(rnd() * 16);
    if (rnd() < 0.5) {
      const value = `v${i}`;
      const r = rnd();
      if (r < 0.03) {
        history.push(write(clientId, value, callAt, undefined, key));
        state.set(key, value);
      } else if (r < 0.06) {
        history.push(write(clientId, value, callAt, undefined, key));
      } else {
        const op = write(clientId, value, callAt, returnAt, key);
        history.push(op);
        state.set(key, value);
        let list = writes.get(key);
        if (list === undefined) writes.set(key, (list = []));
        list.push(op);
      }
    } else {
      history.push(read(clientId, state.get(key) ?? null, callAt, returnAt, key));
    }
  }
  return { history, writes };
}

/**
 * Picks a read and a value it cannot have seen: a value u whose write W_u completed before some
 * other acknowledged write W' was called, with W' completing before the read was called. Values
 * are unique, so every linearization orders W_u < W' < read and the read must not see u.
 */
export function corruptObservably(gen: Generated, rnd: () => number): { history: Op[]; index: number } | null {
  const reads = gen.history.map((op, i) => ({ op, i })).filter(({ op }) => op.input.op === 'read');
  for (let attempt = 0; attempt < 200; attempt++) {
    const pick = reads[Math.floor(rnd() * reads.length)];
    if (pick === undefined) return null;
    const ws = gen.writes.get(pick.op.key) ?? [];
    const before = ws.filter((w) => w.returnAt! < pick.op.callAt);
    const stale = before.filter((wu) => before.some((w2) => w2 !== wu && wu.returnAt! < w2.callAt));
    const wu = stale[Math.floor(rnd() * stale.length)];
    if (wu === undefined) continue;
    const value = (wu.input as { value: string }).value;
    if (pick.op.output?.value === value) continue;
    const history = gen.history.slice();
    history[pick.i] = { ...pick.op, output: { value } };
    return { history, index: pick.i };
  }
  return null;
}

