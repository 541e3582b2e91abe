/**
 * Records every call and return of the chaos workload on one monotonic clock, and decides what
 * an error proves about whether the operation happened.
 */
import { isGalleonError, type ErrorCode } from '../../proto/errors.js';
import { Outcome, type Operation, type RegisterInput, type RegisterOutput } from '../linearizability/index.js';

export type ChaosOperation = Operation<RegisterInput, RegisterOutput>;

/**
 * Errors that prove the command was never applied: the request was rejected by validation
 * before it was proposed. Everything else — timeouts, lost connections, NOT_LEADER/NO_LEADER
 * after the client's own retries (an earlier attempt may have been proposed and may still
 * commit under the same (clientId, seq)) — leaves the outcome unknown.
 */
const definiteFailureCodes = new Set<ErrorCode>(['INVALID_ARGUMENT', 'INVALID_SIZE', 'INSUFFICIENT_NODES', 'STORAGE_CLASS_NOT_FOUND']);

export function errorCodeOf(err: unknown): string {
  if (isGalleonError(err)) return err.code;
  if (err instanceof Error) return err.name === 'DeadlineExceeded' ? 'CHAOS_DEADLINE' : err.name;
  return 'UNKNOWN_THROWABLE';
}

export function isDefiniteFailure(err: unknown): boolean {
  return isGalleonError(err) && definiteFailureCodes.has(err.code);
}

export class HistoryRecorder {
  private readonly origin = process.hrtime.bigint();
  readonly operations: ChaosOperation[] = [];
  readonly errorsByCode = new Map<string, number>();

  now(): number {
    return Number(process.hrtime.bigint() - this.origin);
  }

  /** Starts an operation; complete it with one of the returned callbacks. */
  begin(clientId: number, key: string, input: RegisterInput): PendingOperation {
    const op: ChaosOperation = { clientId, key, input, outcome: Outcome.Unknown, callAt: this.now() };
    this.operations.push(op);
    return new PendingOperation(op, this);
  }

  countError(err: unknown): void {
    const code = errorCodeOf(err);
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}

export class PendingOperation {
  private done = false;

  constructor(readonly op: ChaosOperation, private readonly recorder: HistoryRecorder) {}

  ok(output: RegisterOutput): void {
    this.finish();
    this.op.returnAt = this.recorder.now();
    this.op.output = output;
    this.op.outcome = Outcome.Ok;
  }

  failed(err: unknown): void {
    this.finish();
    this.recorder.countError(err);
    this.op.returnAt = this.recorder.now();
    this.op.outcome = Outcome.Failed;
  }

  /** Leaves the operation without a return: it may take effect at any later time, or never. */
  unknown(err: unknown): void {
    this.finish();
    this.recorder.countError(err);
  }

  private finish(): void {
    if (this.done) throw new Error(`operation on ${this.op.key} completed twice`);
    this.done = true;
  }
}
