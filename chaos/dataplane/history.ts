/**
 * The data-plane run's record of writes: every write a writer issued, with its block, unique
 * value, write concern, and what the writer learnt. Times are nanoseconds on one monotonic
 * clock from the start of the run.
 */
import type { WriteConcern } from '../../proto/metadata-types.js';
import { writeConcernOrder } from '../../proto/metadata-types.js';
import { errorCodeOf } from '../metadata/history-recorder.js';

/**
 * `acked`: the primary answered that the write's concern was met. `unknown`: an error or a
 * timeout after the client's retries — the write may have landed (on some replicas) or not.
 */
export type WriteOutcome = 'acked' | 'unknown';

export interface BlockWrite {
  writer: number;
  /** `inode/blockNo` */
  key: string;
  value: string;
  concern: WriteConcern;
  outcome: WriteOutcome;
  callAt: number;
  /** Set when acked. */
  returnAt?: number;
}

/** Concerns under which an acknowledged write must survive a single node crash. */
export function mustSurvive(concern: WriteConcern): boolean {
  return writeConcernOrder.indexOf(concern) >= writeConcernOrder.indexOf('replicated');
}

export class WriteHistory {
  private readonly origin = process.hrtime.bigint();
  readonly writes: BlockWrite[] = [];
  readonly errorsByCode = new Map<string, number>();
  private readonly ackWaiters = new Set<{ match: (w: BlockWrite) => boolean; resolve: (w: BlockWrite | null) => void }>();

  now(): number {
    return Number(process.hrtime.bigint() - this.origin);
  }

  begin(writer: number, key: string, value: string, concern: WriteConcern): BlockWrite {
    const w: BlockWrite = { writer, key, value, concern, outcome: 'unknown', callAt: this.now() };
    this.writes.push(w);
    return w;
  }

  acked(w: BlockWrite): void {
    w.returnAt = this.now();
    w.outcome = 'acked';
    for (const waiter of this.ackWaiters) {
      if (!waiter.match(w)) continue;
      this.ackWaiters.delete(waiter);
      waiter.resolve(w);
    }
  }

  /**
   * The next write acknowledged that `match`es, handed over synchronously from `acked` (so a
   * fault can strike right after the acknowledgement), or null when none came in `timeoutMs`.
   */
  nextAck(match: (w: BlockWrite) => boolean, timeoutMs: number): Promise<BlockWrite | null> {
    return new Promise((resolve) => {
      const waiter = {
        match,
        resolve: (w: BlockWrite | null) => { clearTimeout(timer); resolve(w); },
      };
      const timer = setTimeout(() => { this.ackWaiters.delete(waiter); resolve(null); }, timeoutMs);
      this.ackWaiters.add(waiter);
    });
  }

  failed(err: unknown): void {
    const code = errorCodeOf(err);
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}
