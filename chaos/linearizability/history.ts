/**
 * A recorded history: what each client asked, when, and what it saw. Times are numbers on one
 * monotonic clock (the harness uses nanoseconds from `process.hrtime.bigint()`, relative to the
 * start of the run, which stays exact below 2^53 ns ≈ 104 days).
 */

/** What the caller learnt about an operation's effect. */
export const Outcome = {
  /** Returned with a result: it took effect exactly once, between call and return. */
  Ok: 'ok',
  /** Timed out, connection lost, leader died mid-flight: it may take effect at any time after its call, or never. */
  Unknown: 'unknown',
  /** An error that proves the operation never took effect (validation, NOT_LEADER before proposing). */
  Failed: 'failed',
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export interface Operation<I, O> {
  /** Who issued it; only used in reports. */
  clientId: number;
  /** The independent object it acts on (P-compositionality: each key is checked alone). */
  key: string;
  input: I;
  /** Present when `outcome` is `ok`. */
  output?: O;
  outcome: Outcome;
  callAt: number;
  /** Present when `outcome` is `ok` or `failed`; an unknown outcome has no return. */
  returnAt?: number;
}
