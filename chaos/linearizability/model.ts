/**
 * Sequential specifications the checker linearizes against. A model is a pure, deterministic
 * function of (state, input, output): it says whether the output is what a sequential object
 * would have answered, and what the state becomes.
 */

export interface StepResult<S> {
  ok: boolean;
  next: S;
}

export interface Model<S, I, O> {
  init(): S;
  /**
   * Applies one operation. `output` is undefined for an operation with an unknown outcome: the
   * model must then accept and return the state the operation would leave behind.
   */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /** A string that is equal exactly for equal states: the memoisation key. */
  stateKey(state: S): string;
  /** Operations that never change the state: an unreturned one constrains nothing and is dropped. */
  isReadOnly(input: I): boolean;
  describe(input: I, output: O | undefined): string;
  /**
   * For shrinking witnesses: the state key a blind write (one that ignores the old state) leaves,
   * undefined for any other operation. Without it, only reads are ever removed from a witness.
   */
  blindWriteKey?(input: I): string | undefined;
  /** For shrinking witnesses: the state key a returned read observed. */
  readKey?(input: I, output: O | undefined): string | undefined;
}

/** The value of a register: a string, or absent. */
export type RegisterState = string | null;

export type RegisterInput =
  | { op: 'write'; value: string }
  | { op: 'read' }
  /** Removes the value; answers whether there was one. */
  | { op: 'delete' }
  /** Sets the value only when absent (a create); answers whether it did. */
  | { op: 'create'; value: string }
  | { op: 'cas'; expected: string | null; value: string };

/** `read` answers `value`; `delete`, `create` and `cas` answer `ok`; `write` answers nothing. */
export interface RegisterOutput {
  value?: RegisterState;
  ok?: boolean;
}

/** Absent is the empty key; a value gets a prefix, so the empty string stays distinct from absent. */
function registerKey(state: RegisterState): string {
  return state === null ? '' : `=${state}`;
}

/** A register per key with reads, blind writes, deletes, create-if-absent and compare-and-set. */
export const registerModel: Model<RegisterState, RegisterInput, RegisterOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case 'write':
        return { ok: true, next: input.value };
      case 'read':
        return { ok: output === undefined || output.value === state, next: state };
      case 'delete':
        return { ok: output === undefined || output.ok === (state !== null), next: null };
      case 'create': {
        const applies = state === null;
        return { ok: output === undefined || output.ok === applies, next: applies ? input.value : state };
      }
      case 'cas': {
        const applies = state === input.expected;
        return { ok: output === undefined || output.ok === applies, next: applies ? input.value : state };
      }
    }
  },
  stateKey: registerKey,
  isReadOnly: (input) => input.op === 'read',
  blindWriteKey: (input) => (input.op === 'write' ? registerKey(input.value) : undefined),
  readKey: (input, output) => (input.op === 'read' && output?.value !== undefined ? registerKey(output.value) : undefined),
  describe(input, output) {
    const out = output === undefined ? ' → ?' : output.value !== undefined ? ` → ${JSON.stringify(output.value)}` : output.ok !== undefined ? ` → ${String(output.ok)}` : '';
    switch (input.op) {
      case 'write': return `write(${JSON.stringify(input.value)})${out}`;
      case 'read': return `read()${out}`;
      case 'delete': return `delete()${out}`;
      case 'create': return `create(${JSON.stringify(input.value)})${out}`;
      case 'cas': return `cas(${JSON.stringify(input.expected)}, ${JSON.stringify(input.value)})${out}`;
    }
  },
};
